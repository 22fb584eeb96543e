"""Verify before serving: a stored file that was truncated, replaced or deleted behind the
store's back is never served; the next identical request makes it again with one request, and
a replay request says it is missing."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import imagenb as ig
from imagenb.core import config
from imagenb.errors import NotInStore
from imagenb.store import verify as store_verify
from imagenb.testing import FakeImagesServer


def truncate(path: Path, other: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def same_size_other_bytes(path: Path, other: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF  # inside the last chunk: same size, other bytes
    path.write_bytes(bytes(data))


def another_valid_image(path: Path, other: Path) -> None:
    shutil.copyfile(other, path)


def copy_keeping_mtime(path: Path, other: Path) -> None:
    """Another image copied over it with the original times kept (`cp -p` style)."""
    st = path.stat()
    shutil.copyfile(other, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def delete(path: Path, other: Path) -> None:
    path.unlink()


DAMAGE = [truncate, same_size_other_bytes, another_valid_image, copy_keeping_mtime, delete]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_a_damaged_file_is_made_again_never_served(
    fake: FakeImagesServer, damage: Callable[[Path, Path], None], caplog: pytest.LogCaptureFixture
) -> None:
    first = ig.generate("a lighthouse at dusk", quality="low")[0]
    other = ig.generate("a different picture", quality="low")[0]
    requests = fake.stats.snapshot()["image_requests"]
    cached = ig.generate("a lighthouse at dusk", quality="low")[0]
    assert cached.cached and fake.stats.snapshot()["image_requests"] == requests

    damage(first.path, other.path)
    with caplog.at_level(logging.WARNING, logger="imagenb.store.index"):
        again = ig.generate("a lighthouse at dusk", quality="low")[0]
    assert not again.cached
    assert fake.stats.snapshot()["image_requests"] == requests + 1  # one request, no more
    assert sha(again.path) == again.path.stem  # what is served is what was stored
    assert sha(again.path) != sha(other.path)
    if damage is not delete:
        assert "no longer matches its hash" in caplog.text
    served = ig.generate("a lighthouse at dusk", quality="low")[0]
    assert served.cached and served.path == again.path


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
def test_replay_says_a_damaged_image_is_missing(
    fake: FakeImagesServer, damage: Callable[[Path, Path], None]
) -> None:
    first = ig.generate("a windmill", quality="low")[0]
    other = ig.generate("something else", quality="low")[0]
    config.configure(backend="replay")
    assert ig.generate("a windmill", quality="low")[0].cached
    damage(first.path, other.path)
    with pytest.raises(NotInStore, match="not in"):
        ig.generate("a windmill", quality="low")


def test_a_grid_plan_line_reports_damaged_files(fake: FakeImagesServer) -> None:
    grid = ig.grid(["one", "two", "three"], quality="low")
    truncate(Path(grid.frame["path"][1]), Path())
    again = ig.grid(["one", "two", "three"], quality="low")
    assert "1 stored file no longer matched its hash and will be made again" in again.plan_line
    assert list(again.frame["status"]) == ["cached", "ok", "cached"]


def test_verified_files_are_hashed_once_per_change(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    digest = hashlib.sha256(b"x" * 100).hexdigest()
    assert store_verify.intact(path, digest, 100) is True
    calls: list[Path] = []
    real = store_verify.file_sha256

    def counting(p: Path) -> str:
        calls.append(p)
        return real(p)

    store_verify.file_sha256 = counting  # type: ignore[assignment]
    try:
        assert store_verify.intact(path, digest, 100) is True
        assert calls == []  # unchanged: a stat, no hash
        path.write_bytes(b"y" * 100)
        assert store_verify.intact(path, digest, 100) is False and calls == [path]
        assert store_verify.intact(tmp_path / "gone", digest, 100) is None
    finally:
        store_verify.file_sha256 = real  # type: ignore[assignment]
