"""Import cost: `import imagenb` and `%load_ext imagenb`, each timed around the statement
alone in a fresh interpreter (for the magic, one with a bare IPython shell), best of N.

    python -m benchmarks.importtime [--repeat 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from .common import machine, table

_TIMED = """
import time
{setup}
t0 = time.perf_counter()
{stmt}
print(time.perf_counter() - t0)
"""

CASES = {
    "import imagenb": ("", "import imagenb"),
    "%load_ext imagenb": (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()",
        "shell.run_line_magic('load_ext', 'imagenb')",
    ),
}


def _once(setup: str, stmt: str) -> float:
    code = _TIMED.format(setup=setup, stmt=stmt)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def measure(repeat: int = 7) -> tuple[str, dict[str, Any]]:
    results = {name: min(_once(*case) for _ in range(repeat)) for name, case in CASES.items()}
    rows = [[name, f"{t * 1000:.0f} ms"] for name, t in results.items()]
    title = f"import cost, best of {repeat} fresh interpreters ({machine()})"
    return table(title, ["statement", "time"], rows), results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    print(measure(parser.parse_args().repeat)[0])
