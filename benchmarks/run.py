"""Run every benchmark side by side in one process and print the tables (the README's
performance section is this output).

    python -m benchmarks.run [all|throughput|overhead|memory|grid|import|ocr|money|chat]
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

from . import chat_turns, grid_cache, importtime, money, ocr, overhead, throughput


def _fresh(module: str) -> Callable[[], tuple[str, dict[str, Any]]]:
    """A suite run in a new interpreter: memory growth must not start from the heap that
    earlier suites left in this one."""

    def measure() -> tuple[str, dict[str, Any]]:
        cmd = [sys.executable, "-m", module]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip(), {}

    return measure


SUITES: dict[str, Callable[[], tuple[str, object]]] = {
    "throughput": throughput.measure,
    "overhead": overhead.measure,
    "memory": _fresh("benchmarks.memory"),
    "grid": grid_cache.measure,
    "import": importtime.measure,
    "ocr": ocr.measure,
    "money": money.measure,
    "chat": chat_turns.measure,
}


def main(which: str = "all") -> None:
    names = list(SUITES) if which == "all" else [which]
    for name in names:
        print(SUITES[name]()[0], end="\n\n", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "all")
