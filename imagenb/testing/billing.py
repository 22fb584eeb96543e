"""What the fake bills, and the broken answers it can give after billing.

The real service bills a request when its work is done, whether or not the answer reaches
the client. The fake does the same and keeps a `BillingLedger` (one `Bill` per request id,
with its usage and dollars), so tests can compare what the server billed with what the
client accounted. Prices are the fake's own table (from the API reference, §7), kept apart
from `imagenb.core.catalog` so a wrong price in the client shows up as a mismatch.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from imagenb.testing.models import Usage

# USD per 1M tokens: text in, image in, image out (the reference's §7 table).
_PRICES = {
    "gpt-image-1-mini": (2.0, 2.5, 8.0),
    "gpt-image-1.5": (5.0, 8.0, 32.0),
    "chatgpt-image-latest": (5.0, 8.0, 32.0),
}
_DEFAULT_PRICE = (5.0, 8.0, 30.0)  # the gpt-image-2 family (2, 2.5, 2.6)
BATCH_FACTOR = 0.5


def price(model: str, usage: Usage, *, batch: bool = False) -> float:
    """Dollars the service charges for `usage` on `model`."""
    text_in, image_in, image_out = _PRICES.get(model, _DEFAULT_PRICE)
    usd = (
        usage.text_tokens * text_in
        + usage.image_input_tokens * image_in
        + usage.output_tokens * image_out
    ) / 1e6
    return usd * (BATCH_FACTOR if batch else 1.0)


@dataclass(frozen=True)
class Bill:
    """One billed request: its work was done, whatever happened to the answer."""

    request_id: str
    prompt: str
    model: str
    images: int
    usage: dict[str, Any]
    usd: float
    batch: bool = False


class BillingLedger:
    """Thread-safe list of bills, with the totals tests compare against."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bills: list[Bill] = []

    def bill(self, bill: Bill) -> None:
        with self._lock:
            self._bills.append(bill)

    def clear(self) -> None:
        with self._lock:
            self._bills.clear()

    @property
    def bills(self) -> list[Bill]:
        with self._lock:
            return list(self._bills)

    @property
    def usd(self) -> float:
        return sum(b.usd for b in self.bills)

    def by_prompt(self) -> Counter[str]:
        """How many times each prompt was billed (requests, not images)."""
        return Counter(b.prompt for b in self.bills)

    def __repr__(self) -> str:
        return f"BillingLedger({len(self.bills)} bills, ${self.usd:.4f})"


# --- broken answers ------------------------------------------------------------------------


def break_payload(payload: dict[str, Any], kind: str) -> dict[str, Any]:
    """`payload` (an ImagesResponse, or a stream's completed event) broken as `kind` says:
    the first image truncated, its base64 invalid, a `url` in place of `b64_json`, or the
    usage negative."""
    if kind == "negative_usage":
        usage = payload.get("usage") or {}
        for name in ("output_tokens", "total_tokens"):
            if name in usage:
                usage[name] = -abs(int(usage[name])) - 1
        return payload
    item = payload["data"][0] if "data" in payload else payload
    b64 = item.pop("b64_json")
    if kind == "url_only":
        item["url"] = "https://images.invalid/generated.png"
    elif kind == "bad_base64":
        item["b64_json"] = b64[:-1]  # a length of 4k + 3 cannot be decoded
    else:  # truncated_png: a valid base64 of the first 60% of the file
        data = base64.b64decode(b64)
        item["b64_json"] = base64.b64encode(data[: len(data) * 3 // 5]).decode("ascii")
    return payload


def break_response(pieces: list[bytes], kind: str) -> list[bytes]:
    """A non-streaming response body (as pieces) broken as `kind` says."""
    payload = json.loads(b"".join(pieces))
    return [json.dumps(break_payload(payload, kind)).encode()]


def break_event(event: list[bytes], kind: str) -> list[bytes]:
    """One SSE event (`event: ...\\ndata: {...}\\n\\n`, as pieces) broken as `kind` says."""
    head, _, data = b"".join(event).partition(b"data: ")
    payload = json.loads(data)
    return [head, b"data: ", json.dumps(break_payload(payload, kind)).encode(), b"\n\n"]
