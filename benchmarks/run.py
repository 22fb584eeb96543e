"""Run every benchmark side by side in one process and print the tables (the README's
performance section is this output).

    python -m benchmarks.run [all|throughput|overhead|memory|grid|import|ocr]
"""

from __future__ import annotations

import sys

from . import grid_cache, importtime, memory, ocr, overhead, throughput

SUITES = {
    "throughput": throughput.measure,
    "overhead": overhead.measure,
    "memory": memory.measure,
    "grid": grid_cache.measure,
    "import": importtime.measure,
    "ocr": ocr.measure,
}


def main(which: str = "all") -> None:
    names = list(SUITES) if which == "all" else [which]
    for name in names:
        print(SUITES[name]()[0], end="\n\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "all")
