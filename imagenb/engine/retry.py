"""The one retry policy: which failures are tried again, and after how long.

The SDK's own retries are off (`max_retries=0` in the OpenAI backend), so this is the only
place that decides. Transient failures (5xx, dropped connections, timeouts before the request
was out) use jittered exponential backoff with a cap and a bounded number of attempts. Rate
limits wait what the server asks and have their own, larger allowance: a burst of 429s in a
long grid is pressure, not failure. User errors (moderation, invalid values) and quota errors
are never retried. An answer lost after the request was out (`AnswerLost`: the service may
have billed it, and the Images API has no idempotency key) is not this policy's to retry: the
engine asks again at most `ambiguous_retries` times (see `attempts`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from imagenb.errors import BackendError, RateLimited


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_rate_limited: int = 60
    base_s: float = 0.5
    cap_s: float = 16.0
    max_server_wait_s: float = 120.0

    def delay(
        self, error: BackendError, attempts: int, rate_limited: int, rng: random.Random
    ) -> float | None:
        """Seconds to wait before the next try, or None to give up.

        `attempts` counts failed tries that were not rate limits, `rate_limited` the 429s.
        """
        if not error.retryable:
            return None
        if isinstance(error, RateLimited):
            if rate_limited >= self.max_rate_limited:
                return None
            if error.retry_after is not None:
                if error.retry_after > self.max_server_wait_s:
                    return None
                return error.retry_after * rng.uniform(1.0, 1.2)
            return self._backoff(min(rate_limited, 5), rng)
        if attempts >= self.max_attempts:
            return None
        if error.retry_after is not None and error.retry_after <= self.max_server_wait_s:
            return float(error.retry_after)
        return self._backoff(attempts, rng)

    def delay_after_lost(self, lost: int, rng: random.Random) -> float:
        """Seconds before asking again after a lost answer (the caller caps how often)."""
        return self._backoff(lost, rng)

    def _backoff(self, attempt: int, rng: random.Random) -> float:
        return min(self.cap_s, self.base_s * 2.0 ** max(0, attempt - 1)) * rng.uniform(0.5, 1.0)
