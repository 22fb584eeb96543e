"""The store: put/get, dedupe, totals, crash safety, two processes at once, export/import."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagenb.errors import ImagenbError
from imagenb.store import index as store_mod
from imagenb.store import owners
from imagenb.store import schema as store_schema
from imagenb.store.index import Store, StoredImage

ROOT = Path(__file__).resolve().parents[1]


def png(width: int = 8, height: int = 6, seed: int = 0) -> bytes:
    """A valid RGB PNG made without Pillow; `seed` varies the pixels, so the bytes differ."""
    rng = random.Random(seed)
    raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


def put(store: Store, key: str, data: bytes | None = None, **fields: Any) -> StoredImage:
    values: dict[str, Any] = {
        "prompt": f"prompt {key}",
        "model": "gpt-image-2",
        "backend": "openai",
        "params": {"size": "1024x1024", "quality": "low", "n": 1},
        "cost_usd": 0.01,
    }
    values.update(fields)
    return store.put(
        key=key, data=png(seed=zlib.crc32(key.encode())) if data is None else data, **values
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store") as s:
        yield s


def test_put_then_get(store: Store) -> None:
    data = png(40, 30, seed=1)
    row = store.put(
        key="k1",
        data=data,
        prompt="一只猫 🐱",
        model="gpt-image-2",
        backend="openai",
        params={"size": "1024x1024", "quality": "high"},
        variant=2,
        usage={"output_tokens": 100},
        cost_usd=0.25,
        cost_is_estimate=False,
        latency_s=1.5,
        request_id="req_1",
        kind="edit",
        input_keys=["a" * 64],
    )
    sha = hashlib.sha256(data).hexdigest()
    assert row.path == store.root / "objects" / sha[:2] / f"{sha}.png"
    assert row.path.read_bytes() == data
    assert (row.ext, row.width, row.height, row.nbytes) == ("png", 40, 30, len(data))
    assert store.get("k1") == row
    got = store.get("k1")
    assert got is not None and got.path == row.path
    assert got.params == {"size": "1024x1024", "quality": "high"}
    assert got.usage == {"output_tokens": 100} and got.cost_is_estimate is False
    assert got.input_keys == ("a" * 64,) and got.kind == "edit" and got.variant == 2
    assert store.get("nope") is None
    assert store.contains("k1") and "k1" in store and "nope" not in store
    assert not list(store.tmp.iterdir())


def test_formats_from_header_without_decoding(store: Store) -> None:
    pil = pytest.importorskip("PIL.Image")
    import io

    for fmt, ext in (("JPEG", "jpg"), ("WEBP", "webp")):
        out = io.BytesIO()
        pil.new("RGB", (33, 17), "red").save(out, fmt)
        row = put(store, fmt, out.getvalue())
        assert (row.ext, row.width, row.height) == (ext, 33, 17)
        assert row.path.suffix == f".{ext}"


def test_put_refuses_non_images(store: Store) -> None:
    with pytest.raises(ImagenbError, match="not a PNG, JPEG or WebP"):
        put(store, "bad", b"<html>rate limited</html>")
    assert store.info()["images"] == 0


def test_same_bytes_under_two_keys_share_one_file(store: Store) -> None:
    data = png(seed=7)
    a, b = put(store, "a", data), put(store, "b", data)
    assert a.path == b.path and a.key != b.key
    info = store.info()
    assert (info["images"], info["files"], info["bytes"]) == (2, 1, len(data))
    assert len(list(store.objects.glob("*/*"))) == 1


def test_a_fresh_image_takes_its_key_and_the_earlier_one_stays(store: Store) -> None:
    first = put(store, "k", png(seed=1), prompt="first", cost_usd=0.25)
    second = put(store, "k", png(seed=2), prompt="second", cost_usd=0.5)
    assert store.get("k") == second
    older = store.get(f"k~{first.sha256[:16]}")
    assert older is not None and older.path == first.path and older.prompt == "first"
    assert store.info()["images"] == 2 and store.spent()["usd"] == 0.75  # both were paid
    assert store.check(grace_s=0).ok  # no orphan left behind
    put(store, "k", png(seed=2), prompt="second")  # the same bytes again: nothing moves
    assert store.info()["images"] == 2


def test_a_writer_killed_after_its_file_landed_gets_its_row_on_next_open(
    tmp_path: Path,
) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with Store(tmp_path) as store:
        row = put(store, "paid", png(seed=3), prompt="paid for")
        record = row.to_record()
        with store._transaction() as conn:  # as if the commit never happened
            conn.execute("DELETE FROM images WHERE key = 'paid'")
    journal = tmp_path / "tmp" / f"{owners.FILE_HOST}-{dead.pid}-1-abc{store_mod._JOURNAL}"
    journal.write_text(json.dumps(record))
    torn = journal.with_name(f"{owners.FILE_HOST}-{dead.pid}-2-def{store_mod._JOURNAL}")
    torn.write_text('{"key": "half')
    with Store(tmp_path) as store:
        assert store.get("paid") == row
        assert not journal.exists() and not torn.exists()
        assert store.check(grace_s=0).ok


def test_claims_hold_for_live_owners_only(store: Store) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mine, other = owners.owner_id(unique=True), owners.owner_id(unique=True)
    assert store.claim(["a", "b"], mine) == []
    assert store.claim(["b", "c"], other) == ["b"]  # all or none: c is not claimed either
    assert store.held(["b", "c"], other) == ["b"] and store.held(["a", "b"], mine) == []
    assert store.claim(["c"], other) == [] and store.claim(["a", "b"], mine) == []
    store.release(["a", "b"], other)  # not its claims: nothing happens
    assert store.claim(["a"], other) == ["a"]
    store.release(["a", "b"], mine)
    assert store.claim(["a", "b"], other) == []
    gone = f"{owners.HOST}:{dead.pid}:x"  # a kernel killed while paying
    elsewhere = "another-host:1:x"  # a PID there means nothing: age decides
    assert store.claim(["d"], gone) == [] and store.claim(["e"], elsewhere) == []
    assert store.claim(["d", "e"], mine) == ["e"]
    with store._transaction() as conn:
        conn.execute("UPDATE claims SET since = since - ? WHERE key = 'e'", (7 * 3600,))
    assert store.claim(["d", "e"], mine) == []


def test_get_many_is_chunked_and_skips_missing(store: Store, monkeypatch: Any) -> None:
    for i in range(3):
        put(store, f"k{i}", png(seed=i))
    queries: list[str] = []
    original = store._query
    monkeypatch.setattr(
        store, "_query", lambda sql, args=(): queries.append(sql) or original(sql, args)
    )
    keys = [f"missing{i}" for i in range(1200)] + ["k0", "k1", "k2", "k1"]
    found = store.get_many(keys)
    assert sorted(found) == ["k0", "k1", "k2"]
    assert len(queries) == 3  # 1203 distinct keys in chunks of 500


def test_history_is_newest_first(store: Store) -> None:
    for i, created in enumerate([300.0, 100.0, 200.0]):
        put(store, f"k{i}", png(seed=i), created=created)
    assert [r.key for r in store.history()] == ["k0", "k2", "k1"]
    assert [r.key for r in store.history(limit=2)] == ["k0", "k2"]


def test_spent_and_info_totals(store: Store) -> None:
    put(store, "a", cost_usd=0.25, created=100.0)
    put(store, "b", cost_usd=0.5, model="gpt-image-1", created=200.0)
    put(store, "c", cost_usd=0.75, backend="preview", created=300.0)
    put(store, "d", cost_usd=None, created=400.0)
    spent = store.spent()
    assert spent["usd"] == pytest.approx(0.75) and spent["images"] == 3
    assert spent["paid_by_model"] == {"gpt-image-1": 0.5, "gpt-image-2": pytest.approx(0.25)}
    assert spent["by_backend"]["preview"] == {"images": 1, "usd": 0.75}
    assert spent["by_backend"]["openai"]["images"] == 3
    recent = store.spent(since=150.0)
    assert recent["usd"] == pytest.approx(0.5) and recent["images"] == 2
    assert store.spent(since=1e12) == {
        "usd": 0,
        "images": 0,
        "by_model": {},
        "by_backend": {},
        "by_source": {},
        "paid_by_model": {},
    }
    info = store.info()
    assert info["images"] == 4 and info["recorded_usd"] == pytest.approx(1.5)
    assert info["cost_usd"] == pytest.approx(0.75)  # real money: the preview is not
    assert info["by_model"]["gpt-image-2"]["images"] == 3
    assert info["by_backend"]["preview"]["usd"] == 0.75
    assert info["root"] == str(store.root)
    assert info["schema_version"] == len(store_schema.MIGRATIONS)


def test_crash_leftovers_are_found_and_repaired(store: Store) -> None:
    keep = put(store, "keep")
    (store.tmp / "12345-interrupted").write_bytes(b"half a file")
    orphan = store.object_path("f" * 64, "png")
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"a file whose row was never written")

    assert store.check().ok  # young leftovers may be a write in progress: not reported
    report = store.check(grace_s=0)
    assert not report.ok
    assert report.orphans == [orphan] and len(report.tmp_leftovers) == 1
    assert "1 file(s) without a row" in str(report)

    assert not store.check(repair=True, grace_s=0).ok  # reports what it found...
    assert store.check(grace_s=0).ok  # ...and removed it
    assert not orphan.exists() and store.get("keep") == keep


def test_row_whose_file_vanished_counts_as_missing(store: Store) -> None:
    gone, kept = put(store, "gone", png(seed=1)), put(store, "kept", png(seed=2))
    gone.path.unlink()
    assert store.get("gone") is None
    assert list(store.get_many(["gone", "kept"])) == ["kept"]
    assert [r.key for r in store.history()] == ["kept"]
    report = store.check()
    assert report.missing == ["gone"] and not report.ok
    store.check(repair=True)
    assert store.check().ok and store.info()["images"] == 1
    put(store, "gone", png(seed=1))  # asking again heals it
    assert store.get("gone") is not None and kept.path.exists()


def test_corrupt_file_is_found_repaired_and_rewritten(store: Store) -> None:
    data = png(seed=3)
    row = put(store, "k", data)
    row.path.write_bytes(b"\0" * len(data))  # same size, wrong bytes
    assert store.check().corrupt == ["k"]
    assert store.check(verify_hashes=False).ok
    store.check(repair=True)
    assert not row.path.exists() and store.get("k") is None
    put(store, "k", data)
    assert row.path.read_bytes() == data and store.check().ok


def test_old_tmp_files_are_removed_on_open(tmp_path: Path) -> None:
    Store(tmp_path).close()
    old, new = tmp_path / "tmp" / "old", tmp_path / "tmp" / "new"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    with Store(tmp_path):
        assert not old.exists() and new.exists()


def test_thumb_path_and_default_root(store: Store, monkeypatch: Any, tmp_path: Path) -> None:
    image = store.object_path("ab" * 32, "png")
    assert store.thumb_path(image, 256) == store.root / "thumbs" / f"{'ab' * 32}-256.webp"
    assert store.thumb_path(image, 64, "png").name == f"{'ab' * 32}-64.png"
    monkeypatch.setenv("IMAGENB_STORE", str(tmp_path / "elsewhere"))
    assert store_mod.default_root() == tmp_path / "elsewhere"
    monkeypatch.delenv("IMAGENB_STORE")
    assert store_mod.default_root().name == "imagenb"


def test_migrations_run_once(tmp_path: Path, monkeypatch: Any) -> None:
    calls: list[int] = []

    def add_rating(conn: sqlite3.Connection) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE images ADD COLUMN rating INTEGER")

    with Store(tmp_path) as first:
        put(first, "k")
    monkeypatch.setattr(store_schema, "MIGRATIONS", [*store_schema.MIGRATIONS, add_rating])
    for _ in range(3):
        with Store(tmp_path) as again:
            assert again.get("k") is not None
            assert again.info()["schema_version"] == len(store_schema.MIGRATIONS)
    assert calls == [1]
    with sqlite3.connect(tmp_path / "index.sqlite") as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(images)")]
    conn.close()
    assert "rating" in columns

    monkeypatch.setattr(store_schema, "MIGRATIONS", store_schema.MIGRATIONS[:1])
    with pytest.raises(ImagenbError, match="newer imagenb"):
        Store(tmp_path)


def test_wal_mode_and_busy_timeout(store: Store) -> None:
    assert store._query("PRAGMA journal_mode")[0][0] == "wal"
    assert store._query("PRAGMA busy_timeout")[0][0] >= 10_000


def test_threads_write_while_another_reads(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(25):
                put(store, f"t{n}-{i}", png(seed=n * 100 + i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        store.history(limit=10)
        store.get_many([f"t0-{i}" for i in range(25)])
    for t in threads:
        t.join()
    assert not errors and store.info()["images"] == 100 and store.check().ok


def _worker(root: str, prefix: str, start: Any) -> None:
    start.wait()
    with Store(root) as s:
        for i in range(50):
            put(s, f"{prefix}{i}", png(seed=ord(prefix) * 1000 + i))


def test_two_processes_put_at_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), p, start)) for p in "ab"]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    with Store(tmp_path) as s:
        assert s.info()["images"] == 100
        assert s.check(grace_s=0).ok


_KILLED_WRITER = textwrap.dedent(
    """
    import os, struct, sys, zlib
    from imagenb.store.index import Store

    def fake_png(size):
        ihdr = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
        head = b"\\x89PNG\\r\\n\\x1a\\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
        return head + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)) + os.urandom(size)

    with Store(sys.argv[1]) as store:
        print("ready", flush=True)
        i = 0
        while True:
            i += 1
            store.put(key=f"{sys.argv[2]}-{i}", data=fake_png(i % 7 * 300_000 + 100),
                      prompt="p", model="m", backend="openai", params={})
    """
)


def test_sigkill_never_leaves_a_row_without_its_file(tmp_path: Path) -> None:
    rng = random.Random(1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for round_ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER, str(tmp_path), str(round_)],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.02, 0.3))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
    with Store(tmp_path) as s:
        assert s.info()["images"] > 0
        # opening committed the journalled rows of killed writers and removed their tmp
        # files: nothing is left to repair, not even after the grace period
        assert s.check(grace_s=0).ok


_LEAN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import imagenb.store.index as store_mod

    heavy = ("PIL", "pandas", "openai", "IPython", "ipywidgets", "numpy")
    assert not [m for m in sys.modules if m.split(".")[0] in heavy], "import pulled in heavy"
    data = Path(sys.argv[2]).read_bytes()
    with store_mod.Store(sys.argv[1]) as store:
        t = time.perf_counter()
        row = store.put(key="big", data=data, prompt="p", model="m", backend="b", params={})
        elapsed = time.perf_counter() - t
        assert (row.width, row.height) == (1300, 1300)
    assert not [m for m in sys.modules if m.split(".")[0] in heavy], "put pulled in heavy"
    print(f"{elapsed:.4f}")
    """
)


def test_put_of_5mb_png_is_lean(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(png(1300, 1300))
    assert big.stat().st_size > 5_000_000
    out = subprocess.run(
        [sys.executable, "-c", _LEAN, str(tmp_path / "store"), str(big)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 1.0


def test_get_many_of_64_keys_is_fast(store: Store) -> None:
    keys = [f"k{i}" for i in range(64)]
    for key in keys:
        put(store, key)
    best = min(_timed(lambda: store.get_many(keys)) for _ in range(5))
    assert len(store.get_many(keys)) == 64
    assert best < 0.010


def _timed(fn: Any) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t
