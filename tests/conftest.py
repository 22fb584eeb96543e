"""Shared fixtures: every test gets a fresh store and a clean configuration, and nothing
reaches the home directory or the real OpenAI API."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imagenb.core import config
from imagenb.engine import session

TEST_KEY = "sk-test-imagenb-0000000000000000000000"

pytest_plugins = ["browser_lab"]  # JupyterLab + Chromium fixtures for the browser tests


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll until `predicate` holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def assert_no_key(*folders: Path, key: str = TEST_KEY) -> int:
    """Fail if `key` is in any file below `folders`, or in the dump of any SQLite index
    there (WAL pages included); returns how many files were searched."""
    searched = 0
    for folder in folders:
        for path in (p for p in folder.rglob("*") if p.is_file()):
            searched += 1
            assert key.encode() not in path.read_bytes(), path
            if path.name == "index.sqlite":
                with contextlib.closing(sqlite3.connect(path)) as db:
                    assert key not in "\n".join(db.iterdump()), path
    return searched


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh store, no key, no inherited IMAGENB_* settings, an empty spend ledger."""
    for var in list(os.environ):
        if var.startswith(("IMAGENB_", "OPENAI_")):
            monkeypatch.delenv(var)
    store = tmp_path / "store"
    monkeypatch.setenv("IMAGENB_STORE", str(store))
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    config.reset()
    session.reset()
    yield store
    config.reset()
    session.reset()


@pytest.fixture
def fake() -> Iterator[object]:
    """A loopback fake of the OpenAI Images API, with imagenb configured to use it."""
    from imagenb.testing import FakeImagesServer

    with FakeImagesServer() as server:
        config.configure(backend="openai", api_key=TEST_KEY, base_url=server.base_url)
        yield server
