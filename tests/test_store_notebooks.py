"""Test servers and the demo keep to themselves: notebook 05 (which starts a loopback fake
server when there is no key) and `make demo` leave the user's default store as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from test_store import png, put

from imagenb.api.calls import history, spent
from imagenb.core import config
from imagenb.engine import session

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def users_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No IMAGENB_STORE: the default store (in the user's cache folder) holds one real
    image paid for earlier."""
    monkeypatch.delenv("IMAGENB_STORE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    default = session.store_for(config.current())
    put(default, "paid-earlier", png(seed=3), source="openai", cost_usd=0.25)
    yield default.root
    session.reset()


def snapshot() -> tuple[float, int, list[str]]:
    session.reset()  # read the store afresh, as a new kernel would
    spend = spent()
    return spend.all_time_usd, spend.all_time_images, list(history()["key"])


@pytest.mark.kernel
@pytest.mark.slow
def test_notebook_05_leaves_the_users_store_unchanged(users_store: Path, tmp_path: Path) -> None:
    before = snapshot()
    nb = nbformat.read(ROOT / "notebooks" / "05_batch.ipynb", as_version=4)
    where = {"metadata": {"path": str(tmp_path)}}
    NotebookClient(nb, timeout=600, kernel_name="python3", resources=where).execute()
    outputs = "".join(str(o) for cell in nb.cells for o in cell.get("outputs", []))
    assert "collected" in outputs or "ok" in outputs  # the notebook did make its images
    assert snapshot() == before == (0.25, 1, ["paid-earlier"])


@pytest.mark.kernel
@pytest.mark.slow
def test_make_demo_leaves_the_users_store_unchanged(users_store: Path, tmp_path: Path) -> None:
    before = snapshot()
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "IMAGENB_STORE"}
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert (out / "01_quickstart.ipynb").exists() and (out / "store" / "index.sqlite").exists()
    assert snapshot() == before
