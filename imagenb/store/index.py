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

import copy
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from imagenb.errors import ImagenbError
from imagenb.store import (
    connection as store_index,
)
from imagenb.store import (
    lookup as store_lookup,
)
from imagenb.store import (
    owners,
    provenance,
    sources,
)
from imagenb.store import (
    schema as store_schema,
)
from imagenb.store import (
    verify as store_verify,
)

if TYPE_CHECKING:
    from imagenb.store.check import CheckReport

log = logging.getLogger("imagenb.store.index")
ANY_SOURCE = sources.Policy(sources.REPLAY, None)  # a bare store: every row, writes need one
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
OBJECT_NAME = re.compile(r"^([0-9a-f]{64})\.(png|webp|jpg)$")


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
    source: str
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


class Store:
    """One store root. Thread-safe (one connection behind a lock); processes share it via
    SQLite's WAL locking. Use as a context manager, or call `close()`.

    `policy` says which sources this view serves and what it writes (`serving`); a bare
    `Store(root)` sees every row."""

    policy: sources.Policy = ANY_SOURCE

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.objects, self.tmp, self.thumbs = (self.root / d for d in ("objects", "tmp", "thumbs"))
        from imagenb.store import check as store_check

        store_check.require_usable_root(self.root)
        for folder in (self.objects, self.tmp, self.thumbs):
            folder.mkdir(parents=True, exist_ok=True)
        self._db = store_index.Index(self.root / "index.sqlite")
        try:
            with self._lock:
                store_schema.migrate(self._connection())
        except sqlite3.DatabaseError as exc:
            self.close()
            raise store_check.index_error(self.root, exc) from exc
        except BaseException:
            self.close()
            raise
        self._sweep_tmp()

    def _sweep_tmp(self) -> None:
        """Commit the journalled rows of dead writers and drop their leftovers (a read-only
        store keeps them: `check` says so)."""
        cutoff = time.time() - TMP_MAX_AGE_S
        try:
            for path in self.tmp.iterdir():
                if older(path, cutoff) or owners.file_writer_gone(path.name):
                    if path.suffix == _JOURNAL:
                        self._recover(path)
                    path.unlink(missing_ok=True)
        except (OSError, sqlite3.OperationalError) as exc:
            log.warning("imagenb: could not tidy %s (%s)", self.tmp, exc)

    # --- connection -----------------------------------------------------------------------

    def serving(self, policy: sources.Policy) -> Store:
        """A view of this store that serves and writes as `policy` says (shares the index)."""
        view = copy.copy(self)
        view.policy = policy
        return view

    @property
    def _lock(self) -> threading.RLock:
        return self._db.lock

    def _connection(self) -> sqlite3.Connection:
        return self._db.connection()

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
        self._db.close()

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
        source: str | None = None,
    ) -> StoredImage:
        """Store `data` under `key` and its source (by default what this view writes),
        replacing an earlier row for both; durable on return."""
        header = provenance.probe(data)
        if header is None:
            raise ImagenbError(
                f"the {backend} backend returned {len(data)} bytes that are not a PNG, JPEG or "
                f"WebP image (they start {data[:12]!r}); nothing was stored for {prompt[:60]!r}"
            )
        sha = hashlib.sha256(data).hexdigest()
        row = StoredImage(
            key=key, source=source or self._writes(backend), sha256=sha, ext=header.format,
            width=header.width, height=header.height,
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
            self._db.set_aside.discard((row.key, row.source))
        finally:
            journal.unlink(missing_ok=True)
        return row

    def _writes(self, backend: str) -> str:
        """The source a row gets by default: the view's, or (a bare store) its backend's."""
        writes = self.policy.writes
        return sources.from_backend(backend) if writes == sources.REPLAY else writes

    def _recover(self, journal: Path) -> None:
        """Commit the row of a writer that died after its file landed (see the module doc)."""
        try:
            row = self.row_from_record(json.loads(journal.read_text()))
            if store_verify.file_sha256(row.path) != row.sha256:
                return
        except (OSError, ValueError, ImagenbError):
            return  # killed before the file landed, or a torn journal: nothing was stored
        with self._transaction() as conn:
            sql = "SELECT sha256 FROM images WHERE key = ? AND source = ?"
            if (stored := conn.execute(sql, (row.key, row.source)).fetchone()) is None:
                conn.execute("INSERT " + _INSERT, _to_sql(row))
            elif stored[0] != row.sha256:  # the key was made again meanwhile: keep both
                older = replace(row, key=superseded_key(row.key, row.sha256))
                conn.execute("INSERT OR IGNORE " + _INSERT, _to_sql(older))

    def write_object(self, path: Path, data: bytes) -> None:
        """Write `path` atomically and durably; a file of that name with exactly these bytes
        is kept as is (a damaged one is replaced)."""
        sha = path.name.partition(".")[0]
        if store_verify.intact(path, sha, len(data)):
            try:
                os.utime(path)  # fresh mtime: not an orphan candidate for a concurrent repair
                store_verify.remember(path)
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
        store_verify.remember(path)

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
        """Every image among `keys` this view may serve, its file verified (missing, damaged
        and other sources' ones are simply absent), in few queries."""
        return self.lookup(keys).found

    def lookup(self, keys: Iterable[str]) -> store_lookup.Lookup:
        """`get_many` with what it left out: other sources' rows and damaged files. A file
        that no longer matches its row is removed (its row stays: it was paid for), so the
        request is made again and `check` reports the row as missing."""
        candidates: dict[str, list[StoredImage]] = {}
        others: dict[str, set[str]] = {}
        for chunk in _chunks(list(dict.fromkeys(keys))):
            marks = ", ".join("?" * len(chunk))
            for raw in self._query(f"{_SELECT} WHERE key IN ({marks})", chunk):
                row = self._from_sql(raw)
                if self.policy.allows(row.source):
                    candidates.setdefault(row.key, []).append(row)
                else:
                    others.setdefault(row.key, set()).add(row.source)
        return store_lookup.choose(candidates, others, self._db.set_aside)

    def contains(self, key: str) -> bool:
        return self.get(key) is not None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.contains(key)

    def history(self, limit: int | None = None) -> list[StoredImage]:
        """Stored images of every source, newest first (rows whose file is gone are
        skipped; files are not hashed here, only before they are served)."""
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
        """Size of the store and what it holds, by model, backend and source."""
        images, usd = self._query("SELECT count(*), coalesce(sum(cost_usd), 0) FROM images")[0]
        files, nbytes = self._query(
            "SELECT count(*), coalesce(sum(n), 0) FROM "
            "(SELECT max(nbytes) AS n FROM images GROUP BY sha256)"
        )[0]
        spent = self.spent()
        return {
            "root": str(self.root),
            "images": images,
            "files": files,
            "bytes": nbytes,
            "cost_usd": spent["usd"],
            "recorded_usd": usd,
            "by_model": self._totals("model"),
            "by_backend": self._totals("backend"),
            "by_source": self._totals("source"),
            "schema_version": self._query("PRAGMA user_version")[0][0],
        }

    def spent(self, since: float | None = None) -> dict[str, Any]:
        """Money recorded since `since` (unix time; None = all time). `usd`, `images` and
        `by_model` count real money only (`sources.is_money`: no previews, test servers or
        untrusted imports; nor rows imagenb derived itself, `DERIVED_KINDS`); `by_backend`
        and `by_source` list everything else."""
        where = f"WHERE kind NOT IN ({', '.join(repr(k) for k in DERIVED_KINDS)})"
        where, args = (f"{where} AND created >= ?", [since]) if since is not None else (where, [])
        by_source = self._totals("source", where, args)
        paid = [s for s in by_source if sources.is_money(s)]
        marks = ", ".join("?" * len(paid)) or "NULL"
        paid_where = f"{where or 'WHERE 1'} AND source IN ({marks})"
        by_model = self._totals("model", paid_where, [*args, *paid])
        return {
            "usd": sum(v["usd"] for v in by_model.values()),
            "images": sum(v["images"] for v in by_model.values()),
            "by_model": by_model,
            "by_backend": self._totals("backend", where, args),
            "by_source": by_source,
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
        """What is wrong with this store, one line per problem saying what to do
        (`store_check`); `repair` rebuilds what it can and reports what was lost."""
        from imagenb.store import check as store_check

        return store_check.check(self.root, repair=repair, verify_hashes=verify_hashes,
                                 grace_s=grace_s, store=self)  # fmt: skip

    # --- moving stores --------------------------------------------------------------------

    def export(self, path: str | os.PathLike[str], keys: Iterable[str] | None = None) -> int:
        """Write the rows (all, or those of `keys`) and their files to a zip; returns the count
        (the format: `store_archive`)."""
        from imagenb.store import archive as store_archive

        return store_archive.export(self, path, keys)

    def import_(self, path: str | os.PathLike[str], *, trusted: bool = False) -> int:
        """Merge an export into this store, checking every row and file (`store_archive`);
        rows of an untrusted archive serve `replay` only. Returns how many were added; if
        some rows were refused, the others are imported and `ImagenbError` lists the refused."""
        from imagenb.store import archive as store_archive

        result = store_archive.import_(self, path, trusted=trusted)
        if result.refused:
            raise ImagenbError(str(result))
        return result.added

    def add_rows(self, rows: Sequence[StoredImage]) -> None:
        """Commit rows whose files are already in place (`write_object`), in one transaction."""
        with self._transaction() as conn:
            conn.executemany("INSERT OR REPLACE " + _INSERT, [_to_sql(r) for r in rows])

    def row_from_record(self, record: dict[str, Any]) -> StoredImage:
        """A row from `StoredImage.to_record` data, checked: sha and ext become a path here
        (a record from before sources were recorded gets its backend's)."""
        try:
            record = {"source": sources.from_backend(str(record["backend"])), **record}
            values = {name: record[name] for name in _COLUMNS}
            if not OBJECT_NAME.match(f"{values['sha256']}.{values['ext']}"):
                raise ValueError("bad sha256 or ext")
            values["input_keys"] = tuple(str(k) for k in values["input_keys"])
            for name in ("width", "height", "variant", "nbytes"):
                values[name] = int(values[name])
            values["created"] = float(values["created"])
            for name in ("key", "source", "prompt", "model", "backend", "kind"):
                if not isinstance(values[name], str):
                    raise ValueError(f"{name} is not text")
            if not isinstance(values["params"], dict):
                raise ValueError("params is not an object")
            if values["usage"] is not None and not isinstance(values["usage"], dict):
                raise ValueError("usage is not an object")
            if values["cost_usd"] is not None:
                values["cost_usd"] = float(values["cost_usd"])
            values["cost_is_estimate"] = bool(values["cost_is_estimate"])
            return StoredImage(**values, path=self.object_path(values["sha256"], values["ext"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ImagenbError(f"a row is malformed ({exc})") from exc


def _insert(conn: sqlite3.Connection, row: StoredImage) -> None:
    """Insert `row`; an earlier, different image under its key and source moves to a
    derived key."""
    sql = "SELECT sha256 FROM images WHERE key = ? AND source = ?"
    if (old := conn.execute(sql, (row.key, row.source)).fetchone()) and old[0] != row.sha256:
        moved = "UPDATE OR REPLACE images SET key = ? WHERE key = ? AND source = ?"
        conn.execute(moved, (superseded_key(row.key, old[0]), row.key, row.source))
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


def superseded_key(key: str, sha256: str) -> str:
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


def older(path: Path, cutoff: float) -> bool:
    try:
        return path.stat().st_mtime <= cutoff
    except FileNotFoundError:  # a concurrent writer renamed it meanwhile
        return False


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); Windows has no directory handles to sync."""
    if os.name == "nt":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
