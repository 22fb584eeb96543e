"""Memory: peak resident-set growth of this process while imagenb generates N 2K images
(2560x1440 PNG, photo-like payloads), measured by sampling /proc/self/statm.

    python -m benchmarks.memory [--n 256]
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Any

from .common import imagenb_against, machine, remote_server, table

PAGE = os.sysconf("SC_PAGE_SIZE")
WARM = [["2560x1440", "png"]]


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


class PeakSampler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = rss()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, rss())


def measure(n: int = 256) -> tuple[str, dict[str, Any]]:
    import imagenb as ig
    from imagenb.api.calls import requests_from
    from imagenb.core import config

    params = {"size": "2k", "quality": "low", "output_format": "png"}
    with remote_server(latency=0.05, warm=WARM) as server, imagenb_against(server.base_url):
        ig.start(requests_from(["warm-up"], config.current(), **params)).wait(progress=False)
        reqs = requests_from([f"memory {i}" for i in range(n)], config.current(), **params)
        base = rss()
        sampler = PeakSampler()
        sampler.start()
        t0 = time.perf_counter()
        run = ig.start(reqs).wait(progress=False)
        wall = time.perf_counter() - t0
        sampler.stop.set()
        sampler.join()
        stored_mb = sum(img.path.stat().st_size for row in run.results for img in row if img) / 1e6
    growth = (sampler.peak - base) / 1e6
    out = {
        "n": n,
        "growth_mb": growth,
        "base_mb": base / 1e6,
        "stored_mb": stored_mb,
        "ok": run.done,
        "wall": wall,
    }
    rows = [[f"{run.done}/{n}", f"{stored_mb:.0f} MB", f"{base / 1e6:.0f} MB", f"{growth:.0f} MB"]]
    title = f"memory: {n} images at 2560x1440 PNG ({machine()})"
    return table(
        title, ["delivered", "written to the store", "RSS before", "peak growth"], rows
    ), out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=256)
    print(measure(parser.parse_args().n)[0])
