"""The README is the front door: its commands exist, its links resolve, and the command it
gives for opening the notebooks starts JupyterLab on them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_what_and_why_come_before_the_internals() -> None:
    headings = re.findall(r"^## (.+)$", README, flags=re.M)
    assert headings[:3] == ["Why imagenb", "Gallery", "Quick start: two commands"]
    for peer in ("Playground", "AUTOMATIC1111", "promptfoo", "Weights & Biases"):
        assert peer in README.split("## Gallery")[0], peer


def test_the_commands_and_routes_are_there() -> None:
    for text in ("make demo", "make test", ".venv/bin/jupyter lab notebooks/", "pip install .",
                 "mybinder.org", "### macOS"):  # fmt: skip
        assert text in README, text
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", make, flags=re.M) and re.search(r"^test:", make, flags=re.M)


def test_every_local_link_resolves_and_no_spec_file_is_cited() -> None:
    docs = ROOT / "docs"
    for path in (ROOT / "README.md", docs / "internals.md", docs / "architecture.md"):
        doc = path.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#]+)\)", doc):
            if not target.startswith("http"):  # a link resolves from the page's own folder
                assert (path.parent / target).exists(), (path.name, target)
        assert "SPEC" not in doc


def test_the_notebooks_are_where_the_readme_says() -> None:
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks and notebooks[0].startswith("01_quickstart")
    # `jupyter lab` is the one from this environment (the README's `.venv/bin/jupyter`)
    out = subprocess.run([sys.executable, "-m", "jupyterlab", "--version"],
                         capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    assert re.match(r"4\.", out.stdout.strip())
