"""Notebook 09 run in a real kernel with no key (preview backend): the ranking chart is saved
in the notebook as a static SVG picture, so it shows without a kernel."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "09_judge_and_rank.ipynb"


@pytest.mark.kernel
@pytest.mark.slow
def test_the_saved_notebook_holds_the_ranking_chart_as_a_static_picture(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    where = {"metadata": {"path": str(tmp_path)}}
    NotebookClient(nb, timeout=600, kernel_name="python3", resources=where).execute()
    saved = tmp_path / NOTEBOOK.name
    nbformat.write(nb, saved)
    reread = nbformat.read(saved, as_version=4)
    charts = [
        out["data"]
        for cell in reread.cells
        for out in cell.get("outputs", [])
        if "image/svg+xml" in out.get("data", {})
    ]
    assert len(charts) == 1
    html = charts[0]["text/html"]
    svg = base64.b64decode(html.split("base64,", 1)[1].split('"', 1)[0]).decode()
    assert svg == charts[0]["image/svg+xml"]
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and "<style" not in svg and "<script" not in svg
    for style in ("flat vector", "woodcut print", "neon photograph", "watercolour"):
        assert style in svg
