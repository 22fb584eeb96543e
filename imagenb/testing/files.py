"""The in-memory Files API: uploads (batch input, edit references) and batch results.

Files live only as long as the server; ids look like the real ones (`file-...`).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from imagenb.testing.http import ApiError, invalid

FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MAX_BATCH_FILE_BYTES = 200 * 1024 * 1024


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


@dataclass(frozen=True)
class StoredFile:
    id: str
    filename: str
    purpose: str
    created_at: int
    data: bytes

    def obj(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


def page(items: list[dict[str, Any]], *, after: str | None, limit: int) -> dict[str, Any]:
    """A cursor page as `SyncCursorPage` reads it: items after the `after` id, and has_more."""
    start = next((i + 1 for i, item in enumerate(items) if item["id"] == after), 0)
    chunk = items[start : start + limit]
    return {
        "object": "list",
        "data": chunk,
        "first_id": chunk[0]["id"] if chunk else None,
        "last_id": chunk[-1]["id"] if chunk else None,
        "has_more": start + limit < len(items),
    }


class FileStore:
    """Uploaded and generated files, newest last."""

    def __init__(self) -> None:
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.Lock()

    def create(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        stored = StoredFile(new_id("file-"), filename, purpose, int(time.time()), data)
        with self._lock:
            self._files[stored.id] = stored
        return stored

    def upload(self, fields: dict[str, Any], file: tuple[str, bytes] | None) -> StoredFile:
        """POST /files: check the purpose and, for batch input, the .jsonl name and size."""
        purpose = fields.get("purpose")
        if file is None:
            msg = "Missing required parameter: 'file'."
            raise invalid(msg, param="file", code="missing_required_parameter")
        if purpose not in FILE_PURPOSES:
            msg = f"Invalid value: '{purpose}'. Supported values are: {', '.join(FILE_PURPOSES)}."
            raise invalid(msg, param="purpose")
        filename, data = file
        if purpose == "batch":
            if not filename.endswith(".jsonl"):
                raise invalid("Invalid file format for Batch API. Must be .jsonl", param="file")
            if len(data) > MAX_BATCH_FILE_BYTES:
                raise invalid("Batch input files must be at most 200 MB.", param="file")
        return self.create(filename, purpose, data)

    def get(self, file_id: str) -> StoredFile:
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        return stored

    def data(self, file_id: str) -> bytes | None:
        with self._lock:
            stored = self._files.get(file_id)
        return stored.data if stored else None

    def delete(self, file_id: str) -> dict[str, Any]:
        self.get(file_id)
        with self._lock:
            self._files.pop(file_id, None)
        return {"id": file_id, "object": "file", "deleted": True}

    def listing(self, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            files = list(self._files.values())
        if query.get("purpose"):
            files = [f for f in files if f.purpose == query["purpose"]]
        if query.get("order", "desc") == "desc":
            files.reverse()
        limit = int(query.get("limit") or 10_000)
        return page([f.obj() for f in files], after=query.get("after"), limit=limit)
