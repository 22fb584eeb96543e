"""Text checks: wall time to OCR one 2560x1440 PNG and score it against the expected text,
on this machine's cores (views of a round run in parallel). Two cases: the text reads right
(reading stops after the round that finds it) and the text is not there (every view is read:
the worst case). The image is the preview backend's sign, marks and all.

    python -m benchmarks.ocr [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import machine, table

SIZE = "2560x1440"
TEXT = "GRAND OPENING"
BUDGET_S = 2.0


def _time(path: Path, expected: str, repeats: int) -> tuple[float, bool]:
    from imagenb.checks import text as textcheck

    times, passed = [], False
    for _ in range(repeats):
        textcheck.clear_cache()
        t0 = time.perf_counter()
        check = textcheck.check_image(path, expected)
        times.append(time.perf_counter() - t0)
        passed = check.passed
    return statistics.median(times), passed


def measure(repeats: int = 5) -> tuple[str, list[dict[str, Any]]]:
    from imagenb.backends import preview
    from imagenb.checks import ocr
    from imagenb.core.request import build

    ocr.require(["eng"])
    request = build(f'a shop sign that says "{TEXT}"', size=SIZE, quality="low")
    with tempfile.TemporaryDirectory(prefix="imagenb-ocr-") as tmp:
        path = Path(tmp) / "sign.png"
        path.write_bytes(preview.render(request)[0])
        _time(path, TEXT, 1)  # warm: Tesseract's model files into the page cache
        right, right_ok = _time(path, TEXT, repeats)
        wrong, wrong_ok = _time(path, "CLOSED FOR WINTER", repeats)
    worst = max(right, wrong)
    result = {"right_s": right, "wrong_s": wrong, "passed": right_ok and not wrong_ok}
    rows = [
        [
            f"{SIZE} PNG, {TEXT!r}",
            f"{right:.2f} s" + ("" if right_ok else " (did not pass!)"),
            f"{wrong:.2f} s" + ("" if not wrong_ok else " (passed!)"),
            f"< {BUDGET_S:.0f} s",
            "yes" if worst < BUDGET_S and result["passed"] else "NO",
        ]
    ]
    title = f"OCR text check of one image (median of {repeats}; {machine()})"
    header = ["image", "text reads right", "text missing (every view)", "budget", "within"]
    return table(title, header, rows), [result]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    print(measure(parser.parse_args().repeats)[0])
