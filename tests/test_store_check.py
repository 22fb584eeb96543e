"""Diagnose and rebuild: `imagenb store check` answers every kind of damage in one line per
problem (never a traceback) and exits non-zero; `imagenb store repair` rebuilds the index
from the records inside the images; `store info` reads as text or JSON."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest

import imagenb as ig
from imagenb.cli.main import main
from imagenb.engine import session
from imagenb.store import check as store_check
from imagenb.testing import FakeImagesServer


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["store", *args])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return code, (out.out + out.err).strip()


def made(n: int = 3) -> list[ig.GeneratedImage]:
    images = [ig.generate(f"picture {i}", quality="low")[0] for i in range(n)]
    session.reset()  # close the store: the index is now only on disk
    return images


def overwrite_index_head(store: Path) -> None:
    with open(store / "index.sqlite", "r+b") as fh:
        fh.write(os.urandom(100))


def test_a_damaged_index_is_one_line_then_rebuilt_from_the_images(
    fake: FakeImagesServer, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = made(4)
    before = ig.history().set_index("key")
    session.reset()
    images[0].path.write_bytes(b"not the image any more")  # one file is lost for good
    overwrite_index_head(isolated)

    code, text = cli(capsys, "check")
    assert code == 1 and len(text.splitlines()) == 1
    assert "damaged" in text and "imagenb store repair" in text
    with pytest.raises(ig.errors.ImagenbError, match="store repair"):
        ig.history()  # the API says the same, in one line

    code, text = cli(capsys, "repair")
    assert code == 0 and "rebuilt" in text and "lost" in text
    after = ig.history().set_index("key")
    intact = [img.key for img in images[1:]]
    assert sorted(after.index) == sorted(intact)
    for column in ("prompt", "model", "source", "cost_usd", "backend"):
        assert after.loc[intact, column].tolist() == before.loc[intact, column].tolist()
    assert cli(capsys, "check")[0] == 0
    assert list(isolated.glob("index.sqlite.damaged-*"))  # the old index is kept aside
    sent = fake.stats.snapshot()["image_requests"]
    assert ig.generate("picture 2", quality="low")[0].cached  # served again, free
    assert fake.stats.snapshot()["image_requests"] == sent


def test_check_without_a_traceback_in_a_subprocess(fake: FakeImagesServer, isolated: Path) -> None:
    made(1)
    overwrite_index_head(isolated)
    run = subprocess.run(
        [sys.executable, "-m", "imagenb.cli.main", "store", "check"],
        capture_output=True, text=True, env={**os.environ, "IMAGENB_STORE": str(isolated)},
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 1 and "Traceback" not in run.stderr + run.stdout
    assert len(run.stdout.strip().splitlines()) == 1


def test_missing_corrupt_and_leftover_files_each_get_a_line(
    fake: FakeImagesServer, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = made(3)
    images[0].path.unlink()
    images[1].path.write_bytes(b"garbage")
    leftover = isolated / "tmp" / "old-leftover"
    leftover.write_bytes(b"half")
    old = time.time() - 600  # past the grace of a write in progress, not yet swept on open
    os.utime(leftover, (old, old))
    code, text = cli(capsys, "check")
    lines = text.splitlines()
    assert code == 1 and len(lines) == 3
    assert "gone" in lines[0] and "no longer matches" in lines[1] and "tmp/" in lines[2]
    assert all("imagenb store repair" in line for line in lines)
    assert str(ig.current_store().check()) == text  # the API returns the same report
    session.reset()
    code, text = cli(capsys, "repair")
    assert code == 0 and text.count("lost:") == 2
    assert cli(capsys, "check") == (0, "store ok")
    assert [r.key for r in ig.current_store().history()] == [images[2].key]


def test_store_path_that_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    target = tmp_path / "a-file"
    target.write_text("x")
    monkeypatch.setenv("IMAGENB_STORE", str(target))
    code, text = cli(capsys, "check")
    assert code == 1 and len(text.splitlines()) == 1 and "is a file" in text
    code, text = cli(capsys, "info")
    assert code == 2 and "is a file" in text and len(text.splitlines()) == 1
    with pytest.raises(ig.errors.ImagenbError, match="is a file"):
        ig.history()


def test_read_only_and_full_filesystems(
    fake: FakeImagesServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    made(1)
    monkeypatch.setattr(store_check, "_read_only_mount", lambda root: True)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(store_check.shutil, "disk_usage", lambda p: usage(10**9, 10**9, 1024))
    code, text = cli(capsys, "check")
    lines = text.splitlines()
    assert code == 1 and len(lines) == 2
    assert "read-only" in lines[0] and "writable" in lines[0]
    assert "full" in lines[1] and "free some space" in lines[1]


def test_a_garbage_index_under_wal(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    isolated.mkdir(parents=True)
    (isolated / "index.sqlite").write_bytes(os.urandom(8192))
    code, text = cli(capsys, "check")
    assert code == 1 and len(text.splitlines()) == 1
    code, text = cli(capsys, "repair")
    assert code == 0 and "rebuilt" in text


def test_info_reads_as_text_and_json(
    fake: FakeImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    made(2)
    code, text = cli(capsys, "info")
    assert code == 0 and "images     2 in 2 file(s)" in text
    assert "test" in text and "$0.0000 real money" in text
    assert not re.search(r"\de-\d|\d{7}", text)  # no float noise
    code, raw = cli(capsys, "info", "--json")
    facts = json.loads(raw)
    assert facts["images"] == 2 and facts["by_source"]["test"]["images"] == 2


def test_a_file_whose_row_was_lost_gets_it_back(
    fake: FakeImagesServer, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept, dropped = made(2)
    with sqlite3.connect(isolated / "index.sqlite") as conn:
        conn.execute("DELETE FROM images WHERE key = ?", (dropped.key,))
    old = time.time() - 600  # past the grace a write in progress gets
    os.utime(dropped.path, (old, old))
    code, text = cli(capsys, "check")
    assert code == 1 and "1 file(s) without a row" in text
    code, text = cli(capsys, "repair")
    assert code == 0 and "lost" not in text
    rows = {r.key: r for r in ig.current_store().history()}
    assert set(rows) == {kept.key, dropped.key}
    assert rows[dropped.key].prompt == dropped.prompt and rows[dropped.key].source == "test"
    assert rows[dropped.key].cost_usd == pytest.approx(dropped.cost_usd)
