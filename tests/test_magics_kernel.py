"""The magics in a real Jupyter kernel driven by nbclient, against a FakeImagesServer running in
this test process (the kernel inherits its address and a test key through the environment).

Cells run one at a time so that the server's counters can be checked after each.
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbclient
import nbformat
import pytest

from imagenb.render.html import MAX_OUTPUT_BYTES
from imagenb.testing import FakeImagesServer, Faults

pytestmark = pytest.mark.kernel

KEY = "sk-test-kernel-0f9e8d7c6b5a4938271605f4e3d2c1b0"
REPO = Path(__file__).resolve().parents[1]
DATA_URI = re.compile(r"data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)")
STORED_PATH = re.compile(r"-> (\S+)$", re.M)


class Notebook:
    """A kernel with imagenb loaded; `run(source)` executes one cell and returns it."""

    def __init__(self, client: Any, nb: Any) -> None:
        self.client = client
        self.nb = nb

    def run(self, source: str) -> Any:
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return cell


@pytest.fixture
def server() -> Iterator[FakeImagesServer]:
    with FakeImagesServer(faults=Faults(moderation_words=("forbidden",))) as srv:
        yield srv


@pytest.fixture
def notebook(
    server: FakeImagesServer, isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Notebook]:
    ipython_dir = tmp_path / "ipython"
    (ipython_dir / "profile_default").mkdir(parents=True)
    (ipython_dir / "profile_default" / "ipython_config.py").write_text(
        'c.ImagenbMagics.default_quality = "low"\n'
    )
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))
    monkeypatch.setenv("IMAGENB_STORE", str(isolated))
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("IMAGENB_BACKEND", "openai")
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), path])))
    work = tmp_path / "work"
    work.mkdir()
    nb = nbformat.v4.new_notebook()
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(work)}}
    )
    with client.setup_kernel():
        notebook = Notebook(client, nb)
        notebook.run("%load_ext imagenb")
        yield notebook


def text_of(cell: Any) -> str:
    """Every output of a cell as one string (streams, errors and every mime type)."""
    parts = []
    for out in cell.outputs:
        parts.append(out.get("text", ""))
        parts += [str(v) for v in out.get("data", {}).values()]
        parts += [out.get("ename", ""), out.get("evalue", ""), *out.get("traceback", [])]
    return "\n".join(parts)


def stderr_of(cell: Any) -> str:
    return "".join(o["text"] for o in cell.outputs if o.get("name") == "stderr")


def image_bundles(cell: Any) -> list[dict[str, Any]]:
    """The display bundles that show images (not the progress line)."""
    return [
        o["data"]
        for o in cell.outputs
        if "data" in o and "data:image/" in o["data"].get("text/html", "")
    ]


def check_bundle(bundle: dict[str, Any], count: int, store: Path, size: tuple[int, int]) -> None:
    """Thumbnails of at most 40 KB each, a text/plain fallback, the full files in the store."""
    from PIL import Image

    thumbs = DATA_URI.findall(bundle["text/html"])
    assert len(thumbs) == count
    for mime, payload in thumbs:
        assert mime == "image/webp" and len(payload) <= MAX_OUTPUT_BYTES
        with Image.open(io.BytesIO(base64.b64decode(payload))) as thumb:
            assert max(thumb.size) <= 256
    assert len(bundle["text/html"]) <= count * MAX_OUTPUT_BYTES
    paths = [Path(p) for p in STORED_PATH.findall(bundle["text/plain"])]
    assert len(paths) == count
    for path in paths:
        assert path.is_relative_to(store) and path.is_file()
        with Image.open(path) as full:
            assert full.size == size


def test_magics_in_a_real_kernel(
    notebook: Notebook, server: FakeImagesServer, isolated: Path, tmp_path: Path
) -> None:
    def sent() -> int:
        return server.stats.image_requests

    cells = []
    status = notebook.run("%imagenb")
    cells.append(status)
    assert re.search(r"^backend\s+openai at http://127\.0\.0\.1:\d+/v1$", text_of(status), re.M)
    assert sent() == 0

    first = notebook.run("%%imagegen -s 1536x864 -n 2 -o first\na lighthouse at dusk")
    cells.append(first)
    assert sent() == 1 and not stderr_of(first)
    (bundle,) = image_bundles(first)
    check_bundle(bundle, 2, isolated, (1536, 864))
    assert server.log[-1]["params"]["quality"] == "low"  # from ipython_config.py

    again = notebook.run("%%imagegen -s 1536x864 -n 2 -o first\na lighthouse at dusk")
    cells.append(again)
    assert sent() == 1
    assert "2 cached" in image_bundles(again)[0]["text/plain"]

    fresh = notebook.run("%%imagegen -s 1536x864 -n 2 --fresh\na lighthouse at dusk")
    cells.append(fresh)
    assert sent() == 2

    estimate = notebook.run("%imagegen --estimate -q high -n 4 a fox")
    cells.append(estimate)
    assert sent() == 2 and "nothing sent" in text_of(estimate)
    assert not image_bundles(estimate)

    quoted = notebook.run(r'%imagegen -s 1536x864 "a cat, \"quoted\" and spaced" -o q')
    cells.append(quoted)
    assert sent() == 3 and server.log[-1]["prompt"] == 'a cat, "quoted" and spaced'
    check_bundle(image_bundles(quoted)[0], 1, isolated, (1536, 864))

    stream = notebook.run("%%imagegen --stream -o s\na kite over the sea")
    cells.append(stream)
    assert sent() == 4 and server.log[-1]["stream"] is True
    (final,) = image_bundles(stream)  # the partials' display now holds the final images
    assert final["text/plain"].startswith("ImageSet(1 image")

    notebook.run("name = 'harbour'")
    edit = notebook.run("%%imageedit -i first[0] --save out/{i}.png\nthe same {name} at night")
    cells.append(edit)
    assert sent() == 5 and server.log[-1]["path"].endswith("/images/edits")
    assert server.log[-1]["prompt"] == "the same harbour at night"
    assert (tmp_path / "work" / "out" / "0.png").is_file()

    for source, words in [
        ("%imagegen -s 1000x1000 a fox", "divisible by 16"),
        ("%imagegen -m gpt-image-9 a fox", "unknown model"),
        ("%%imageedit -i missing.png\nx", "'missing.png'"),
        ("%imagegen a forbidden fox", "safety system"),
        ("%imagenb budget_usd=0.01", "budget_usd=0.01"),
        ("%imagegen -q high a fox", "budget"),
    ]:
        cell = notebook.run(source)
        cells.append(cell)
        assert not any(o["output_type"] == "error" for o in cell.outputs), source
        assert words in text_of(cell), (source, text_of(cell))
        assert "Traceback" not in text_of(cell)
    assert sent() == 6  # only the moderation case reached the server

    for cell in cells:
        assert KEY not in text_of(cell)
        assert KEY[8:30] not in text_of(cell)
