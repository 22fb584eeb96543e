"""Write the notebooks in notebooks/ from their cell sources in scripts/nbsource/ (outputs are
made when they run: under nbval in CI, or by `make demo`).

Keeping each notebook's source as Python makes review and diffs readable: edit
`scripts/nbsource/nbNN_*.py` (a `NAME` and a `CELLS` list), run
`python scripts/make_notebooks.py`, and commit both.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_notebook

ROOT = Path(__file__).resolve().parent
OUT = ROOT.parent / "notebooks"


def write(name: str, cells: list[nbformat.NotebookNode]) -> None:
    for i, cell in enumerate(cells):  # stable ids: regenerating changes no more than the text
        cell["id"] = f"{Path(name).stem[:2]}-{i:02d}"
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, OUT / name)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    OUT.mkdir(exist_ok=True)
    for source in sorted((ROOT / "nbsource").glob("nb*.py")):
        module = importlib.import_module(f"nbsource.{source.stem}")
        write(module.NAME, module.CELLS)
        print(f"wrote notebooks/{module.NAME}")
