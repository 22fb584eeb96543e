"""Wire-level helpers for the fake server: OpenAI-shaped errors and request-body parsing.

Kept apart from the routing so the validation and batch modules can raise the same error
type without knowing anything about sockets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

MAX_BODY_BYTES = 1 << 30  # 16 images x 50 MB plus form fields fits well below this


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...
    def readline(self, size: int = ..., /) -> bytes: ...


@dataclass
class ApiError(Exception):
    """An error the fake answers with, shaped like the real service's `{"error": {...}}`."""

    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None
    param: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None  # which injected fault or limit produced it, for the log

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, *, param: str | None, code: str = "invalid_value") -> ApiError:
    return ApiError(400, message, code=code, param=param)


def user_error(message: str, *, param: str | None, code: str = "invalid_value") -> ApiError:
    """The image service's own 400s (size, moderation) carry this `type`."""
    return ApiError(400, message, type="image_generation_user_error", code=code, param=param)


@dataclass(frozen=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


_PARAM_RE = re.compile(r';\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


def header_params(value: str) -> tuple[str, dict[str, str]]:
    """Split `form-data; name="x"; filename="y"` into its main value and parameters."""
    main, _, rest = value.partition(";")
    params = {}
    for match in _PARAM_RE.finditer(";" + rest):
        quoted, bare = match.group(2), match.group(3)
        params[match.group(1).lower()] = (
            re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        )
    return main.strip().lower(), params


def parse_multipart(body: bytes, content_type: str) -> list[FormPart]:
    """Parse multipart/form-data with `bytes.find`, so 50 MB uploads stay cheap."""
    _, params = header_params(content_type)
    boundary = params.get("boundary")
    if not boundary:
        raise invalid("multipart/form-data request has no boundary.", param=None)
    delimiter = b"--" + boundary.encode("latin-1")
    pos = body.find(delimiter)
    if pos < 0:
        raise invalid("Malformed multipart/form-data body.", param=None)
    pos += len(delimiter)
    parts: list[FormPart] = []
    while not body.startswith(b"--", pos):
        if body.startswith(b"\r\n", pos):
            pos += 2
        head_end = body.find(b"\r\n\r\n", pos)
        end = body.find(b"\r\n" + delimiter, head_end + 4) if head_end >= 0 else -1
        if end < 0:
            raise invalid("Malformed multipart/form-data body.", param=None)
        headers: dict[str, str] = {}
        for line in body[pos:head_end].decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        _, disposition = header_params(headers.get("content-disposition", ""))
        parts.append(
            FormPart(
                name=disposition.get("name", ""),
                data=body[head_end + 4 : end],
                filename=disposition.get("filename"),
                content_type=headers.get("content-type"),
            )
        )
        pos = end + 2 + len(delimiter)
    return parts


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)",
            param=None,
            code="invalid_json",
        ) from None
    if not isinstance(value, dict):
        raise invalid("The request body must be a JSON object.", param=None, code="invalid_json")
    return value


def read_body(rfile: _Readable, headers: Any) -> bytes:
    """Read a Content-Length or chunked request body completely (keeps keep-alive in sync)."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        chunks: list[bytes] = []
        total = 0
        while True:
            size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise ApiError(413, "Request body too large.", code="request_too_large")
            chunks.append(rfile.read(size))
            rfile.readline()
    length = int(headers.get("Content-Length") or 0)
    if length > MAX_BODY_BYTES:
        raise ApiError(413, "Request body too large.", code="request_too_large")
    return rfile.read(length) if length else b""
