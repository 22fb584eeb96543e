"""The HTTP/1.1 request handler: routing, auth, image endpoints, streaming and drops.

One thread per connection (keep-alive), so a request sleeping through its latency never
blocks another. Shared state (limits, faults, stats, files, batches) lives on the
`FakeImagesServer`; this module only turns it into bytes on the wire.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import select
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from imagenb.testing.billing import break_event, break_response
from imagenb.testing.http import ApiError, invalid, parse_json_object, parse_multipart, read_body
from imagenb.testing.images import ImageJob, Kind, moderation_block, validate
from imagenb.testing.inputs import RawRequest, raw_from_form, raw_from_json
from imagenb.testing.render import response_pieces, stream_events
from imagenb.testing.state import MoneyDraw

if TYPE_CHECKING:
    from imagenb.testing.server import FakeImagesServer

_ROUTES: list[tuple[str, re.Pattern[str], str, str]] = [
    (method, re.compile("^/v1" + pattern.replace("{id}", "([^/]+)") + "$"), "/v1" + pattern, name)
    for method, pattern, name in (
        ("POST", "/images/generations", "generation"),
        ("POST", "/images/edits", "edit"),
        ("POST", "/files", "file_upload"),
        ("GET", "/files", "file_list"),
        ("GET", "/files/{id}", "file_get"),
        ("GET", "/files/{id}/content", "file_content"),
        ("DELETE", "/files/{id}", "file_delete"),
        ("POST", "/batches", "batch_create"),
        ("GET", "/batches", "batch_list"),
        ("GET", "/batches/{id}", "batch_get"),
        ("POST", "/batches/{id}/cancel", "batch_cancel"),
        ("POST", "/responses", "responses"),
    )
]
_WRITE_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_FLUSH_AT = 64 * 1024


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    fake: FakeImagesServer  # set on the subclass the server creates

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log; the structured `log` has everything."""

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    # --- plumbing ------------------------------------------------------------------------

    def _handle(self) -> None:
        self.request_id = "req_" + uuid.uuid4().hex
        self.extra_headers: dict[str, str] = {}
        started = time.monotonic()
        path = urlsplit(self.path).path
        self.entry: dict[str, Any] = {
            "t": started, "method": self.command, "path": path, "status": None,
            "model": None, "prompt": None, "n": None, "params": {}, "image_count": 0,
            "image_sha256s": [], "mask_sha256": None, "stream": False,
            "request_id": self.request_id, "fault": None,
        }  # fmt: skip
        self.route = path
        self.recorded = False
        self.release: Callable[[], None] = lambda: None
        try:
            body = read_body(self.rfile, self.headers)
            name, self.route, args = self._route(path)
            self._authorize()
            handler: Callable[..., Any] = getattr(self, "_" + name)
            reply = handler(body, *args)
            if reply is not None:  # image endpoints and file content write their own response
                self._send(200, [json.dumps(reply).encode()])
        except ApiError as error:
            self.entry["fault"] = self.entry["fault"] or error.fault
            self.extra_headers.update(error.headers)
            if error.status == 413:
                self.close_connection = True
            self._send(error.status, [json.dumps(error.body()).encode()])
        except _WRITE_ERRORS:
            self.close_connection = True
        except Exception as exc:  # a bug in the fake itself: answer 500, say so, and hang up
            traceback.print_exc()
            self.close_connection = True
            bug = ApiError(500, f"Fake server bug: {exc!r}", type="server_error", fault="bug")
            self._send(500, [json.dumps(bug.body()).encode()])
        finally:
            self.release()
            self._record()
            self.entry["duration"] = time.monotonic() - started

    def _record(self) -> None:
        """Log the request once, before its last bytes leave, so a client holding the
        response always finds it in `stats` and `log`."""
        if not self.recorded:
            self.recorded = True
            self.entry["duration"] = time.monotonic() - self.entry["t"]
            self.fake.record(self.route, self.entry)

    def _route(self, path: str) -> tuple[str, str, tuple[str, ...]]:
        for method, pattern, template, name in _ROUTES:
            match = pattern.match(path)
            if match and method == self.command:
                return name, template, match.groups()
        raise ApiError(404, f"Invalid URL ({self.command} {path})")

    def _authorize(self) -> None:
        header = self.headers.get("Authorization") or ""
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            msg = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            raise ApiError(401, msg, code="invalid_api_key")
        if self.fake.api_key is not None and key.strip() != self.fake.api_key:
            shown = f"{key[:8]}{'*' * max(0, len(key) - 12)}{key[-4:]}" if len(key) > 12 else "***"
            msg = (
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            raise ApiError(401, msg, code="invalid_api_key")

    def _headers(self, status: int, content_type: str) -> None:
        self.entry["status"] = status
        self.release()
        self._record()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("x-request-id", self.request_id)
        self.send_header("openai-version", "2020-10-01")
        for key, value in self.extra_headers.items():
            self.send_header(key, value)

    def _send(self, status: int, pieces: list[bytes]) -> bool:
        """Write a complete response; False if the client had gone away."""
        try:
            self._headers(status, "application/json")
            self.send_header("Content-Length", str(sum(len(p) for p in pieces)))
            self.end_headers()
            self._write(pieces)
            return True
        except _WRITE_ERRORS:
            self.close_connection = True
            return False

    def _client_gone(self) -> bool:
        """True if the client has hung up. A write to a closed peer can still succeed (the
        kernel buffers it), so look for its end-of-stream instead."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _write(self, pieces: Iterable[bytes]) -> None:
        """Coalesce small pieces and hand big cached base64 blocks straight to the socket."""
        buffer = bytearray()
        for piece in pieces:
            if len(piece) >= _FLUSH_AT:
                if buffer:
                    self.wfile.write(buffer)
                    buffer.clear()
                self.wfile.write(piece)
            else:
                buffer += piece
        if buffer:
            self.wfile.write(buffer)

    def _drop(self) -> None:
        """Close the connection without a response, as a dying proxy would."""
        self.close_connection = True
        self.release()
        self._record()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # --- images ------------------------------------------------------------------------

    def _generation(self, body: bytes) -> None:
        self._image_request("generation", body)

    def _edit(self, body: bytes) -> None:
        self._image_request("edit", body)

    def _parse_image_body(self, kind: Kind, body: bytes) -> RawRequest:
        content_type = self.headers.get("Content-Type") or ""
        if kind == "edit" and content_type.startswith("multipart/form-data"):
            return raw_from_form(parse_multipart(body, content_type))
        if not content_type.startswith("application/json"):
            msg = f"Unsupported Content-Type '{content_type}'; send application/json" + (
                " or multipart/form-data." if kind == "edit" else "."
            )
            raise invalid(msg, param=None, code="unsupported_content_type")
        return raw_from_json(
            parse_json_object(body), edit=kind == "edit", resolve_file=self.fake.files.data
        )

    def _image_request(self, kind: Kind, body: bytes) -> None:
        fake = self.fake
        fake.stats.add("image_requests")
        self.extra_headers.update(fake.rate_headers())
        raw = self._parse_image_body(kind, body)
        fields = raw.fields
        self.entry.update(
            model=fields.get("model"),
            prompt=fields.get("prompt"),
            n=fields.get("n") or 1,
            params=raw.loggable(),
            stream=fields.get("stream") is True,
            image_count=len(raw.images),
            image_sha256s=[hashlib.sha256(data).hexdigest() for data in raw.images],
            mask_sha256=hashlib.sha256(raw.mask).hexdigest() if raw.mask else None,
        )
        fake.check_gate()
        try:
            job = validate(kind, raw)
        except ApiError:
            fake.stats.add("invalid")
            raise
        blocked = moderation_block(
            job.prompt, fake.faults.moderation_words, fake.faults.moderation_category
        )
        if blocked:
            fake.stats.add("moderation_blocked")
            raise blocked
        self.extra_headers.update(fake.admit(job))
        self.release = _once(fake.release)
        draw = fake.draw()
        if draw.error_status:
            fake.stats.add("errors_injected")
            raise fake.injected_error(draw.error_status)
        if draw.drop:
            fake.stats.add("dropped")
            self.entry["fault"] = "drop"
            self._drop()
            return
        if draw.slow_seconds:
            fake.stats.add("slowed")
            self.entry["fault"] = "slow"
        delay = fake.latency * draw.latency_factor + draw.slow_seconds
        money = fake.draw_money(job.prompt)
        if job.stream:
            self._stream(job, delay, draw.stream_error, money)
        elif not fake.sleep(delay):
            self._drop()  # the server is stopping
        else:
            pieces = response_pieces(fake.renderer, job, int(time.time()))
            if money.malformed:
                fake.stats.add("malformed")
                self.entry["fault"] = money.malformed
                pieces = break_response(pieces, money.malformed)
            fake.complete(job, self.request_id)
            if money.lost:
                self._lose(pieces, money.lost)
            elif self._client_gone() or not self._send(200, pieces):
                fake.stats.add("undelivered")

    def _lose(self, pieces: list[bytes], how: str) -> None:
        """The work is done and billed; then the answer is cut mid-body, or never comes."""
        self.fake.stats.add("lost_after_work")
        self.fake.stats.add("undelivered")
        self.entry["fault"] = f"lost_{how}"
        if how == "hang":
            self.entry["status"] = None
            self.release()
            self._record()
            while self.fake.sleep(0.05) and not self._client_gone():
                pass  # until the client gives up (its read timeout) or the server stops
            self._drop()
            return
        body = b"".join(pieces)
        with contextlib.suppress(*_WRITE_ERRORS):
            self._headers(200, "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
        self._drop()

    def _stream(self, job: ImageJob, delay: float, fail: bool, money: MoneyDraw) -> None:
        """SSE over chunked encoding; the latency is spread evenly across the events. With
        `money.lost`, the work is billed and the stream ends before its final event."""
        fake = self.fake
        fake.stats.add("streams")
        steps = job.n * (job.partial_images + 1)
        done = False
        self.entry["status"] = 200
        try:
            self.send_response(200)  # not _headers(): the slot and the log wait for the end
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("x-request-id", self.request_id)
            for key, value in self.extra_headers.items():
                self.send_header(key, value)
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for number, event in enumerate(stream_events(fake.renderer, job, int(time.time()))):
                if not fake.sleep(delay / steps):
                    self._drop()
                    return
                if fail and number == steps // 2:
                    fake.stats.add("stream_errors")
                    self.entry.update(fault="stream_error", status=200)
                    self.release()
                    self._record()
                    error = fake.injected_error(500).body()
                    event = [
                        b"event: error\ndata: ",
                        json.dumps({"type": "error", **error}).encode(),
                        b"\n\n",
                    ]
                    self._chunk(event)
                    self._chunk([])
                    return
                if number == steps - 1:  # account for the work before its last event goes out
                    done = True
                    fake.complete(job, self.request_id)
                    self.entry["status"] = 200
                    self.release()
                    self._record()
                    if money.lost:
                        fake.stats.add("lost_after_work")
                        fake.stats.add("undelivered")
                        self.entry["fault"] = f"lost_{money.lost}"
                        self._drop()  # no final event, no end of the chunked body
                        return
                    if money.malformed:
                        fake.stats.add("malformed")
                        self.entry["fault"] = money.malformed
                        event = break_event(event, money.malformed)
                self._chunk(event)
            self._chunk([])
        except _WRITE_ERRORS:
            self.close_connection = True
            if not done:  # the work was done (and billed) even if nobody listened
                fake.complete(job, self.request_id)
                fake.stats.add("undelivered")

    def _chunk(self, pieces: list[bytes]) -> None:
        size = sum(len(p) for p in pieces)
        self._write([f"{size:x}\r\n".encode(), *pieces, b"\r\n"])

    def _responses(self, body: bytes) -> dict[str, Any] | None:
        """Structured judging bodies go to the fake judge; the rest (conversations with the
        image tool) to `fake_responses`."""
        from imagenb.testing import judge as fake_judge
        from imagenb.testing import responses as fake_responses

        fields = parse_json_object(body)
        if not fake_judge.is_judge_body(fields):
            return fake_responses.handle(self, body)
        logged = fake_judge.loggable(fields)
        self.entry.update(
            model=fields.get("model"), params=logged, image_sha256s=logged["image_sha256s"]
        )
        self.fake.check_gate()
        draw = self.fake.draw()
        if draw.error_status:
            self.fake.stats.add("errors_injected")
            raise self.fake.injected_error(draw.error_status)
        return fake_judge.answer(self.fake.judge, fields, self.request_id)

    # --- files and batches -------------------------------------------------------------

    def _file_upload(self, body: bytes) -> dict[str, Any]:
        content_type = self.headers.get("Content-Type") or ""
        if not content_type.startswith("multipart/form-data"):
            raise invalid("File uploads must be multipart/form-data.", param=None)
        fields: dict[str, Any] = {}
        upload: tuple[str, bytes] | None = None
        for part in parse_multipart(body, content_type):
            if part.name == "file":
                upload = (part.filename or "upload", part.data)
            else:
                fields[part.name] = part.data.decode("utf-8", "replace")
        stored = self.fake.files.upload(fields, upload)
        self.fake.stats.add("files_created")
        return stored.obj()

    def _query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.path).query))

    def _file_list(self, body: bytes) -> dict[str, Any]:
        return self.fake.files.listing(self._query())

    def _file_get(self, body: bytes, file_id: str) -> dict[str, Any]:
        return self.fake.files.get(file_id).obj()

    def _file_content(self, body: bytes, file_id: str) -> None:
        data = self.fake.files.get(file_id).data
        self._headers(200, "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _file_delete(self, body: bytes, file_id: str) -> dict[str, Any]:
        return self.fake.files.delete(file_id)

    def _batch_create(self, body: bytes) -> dict[str, Any]:
        return self.fake.batches.create(parse_json_object(body))

    def _batch_list(self, body: bytes) -> dict[str, Any]:
        return self.fake.batches.listing(self._query())

    def _batch_get(self, body: bytes, batch_id: str) -> dict[str, Any]:
        return self.fake.batches.get(batch_id)

    def _batch_cancel(self, body: bytes, batch_id: str) -> dict[str, Any]:
        return self.fake.batches.cancel(batch_id)


def _once(action: Callable[[], None]) -> Callable[[], None]:
    """Wrap `action` so that only its first call runs (a slot is released exactly once)."""
    done = threading.Event()

    def run() -> None:
        if not done.is_set():
            done.set()
            action()

    return run
