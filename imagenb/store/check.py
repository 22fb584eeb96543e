"""Diagnose a store and rebuild what broke, without ever showing a traceback.

`check` looks at a store root even when it cannot be opened: a path that is a file, a
read-only or full filesystem, an index SQLite cannot read, rows whose file is gone or holds
other bytes, files no row points to, interrupted writes. Each problem is one line that says
what to do. `check(repair=True)` rebuilds: a damaged index is set aside and a new one is
made from the provenance every stored image carries inside itself (`provenance`); rows whose
file is lost are dropped and listed; files with a readable record get their row back.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagenb.errors import ImagenbError
from imagenb.store import provenance, sources
from imagenb.store import verify as store_verify

if TYPE_CHECKING:
    from imagenb.store.index import Store, StoredImage

LOW_SPACE_BYTES = 64 * 1024 * 1024
_INDEX_FILES = ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm")


@dataclass
class CheckReport:
    """What `check` found. `problems` holds one line per problem (what, and what to do);
    after a repair, `lost` says what could not be kept and `rebuilt` how many rows came back
    from the files. `ok`: nothing was wrong when it looked."""

    missing: list[str] = field(default_factory=list)  # keys whose file is gone
    corrupt: list[str] = field(default_factory=list)  # keys whose file has other bytes
    orphans: list[Path] = field(default_factory=list)  # object files no row points to
    tmp_leftovers: list[Path] = field(default_factory=list)  # interrupted writes
    integrity: list[str] = field(default_factory=list)  # SQLite complaints about the index
    problems: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    rebuilt: int = 0
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if not self.problems:
            return "store ok"
        if self.repaired:
            done = [f"repaired: {line}" for line in self.problems]
            return "\n".join(done + [f"lost: {line}" for line in self.lost])
        return "\n".join(self.problems)


def require_usable_root(root: Path) -> None:
    """Refuse, in one line, a store path that cannot be a store."""
    if root.exists() and not root.is_dir():
        raise ImagenbError(
            f"the store path {root} is a file, not a folder; set IMAGENB_STORE (or "
            "ig.configure(store=...)) to a folder, or move the file away"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImagenbError(
            f"cannot create the store folder {root} ({exc.strerror or exc}); choose a "
            "writable folder with IMAGENB_STORE or ig.configure(store=...)"
        ) from exc


def index_error(root: Path, exc: BaseException) -> ImagenbError:
    """The one line for an index SQLite cannot use."""
    text = str(exc)
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return ImagenbError(
            f"the store index {root / 'index.sqlite'} cannot be written ({text}); the store "
            "is on a read-only filesystem or not yours: choose a writable folder with "
            "IMAGENB_STORE"
        )
    return ImagenbError(
        f"the store index {root / 'index.sqlite'} is damaged ({text}); run `imagenb store "
        "repair` to rebuild it from the images (each carries its own record)"
    )


def check(
    root: Path,
    *,
    repair: bool = False,
    verify_hashes: bool = True,
    grace_s: float = 60.0,
    store: Store | None = None,
) -> CheckReport:
    """Look at the store at `root` (through `store` if it is open); never raises for what
    it finds. With `repair`, fix what can be fixed and say what was lost."""
    report = CheckReport()
    if root.exists() and not root.is_dir():
        report.problems.append(
            f"{root} is a file, not a store folder: move it away or point IMAGENB_STORE at a "
            "folder"
        )
        return report
    if not root.exists():
        return report  # nothing stored yet
    _filesystem(root, report)
    if store is None:
        store = _open(root, report, repair)
        if store is None:
            return report
    try:
        bad_files = _rows_and_files(store, report, verify_hashes, grace_s)
        if repair:
            _repair(store, report, bad_files)
    except (sqlite3.Error, OSError) as exc:
        report.problems.append(str(index_error(root, exc)))
    return report


def _filesystem(root: Path, report: CheckReport) -> None:
    if not os.access(root, os.W_OK) or _read_only_mount(root):
        report.problems.append(
            f"the store {root} is read-only: stored images can be served but new ones cannot "
            "be kept; make it writable or set IMAGENB_STORE to a writable folder"
        )
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        return
    if free < LOW_SPACE_BYTES:
        report.problems.append(
            f"the disk holding {root} is full ({free // (1024 * 1024)} MB free): new images "
            "cannot be stored; free some space or move the store (IMAGENB_STORE)"
        )


def _read_only_mount(root: Path) -> bool:
    try:
        return bool(os.statvfs(root).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def _open(root: Path, report: CheckReport, repair: bool) -> Store | None:
    """The store at `root`; a damaged index is a problem line (and, repairing, rebuilt)."""
    from imagenb.store.index import Store

    try:
        return Store(root)
    except ImagenbError as exc:
        if "read-only" in str(exc) or not repair:
            report.problems.append(str(exc))
            return None
        report.problems.append(str(exc).partition(";")[0] + ": rebuilt from the images")
    store = Store(_set_aside_index(root))
    rows, lost = rows_from_files(store)
    store.add_rows(rows)
    report.rebuilt, report.repaired = len(rows), True
    report.lost += lost
    return store


def _set_aside_index(root: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in _INDEX_FILES:
        path = root / name
        if path.exists():
            path.rename(root / f"{name}.damaged-{stamp}")
    return root


def _rows_and_files(
    store: Store, report: CheckReport, verify: bool, grace_s: float
) -> set[Path]:
    """Fill in rows without a (correct) file, files without a row and tmp leftovers;
    returns the files whose bytes are wrong."""
    report.integrity = [m for (m,) in store._query("PRAGMA integrity_check") if m != "ok"]
    if report.integrity:
        report.problems.append(
            f"the index reports damage ({report.integrity[0]}); run `imagenb store repair`"
        )
    by_file: dict[Path, list[str]] = {}
    for key, sha, ext in store._query("SELECT key, sha256, ext FROM images"):
        by_file.setdefault(store.object_path(sha, ext), []).append(key)
    bad_files = set()
    for path, keys in by_file.items():
        sha = path.name.partition(".")[0]
        if not path.exists():
            report.missing += keys
        elif verify and _safe_sha(path) != sha:
            report.corrupt += keys
            bad_files.add(path)
    cutoff = time.time() - grace_s
    from imagenb.store.index import older

    files = [p for p in store.objects.glob("*/*") if p.is_file() and p not in by_file]
    report.orphans = sorted(p for p in files if older(p, cutoff))
    report.tmp_leftovers = sorted(p for p in store.tmp.iterdir() if older(p, cutoff))
    for items, what, todo in (
        (report.missing, "image(s) whose file is gone", "`imagenb store repair` drops their rows; "
         "the next identical request makes them again"),
        (report.corrupt, "image(s) whose file no longer matches its hash", "they are never "
         "served; `imagenb store repair` removes them"),
        (report.orphans, "file(s) without a row", "`imagenb store repair` gives those with an "
         "embedded record their row back"),
        (report.tmp_leftovers, "leftover(s) of interrupted writes in tmp/",
         "`imagenb store repair` removes them"),
    ):  # fmt: skip
        if items:
            report.problems.append(f"{len(items)} {what}: {todo}")
    return bad_files


def _repair(store: Store, report: CheckReport, bad_files: set[Path]) -> None:
    """Drop rows whose file is lost, remove wrong files and leftovers, give orphans with a
    readable record their row back."""
    with store._transaction() as conn:
        for key in dict.fromkeys(report.missing + report.corrupt):
            conn.execute("DELETE FROM images WHERE key = ?", (key,))
        for path in bad_files:
            path.unlink(missing_ok=True)
    report.lost += [f"{key[:16]}: its file held other bytes" for key in report.corrupt]
    report.lost += [f"{key[:16]}: its file was gone" for key in report.missing]
    adopted, unreadable = rows_from_files(store, report.orphans)
    taken = {(r.key, r.source) for r in store.history()}
    adopted = [row for row in adopted if (row.key, row.source) not in taken]
    store.add_rows(adopted)
    report.rebuilt += len(adopted)
    for path in unreadable:
        path.unlink(missing_ok=True)
    report.lost += [f"{p.name}: no row and no readable record; removed" for p in unreadable]
    for path in report.tmp_leftovers:
        path.unlink(missing_ok=True)
    report.repaired = True


def _safe_sha(path: Path) -> str:
    try:
        return store_verify.file_sha256(path)
    except OSError:
        return ""


def _name(path: Path) -> tuple[str, str]:
    sha, _, ext = path.name.partition(".")
    return sha, ext


def rows_from_files(
    store: Store, paths: list[Path] | None = None
) -> tuple[list[StoredImage], list[Any]]:
    """Rows recreated from the records embedded in object files (all, or `paths`): the
    rows, and what could not be (files without a usable record)."""
    rows: list[StoredImage] = []
    lost: list[Any] = []
    candidates = paths if paths is not None else sorted(store.objects.glob("*/*"))
    for path in candidates:
        row = _row_from_file(store, path)
        if row is None:
            lost.append(path if paths is not None else f"{path.name}: no readable record")
        else:
            rows.append(row)
    return _newest_keeps_the_key(rows), lost


def _newest_keeps_the_key(rows: list[StoredImage]) -> list[StoredImage]:
    """Files made `fresh` share a key: the newest takes it, the others the derived key
    `<key>~<sha>` the store gives a superseded image."""
    from dataclasses import replace

    from imagenb.store.index import superseded_key

    taken: set[tuple[str, str]] = set()
    out = []
    for row in sorted(rows, key=lambda r: -r.created):
        if (row.key, row.source) in taken:
            row = replace(row, key=superseded_key(row.key, row.sha256))
        taken.add((row.key, row.source))
        out.append(row)
    return out


def _row_from_file(store: Store, path: Path) -> StoredImage | None:
    from imagenb.store.index import OBJECT_NAME

    if not OBJECT_NAME.match(path.name):
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    sha, ext = _name(path)
    header = provenance.probe(data)
    meta = provenance.read(data)
    if store_verify.file_sha256(path) != sha or header is None or not meta:
        return None
    backend = str(meta.get("backend", "openai"))
    source = meta.get("source") or sources.from_backend(backend)
    if source == sources.OPENAI and sources.FAKE_IMAGE_MARK in data:
        source = sources.TEST
    record = {
        **meta, "sha256": sha, "ext": ext, "width": header.width, "height": header.height,
        "source": source, "backend": backend, "nbytes": len(data),
        "input_keys": meta.get("inputs", []), "usage": meta.get("usage"),
        "cost_usd": meta.get("cost_usd"), "cost_is_estimate": meta.get("cost_is_estimate", True),
        "latency_s": None, "request_id": meta.get("request_id"),
        "kind": meta.get("kind", "edit" if meta.get("inputs") else "generate"),
    }  # fmt: skip
    try:
        return store.row_from_record(record)
    except ImagenbError:
        return None
