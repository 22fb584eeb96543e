"""Judges' answers and people's ratings in the store, beside the images they are about.

A verdict is served again only to a backend of the same kind: a preview's made-up verdict is
never served to a real judge, nor a real one to the preview (it would look free); replay
serves whatever the store holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from imagenb.store.index import Store, json_text

_CHUNK = 500


@dataclass(frozen=True)
class Record:
    """One question a judge answered, and what it cost."""

    key: str
    kind: str  # "verdict" or "comparison"
    images: tuple[str, ...]  # SHA-256 of each image shown, in order
    rubric: str
    model: str
    settings: dict[str, Any]
    payload: dict[str, Any]
    usage: dict[str, Any] | None
    cost_usd: float
    cost_is_estimate: bool
    backend: str
    created: float


_COLUMNS = tuple(f.name for f in fields(Record))


def _servable(stored_backend: str, asking: str) -> bool:
    if asking == "replay":
        return True
    return (stored_backend == "preview") == (asking == "preview")


def get_many(store: Store, keys: Iterable[str], backend: str) -> dict[str, Record]:
    """The stored answers among `keys` that `backend` may be served."""
    wanted = list(dict.fromkeys(keys))
    rows: list[Any] = []
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT {', '.join(_COLUMNS)} FROM verdicts WHERE key IN ({marks})"
        rows += store._query(sql, chunk)
    found = (_record(row) for row in rows)
    return {r.key: r for r in found if _servable(r.backend, backend)}


def put(store: Store, record: Record) -> None:
    values = (
        record.key, record.kind, json_text(list(record.images)), record.rubric, record.model,
        json_text(record.settings), json_text(record.payload), json_text(record.usage),
        record.cost_usd, int(record.cost_is_estimate), record.backend, record.created,
    )  # fmt: skip
    marks = ", ".join("?" * len(_COLUMNS))
    with store._transaction() as conn:
        conn.execute(
            f"INSERT OR REPLACE INTO verdicts ({', '.join(_COLUMNS)}) VALUES ({marks})", values
        )


def _record(row: Sequence[Any]) -> Record:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["images"] = tuple(json.loads(values["images"]))
    for name in ("settings", "payload", "usage"):
        values[name] = json.loads(values[name]) if values[name] is not None else None
    values["cost_is_estimate"] = bool(values["cost_is_estimate"])
    return Record(**values)


def spent(store: Store, *, free: Iterable[str] = ("preview", "replay")) -> float:
    """All-time USD paid to judges through this store (free backends left out)."""
    skip = list(free)
    marks = ", ".join("?" * len(skip))
    sql = f"SELECT coalesce(sum(cost_usd), 0) FROM verdicts WHERE backend NOT IN ({marks})"
    return float(store._query(sql, skip)[0][0])


# --- people's ratings -------------------------------------------------------------------------


def rate(store: Store, key: str, sha256: str, stars: int) -> None:
    with store._transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO ratings (key, sha256, stars, created) VALUES (?, ?, ?, ?)",
            (key, sha256, stars, time.time()),
        )


def unrate(store: Store, key: str) -> None:
    with store._transaction() as conn:
        conn.execute("DELETE FROM ratings WHERE key = ?", (key,))


def ratings(store: Store) -> list[tuple[str, str, int, float]]:
    """Every rating as (image key, sha256, stars, when), newest first."""
    rows = store._query("SELECT key, sha256, stars, created FROM ratings ORDER BY created DESC")
    return [(str(k), str(s), int(n), float(t)) for k, s, n, t in rows]


def stars_of(store: Store, key: str) -> int | None:
    rows = store._query("SELECT stars FROM ratings WHERE key = ?", (key,))
    return int(rows[0][0]) if rows else None
