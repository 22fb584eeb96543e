"""The limiter never exceeds its limit, paces images per minute, and adapts to 429s."""

import asyncio
import itertools
import random
import time

from imagenb.engine.limiter import AdaptiveLimiter
from imagenb.engine.retry import RetryPolicy
from imagenb.errors import ModerationBlocked, QuotaExceeded, RateLimited, TransientError


def test_concurrency_never_exceeds_the_limit():
    async def main():
        limiter = AdaptiveLimiter(3)
        active = peak = 0

        async def work():
            nonlocal active, peak
            await limiter.acquire()
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1
            await limiter.release()

        await asyncio.gather(*(work() for _ in range(20)))
        return peak, limiter.peak

    assert asyncio.run(main()) == (3, 3)


def test_pacing_spreads_starts_over_the_minute():
    async def main():
        limiter = AdaptiveLimiter(10, images_per_minute=600)  # one image per 0.1 s
        starts = []
        for _ in range(5):
            await limiter.acquire()
            starts.append(time.monotonic())
            await limiter.release()
        return [b - a for a, b in itertools.pairwise(starts)]

    gaps = asyncio.run(main())
    assert all(g >= 0.09 for g in gaps), gaps


def test_429_lowers_the_limit_and_success_restores_it():
    async def main():
        limiter = AdaptiveLimiter(4, cooldown_s=0.0)
        await limiter.acquire()
        await limiter.release(rate_limited=True, retry_after=0.05)
        lowered = limiter.limit
        t0 = time.monotonic()
        await limiter.acquire()  # waits out the server's retry-after
        waited = time.monotonic() - t0
        await limiter.release()
        for _ in range(10):
            await limiter.acquire()
            await limiter.release()
        return lowered, waited, limiter.limit

    lowered, waited, recovered = asyncio.run(main())
    assert lowered == 3 and waited >= 0.04 and recovered == 4


def test_retry_policy_classifies_errors():
    policy, rng = RetryPolicy(max_attempts=3), random.Random(0)
    assert policy.delay(ModerationBlocked("no"), 1, 0, rng) is None
    assert policy.delay(QuotaExceeded("no"), 1, 0, rng) is None
    assert 0.25 <= policy.delay(TransientError("5xx"), 1, 0, rng) <= 0.5
    assert policy.delay(TransientError("5xx"), 3, 0, rng) is None
    assert 0.2 <= policy.delay(RateLimited("429", retry_after=0.2), 0, 1, rng) <= 0.24
    assert policy.delay(RateLimited("429", retry_after=500), 0, 1, rng) is None
    delays = [policy.delay(TransientError("x"), a, 0, rng) for a in (1, 2)]
    assert delays[1] > 0.5 * delays[0]
