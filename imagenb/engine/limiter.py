"""Admission control shared by every run against one service: a concurrency limit that adapts
to 429s, optional pacing in images per minute, and a common pause when the server says
`retry-after`.

Adaptation is additive both ways: a 429 lowers the limit by one (at most once per cool-down),
and a full window of successes raises it by one, back up to the configured ceiling. Halving on
every 429 would starve a rate-limited account of the concurrency it needs to reach its rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


class AdaptiveLimiter:
    """`async with limiter.slot(images):` waits for a slot, the pacing interval and any pause."""

    def __init__(
        self,
        ceiling: int,
        *,
        images_per_minute: float | None = None,
        cooldown_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.images_per_minute = images_per_minute
        self.in_flight = 0
        self.peak = 0
        self._cooldown = cooldown_s
        self._clock = clock
        self._pause_until = 0.0
        self._next_start = 0.0
        self._last_decrease = -1e9
        self._streak = 0
        self._changed = asyncio.Condition()

    def configure(self, ceiling: int, images_per_minute: float | None) -> None:
        """Adopt new settings (a later `configure()`), keeping the learned state."""
        was_full = self.limit >= self.ceiling
        self.ceiling = ceiling
        self.limit = ceiling if was_full else min(self.limit, ceiling)
        self.images_per_minute = images_per_minute

    async def acquire(self, images: int = 1) -> None:
        async with self._changed:
            while True:
                now = self._clock()
                wait: float | None
                if self.in_flight >= self.limit:
                    wait = None  # until a release
                elif now < self._pause_until:
                    wait = self._pause_until - now
                else:
                    wait = self._pace(now, images)
                    if wait <= 0:
                        break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    def _pace(self, now: float, images: int) -> float:
        """Seconds until this start is due; books the start when it is due now."""
        if not self.images_per_minute:
            return 0.0
        if now < self._next_start:
            return self._next_start - now
        self._next_start = max(now, self._next_start) + images * 60.0 / self.images_per_minute
        return 0.0

    async def give_back(self) -> None:
        """Return a slot that sent nothing: no success or failure to learn from."""
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    async def release(
        self, *, rate_limited: bool = False, retry_after: float | None = None
    ) -> None:
        async with self._changed:
            self.in_flight -= 1
            now = self._clock()
            if rate_limited:
                self._streak = 0
                if retry_after:
                    self._pause_until = max(self._pause_until, now + retry_after)
                if now - self._last_decrease >= self._cooldown and self.limit > 1:
                    self.limit -= 1
                    self._last_decrease = now
            else:
                self._streak += 1
                if self._streak >= self.limit and self.limit < self.ceiling:
                    self.limit += 1
                    self._streak = 0
            self._changed.notify_all()
