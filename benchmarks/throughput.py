"""Throughput: a grid of N prompts through imagenb vs a plain sequential loop over the SDK vs
a naive `asyncio.gather` over the async SDK, each against the same FakeImagesServer
(latency 0.5 s ±20 %, a server-side cap of 8 concurrent requests, 600 requests/minute), as a
ratio to the physical bound max(N / rate, ceil(N / concurrency) x latency).

    python -m benchmarks.throughput [--n 64]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from typing import Any

from .common import TEST_KEY, imagenb_against, machine, remote_server, table

LATENCY, CAP, RATE = 0.5, 8, 600
SERVER = {
    "latency": LATENCY,
    "jitter": 0.2,
    "max_concurrency": CAP,
    "rate_per_minute": RATE,
    "seed": 1,
}
PARAMS: dict[str, Any] = {"model": "gpt-image-2", "size": "1024x1024", "quality": "low"}


def bound(n: int) -> float:
    return max(n / (RATE / 60), math.ceil(n / CAP) * LATENCY)


def _prompts(n: int, tag: str) -> list[str]:
    return [f"{tag} benchmark prompt {i}" for i in range(n)]


def run_imagenb(base_url: str, n: int) -> dict[str, Any]:
    import imagenb as ig
    from imagenb.api.calls import requests_from
    from imagenb.core import config

    with imagenb_against(base_url, concurrency=CAP):
        # warm-up, as the other contenders import and build their client before the clock
        ig.start(requests_from(["warm-up"], config.current(), **PARAMS)).wait(progress=False)
        reqs = requests_from(_prompts(n, "imagenb"), config.current(), **PARAMS)
        t0 = time.perf_counter()
        run = ig.start(reqs).wait(progress=False)
        return {"wall": time.perf_counter() - t0, "ok": run.done}


def run_sequential(base_url: str, n: int) -> dict[str, Any]:
    import openai

    ok = 0
    with openai.OpenAI(api_key=TEST_KEY, base_url=base_url) as client:
        t0 = time.perf_counter()
        for prompt in _prompts(n, "sequential"):
            try:
                client.images.generate(prompt=prompt, **PARAMS)
                ok += 1
            except openai.APIError:
                pass
        return {"wall": time.perf_counter() - t0, "ok": ok}


def run_gather(base_url: str, n: int) -> dict[str, Any]:
    import openai

    async def main() -> dict[str, Any]:
        async with openai.AsyncOpenAI(api_key=TEST_KEY, base_url=base_url) as client:
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(client.images.generate(prompt=p, **PARAMS) for p in _prompts(n, "gather")),
                return_exceptions=True,
            )
            ok = sum(not isinstance(r, BaseException) for r in results)
            return {"wall": time.perf_counter() - t0, "ok": ok}

    return asyncio.run(main())


CONTENDERS = {
    "imagenb (concurrency 8, adaptive)": run_imagenb,
    "sequential loop over the SDK": run_sequential,
    "naive asyncio.gather over the async SDK": run_gather,
}


SCENARIOS = {
    "per-minute window (burst 600)": 600,
    "one-second bucket (burst 10): the rate binds": 10,
}


def measure(n: int = 64) -> tuple[str, dict[str, dict[str, Any]]]:
    tables, everything = [], {}
    for scenario, burst in SCENARIOS.items():
        results = {}
        for name, fn in CONTENDERS.items():
            with remote_server(**{**SERVER, "burst": burst}) as server:
                out = fn(server.base_url, n)
                stats = server.stats()
            out["rate_limited"] = stats["rate_limited"]
            out["max_in_flight"] = stats["max_in_flight"]
            results[name] = out
        everything[scenario] = results
        tables.append(_table(scenario, n, results))
    return "\n\n".join(tables), everything


def _table(scenario: str, n: int, results: dict[str, dict[str, Any]]) -> str:
    b = bound(n)
    seq = results["sequential loop over the SDK"]["wall"]
    rows = [
        [
            name,
            f"{r['ok']}/{n}",
            f"{r['wall']:.2f}",
            f"{r['wall'] / b:.2f}x",
            f"{seq / r['wall']:.1f}x" if r["ok"] == n else "- (incomplete)",
            r["rate_limited"],
            r["max_in_flight"],
        ]
        for name, r in results.items()
    ]
    title = (
        f"throughput, {scenario}: {n} images, latency {LATENCY}s ±20%, server cap {CAP}, "
        f"{RATE}/min (bound {b:.2f}s; {machine()})"
    )
    header = [
        "client",
        "delivered",
        "wall s",
        "vs bound",
        "speed-up vs sequential",
        "429s",
        "peak in flight",
    ]
    return table(title, header, rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=64)
    print(measure(parser.parse_args().n)[0])
