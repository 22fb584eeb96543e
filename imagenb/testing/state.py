"""The fake server's knobs and counters: `Faults`, the rate-limit bucket and `Stats`.

Faults are drawn from one seeded `random.Random`, so a run with the same seed and the same
request order injects the same faults.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Faults:
    """Misbehaviour to inject into image requests; everything is off by default.

    Rates are fractions in [0, 1] of admitted image requests. Time windows in
    `rate_limit_bursts` are seconds since this `Faults` was installed on the server.
    """

    error_rate: float = 0.0  # answered 500/502/503 with an OpenAI-shaped server_error
    drop_rate: float = 0.0  # connection closed with no response at all
    slow_rate: float = 0.0  # these take `slow_seconds` longer (for client timeouts)
    slow_seconds: float = 0.0
    stream_error_rate: float = 0.0  # streams that send an `error` event instead of finishing
    rate_limit_bursts: tuple[tuple[float, float], ...] = ()  # (start_s, duration_s) windows
    burst_every: int = 0  # of every `burst_every` image requests,
    burst_length: int = 0  # the first `burst_length` get 429 rate_limit_exceeded
    burst_retry_after_ms: int = 200
    moderation_words: tuple[str, ...] = ()  # prompt containing one -> 400 moderation_blocked
    moderation_category: str = "violence"
    quota_exhausted: bool = False  # every image request -> 429 insufficient_quota
    batch_expire_after: int | None = None  # batches expire after this many lines
    # Faults that cost money: the work is done (and billed) before anything goes wrong.
    lost_rate: float = 0.0  # the answer is lost after the work: see `lost`
    lost: str = "drop"  # "drop": cut mid-body, "hang": silence (a stream: cut before its end)
    malformed_rate: float = 0.0  # the answer arrives but is broken: see `malformed`
    malformed: str = "truncated_png"  # truncated_png | bad_base64 | url_only | negative_usage
    target_words: tuple[str, ...] = ()  # if set, lost and malformed hit only prompts with one

    def __post_init__(self) -> None:
        rates = ("error_rate", "drop_rate", "slow_rate", "stream_error_rate")
        for name in (*rates, "lost_rate", "malformed_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1")
        for name in ("moderation_words", "target_words"):
            if isinstance(getattr(self, name), str):
                raise TypeError(f"Faults.{name} must be a tuple of words, not a string")
        if self.lost not in LOST_KINDS:
            raise ValueError(f"Faults.lost must be one of {LOST_KINDS}")
        if self.malformed not in MALFORMED_KINDS:
            raise ValueError(f"Faults.malformed must be one of {MALFORMED_KINDS}")

    def targets(self, prompt: str) -> bool:
        """Whether the money faults may hit `prompt` (every prompt without `target_words`)."""
        lowered = prompt.lower()
        return not self.target_words or any(w.lower() in lowered for w in self.target_words)


LOST_KINDS = ("drop", "hang")
MALFORMED_KINDS = ("truncated_png", "bad_base64", "url_only", "negative_usage")


@dataclass(frozen=True)
class MoneyDraw:
    """What happens to one request after its work is done (and billed)."""

    lost: str | None = None
    malformed: str | None = None


def draw_money(rng: random.Random, faults: Faults, prompt: str) -> MoneyDraw:
    """Both numbers are drawn every time (from their own generator), for determinism."""
    lost, malformed = rng.random(), rng.random()
    if not faults.targets(prompt):
        return MoneyDraw()
    return MoneyDraw(
        lost=faults.lost if lost < faults.lost_rate else None,
        malformed=faults.malformed if malformed < faults.malformed_rate else None,
    )


@dataclass(frozen=True)
class FaultDraw:
    """What happens to one admitted request; every field drawn every time, for determinism."""

    error_status: int | None
    drop: bool
    slow_seconds: float
    stream_error: bool
    latency_factor: float


def draw_faults(rng: random.Random, faults: Faults, jitter: float) -> FaultDraw:
    error, drop, slow, stream_error, status, factor = (rng.random() for _ in range(6))
    return FaultDraw(
        error_status=(500, 502, 503)[int(status * 3)] if error < faults.error_rate else None,
        drop=drop < faults.drop_rate,
        slow_seconds=faults.slow_seconds if slow < faults.slow_rate else 0.0,
        stream_error=stream_error < faults.stream_error_rate,
        latency_factor=1.0 + jitter * (2.0 * factor - 1.0),
    )


class TokenBucket:
    """Images-per-minute limiter: `capacity` tokens, refilled at `rate_per_minute / 60` per s."""

    def __init__(self, rate_per_minute: float, capacity: float | None = None) -> None:
        self.rate = rate_per_minute / 60.0
        self.capacity = max(1.0, capacity if capacity is not None else self.rate)
        self.tokens = self.capacity
        self._stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self, count: int) -> float | None:
        """Take `count` tokens, or return the seconds until they exist (nothing taken).

        A request larger than the bucket waits for a full bucket and then overdraws it.
        """
        self._refill()
        need = min(float(count), self.capacity)
        if self.tokens + 1e-9 >= need:
            self.tokens -= count
            return None
        return (need - self.tokens) / self.rate

    def headers(self, limit_per_minute: float) -> dict[str, str]:
        self._refill()
        reset = max(0.0, (self.capacity - self.tokens) / self.rate)
        return {
            "x-ratelimit-limit-requests": str(int(limit_per_minute)),
            "x-ratelimit-remaining-requests": str(max(0, math.floor(self.tokens))),
            "x-ratelimit-reset-requests": _duration(reset),
        }


def _duration(seconds: float) -> str:
    """OpenAI's reset format: `12ms`, `1.5s`, `6m0s`."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    minutes, rest = divmod(seconds, 60)
    secs = f"{rest:.3f}".rstrip("0").rstrip(".")
    return f"{int(minutes)}m{secs}s" if minutes else f"{secs}s"


_COUNTERS = ("by_path", "by_status", "completions_by_prompt", "batch_completions_by_prompt")


class Stats:
    """Live, thread-safe counters. Read attributes directly or take a `snapshot()`.

    `completed` / `images_completed` count image requests whose work finished (what the real
    service would bill), even if the response could not be delivered (`undelivered`).
    Injected faults, limits and validation errors never count as completed.
    """

    requests: int
    image_requests: int
    completed: int
    images_completed: int
    in_flight: int
    max_in_flight: int
    rate_limited: int
    quota_exceeded: int
    errors_injected: int
    dropped: int
    slowed: int
    stream_errors: int
    moderation_blocked: int
    invalid: int
    undelivered: int
    lost_after_work: int
    malformed: int
    streams: int
    files_created: int
    batches_created: int
    batch_requests_completed: int
    batch_images_completed: int
    by_path: Counter[str]
    by_status: Counter[int]
    completions_by_prompt: Counter[str]
    batch_completions_by_prompt: Counter[str]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero everything except requests still in flight (they will still `leave()`)."""
        with self._lock:
            in_flight = getattr(self, "in_flight", 0)
            for name, kind in type(self).__annotations__.items():
                setattr(self, name, Counter() if kind.startswith("Counter") else 0)
            self.in_flight = self.max_in_flight = in_flight

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def count(self, counter: str, key: Any, amount: int = 1) -> None:
        with self._lock:
            getattr(self, counter)[key] += amount

    def enter(self) -> None:
        """An image request was admitted; track the peak of concurrent ones."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def snapshot(self) -> dict[str, Any]:
        """A plain-dict copy, consistent at one instant."""
        with self._lock:
            return {
                name: dict(value) if name in _COUNTERS else value
                for name, value in ((n, getattr(self, n)) for n in type(self).__annotations__)
            }

    def __repr__(self) -> str:
        return f"Stats({self.snapshot()})"
