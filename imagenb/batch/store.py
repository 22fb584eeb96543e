"""Batch jobs in the store: what was submitted, where it stands, and what became of each line.

A job is one submission of request lines; it is split into parts, one remote batch each (the
Batch API takes at most 50,000 lines or 200 MB a file). Every line is recorded under its store
key (its `custom_id`) with what is needed to store its image later (prompt, model, params,
inputs), so another process, or `imagenb batch collect`, can finish a job without the requests
that made it.

The records are written before anything is uploaded, in one transaction that first checks no
other unfinished part already covers the same keys: two kernels running the same grid at
once, or a re-run after a restart, find the job and follow it instead of paying twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from imagenb.backends.base import BATCH_TERMINAL, BatchState
from imagenb.errors import (
    BackendError,
    ImagenbError,
    ModerationBlocked,
    QuotaExceeded,
    RateLimited,
    TransientError,
)
from imagenb.store import owners
from imagenb.store.index import Store

SUBMITTING = "submitting"  # recorded, not yet (known to be) created at the service
ABANDONED = "abandoned"  # its submitter died before creating it; nothing was sent
STALE_OWNER_S = 3600.0  # a submitter silent this long is taken for dead (even if its pid
# exists: pids are reused); an upload of a 200 MB input file fits well within it

_PART_COLUMNS = (
    "job_id", "part", "endpoint", "status", "owner", "batch_id", "input_file_id",
    "output_file_id", "error_file_id", "total", "completed", "failed", "error", "updated",
    "collected",
)  # fmt: skip
_LINE_COLUMNS = (
    "job_id", "part", "key", "prompt", "model", "kind", "params", "variant", "input_keys",
    "estimate_usd", "error",
)  # fmt: skip
_CHUNK = 500


@dataclass(frozen=True)
class PartRecord:
    """One remote batch of a job, as last seen."""

    job_id: str
    part: int
    endpoint: str
    status: str
    owner: str | None
    batch_id: str | None
    input_file_id: str | None
    output_file_id: str | None
    error_file_id: str | None
    total: int
    completed: int
    failed: int
    error: str | None
    updated: float
    collected: bool

    @property
    def terminal(self) -> bool:
        """Finished at the service (or never sent): its results can be collected."""
        return self.status in BATCH_TERMINAL or self.status == ABANDONED

    def submitter_alive(self) -> bool:
        """Whether the process recorded as submitting this part may still be doing so."""
        if time.time() - self.updated >= STALE_OWNER_S:
            return False
        return owners.alive(self.owner or "") is not False


@dataclass(frozen=True)
class LineRecord:
    """One request line: its key (the `custom_id`), what made it, and its error if it failed."""

    job_id: str
    part: int
    key: str
    prompt: str
    model: str
    kind: str
    params: dict[str, Any]
    variant: int
    input_keys: tuple[str, ...]
    estimate_usd: float
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class JobRecord:
    """A job with its parts and totals: lines sent, images stored, dollars estimated and paid."""

    id: str
    created: float
    label: str | None
    backend: str
    base_url: str | None
    parts: tuple[PartRecord, ...] = ()
    lines: int = 0
    stored: int = 0
    errors: int = 0
    estimate_usd: float = 0.0
    cost_usd: float = 0.0
    batch_ids: tuple[str, ...] = field(default=())

    @property
    def collected(self) -> bool:
        return all(p.collected for p in self.parts)

    @property
    def status(self) -> str:
        """`collected`, or the parts' statuses, for example `in_progress` or `completed+expired`."""
        if self.parts and self.collected:
            return "collected"
        return "+".join(dict.fromkeys(p.status for p in self.parts if not p.collected))

    @property
    def processed(self) -> int:
        """Lines the service has finished (collected parts count whole)."""
        return sum(p.total if p.collected else p.completed + p.failed for p in self.parts)


class BatchRecords:
    """Batch bookkeeping on a `Store`'s database (same connection, lock and transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- writing --------------------------------------------------------------------------

    def record(
        self,
        job_id: str,
        *,
        label: str | None,
        backend: str,
        base_url: str | None,
        parts: Sequence[tuple[str, Sequence[LineRecord]]],
    ) -> bool:
        """Record a new job whose parts are `(endpoint, lines)`, all `submitting` by this
        process. False (nothing written) if another unfinished part now covers any key."""
        keys = [line.key for _, lines in parts for line in lines]
        now, owner = time.time(), owners.owner_id()
        with self.store._transaction() as conn:
            for chunk in _chunks(keys):
                marks = ", ".join("?" * len(chunk))
                taken = conn.execute(
                    "SELECT 1 FROM batch_lines l JOIN batch_parts p "
                    "ON p.job_id = l.job_id AND p.part = l.part "
                    f"WHERE p.collected = 0 AND l.key IN ({marks}) LIMIT 1",
                    chunk,
                ).fetchone()
                if taken:
                    return False
            conn.execute(
                "INSERT INTO batch_jobs (id, created, label, backend, base_url) "
                "VALUES (?, ?, ?, ?, ?)",
                (job_id, now, label, backend, base_url),
            )
            for number, (endpoint, lines) in enumerate(parts):
                conn.execute(
                    "INSERT INTO batch_parts (job_id, part, endpoint, status, owner, total, "
                    "updated) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (job_id, number, endpoint, SUBMITTING, owner, len(lines), now),
                )
                conn.executemany(
                    f"INSERT INTO batch_lines ({', '.join(_LINE_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_LINE_COLUMNS))})",
                    [_line_sql(line, job_id, number) for line in lines],
                )
        return True

    def update(self, job_id: str, part: int, **values: Any) -> None:
        """Set columns of one part (`status`, `batch_id`, `input_file_id`, `error`, ...)."""
        unknown = set(values) - set(_PART_COLUMNS)
        if unknown:
            raise ValueError(f"no such batch part column: {sorted(unknown)}")
        values["updated"] = time.time()
        sets = ", ".join(f"{name} = ?" for name in values)
        with self.store._transaction() as conn:
            conn.execute(
                f"UPDATE batch_parts SET {sets} WHERE job_id = ? AND part = ?",
                [*values.values(), job_id, part],
            )

    def update_from(self, job_id: str, part: int, state: BatchState) -> None:
        """Record what the service said about a part's batch."""
        values: dict[str, Any] = {
            "batch_id": state.id,
            "status": state.status,
            "input_file_id": state.input_file_id,
            "output_file_id": state.output_file_id,
            "error_file_id": state.error_file_id,
            "completed": state.completed,
            "failed": state.failed,
        }
        if state.total:  # zero while validating: keep the count of lines recorded
            values["total"] = state.total
        self.update(job_id, part, **values)

    def mark_collected(
        self, job_id: str, part: int, errors: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """The part's results are all in the store; `errors` are its failed lines by key."""
        with self.store._transaction() as conn:
            conn.executemany(
                "UPDATE batch_lines SET error = ? WHERE job_id = ? AND key = ?",
                [(_json(error), job_id, key) for key, error in errors.items()],
            )
            conn.execute(
                "UPDATE batch_parts SET collected = 1, updated = ? WHERE job_id = ? AND part = ?",
                (time.time(), job_id, part),
            )

    # --- reading --------------------------------------------------------------------------

    def covering(self, keys: Iterable[str]) -> dict[str, tuple[str, int]]:
        """Which of `keys` an unfinished (not yet collected) part is responsible for."""
        found: dict[str, tuple[str, int]] = {}
        for chunk in _chunks(list(dict.fromkeys(keys))):
            marks = ", ".join("?" * len(chunk))
            rows = self.store._query(
                "SELECT l.key, l.job_id, l.part FROM batch_lines l JOIN batch_parts p "
                "ON p.job_id = l.job_id AND p.part = l.part "
                f"WHERE p.collected = 0 AND l.key IN ({marks})",
                chunk,
            )
            found.update({key: (job, part) for key, job, part in rows})
        return found

    def parts(self, job_ids: Iterable[str]) -> list[PartRecord]:
        ids = list(dict.fromkeys(job_ids))
        marks = ", ".join("?" * len(ids)) or "NULL"
        rows = self.store._query(
            f"SELECT {', '.join(_PART_COLUMNS)} FROM batch_parts WHERE job_id IN ({marks}) "
            "ORDER BY job_id, part",
            ids,
        )
        return [_part(row) for row in rows]

    def lines(self, job_id: str, part: int | None = None) -> list[LineRecord]:
        sql = f"SELECT {', '.join(_LINE_COLUMNS)} FROM batch_lines WHERE job_id = ?"
        args: list[Any] = [job_id]
        if part is not None:
            sql, args = sql + " AND part = ?", [*args, part]
        return [_line(row) for row in self.store._query(sql + " ORDER BY rowid", args)]

    def jobs(self, limit: int | None = None) -> list[JobRecord]:
        """Every job, newest first, with its parts and totals."""
        sql = "SELECT id, created, label, backend, base_url FROM batch_jobs ORDER BY created DESC"
        rows = self.store._query(sql + (" LIMIT ?" if limit else ""), [limit] if limit else [])
        return [self._job(row) for row in rows]

    def job(self, ident: str) -> JobRecord:
        """The job `ident` names: its id, an unambiguous prefix of it, or one of its batch ids."""
        rows = self.store._query(
            "SELECT DISTINCT j.id, j.created, j.label, j.backend, j.base_url FROM batch_jobs j "
            "LEFT JOIN batch_parts p ON p.job_id = j.id "
            "WHERE j.id = ? OR p.batch_id = ? OR j.id LIKE ? ESCAPE '\\'",
            [
                ident,
                ident,
                ident.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",
            ],
        )
        exact = [r for r in rows if r[0] == ident]
        if exact or len(rows) == 1:
            return self._job((exact or rows)[0])
        if not rows:
            raise ImagenbError(
                f"no batch job {ident!r} in the store at {self.store.root}; "
                "`imagenb batch list` shows the jobs it holds"
            )
        names = ", ".join(sorted(r[0] for r in rows))
        raise ImagenbError(f"{ident!r} matches several batch jobs ({names}); give more of the id")

    def _job(self, row: Sequence[Any]) -> JobRecord:
        job_id = row[0]
        parts = tuple(self.parts([job_id]))
        lines, errors, estimate = self.store._query(
            "SELECT count(*), count(error), coalesce(sum(estimate_usd), 0) FROM batch_lines "
            "WHERE job_id = ?",
            [job_id],
        )[0]
        batch_ids = tuple(p.batch_id for p in parts if p.batch_id)
        marks = ", ".join("?" * len(batch_ids)) or "NULL"
        stored, cost = self.store._query(
            "SELECT count(*), coalesce(sum(i.cost_usd), 0) FROM batch_lines l "
            "JOIN images i ON i.key = l.key "
            f"WHERE l.job_id = ? AND i.request_id IN ({marks})",
            [job_id, *batch_ids],
        )[0]
        job_id, created, label, backend, base_url = row
        return JobRecord(
            job_id, created, label, backend, base_url, parts=parts, lines=lines, stored=stored,
            errors=errors, estimate_usd=estimate, cost_usd=cost, batch_ids=batch_ids,
        )  # fmt: skip


def error_record(error: ImagenbError) -> dict[str, Any]:
    """A line's error as JSON-ready data, kept with the line once its part is collected."""
    return {
        "type": type(error).__name__,
        "message": str(error),
        "status": getattr(error, "status", None),
        "code": getattr(error, "code", None),
        "categories": list(getattr(error, "categories", ())),
    }


_ERROR_TYPES: dict[str, type[BackendError]] = {
    "TransientError": TransientError,
    "RateLimited": RateLimited,
    "QuotaExceeded": QuotaExceeded,
}


def error_from_record(record: Mapping[str, Any]) -> BackendError:
    """The error `error_record` wrote, rebuilt (same class where it matters, same message)."""
    message, status, code = str(record.get("message")), record.get("status"), record.get("code")
    if record.get("type") == "ModerationBlocked":
        return ModerationBlocked(message, categories=record.get("categories") or (), status=status)
    cls = _ERROR_TYPES.get(str(record.get("type")), BackendError)
    return cls(message, status=status, code=code)


def _part(row: Sequence[Any]) -> PartRecord:
    values = dict(zip(_PART_COLUMNS, row, strict=True))
    values["collected"] = bool(values["collected"])
    return PartRecord(**values)


def _line(row: Sequence[Any]) -> LineRecord:
    values = dict(zip(_LINE_COLUMNS, row, strict=True))
    values["params"] = json.loads(values["params"])
    values["input_keys"] = tuple(json.loads(values["input_keys"]))
    values["error"] = json.loads(values["error"]) if values["error"] else None
    return LineRecord(**values)


def _line_sql(line: LineRecord, job_id: str, part: int) -> tuple[Any, ...]:
    return (
        job_id, part, line.key, line.prompt, line.model, line.kind, _json(line.params),
        line.variant, _json(list(line.input_keys)), line.estimate_usd,
        _json(line.error) if line.error else None,
    )  # fmt: skip


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]
