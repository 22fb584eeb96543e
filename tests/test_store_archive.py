"""Export and import: an archive is untrusted input. Rows are re-derived, files checked
against their hash and their embedded record, costs bounded, members read streaming within
limits; a planted image is never served to a live request."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

import imagenb as ig
from imagenb.core import config, request
from imagenb.engine import session
from imagenb.errors import ImagenbError
from imagenb.store import provenance
from imagenb.store.archive import import_
from imagenb.store.index import Store
from imagenb.testing import FakeImagesServer


def made(*prompts: str) -> list[ig.GeneratedImage]:
    return [ig.generate(p, quality="low")[0] for p in prompts]


def records(archive: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(archive) as z:
        return [json.loads(line) for line in z.read("index.jsonl").decode().splitlines()]


def rewrite(archive: Path, target: Path, rows: list[dict[str, Any]], **extra: bytes) -> None:
    """`archive` with its index replaced by `rows` and members `extra` added."""
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(target, "w") as dst:
        for name in src.namelist():
            if name != "index.jsonl":
                dst.writestr(name, src.read(name))
        dst.writestr("index.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        for name, data in extra.items():
            dst.writestr(name, data)


@pytest.fixture
def exported(fake: FakeImagesServer, tmp_path: Path) -> Path:
    made("a harbour at dawn", "a victim prompt", "a planted picture")
    archive = tmp_path / "export.zip"
    assert ig.current_store().export(archive) == 3
    return archive


def test_export_then_import_keeps_every_row(exported: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "fresh") as fresh:
        result = import_(fresh, exported)
        assert (result.added, result.refused) == (3, [])
        rows = {r.key: r for r in fresh.history()}
        for record in records(exported):
            row = rows[record["key"]]
            assert row.source == "imported:test" and row.path.is_relative_to(fresh.root)
            assert row.to_record() | {"source": "test"} == record
        assert fresh.check().ok
        assert import_(fresh, exported).kept == 3  # a second import adds nothing
        assert fresh.spent()["usd"] == 0  # someone else's spend is not yours


def test_a_row_pointing_at_another_requests_image_is_refused(
    exported: Path, tmp_path: Path
) -> None:
    rows = records(exported)
    victim = next(r for r in rows if r["prompt"] == "a victim prompt")
    planted = next(r for r in rows if r["prompt"] == "a planted picture")
    forged = {**planted, **{k: victim[k] for k in ("key", "prompt", "params", "variant")}}
    negative = {**rows[0], "cost_usd": -100}
    bad = tmp_path / "bad.zip"
    rewrite(exported, bad, [forged, negative])
    with Store(tmp_path / "fresh") as fresh:
        result = import_(fresh, bad)
        assert result.added == 0 and len(result.refused) == 2
        text = str(result)
        assert "a victim prompt" in text and "disagrees with the row" in text
        assert "-100" in text and "not between $0" in text
        with pytest.raises(ImagenbError, match="refused 2"):
            fresh.import_(bad)
        assert fresh.history() == [] and fresh.spent()["usd"] == 0


def test_a_row_whose_key_is_not_its_request_is_refused(exported: Path, tmp_path: Path) -> None:
    rows = records(exported)
    other = next(r for r in rows if r["prompt"] == "a planted picture")
    mine = next(r for r in rows if r["prompt"] == "a harbour at dawn")
    lying = {**mine, "key": other["key"]}  # the key of another request, its own file
    bad = tmp_path / "bad.zip"
    rewrite(exported, bad, [lying, {"key": 1}, "not a row"])  # type: ignore[list-item]
    with Store(tmp_path / "fresh") as fresh:
        result = import_(fresh, bad)
        assert result.added == 0 and len(result.refused) == 3
        assert "not the hash of its own request" in str(result)


def test_a_fully_forged_image_never_answers_a_live_request(
    fake: FakeImagesServer, tmp_path: Path
) -> None:
    """An archive can forge a consistent row *and* the record inside the file; that is why
    an untrusted archive serves replay only."""
    victim = request.build("a victim prompt", quality="low")
    planted = made("a planted picture")[0]
    params = {**victim.params(), "n": 1}
    data = provenance.embed(
        planted.path.read_bytes(), "png",
        {"key": victim.key(0), "prompt": victim.prompt, "params": params, "variant": 0},
    )  # fmt: skip
    teacher = Store(tmp_path / "teacher")
    teacher.put(key=victim.key(0), data=data, prompt=victim.prompt, model=victim.model,
                backend="openai", params=params, source="openai", cost_usd=0.01)  # fmt: skip
    archive = tmp_path / "forged.zip"
    teacher.export(archive)
    teacher.close()
    store = ig.current_store()
    assert store.import_(archive) == 1  # consistent: imported, but as untrusted
    sent = fake.stats.snapshot()["image_requests"]
    live = ig.generate("a victim prompt", quality="low")[0]
    assert not live.cached and fake.stats.snapshot()["image_requests"] == sent + 1
    assert live.path.read_bytes() != data
    config.configure(backend="replay")  # the classroom case: replay serves it
    assert ig.generate("a victim prompt", quality="low")[0].cached


def test_a_trusted_archive_serves_live_requests(exported: Path, tmp_path: Path) -> None:
    with Store(tmp_path / "fresh") as fresh:
        assert import_(fresh, exported, trusted=True).added == 3
        assert {r.source for r in fresh.history()} == {"test"}


def test_members_outside_the_store_are_never_written(exported: Path, tmp_path: Path) -> None:
    bad = tmp_path / "escape.zip"
    rewrite(exported, bad, records(exported), **{"../../escape.png": b"x", "/abs.png": b"y"})
    with Store(tmp_path / "deep" / "fresh") as fresh:
        assert import_(fresh, bad).added == 3
    assert not (tmp_path / "escape.png").exists() and not Path("/abs.png").exists()
    names = ["deep", "escape.zip", "export.zip", "home", "store"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names


def test_not_an_export_is_refused_in_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "x.zip"
    with zipfile.ZipFile(junk, "w") as z:
        z.writestr("hello.txt", "hi")
    (tmp_path / "text.zip").write_text("not a zip")
    with Store(tmp_path / "s") as store:
        for path in (junk, tmp_path / "text.zip"):
            with pytest.raises(ImagenbError, match=r"not .*imagenb store export"):
                store.import_(path)


def test_a_zip_bomb_is_refused_with_little_memory(exported: Path, tmp_path: Path) -> None:
    """One 1.5 GiB member of zeros in a small zip: refused before it is inflated; the import
    runs in a subprocess whose peak memory is measured."""
    bomb = tmp_path / "bomb.zip"
    rewrite(exported, bomb, records(exported))
    with (
        zipfile.ZipFile(bomb, "a", zipfile.ZIP_DEFLATED, compresslevel=1) as z,
        z.open("objects/00/zeros.png", "w", force_zip64=True) as fh,
    ):
        block = bytes(64 * 1024 * 1024)
        for _ in range(24):  # 1.5 GiB
            fh.write(block)
    assert bomb.stat().st_size < 10 * 1024 * 1024
    # A process started by a big one (pytest) inherits its peak RSS in ru_maxrss (Linux keeps
    # it across exec), so the import runs in a child forked from a small interpreter, and
    # that interpreter reads the child's peak with getrusage(RUSAGE_CHILDREN).
    script = textwrap.dedent(
        f"""
        import os, resource, sys
        from imagenb.store.index import Store
        from imagenb.errors import ImagenbError
        sys.stdout.flush()
        if os.fork() == 0:
            with Store({str(tmp_path / "victim")!r}) as store:
                try:
                    store.import_({str(bomb)!r})
                except ImagenbError as exc:
                    print("REFUSED", exc)
                print("ROWS", len(store.history()), flush=True)
            os._exit(0)
        os.wait()
        print("PEAK_MB", resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    ).stdout
    assert "REFUSED" in out and "zeros.png" in out and "nothing imported" in out
    peak = int(out.split("PEAK_MB")[1].split()[0])
    assert 0 < peak < 200, out
    print(f"zip bomb import: peak {peak} MB")
    assert "ROWS 0" in out


def test_history_of_the_importer_is_not_touched_by_a_refused_archive(
    exported: Path, tmp_path: Path
) -> None:
    store = session.store_for(config.current())
    before = [r.key for r in store.history()]
    bad = tmp_path / "bad.zip"
    rewrite(exported, bad, [{**records(exported)[0], "cost_usd": float("inf")}])
    with pytest.raises(ImagenbError, match="not between"):
        store.import_(bad)
    assert [r.key for r in store.history()] == before
