"""Every notebook, executed with a (test) key against the fake server, stays under 2 MB,
embeds no image over 40 KB, and never contains the key."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import nbformat
import pytest
from conftest import TEST_KEY, assert_no_key
from nbclient import NotebookClient

from imagenb.testing import FakeImagesServer

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")


def _embedded_images(nb: nbformat.NotebookNode) -> list[int]:
    """Sizes of every image in the outputs: image/* bundles and data: URIs in HTML."""
    sizes = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            sizes += [len(base64.b64decode(data[t])) for t in IMAGE_TYPES if t in data]
            html = data.get("text/html", "")
            for chunk in html.split("base64,")[1:]:
                sizes.append(len(chunk.split('"', 1)[0]) * 3 // 4)
    return sizes


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_small_and_keyless(path, tmp_path, monkeypatch, isolated):
    with FakeImagesServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        nb = nbformat.read(path, as_version=4)
        where = {"metadata": {"path": str(tmp_path)}}
        NotebookClient(nb, timeout=600, kernel_name="python3", resources=where).execute()
    saved = tmp_path / path.name
    nbformat.write(nb, saved)
    assert saved.stat().st_size < 2_000_000
    assert max(_embedded_images(nb), default=0) <= 40_000
    text = saved.read_text()
    assert TEST_KEY not in text
    assert TEST_KEY not in json.dumps(nb.metadata)
    # what it wrote (outputs, exports, pages) and the store: files and SQLite index
    assert assert_no_key(tmp_path, isolated) > 1


@pytest.mark.kernel
@pytest.mark.slow
def test_make_demo_signs_the_notebook_it_ran(tmp_path: Path) -> None:
    """`make demo`'s notebook opens trusted for the user who ran it, as if run in JupyterLab."""
    import os
    import subprocess
    import sys

    from nbformat.sign import NotebookNotary
    from nbformat.v4 import new_code_cell, new_notebook

    source = tmp_path / "tiny.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("print(6 * 7)")]), source)
    data_dir = tmp_path / "jupyter-data"
    env = {**os.environ, "JUPYTER_DATA_DIR": str(data_dir), "HOME": str(tmp_path)}
    script = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"
    out = tmp_path / "out"
    cmd = [sys.executable, str(script), "--out", str(out), "--notebook", str(source)]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    ran = nbformat.read(out / "tiny.ipynb", as_version=4)
    assert ran.cells[0].outputs[0].text == "42\n"
    assert NotebookNotary(data_dir=str(data_dir)).check_signature(ran)
    stranger = tmp_path / "someone-else"
    stranger.mkdir()
    assert not NotebookNotary(data_dir=str(stranger)).check_signature(ran)
