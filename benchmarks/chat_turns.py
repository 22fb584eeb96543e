"""Conversation turns: wall time and client CPU per turn of `ig.chat` against a plain loop
over `client.responses.create` (the same chained, tool-forcing requests), side by side in one
run against a fake server in another process (SPEC §8: at most 5% more wall time).

    python -m benchmarks.chat_turns [--turns 12] [--latency 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import time
from typing import Any

from .common import TEST_KEY, imagenb_against, machine, remote_server, table

TOOL: Any = {
    "type": "image_generation",
    "model": "gpt-image-2",
    "size": "1024x1024",
    "quality": "low",
}


async def _plain(base_url: str, turns: int) -> None:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key=TEST_KEY, max_retries=0)
    previous: str | None = None
    for i in range(turns):
        extra: dict[str, Any] = {}
        if previous:
            extra = {"previous_response_id": previous, "tool_choice": {"type": "image_generation"}}
        response = await client.responses.create(
            model="gpt-6.2-sol", input=f"plain turn {i}", tools=[TOOL], **extra
        )
        for item in response.output:
            if item.type == "image_generation_call" and item.result:
                base64.b64decode(item.result)
        previous = response.id
    await client.close()


def _imagenb(turns: int) -> None:
    import imagenb as ig

    chat = ig.chat(size="1024x1024", quality="low")
    for i in range(turns):
        chat.say(f"imagenb turn {i}")


def _timed(action: Any) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - w0, time.process_time() - c0


def measure(turns: int = 12, latency: float = 1.0) -> tuple[str, dict[str, Any]]:
    import imagenb as ig

    warm = [["1024x1024", "png"]]
    with remote_server(latency=latency, warm=warm) as server, imagenb_against(server.base_url):
        ig.chat(size="1024x1024", quality="low").say("warm-up")  # imports, loop, client
        asyncio.run(_plain(server.base_url, 1))
        plain = _timed(lambda: asyncio.run(_plain(server.base_url, turns)))
        ours = _timed(lambda: _imagenb(turns))
    rows = [
        [
            name,
            f"{wall / turns * 1000:.0f} ms",
            f"{cpu / turns * 1000:.1f} ms",
            f"{turns / wall:.2f}",
        ]
        for name, (wall, cpu) in (("plain client.responses.create", plain), ("ig.chat", ours))
    ]
    ratio = ours[0] / plain[0]
    rows.append(["ig.chat / plain (wall)", f"{ratio:.3f}x", "", ""])
    title = (f"Conversation turns: {turns} chained turns, {latency:g} s server latency "
             f"({machine()})")  # fmt: skip
    text = table(title, ["client", "wall per turn", "client CPU per turn", "turns/s"], rows)
    return text, {"ratio": ratio, "plain": plain, "imagenb": ours}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=12)
    parser.add_argument("--latency", type=float, default=1.0)
    args = parser.parse_args()
    print(measure(args.turns, args.latency)[0])
