"""Batch API lines: the JSONL request lines imagenb uploads and the result lines it reads back.

A request line is `{"custom_id", "method": "POST", "url", "body"}` where the body is what the
online endpoint takes as JSON: `/v1/images/generations`, or `/v1/images/edits` in its JSON
form, whose input images are `{"image_url": "data:..."}` or `{"file_id": ...}`. The custom_id
is the image's store key, so results (which come back in any order) go straight to the store.
Each line asks for one image (`n=1`): a variant is its own line, so every line has one key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagenb.backends.base import BatchEndpoint
from imagenb.core.inputs import ImageInput
from imagenb.core.request import ImageRequest
from imagenb.errors import InvalidRequest

GENERATIONS: BatchEndpoint = "/v1/images/generations"
EDITS: BatchEndpoint = "/v1/images/edits"
MAX_LINES = 50_000  # per input file (Batch API limit)
MAX_BYTES = 200_000_000  # per input file: "200 MB", read the stricter (decimal) way
INLINE_MAX_CHARS = 1_000_000  # bigger inputs, or ones several lines share, are uploaded once


def endpoint(request: ImageRequest) -> BatchEndpoint:
    return EDITS if request.kind == "edit" else GENERATIONS


def data_url(image: ImageInput) -> str:
    return image.as_data_url()


def inline(image: ImageInput, uses: int) -> bool:
    """Whether an input goes into its lines as a data URL (else: uploaded, sent as a file id).

    A data URL costs 4/3 of the image in every line that uses it, against the 200 MB limit;
    an upload costs one request.
    """
    return uses == 1 and (len(image.data) * 4 + 2) // 3 <= INLINE_MAX_CHARS


def body(request: ImageRequest, refs: Mapping[str, dict[str, str]]) -> dict[str, Any]:
    """The JSON body of one line (`n=1`); `refs` maps an input's SHA-256 to its image ref."""
    out: dict[str, Any] = {"prompt": request.prompt, **request.params(), "n": 1}
    if request.kind == "edit":
        out["images"] = [refs[image.sha256] for image in request.images]
        if request.mask is not None:
            out["mask"] = refs[request.mask.sha256]
    return out


def line(request: ImageRequest, variant: int, refs: Mapping[str, dict[str, str]]) -> bytes:
    """One JSONL line (with its newline) asking for variant `variant` of `request`."""
    record = {
        "custom_id": request.key(variant),
        "method": "POST",
        "url": endpoint(request),
        "body": body(request, refs),
    }
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return text.encode() + b"\n"


@dataclass
class PartFile:
    """One input file being written: at most `MAX_LINES` lines and `MAX_BYTES` bytes."""

    endpoint: BatchEndpoint
    path: Path
    keys: list[str] = field(default_factory=list)
    nbytes: int = 0


def write_parts(
    lines: Iterable[tuple[BatchEndpoint, str, bytes]], folder: Path, prefix: str
) -> list[PartFile]:
    """Write `(endpoint, key, line)` into JSONL files under `folder`, one endpoint per file,
    starting a new file before one would pass `MAX_LINES` lines or `MAX_BYTES` bytes."""
    parts: list[PartFile] = []
    current: dict[str, PartFile] = {}
    handles: dict[Path, Any] = {}
    try:
        for url, key, data in lines:
            if len(data) > MAX_BYTES:
                raise InvalidRequest(
                    f"one batch line is {len(data):,} bytes, over the {MAX_BYTES:,}-byte file "
                    "limit; use fewer or smaller input images"
                )
            part = current.get(url)
            if part is None or len(part.keys) >= MAX_LINES or part.nbytes + len(data) > MAX_BYTES:
                if part is not None:
                    handles.pop(part.path).close()
                part = PartFile(url, folder / f"{prefix}-{len(parts)}.jsonl")
                handles[part.path] = open(part.path, "wb")  # noqa: SIM115 (closed below)
                parts.append(part)
                current[url] = part
            handles[part.path].write(data)
            part.keys.append(key)
            part.nbytes += len(data)
    finally:
        for handle in handles.values():
            handle.close()
    return parts


@dataclass(frozen=True)
class LineResult:
    """One line of a batch's output or error file. `error` is the API error object (with
    `code` and `message`) when the line failed; `status` its HTTP status if it had one."""

    custom_id: str
    images: list[bytes]
    usage: dict[str, Any] | None = None
    resolved: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    status: int | None = None
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.images)


_RESOLVED = ("size", "quality", "background", "output_format")


def parse(raw: bytes | str) -> LineResult:
    """Read one result line (`{"custom_id", "response": {"status_code", "body"}, "error"}`)."""
    record = json.loads(raw)
    custom_id = str(record.get("custom_id") or "")
    response = record.get("response") or {}
    status = response.get("status_code")
    payload = response.get("body") or {}
    request_id = response.get("request_id")
    if isinstance(payload, str):  # some services send the body as a JSON string
        payload = json.loads(payload)
    error = record.get("error") or (payload.get("error") if isinstance(payload, dict) else None)
    if error is None and status != 200:
        error = {"code": None, "message": f"the line failed with status {status}"}
    if error is not None:
        return LineResult(custom_id, [], status=status, error=dict(error), request_id=request_id)
    items = payload.get("data") or []
    images = [base64.b64decode(item["b64_json"]) for item in items if item.get("b64_json")]
    if not images:
        missing = {"code": "no_image", "message": "the response carried no image"}
        return LineResult(custom_id, [], status=status, error=missing, request_id=request_id)
    return LineResult(
        custom_id,
        images,
        usage=payload.get("usage"),
        resolved={k: payload.get(k) for k in _RESOLVED if payload.get(k) is not None},
        request_id=request_id,
        status=status,
    )


def read(path: Path) -> Iterator[LineResult]:
    """Every result line of a downloaded output or error file, one at a time (files hold a
    full base64 image per line and can be gigabytes)."""
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                yield parse(raw)
