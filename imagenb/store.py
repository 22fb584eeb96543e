"""The content-addressed image store: every image ever paid for, safe across kernels and crashes.

Layout under the root::

    objects/<sha[:2]>/<sha256>.<ext>   the image files, named by the SHA-256 of their bytes
    index.sqlite                       one row per request key (WAL, shared by processes),
                                       the claims of requests being paid for, batch jobs
    tmp/                               files and row journals being written
    thumbs/<sha256>-<px>.<ext>         thumbnails, made and cached by the display layer

Crash safety comes from ordering: the row is journalled in `tmp/`, the file is written to
`tmp/`, fsynced, renamed into `objects/` and its directory fsynced before the row is
committed. A SIGKILL at any point leaves either no row, or a row whose file is complete; a
writer killed between the rename and the commit leaves its journal, and the next open commits
that row (the image was paid for). Several keys may share one file (identical bytes). A
`fresh` image replaces the row of its key; the earlier image keeps a row under a derived key
(`<key>~<sha>`), so it is still listed, counted in the spend and checked. Before paying for
a key, the engine claims it (`claim`): another kernel sharing the store waits for that row
instead of paying for the same image again.

Standard library only: no image is decoded on the way in (`provenance.probe` reads headers).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Self

from . import owners, provenance, store_schema
from .errors import ImagenbError

FREE_BACKENDS = frozenset({"preview", "replay"})
# Rows imagenb made itself from other rows (a masked edit's composite, imagenb.masks.keep):
# they cost nothing and are not images a model made, so spending totals leave them out.
DERIVED_KINDS = ("composite",)
GRACE_S = 60.0  # younger orphans and tmp files may belong to a writer that is still running
CLAIM_MAX_AGE_S = 6 * 3600.0  # a claim from another host (shared folder) lapses after this
TMP_MAX_AGE_S = 3600.0  # tmp files older than this are removed whenever a store is opened


def _tmp_name(suffix: str = "") -> str:
    """A name in tmp/ that tells which process wrote it: once that process is gone, what
    it left there goes at once instead of after an hour (`owners.file_writer_gone`)."""
    return f"{owners.file_prefix()}-{threading.get_ident()}-{os.urandom(6).hex()}{suffix}"


_JOURNAL = ".row"  # a row written down before its file lands in objects/
_CHUNK = 500  # keys per `IN (...)` list, well under SQLite's bound-parameter limit
_OBJECT_NAME = re.compile(r"^([0-9a-f]{64})\.(png|webp|jpg)$")


def default_root() -> Path:
    """`$IMAGENB_STORE`, else the user cache directory for imagenb."""
    env = os.environ.get("IMAGENB_STORE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("imagenb"))


@dataclass(frozen=True)
class StoredImage:
    """One index row: the request that made an image, what it cost, and where its file is."""

    key: str
    sha256: str
    ext: str
    width: int
    height: int
    prompt: str
    model: str
    backend: str
    params: dict[str, Any]
    variant: int
    created: float
    usage: dict[str, Any] | None
    cost_usd: float | None
    cost_is_estimate: bool
    latency_s: float | None
    request_id: str | None
    kind: str
    input_keys: tuple[str, ...]
    nbytes: int
    path: Path = field(compare=False)

    def to_record(self) -> dict[str, Any]:
        """The row as JSON-ready data (no path: that depends on where the store lives)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "path"} | {
            "input_keys": list(self.input_keys)
        }


_COLUMNS = tuple(f.name for f in fields(StoredImage) if f.name != "path")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM images"
_INSERT = f"INTO images ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"


@dataclass
class CheckReport:
    """What `Store.check` found; with `repaired`, the listed problems are gone (all but
    `integrity`, which needs the SQLite tools)."""

    missing: list[str] = field(default_factory=list)  # keys whose file is gone
    corrupt: list[str] = field(default_factory=list)  # keys whose file has the wrong bytes
    orphans: list[Path] = field(default_factory=list)  # object files no row points to
    tmp_leftovers: list[Path] = field(default_factory=list)  # interrupted writes
    integrity: list[str] = field(default_factory=list)  # SQLite integrity_check complaints
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not (
            self.missing or self.corrupt or self.orphans or self.tmp_leftovers or self.integrity
        )

    def __str__(self) -> str:
        if self.ok:
            return "store ok"
        parts = [
            f"{len(v)} {name.replace('_', ' ')}"
            for name, v in vars(self).items()
            if isinstance(v, list) and v
        ]
        return "store problems: " + ", ".join(parts) + (" (repaired)" if self.repaired else "")


class Store:
    """One store root. Thread-safe (one connection behind a lock); processes share it via
    SQLite's WAL locking. Use as a context manager, or call `close()`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.objects, self.tmp, self.thumbs = (self.root / d for d in ("objects", "tmp", "thumbs"))
        for folder in (self.objects, self.tmp, self.thumbs):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        try:
            with self._lock:
                store_schema.migrate(self._connection())
        except BaseException:
            self.close()
            raise
        cutoff = time.time() - TMP_MAX_AGE_S
        for path in self.tmp.iterdir():
            if _older(path, cutoff) or owners.file_writer_gone(path.name):
                if path.suffix == _JOURNAL:
                    self._recover(path)
                path.unlink(missing_ok=True)

    # --- connection -----------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # never reuse one across fork
            self._pid = os.getpid()
            self._conn = sqlite3.connect(
                self.root / "index.sqlite", timeout=30.0, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            self._conn.execute("PRAGMA busy_timeout = 30000")  # other kernels may be writing
            for _ in range(100):  # switching to WAL needs a moment alone with the file
                try:
                    self._conn.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError:
                    time.sleep(0.05)
            else:
                raise ImagenbError(f"could not open {self.root}/index.sqlite: it stays locked")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; IMMEDIATE takes the write lock up front (no upgrade deadlock)."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._connection().execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # --- paths ----------------------------------------------------------------------------

    def object_path(self, sha256: str, ext: str) -> Path:
        return self.objects / sha256[:2] / f"{sha256}.{ext}"

    def thumb_path(self, image_path: str | os.PathLike[str], px: int, ext: str = "webp") -> Path:
        """Where the display layer caches the `px` thumbnail of the object at `image_path` (it
        may not exist yet); named by content, so a `fresh` image never shows an old one."""
        return self.thumbs / f"{Path(image_path).stem}-{px}.{ext}"

    # --- writing --------------------------------------------------------------------------

    def put(
        self,
        *,
        key: str,
        data: bytes,
        prompt: str,
        model: str,
        backend: str,
        params: Mapping[str, Any],
        variant: int = 0,
        usage: Mapping[str, Any] | None = None,
        cost_usd: float | None = None,
        cost_is_estimate: bool = True,
        latency_s: float | None = None,
        request_id: str | None = None,
        kind: str = "generate",
        input_keys: Iterable[str] = (),
        created: float | None = None,
    ) -> StoredImage:
        """Store `data` under `key` (replacing an earlier row for it); durable on return."""
        header = provenance.probe(data)
        if header is None:
            raise ImagenbError(
                f"the {backend} backend returned {len(data)} bytes that are not a PNG, JPEG or "
                f"WebP image (they start {data[:12]!r}); nothing was stored for {prompt[:60]!r}"
            )
        sha = hashlib.sha256(data).hexdigest()
        row = StoredImage(
            key=key, sha256=sha, ext=header.format, width=header.width, height=header.height,
            prompt=prompt, model=model, backend=backend, params=dict(params), variant=variant,
            created=time.time() if created is None else created,
            usage=dict(usage) if usage is not None else None, cost_usd=cost_usd,
            cost_is_estimate=cost_is_estimate, latency_s=latency_s, request_id=request_id,
            kind=kind, input_keys=tuple(input_keys), nbytes=len(data),
            path=self.object_path(sha, header.format),
        )  # fmt: skip
        journal = self.tmp / _tmp_name(_JOURNAL)
        journal.write_text(json_text(row.to_record()))
        try:
            self.write_object(row.path, data)
            with self._transaction() as conn:
                # `check(repair=True)` in another process may have taken the file for an
                # orphan before we got the lock; it cannot while we hold it, so look again.
                if not row.path.exists():
                    self.write_object(row.path, data)
                _insert(conn, row)
        finally:
            journal.unlink(missing_ok=True)
        return row

    def _recover(self, journal: Path) -> None:
        """Commit the row of a writer that died after its file landed (see the module doc)."""
        try:
            row = self.row_from_record(json.loads(journal.read_text()))
            if _file_sha256(row.path) != row.sha256:
                return
        except (OSError, ValueError, ImagenbError):
            return  # killed before the file landed, or a torn journal: nothing was stored
        with self._transaction() as conn:
            sql = "SELECT sha256 FROM images WHERE key = ?"
            if (stored := conn.execute(sql, (row.key,)).fetchone()) is None:
                conn.execute("INSERT " + _INSERT, _to_sql(row))
            elif stored[0] != row.sha256:  # the key was made again meanwhile: keep both
                older = replace(row, key=_superseded_key(row.key, row.sha256))
                conn.execute("INSERT OR IGNORE " + _INSERT, _to_sql(older))

    def write_object(self, path: Path, data: bytes) -> None:
        """Write `path` atomically and durably; a complete file of that name is kept as is."""
        try:
            if path.stat().st_size == len(data):
                os.utime(path)  # fresh mtime: not an orphan candidate for a concurrent repair
                return
        except FileNotFoundError:
            pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.tmp / _tmp_name()
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    # --- claims: one payer per image across kernels ----------------------------------------

    def claim(self, keys: Sequence[str], owner: str) -> list[str]:
        """Claim `keys` for `owner` (an `owners.owner_id`), all or none, before paying for
        them. Returns the keys another live owner holds, and then claims nothing: its image is
        on the way, so wait for the row instead of paying twice. A claim of a process that is
        gone, or older than `CLAIM_MAX_AGE_S` on another host, no longer holds."""
        with self._transaction() as conn:
            if held := _held(conn, keys, owner):
                return held
            rows = [(key, owner, time.time()) for key in keys]
            conn.executemany("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", rows)
        return []

    def held(self, keys: Sequence[str], owner: str) -> list[str]:
        """The keys among `keys` that an owner other than `owner` holds now (no write: a
        waiting kernel polls this, not `claim`)."""
        with self._lock:
            return _held(self._connection(), keys, owner)

    def release(self, keys: Sequence[str], owner: str) -> None:
        """Drop `owner`'s claims on `keys` (paid and stored, or given up)."""
        with self._transaction() as conn:
            rows = [(key, owner) for key in keys]
            conn.executemany("DELETE FROM claims WHERE key = ? AND owner = ?", rows)

    # --- reading --------------------------------------------------------------------------

    def get(self, key: str) -> StoredImage | None:
        """The row for `key` if its file is there; a row whose file vanished counts as missing."""
        return self.get_many([key]).get(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, StoredImage]:
        """Every stored image among `keys` (missing ones are simply absent), in few queries."""
        rows: list[Any] = []
        for chunk in _chunks(list(dict.fromkeys(keys))):
            marks = ", ".join("?" * len(chunk))
            rows += self._query(f"{_SELECT} WHERE key IN ({marks})", chunk)
        found = (self._from_sql(r) for r in rows)
        return {image.key: image for image in found if image.path.exists()}

    def contains(self, key: str) -> bool:
        return self.get(key) is not None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.contains(key)

    def history(self, limit: int | None = None) -> list[StoredImage]:
        """Stored images, newest first (rows whose file is gone are skipped)."""
        sql = f"{_SELECT} ORDER BY created DESC, rowid DESC"
        args: list[Any] = []
        if limit is not None:
            sql, args = sql + " LIMIT ?", [limit]
        found = (self._from_sql(r) for r in self._query(sql, args))
        return [image for image in found if image.path.exists()]

    def _from_sql(self, row: Sequence[Any]) -> StoredImage:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["params"] = json.loads(values["params"])
        values["usage"] = json.loads(values["usage"]) if values["usage"] is not None else None
        values["input_keys"] = tuple(json.loads(values["input_keys"]))
        values["cost_is_estimate"] = bool(values["cost_is_estimate"])
        return StoredImage(**values, path=self.object_path(values["sha256"], values["ext"]))

    # --- totals ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Size of the store and what it holds, by model and backend."""
        images, usd = self._query("SELECT count(*), coalesce(sum(cost_usd), 0) FROM images")[0]
        files, nbytes = self._query(
            "SELECT count(*), coalesce(sum(n), 0) FROM "
            "(SELECT max(nbytes) AS n FROM images GROUP BY sha256)"
        )[0]
        return {
            "root": str(self.root),
            "images": images,
            "files": files,
            "bytes": nbytes,
            "cost_usd": usd,
            "by_model": self._totals("model"),
            "by_backend": self._totals("backend"),
            "schema_version": self._query("PRAGMA user_version")[0][0],
        }

    def spent(
        self, since: float | None = None, *, free_backends: Iterable[str] = FREE_BACKENDS
    ) -> dict[str, Any]:
        """Money recorded since `since` (unix time; None = all time). `usd`, `images` and
        `by_model` count paid backends only; `by_backend` lists every backend."""
        where = f"WHERE kind NOT IN ({', '.join(repr(k) for k in DERIVED_KINDS)})"
        where, args = (f"{where} AND created >= ?", [since]) if since is not None else (where, [])
        by_backend = self._totals("backend", where, args)
        free = set(free_backends)
        paid = [b for b in by_backend if b not in free]
        marks = ", ".join("?" * len(paid)) or "NULL"
        paid_where = f"{where or 'WHERE 1'} AND backend IN ({marks})"
        by_model = self._totals("model", paid_where, [*args, *paid])
        return {
            "usd": sum(v["usd"] for v in by_model.values()),
            "images": sum(v["images"] for v in by_model.values()),
            "by_model": by_model,
            "by_backend": by_backend,
            "paid_by_model": {m: v["usd"] for m, v in by_model.items()},
        }

    def _totals(self, column: str, where: str = "", args: Sequence[Any] = ()) -> dict[str, Any]:
        sql = (
            f"SELECT {column}, count(*), coalesce(sum(cost_usd), 0) FROM images {where} "
            f"GROUP BY {column} ORDER BY {column}"
        )
        return {name: {"images": n, "usd": usd} for name, n, usd in self._query(sql, args)}

    # --- maintenance ----------------------------------------------------------------------

    def check(
        self, repair: bool = False, *, verify_hashes: bool = True, grace_s: float = GRACE_S
    ) -> CheckReport:
        """Look for rows without a (correct) file, files without a row, interrupted writes and
        SQLite damage; `repair` removes all of them but the SQLite damage. Orphans and tmp
        files younger than `grace_s` are left out: they may be a write still in progress."""
        report = CheckReport(repaired=repair)
        report.integrity = [m for (m,) in self._query("PRAGMA integrity_check") if m != "ok"]
        by_file: dict[Path, list[str]] = {}
        for key, sha, ext in self._query("SELECT key, sha256, ext FROM images"):
            by_file.setdefault(self.object_path(sha, ext), []).append(key)
        bad_files = set()
        for path, keys in by_file.items():
            if not path.exists():
                report.missing += keys
            elif verify_hashes and _file_sha256(path) != path.name.partition(".")[0]:
                report.corrupt += keys
                bad_files.add(path)
        cutoff = time.time() - grace_s
        files = [p for p in self.objects.glob("*/*") if p.is_file() and p not in by_file]
        report.orphans = sorted(p for p in files if _older(p, cutoff))
        report.tmp_leftovers = sorted(p for p in self.tmp.iterdir() if _older(p, cutoff))
        if repair:
            self._repair(report, bad_files)
        return report

    def _repair(self, report: CheckReport, bad_files: set[Path]) -> None:
        with self._transaction() as conn:
            for chunk in _chunks(report.missing + report.corrupt):
                marks = ", ".join("?" * len(chunk))
                conn.execute(f"DELETE FROM images WHERE key IN ({marks})", chunk)
            for path in bad_files:
                path.unlink(missing_ok=True)
            # Under the write lock no row can appear meanwhile; `put` re-checks its file
            # under the same lock, so deleting an orphan here never strands a new row.
            for path in report.orphans:
                match = _OBJECT_NAME.match(path.name)
                sql = "SELECT 1 FROM images WHERE sha256 = ? AND ext = ? LIMIT 1"
                if not (match and conn.execute(sql, match.groups()).fetchone()):
                    path.unlink(missing_ok=True)
        for path in report.tmp_leftovers:
            path.unlink(missing_ok=True)

    # --- moving stores --------------------------------------------------------------------

    def export(self, path: str | os.PathLike[str], keys: Iterable[str] | None = None) -> int:
        """Write the rows (all, or those of `keys`) and their files to a zip; returns the count
        (the format: `store_archive`)."""
        from . import store_archive

        return store_archive.export(self, path, keys)

    def import_(self, path: str | os.PathLike[str]) -> int:
        """Merge an export into this store, verifying every file's hash; keys already stored
        are kept as they are. Returns how many images were added."""
        from . import store_archive

        return store_archive.import_(self, path)

    def add_rows(self, rows: Sequence[StoredImage]) -> None:
        """Commit rows whose files are already in place (`write_object`), in one transaction."""
        with self._transaction() as conn:
            conn.executemany("INSERT OR REPLACE " + _INSERT, [_to_sql(r) for r in rows])

    def row_from_record(self, record: dict[str, Any]) -> StoredImage:
        """A row from `StoredImage.to_record` data, checked: sha and ext become a path here."""
        try:
            values = {name: record[name] for name in _COLUMNS}
            if not _OBJECT_NAME.match(f"{values['sha256']}.{values['ext']}"):
                raise ValueError("bad sha256 or ext")
            values["input_keys"] = tuple(str(k) for k in values["input_keys"])
            for name in ("width", "height", "variant", "nbytes"):
                values[name] = int(values[name])
            values["created"] = float(values["created"])
            return StoredImage(**values, path=self.object_path(values["sha256"], values["ext"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ImagenbError(
                f"a row of this export is malformed ({exc}); nothing imported"
            ) from exc


def _insert(conn: sqlite3.Connection, row: StoredImage) -> None:
    """Insert `row`; an earlier, different image under its key moves to a derived key."""
    sql = "SELECT sha256 FROM images WHERE key = ?"
    if (old := conn.execute(sql, (row.key,)).fetchone()) and old[0] != row.sha256:
        moved = "UPDATE OR REPLACE images SET key = ? WHERE key = ?"
        conn.execute(moved, (_superseded_key(row.key, old[0]), row.key))
    conn.execute("INSERT OR REPLACE " + _INSERT, _to_sql(row))


def _held(conn: sqlite3.Connection, keys: Sequence[str], owner: str) -> list[str]:
    now, held = time.time(), []
    for chunk in _chunks(keys):
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT key, owner, since FROM claims WHERE key IN ({marks})"
        for key, other, since in conn.execute(sql, chunk):
            if other != owner and _holds(other, now - since):
                held.append(key)
    return held


def _holds(owner: str, age_s: float) -> bool:
    """Whether a claim still stands: its process runs (this host) or it is young (another)."""
    live = owners.alive(owner)
    return live if live is not None else age_s < CLAIM_MAX_AGE_S


def _superseded_key(key: str, sha256: str) -> str:
    return f"{key}~{sha256[:16]}"


def _to_sql(row: StoredImage) -> tuple[Any, ...]:
    values = {name: getattr(row, name) for name in _COLUMNS}
    values["params"] = json_text(row.params)
    values["usage"] = json_text(row.usage) if row.usage is not None else None
    values["input_keys"] = json_text(list(row.input_keys))
    values["cost_is_estimate"] = int(row.cost_is_estimate)
    return tuple(values.values())


def json_text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime <= cutoff
    except FileNotFoundError:  # a concurrent writer renamed it meanwhile
        return False


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); Windows has no directory handles to sync."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
