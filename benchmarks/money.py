"""Money under faults: what the server billed against what the client accounted, for imagenb
and for a plain loop over the async SDK with the SDK's own retries, when answers are lost
after the service did (and billed) the work, and when requests fail before any work.

"accounted" is `ig.spent().usd + uncertain_usd` for imagenb, and for the SDK loop what its
successful answers' usage says (all a plain loop can know). "extra billed" counts bills
beyond one per prompt.

    python -m benchmarks.money [--n 64]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from imagenb.testing import FakeImagesServer, Faults

from .common import TEST_KEY, imagenb_against, machine, table

PARAMS: dict[str, Any] = {"model": "gpt-image-2", "size": "1024x1024", "quality": "low"}
TIMEOUT_S, CONCURRENCY = 1.0, 8
SCENARIOS = {
    "30% of answers cut mid-body after the work": Faults(lost_rate=0.3),
    "30% of answers never sent after the work (1 s timeout)": Faults(lost_rate=0.3, lost="hang"),
    "20% 5xx and 10% dropped before any work": Faults(error_rate=0.2, drop_rate=0.1),
}


def _prompts(n: int, tag: str) -> list[str]:
    return [f"{tag} money prompt {i}" for i in range(n)]


def run_imagenb(base_url: str, n: int) -> dict[str, Any]:
    import imagenb as ig
    from imagenb.api.calls import requests_from
    from imagenb.core import config

    with imagenb_against(base_url, concurrency=CONCURRENCY, timeout_s=TIMEOUT_S):
        reqs = requests_from(_prompts(n, "imagenb"), config.current(), **PARAMS)
        run = ig.start(reqs).wait(progress=False)
        spend = ig.spent()
        return {"delivered": run.done, "accounted": spend.usd + spend.uncertain_usd}


def run_sdk(base_url: str, n: int) -> dict[str, Any]:
    import openai

    from imagenb.core import catalog, cost

    spec = catalog.lookup(PARAMS["model"])

    async def main() -> dict[str, Any]:
        gate = asyncio.Semaphore(CONCURRENCY)
        async with openai.AsyncOpenAI(
            api_key=TEST_KEY, base_url=base_url, timeout=TIMEOUT_S
        ) as client:  # the SDK's default retries (2)

            async def one(prompt: str) -> float | None:
                async with gate:
                    try:
                        answer = await client.images.generate(prompt=prompt, **PARAMS)
                    except openai.APIError:
                        return None
                    return cost.usage_cost(spec, answer.usage.model_dump())

            costs = await asyncio.gather(*(one(p) for p in _prompts(n, "sdk")))
        paid = [c for c in costs if c is not None]
        return {"delivered": len(paid), "accounted": sum(paid)}

    return asyncio.run(main())


CONTENDERS = {
    "imagenb (ambiguous_retries=1)": run_imagenb,
    "SDK loop (its own 2 retries)": run_sdk,
}


def measure(n: int = 64) -> tuple[str, dict[str, Any]]:
    rows, everything = [], {}
    for scenario, faults in SCENARIOS.items():
        for name, fn in CONTENDERS.items():
            with FakeImagesServer(latency=0.05, faults=faults, seed=5) as server:
                out = fn(server.base_url, n)
                bills = server.ledger.by_prompt()
                out["billed"] = server.ledger.usd
                out["extra"] = sum(count - 1 for count in bills.values())
                out["most"] = max(bills.values(), default=0)
            everything[f"{scenario} / {name}"] = out
            rows.append(
                [
                    scenario,
                    name,
                    f"{out['delivered']}/{n}",
                    f"${out['billed']:.4f}",
                    f"${out['accounted']:.4f}",
                    f"${out['billed'] - out['accounted']:.4f}",
                    out["extra"],
                    out["most"],
                ]
            )
    header = [
        "faults",
        "client",
        "delivered",
        "billed",
        "accounted",
        "billed, not accounted",
        "extra bills",
        "most bills for one prompt",
    ]
    title = f"money under faults: {n} images, latency 0.05 s, timeout {TIMEOUT_S:g} s ({machine()})"
    return table(title, header, rows), everything


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=64)
    print(measure(parser.parse_args().n)[0])
