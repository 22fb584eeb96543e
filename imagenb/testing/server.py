"""`FakeImagesServer`: a loopback server that speaks the OpenAI Images, Files and Batches API.

The real `openai` SDK talks to it over real HTTP, so tests exercise the same code path as
production: strict validation, usage, 429s with retry headers, 5xx, dropped connections,
moderation blocks, streaming, files and batches. Typical use::

    with FakeImagesServer(latency=0.5, max_concurrency=16) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="sk-test")
        ...
        assert srv.stats.completed == 64
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import socket
import sys
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from imagenb.testing.batches import BatchManager, LineResult
from imagenb.testing.billing import Bill, BillingLedger, price
from imagenb.testing.files import FileStore
from imagenb.testing.handler import FakeHandler
from imagenb.testing.http import ApiError, invalid
from imagenb.testing.images import ImageJob, Kind, moderation_block, validate
from imagenb.testing.inputs import RawRequest, raw_from_json
from imagenb.testing.judge import JudgeDesk
from imagenb.testing.render import ImageRenderer, response_pieces
from imagenb.testing.responses import ResponsesState
from imagenb.testing.state import (
    FaultDraw,
    Faults,
    MoneyDraw,
    Stats,
    TokenBucket,
    draw_faults,
    draw_money,
)

_SERVER_ERRORS = {
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The server is overloaded or not ready yet.",
}


class _HTTPServer(ThreadingHTTPServer):
    """Threading server that can close idle keep-alive connections when stopping."""

    daemon_threads = True
    request_queue_size = 512  # 64+ clients connecting at once must not overflow the backlog
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[FakeHandler]) -> None:
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away (killed, timed out) is normal here; anything else is not."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def close_connections(self, timeout: float) -> None:
        with self.connections_lock:
            open_sockets = list(self.connections)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked reading keep-alive
        deadline = time.monotonic() + timeout
        while self.connections and time.monotonic() < deadline:
            time.sleep(0.01)


class FakeImagesServer:
    """A fake OpenAI image service on 127.0.0.1, run in background threads.

    `latency` seconds (times a uniform factor in 1 +/- `jitter`) are slept by every
    successful image request. `max_concurrency` caps image requests in flight (the extra ones
    get 429 with a short `retry-after-ms`); `rate_per_minute` is a token bucket over images
    (`n` per request) holding `burst` tokens (default: one second's worth). Batches move
    through their states over `batch_delay` seconds. `faults` may be replaced while running.

    Read `base_url`, `stats` (live counters; `stats.snapshot()` for a consistent copy),
    `ledger` (what the service would have billed: one `Bill` per request whose work was done,
    delivered or not) and `log` (one dict per request, appended before the response's last
    bytes are sent, never holding the API key). Base images are encoded once per colour
    bucket and cached (`colour_buckets`, `image_cache_bytes`); call `warm()` before timing a
    benchmark.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        jitter: float = 0.0,
        max_concurrency: int | None = None,
        rate_per_minute: float | None = None,
        burst: float | None = None,
        faults: Faults | None = None,
        seed: int = 0,
        batch_delay: float = 0.0,
        port: int = 0,
        host: str = "127.0.0.1",
        api_key: str | None = None,
        colour_buckets: int = 16,
        image_cache_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        if not 0.0 <= jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")
        self.latency = latency
        self.jitter = jitter
        self.max_concurrency = max_concurrency
        self.rate_per_minute = rate_per_minute
        self.api_key = api_key
        self.host = host
        self.port = port
        self.stats = Stats()
        self.ledger = BillingLedger()
        self.log: list[dict[str, Any]] = []
        self.renderer = ImageRenderer(buckets=colour_buckets, cache_bytes=image_cache_bytes)
        self.files = FileStore()
        self.responses = ResponsesState()  # /v1/responses: stored responses, bills, knobs
        self.judge = JudgeDesk()  # /v1/responses judging: its knobs and its own bill
        self._rng = random.Random(seed)
        self._money_rng = random.Random(seed + 1)  # its own, so older fault draws stay put
        self._lock = threading.Lock()
        self._bucket = TokenBucket(rate_per_minute, burst) if rate_per_minute else None
        self._stopping = threading.Event()
        self._faults = faults or Faults()
        self._faults_since = time.monotonic()
        self._burst_count = 0
        self.batches = BatchManager(
            self.files,
            self.run_batch_line,
            delay=batch_delay,
            seed=seed,
            expire_after=lambda: self._faults.batch_expire_after,
            stopping=self._stopping,
            on_created=lambda: self.stats.add("batches_created"),
        )
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._http is None:
            raise RuntimeError("FakeImagesServer is not running; call start() or use `with`.")
        return f"http://{self.host}:{self._http.server_address[1]}/v1"

    def start(self) -> FakeImagesServer:
        if self._http is not None:
            return self
        handler = type("BoundFakeHandler", (FakeHandler,), {"fake": self})
        self._stopping.clear()
        self._http = _HTTPServer((self.host, self.port), handler)
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="FakeImagesServer",
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, wake sleeping requests and batch workers, close every connection."""
        if self._http is None:
            return
        self._stopping.set()
        self._http.shutdown()
        self._http.close_connections(timeout)
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout)
        self.batches.join(timeout)
        self._http = self._thread = None

    def __enter__(self) -> FakeImagesServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Clear stats, the billing ledger and the request log (files and batches stay)."""
        self.stats.reset()
        self.ledger.clear()
        self.log.clear()

    @property
    def faults(self) -> Faults:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        """Install new faults; burst windows count from now."""
        with self._lock:
            self._faults = faults
            self._faults_since = time.monotonic()
            self._burst_count = 0

    def warm(self, size: str = "1024x1024", output_format: str = "png", **params: Any) -> None:
        """Encode every colour bucket for a size/format now, so a benchmark doesn't pay for it."""
        body = {"model": "gpt-image-2", "prompt": "warm", "size": size, **params}
        body["output_format"] = output_format
        self.renderer.warm(validate("generation", RawRequest(body)))

    # --- used by the handler -------------------------------------------------------------

    def sleep(self, seconds: float) -> bool:
        """Sleep unless the server stops meanwhile; True means carry on."""
        return seconds <= 0 or not self._stopping.wait(seconds)

    def record(self, route: str, entry: dict[str, Any]) -> None:
        self.stats.add("requests")
        self.stats.count("by_path", route)
        if entry["status"] is not None:
            self.stats.count("by_status", entry["status"])
        self.log.append(entry)

    def rate_headers(self) -> dict[str, str]:
        if self._bucket is None or self.rate_per_minute is None:
            return {}
        with self._lock:
            return self._bucket.headers(self.rate_per_minute)

    def _rate_limited(self, message: str, retry_after: float, fault: str) -> ApiError:
        self.stats.add("rate_limited")
        headers = {
            "retry-after-ms": str(max(1, math.ceil(retry_after * 1000))),
            "retry-after": str(max(1, math.ceil(retry_after))),
        }
        return ApiError(
            429, message, type="requests", code="rate_limit_exceeded", headers=headers, fault=fault
        )

    def check_gate(self) -> None:
        """Quota and 429 bursts, which hit every image request, valid or not."""
        faults = self._faults
        if faults.quota_exhausted:
            self.stats.add("quota_exceeded")
            msg = (
                "You exceeded your current quota, please check your plan and billing details. "
                "For more information on this error, read the docs: "
                "https://platform.openai.com/docs/guides/error-codes/api-errors."
            )
            raise ApiError(
                429, msg, type="insufficient_quota", code="credit_balance_exhausted", fault="quota"
            )
        now = time.monotonic() - self._faults_since
        for start, duration in faults.rate_limit_bursts:
            if start <= now < start + duration:
                raise self._rate_limited(_limit_message("bursts"), start + duration - now, "burst")
        if faults.burst_every > 0 and faults.burst_length > 0:
            with self._lock:
                position = self._burst_count % faults.burst_every
                self._burst_count += 1
            if position < faults.burst_length:
                retry = faults.burst_retry_after_ms / 1000
                raise self._rate_limited(_limit_message("bursts"), retry, "burst")

    def admit(self, job: ImageJob) -> dict[str, str]:
        """Apply max_concurrency and the token bucket; the caller must `release()` after."""
        with self._lock:
            cap = self.max_concurrency
            if cap is not None and self.stats.in_flight >= cap:
                retry = self._rng.uniform(0.1, 0.25)
                msg = f"Too many concurrent requests for {job.model} (limit {cap}). Retry shortly."
                raise self._rate_limited(msg, retry, "concurrency")
            if self._bucket is not None:
                wait = self._bucket.take(job.n)
                if wait is not None:
                    raise self._rate_limited(
                        _limit_message(f"images per minute ({self.rate_per_minute:g})", wait),
                        wait,
                        "rate_limit",
                    )
            self.stats.enter()
        return self.rate_headers()

    def release(self) -> None:
        self.stats.leave()

    def draw(self) -> FaultDraw:
        with self._lock:
            return draw_faults(self._rng, self._faults, self.jitter)

    def injected_error(self, status: int) -> ApiError:
        return ApiError(status, _SERVER_ERRORS[status], type="server_error", fault="error")

    def draw_money(self, prompt: str) -> MoneyDraw:
        """What happens to the answer for `prompt` once its work is done and billed."""
        with self._lock:
            return draw_money(self._money_rng, self._faults, prompt)

    def complete(self, job: ImageJob, request_id: str) -> None:
        """The work of `job` is done: count it and bill it (delivered or not)."""
        self.stats.add("completed")
        self.stats.add("images_completed", job.n)
        self.stats.count("completions_by_prompt", job.prompt, job.n)
        usage = job.usage()
        self.ledger.bill(
            Bill(request_id, job.prompt, job.model, job.n, usage.as_dict(), price(job.model, usage))
        )

    # --- batches -------------------------------------------------------------------------

    def run_batch_line(self, endpoint: str, body: dict[str, Any]) -> LineResult:
        """One batch line: same validation and synthesis, no latency and no injected faults."""
        request_id = "req_" + uuid.uuid4().hex
        kind: Kind = "generation" if endpoint.endswith("generations") else "edit"
        try:
            if body.get("stream"):
                raise invalid("Streaming is not supported in the Batch API.", param="stream")
            job = validate(
                kind, raw_from_json(body, edit=kind == "edit", resolve_file=self.files.data)
            )
            faults = self._faults
            blocked = moderation_block(
                job.prompt, faults.moderation_words, faults.moderation_category
            )
            if blocked:
                raise blocked
        except ApiError as error:
            return LineResult(error.status, json.dumps(error.body()).encode(), request_id)
        payload = b"".join(response_pieces(self.renderer, job, int(time.time())))
        self.stats.add("batch_requests_completed")
        self.stats.add("batch_images_completed", job.n)
        self.stats.count("batch_completions_by_prompt", job.prompt, job.n)
        usage = job.usage()
        usd = price(job.model, usage, batch=True)
        self.ledger.bill(Bill(request_id, job.prompt, job.model, job.n, usage.as_dict(), usd, True))
        return LineResult(200, payload, request_id, job.usage(), job.prompt, job.n)


def _limit_message(what: str, wait: float | None = None) -> str:
    retry = f" Please try again in {wait:.3f}s." if wait is not None else " Please retry shortly."
    return f"Rate limit reached for images on {what}.{retry}"


def main(port: int = 0, **kwargs: Any) -> None:
    """Serve until Ctrl-C (what `imagenb fake-server --port P` runs)."""
    with FakeImagesServer(port=port, **kwargs) as server:
        print(f"FakeImagesServer listening on {server.base_url}", flush=True)
        print(f"  export OPENAI_BASE_URL={server.base_url} OPENAI_API_KEY=sk-fake", flush=True)
        print("  Press Ctrl-C to stop.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("Stopping.", flush=True)
