"""Client overhead: CPU this process spends per image (request, base64 decode, hashing,
provenance, atomic store write) for large PNGs, against the floor of decoding each image once
with Pillow. The server runs in another process, so only the client is counted.

    python -m benchmarks.overhead [--n 8]
"""

from __future__ import annotations

import argparse
import io
import time
from typing import Any

from .common import imagenb_against, machine, remote_server, table

SIZES = ("2560x1440", "3840x2160")


def _decode_floor(data: bytes, repeats: int = 5) -> float:
    from PIL import Image

    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
        best = min(best, time.process_time() - t0)
    return best


def measure_size(size: str, n: int) -> dict[str, Any]:
    import imagenb as ig
    from imagenb.api.calls import requests_from
    from imagenb.core import config

    params = {"size": size, "quality": "low", "output_format": "png"}
    warm = [[size, "png"]]
    with remote_server(latency=0.05, warm=warm) as server, imagenb_against(server.base_url):
        ig.start(requests_from(["warm-up"], config.current(), **params)).wait(progress=False)
        reqs = requests_from([f"overhead {size} {i}" for i in range(n)], config.current(), **params)
        c0 = time.process_time()
        run = ig.start(reqs).wait(progress=False)
        cpu = (time.process_time() - c0) / n
        data = run.results[0][0].path.read_bytes() if run.results[0][0] else b""
    floor = _decode_floor(data)
    return {"size": size, "cpu": cpu, "floor": floor, "mb": len(data) / 1e6, "ok": run.done}


def measure(n: int = 8) -> tuple[str, list[dict[str, Any]]]:
    results = [measure_size(size, n) for size in SIZES]
    rows = [
        [
            r["size"],
            f"{r['mb']:.1f} MB",
            f"{r['cpu'] * 1000:.0f} ms",
            f"{r['floor'] * 1000:.0f} ms",
            f"{r['cpu'] / r['floor']:.2f}x",
        ]
        for r in results
    ]
    title = f"client CPU per PNG image vs decoding it once ({n} images each; {machine()})"
    return table(
        title, ["size", "file", "imagenb CPU/image", "decode floor", "ratio"], rows
    ), results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=8)
    print(measure(parser.parse_args().n)[0])
