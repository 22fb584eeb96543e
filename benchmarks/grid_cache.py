"""Grids: a 64-image grid of 2560x1440 PNGs against the fake server, then the same grid
again (everything in the store: no request may be sent), and the notebook output each grid
image costs (the static HTML a saved notebook keeps, per image).

Every served file is verified against its recorded size and SHA-256 (`store_verify`). The
re-run is measured twice: warm (files this process already hashed are checked by `stat`)
and cold (every file hashed again, as in a fresh kernel).

    python -m benchmarks.grid_cache [--n 64]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from .common import imagenb_against, machine, remote_server, table

PARAMS: dict[str, Any] = {"size": "2k", "quality": "low", "output_format": "png"}


def measure(n: int = 64) -> tuple[str, dict[str, Any]]:
    import imagenb as ig
    from imagenb.store import verify as store_verify

    prompts = [f"grid benchmark {i}" for i in range(n)]
    with remote_server(latency=0.05, warm=[["2560x1440", "png"]]) as server:
        with imagenb_against(server.base_url):
            t0 = time.perf_counter()
            first = ig.grid(prompts, **PARAMS)
            first_wall = time.perf_counter() - t0
            html = first._repr_mimebundle_()["text/html"]
            t0 = time.perf_counter()
            again = ig.grid(prompts, **PARAMS)
            again_html = again._repr_mimebundle_()["text/html"]
            again_wall = time.perf_counter() - t0
            store_verify.forget()  # as a fresh kernel: every file hashed before it is served
            t0 = time.perf_counter()
            cold = ig.grid(prompts, **PARAMS)
            cold._repr_mimebundle_()
            cold_wall = time.perf_counter() - t0
        stats = server.stats()
    out = {
        "first_wall": first_wall,
        "again_wall": again_wall,
        "cold_wall": cold_wall,
        "requests": stats["image_requests"],
        "html_per_image": len(html) / n,
        "again_html_per_image": len(again_html) / n,
        "cached": int((again.frame["status"] == "cached").sum()),
        "cold_cached": int((cold.frame["status"] == "cached").sum()),
    }
    rows = [
        ["first run", f"{first_wall:.2f} s", n, f"{len(html) / n / 1000:.1f} KB"],
        [
            "re-run (all in the store)",
            f"{again_wall:.3f} s",
            stats["image_requests"] - n,
            f"{len(again_html) / n / 1000:.1f} KB",
        ],
        [
            "re-run, every file hashed again (cold)",
            f"{cold_wall:.3f} s",
            stats["image_requests"] - n,
            "",
        ],
    ]
    title = f"grid of {n} images at 2560x1440 PNG ({machine()})"
    header = ["run", "wall", "requests sent", "notebook output per image"]
    return table(title, header, rows), out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=64)
    print(measure(parser.parse_args().n)[0])
