"""The Batches API: batches processed by a background thread, results written as files.

Batches follow the real lifecycle (validating -> in_progress -> finalizing -> completed, or
failed / expired / cancelling -> cancelled) slowly enough (`delay`) that tests can watch it.
Lines are run by a callback that applies the same validation and synthesis as the online
endpoints, but without latency or injected faults: the Batch API has its own pool.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imagenb.testing.files import FileStore, new_id, page
from imagenb.testing.http import ApiError, invalid
from imagenb.testing.models import Usage

BATCH_ENDPOINTS = ("/v1/images/generations", "/v1/images/edits")
MAX_BATCH_LINES = 50_000
_BATCH_FIELDS = {
    "input_file_id",
    "endpoint",
    "completion_window",
    "metadata",
    "output_expires_after",
}
_DUPLICATE = (
    "The custom_id for this request is a duplicate of another request. "
    "The custom_id parameter must be unique for each request in a batch."
)
_EXPIRED = "This request could not be executed before the completion window expired."
JSON = dict[str, Any]


@dataclass(frozen=True)
class LineResult:
    """One executed batch line: an HTTP-like status, its JSON body, and what it cost."""

    status: int
    body: bytes
    request_id: str
    usage: Usage | None = None
    prompt: str = ""
    images: int = 0


LineRunner = Callable[[str, dict[str, Any]], LineResult]


@dataclass
class _Batch:
    obj: dict[str, Any]
    cancel: threading.Event = field(default_factory=threading.Event)


class BatchManager:
    """Creates batches and runs each in its own daemon thread."""

    def __init__(
        self,
        files: FileStore,
        run_line: LineRunner,
        *,
        delay: float,
        seed: int,
        expire_after: Callable[[], int | None],
        stopping: threading.Event,
        on_created: Callable[[], None] = lambda: None,
    ) -> None:
        self.files = files
        self.run_line = run_line
        self.delay = delay
        self.seed = seed
        self.expire_after = expire_after
        self.stopping = stopping
        self.on_created = on_created
        self._batches: dict[str, _Batch] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        for name in body:
            if name not in _BATCH_FIELDS:
                msg = f"Unrecognized request argument supplied: {name}"
                raise invalid(msg, param=name, code="unknown_parameter")
        for name in ("input_file_id", "endpoint", "completion_window"):
            if body.get(name) is None:
                msg = f"Missing required parameter: '{name}'."
                raise invalid(msg, param=name, code="missing_required_parameter")
        if body["endpoint"] not in BATCH_ENDPOINTS:
            supported = " and ".join(BATCH_ENDPOINTS)
            msg = f"Invalid value: '{body['endpoint']}'. The fake server batches only {supported}."
            raise invalid(msg, param="endpoint")
        if body["completion_window"] != "24h":
            msg = f"Invalid value: '{body['completion_window']}'. Supported values are: '24h'."
            raise invalid(msg, param="completion_window")
        _check_metadata(body.get("metadata"))
        source = self.files.get(str(body["input_file_id"]))
        if source.purpose != "batch":
            msg = f"File {source.id} has purpose '{source.purpose}'; batch input needs 'batch'."
            raise invalid(msg, param="input_file_id")
        now = int(time.time())
        obj: dict[str, Any] = {
            "id": new_id("batch_"), "object": "batch", "endpoint": body["endpoint"],
            "model": None, "errors": None, "input_file_id": source.id,
            "completion_window": "24h", "status": "validating", "output_file_id": None,
            "error_file_id": None, "created_at": now, "in_progress_at": None,
            "expires_at": now + 86_400, "finalizing_at": None, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "usage": _batch_usage(0, 0), "metadata": body.get("metadata"),
        }  # fmt: skip
        batch = _Batch(obj)
        with self._lock:
            self._batches[obj["id"]] = batch
            index = len(self._batches)
        self.on_created()
        thread = threading.Thread(
            target=self._run, args=(batch, source.data, index), daemon=True, name=obj["id"]
        )
        self._threads.append(thread)
        created = self.get(obj["id"])  # as the real API answers: still validating
        thread.start()
        return created

    def get(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
            return json.loads(json.dumps(batch.obj))  # type: ignore[no-any-return]

    def cancel(self, batch_id: str) -> dict[str, Any]:
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
            status = batch.obj["status"]
            if status in ("validating", "in_progress", "finalizing"):
                batch.obj.update(status="cancelling", cancelling_at=int(time.time()))
                batch.cancel.set()
            elif status not in ("cancelling", "cancelled"):
                raise invalid(f"Cannot cancel a batch with status '{status}'.", param=None)
        return self.get(batch_id)

    def listing(self, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            ids = list(reversed(self._batches))
        items = [self.get(i) for i in ids]
        return page(items, after=query.get("after"), limit=int(query.get("limit") or 20))

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # --- the worker --------------------------------------------------------------------

    def _update(self, batch: _Batch, **changes: Any) -> None:
        with self._lock:
            if batch.obj["status"] == "cancelling" and changes.get("status") != "cancelled":
                changes.pop("status", None)  # a cancel that raced the worker wins
            for key, value in changes.items():
                if key.endswith("_at") and value is True:
                    value = int(time.time())
                batch.obj[key] = value

    def _wait(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; True means carry on."""
        return not self.stopping.wait(seconds) if seconds > 0 else not self.stopping.is_set()

    def _run(self, batch: _Batch, source: bytes, index: int) -> None:
        if not self._wait(self.delay * 0.1):
            return
        lines, errors = parse_batch_input(source, batch.obj["endpoint"])
        if errors:
            listing = {"object": "list", "data": errors}
            self._update(batch, status="failed", failed_at=True, errors=listing)
            return
        model = next((line["body"].get("model") for line in lines), None)
        self._update(batch, status="in_progress", in_progress_at=True, model=model)
        self._update(batch, request_counts={"total": len(lines), "completed": 0, "failed": 0})
        outputs: list[bytes] = []
        failures: list[bytes] = []
        tokens = [0, 0]
        expired = False
        for position, line in enumerate(lines):
            if batch.cancel.is_set():
                break
            limit = self.expire_after()
            if limit is not None and position >= limit:
                expired = True
                failures.extend(_expired_line(ln) for ln in lines[position:])
                break
            if not self._wait(self.delay * 0.8 / max(1, len(lines))):
                return
            result = self.run_line(batch.obj["endpoint"], line["body"])
            (outputs if result.status == 200 else failures).append(_output_line(line, result))
            if result.usage is not None:
                tokens[0] += result.usage.input_tokens
                tokens[1] += result.usage.output_tokens
            with self._lock:
                counts = batch.obj["request_counts"]
                counts["completed" if result.status == 200 else "failed"] += 1
                batch.obj["usage"] = _batch_usage(*tokens)
        if not (batch.cancel.is_set() or expired):
            self._update(batch, status="finalizing", finalizing_at=True)
            if not self._wait(self.delay * 0.1):
                return
        rng = random.Random(f"{self.seed}:{index}")
        rng.shuffle(outputs)  # the real service gives no order guarantee either
        files = {
            "output_file_id": self._store(batch, "output", outputs),
            "error_file_id": self._store(batch, "error", failures),
        }
        if batch.cancel.is_set():
            self._update(batch, status="cancelled", cancelled_at=True, **files)
        elif expired:
            self._update(batch, status="expired", expired_at=True, **files)
        else:
            self._update(batch, status="completed", completed_at=True, **files)

    def _store(self, batch: _Batch, kind: str, lines: list[bytes]) -> str | None:
        if not lines:
            return None
        name = f"{batch.obj['id']}_{kind}.jsonl"
        return self.files.create(name, "batch_output", b"".join(lines)).id


def parse_batch_input(source: bytes, endpoint: str) -> tuple[list[JSON], list[JSON]]:
    """Split and check the JSONL; returns the lines or the batch's validation errors."""
    lines: list[JSON] = []
    errors: list[JSON] = []
    seen: set[str] = set()
    raw_lines = [ln for ln in source.splitlines() if ln.strip()]

    def error(code: str, number: int | None, message: str, param: str | None = None) -> None:
        errors.append({"code": code, "line": number, "message": message, "param": param})

    if not raw_lines:
        error("empty_file", None, "The batch input file is empty.")
    if len(raw_lines) > MAX_BATCH_LINES:
        msg = f"The batch input file has {len(raw_lines)} requests; the maximum is 50,000."
        error("too_many_requests", None, msg)
        return [], errors
    for number, raw in enumerate(raw_lines, start=1):
        try:
            line = json.loads(raw)
        except ValueError:
            error("invalid_json_line", number, "This line is not parseable as valid JSON.")
            continue
        if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
            msg = "Each line needs custom_id, method, url and a JSON object body."
            error("invalid_request", number, msg, "body")
            continue
        custom_id = line.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            msg = "Each request needs a non-empty string custom_id."
            error("missing_custom_id", number, msg, "custom_id")
        elif custom_id in seen:
            error("duplicate_custom_id", number, _DUPLICATE, "custom_id")
        seen.add(str(custom_id))
        if line.get("method") != "POST":
            error("invalid_method", number, "The method for this request must be POST.", "method")
        if line.get("url") != endpoint:
            msg = f"The URL for this request does not match the batch endpoint {endpoint}."
            error("mismatched_url", number, msg, "url")
        lines.append(line)
    return lines, errors


def _output_line(line: dict[str, Any], result: LineResult) -> bytes:
    head = json.dumps({"id": new_id("batch_req_"), "custom_id": line["custom_id"]})[:-1]
    response = f'"response": {{"status_code": {result.status}, "request_id": "{result.request_id}"'
    return f'{head}, {response}, "body": '.encode() + result.body + b'}, "error": null}\n'


def _expired_line(line: dict[str, Any]) -> bytes:
    error = {"code": "batch_expired", "message": _EXPIRED}
    record = {"id": new_id("batch_req_"), "custom_id": line["custom_id"], "response": None}
    return json.dumps({**record, "error": error}).encode() + b"\n"


def _batch_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _check_metadata(metadata: Any) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict) or len(metadata) > 16:
        msg = "Invalid 'metadata': expected an object with at most 16 pairs."
        raise invalid(msg, param="metadata")
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
            msg = (
                "Invalid 'metadata': keys have at most 64 characters, values are strings of <= 512."
            )
            raise invalid(msg, param="metadata")
