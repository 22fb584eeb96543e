"""Conversation turns (`imagenb.conversations`) in the store: the `turns` table (schema in
`store_schema`) beside the `images` rows.

A turn's image is written first (`Store.put`, durable, counted in the spend by its image
model); the turn's row goes in last, in one transaction, and is what makes the turn exist: an
interrupt before it leaves no half-turn (the paid image is kept and counted). The mainline's
money lives in the turn row, so `ig.spent()` adds it by mainline model.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from imagenb.store.index import Store, StoredImage, json_text

_JSON = ("settings", "sources", "usage", "tool_usage")


@dataclass(frozen=True)
class TurnRecord:
    """One stored turn: lineage, what the service said, both usages and what it cost."""

    key: str
    origin: str  # "preview", or the service that made it (backend and base URL)
    chat: str  # key of the conversation's first turn
    parent: str | None
    text: str
    settings: dict[str, Any]
    mainline: str
    image_model: str
    status: str  # ok | no image | blocked
    backend: str
    image_key: str | None = None
    response_id: str | None = None
    image_call_id: str | None = None
    reasoning_id: str | None = None
    revised_prompt: str | None = None
    reasoning: str | None = None
    model_text: str = ""
    sources: list[list[str]] = field(default_factory=list)  # [title, url]
    usage: dict[str, Any] | None = None
    tool_usage: dict[str, Any] | None = None
    mainline_usd: float = 0.0
    image_usd: float = 0.0
    cost_is_estimate: bool = True
    error: str | None = None
    notice: str | None = None
    latency_s: float | None = None
    created: float = field(default_factory=time.time)

    @property
    def cost_usd(self) -> float:
        return self.mainline_usd + self.image_usd


_COLUMNS = tuple(f.name for f in fields(TurnRecord))
_INSERT = (
    f"INSERT OR REPLACE INTO turns ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


def image_key(turn_key: str, origin: str) -> str:
    """The `images` key of a turn's image (one per origin, like the turn row)."""
    return hashlib.sha256(f"chat:{origin}:{turn_key}".encode()).hexdigest()


def save(
    store: Store, record: TurnRecord, image: bytes | None, image_meta: Mapping[str, Any]
) -> StoredImage | None:
    """Store the image (if any), then the turn row; returns the image row."""
    row = None
    if image is not None and record.image_key is not None:
        row = store.put(key=record.image_key, data=image, **image_meta)
    values = [getattr(record, name) for name in _COLUMNS]
    for i, name in enumerate(_COLUMNS):
        if name in _JSON and values[i] is not None:
            values[i] = json_text(values[i])
    values[_COLUMNS.index("cost_is_estimate")] = int(record.cost_is_estimate)
    with store._transaction() as conn:  # the store's write lock; the table is ours
        conn.execute(_INSERT, values)
    return row


def find(store: Store, key: str, origins: tuple[str, ...]) -> TurnRecord | None:
    """The stored turn `key` made by the first of `origins` that has it, with its image file
    present (a turn whose image vanished counts as missing)."""
    marks = ", ".join("?" * len(origins))
    rows = store._query(
        f"SELECT {', '.join(_COLUMNS)} FROM turns WHERE key = ? AND origin IN ({marks})",
        [key, *origins],
    )
    found = {r.origin: r for r in map(_record, rows)}
    for origin in origins:
        record = found.get(origin)
        if record and (record.image_key is None or store.get(record.image_key) is not None):
            return record
    return None


def _record(row: tuple[Any, ...]) -> TurnRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    for name in _JSON:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    values["cost_is_estimate"] = bool(values["cost_is_estimate"])
    return TurnRecord(**values)


def mainline_spent(
    store: Store, free_backends: tuple[str, ...] = ("preview", "replay")
) -> dict[str, float]:
    """Mainline money (web searches included) recorded in the store, by mainline model."""
    marks = ", ".join("?" * len(free_backends))
    rows = store._query(
        f"SELECT mainline, coalesce(sum(mainline_usd), 0) FROM turns "
        f"WHERE backend NOT IN ({marks}) GROUP BY mainline",
        list(free_backends),
    )
    return {model: usd for model, usd in rows}


def turns_of(store: Store, chat: str) -> list[TurnRecord]:
    """Every stored turn of a conversation, oldest first (`ig.history`-style listings)."""
    rows = store._query(
        f"SELECT {', '.join(_COLUMNS)} FROM turns WHERE chat = ? ORDER BY created", [chat]
    )
    return [_record(r) for r in rows]


def origins(store: Store) -> list[str]:
    """Every origin that has stored turns (what a replay may serve)."""
    return [origin for (origin,) in store._query("SELECT DISTINCT origin FROM turns")]
