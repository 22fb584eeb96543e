"""Sending one call until it is answered or may not be tried again, with its money held.

Failures are sorted by whether the request may have been billed:

- never out, or refused with no work done (connect/pool/write errors, 429, 5xx): the hold
  goes back to the run and the retry policy decides, as before;
- out and the answer lost (`AnswerLost`: read timeout, connection dropped mid-answer, stream
  cut before its final event): the hold becomes uncertain spend (`ig.spent().uncertain_usd`,
  counted against the budget) and the call is asked again at most `ambiguous_retries` times;
- run-wide (a wrong key, no permission, no quota, an unknown model): the run sends nothing
  more and every request not yet out shows this one error;
- anything else (moderation, invalid input): this call's error only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from imagenb.backends.base import Response
from imagenb.core import cost
from imagenb.core.ledger import Reservation
from imagenb.core.request import ImageRequest
from imagenb.errors import (
    AnswerLost,
    BackendError,
    BudgetExceeded,
    ImagenbError,
    QuotaExceeded,
    RateLimited,
)

if TYPE_CHECKING:
    from imagenb.engine.runner import Engine, Run

Sent = tuple[Response, float, float]  # the answer, the dollars held for it, its latency


def run_wide(error: BackendError) -> bool:
    """An error every other request of the run would get too."""
    return (
        isinstance(error, QuotaExceeded)
        or error.status in (401, 403)
        or error.code in ("model_not_found", "invalid_api_key")
    )


class Attempts:
    """The attempts of one call; `send` runs them (a limiter slot is held on entry)."""

    def __init__(
        self,
        engine: Engine,
        run: Run,
        budget: Reservation,
        request: ImageRequest,
        images: int,
        partials: int,
    ) -> None:
        self.engine = engine
        self.run = run
        self.budget = budget
        self.images = images
        self.estimate = cost.estimate(request, images=images, partials=partials).usd
        self.failures = self.rate_limited = self.lost = 0

    async def send(self, call: Callable[[], Awaitable[Response]]) -> Sent | ImagenbError | None:
        """The answer; or the error that ends this call; or None if the run was halted
        before it went out (the slot is released in every case)."""
        limiter, run = self.engine.limiter, self.run
        while True:
            if run.halted:
                await limiter.give_back()
                return None
            if not self.budget.take(self.estimate):
                await limiter.give_back()
                return self._over_budget()
            started = time.monotonic()
            run.in_flight += self.images
            try:
                response = await call()
            except asyncio.CancelledError:
                self._lost()  # abandoned while out: it may be billed all the same
                await limiter.release()
                raise
            except AnswerLost as exc:
                await limiter.release()
                self._lost()
                if self.lost > self.engine.ambiguous_retries or run.halted:
                    return _after_lost(exc, self.lost)
                wait: float | None = self.engine.policy.delay_after_lost(self.lost, self.engine.rng)
            except BackendError as exc:
                limited = isinstance(exc, RateLimited)
                await limiter.release(rate_limited=limited, retry_after=exc.retry_after)
                self.budget.give_back(self.estimate)
                if run_wide(exc):
                    run.fatal = run.fatal or exc
                    return exc
                self.rate_limited += limited
                self.failures += not limited
                rng = self.engine.rng
                wait = self.engine.policy.delay(exc, self.failures, self.rate_limited, rng)
                if wait is None:
                    return exc
            except Exception as exc:  # NotInStore, InvalidRequest, a plugin's bug, ...
                await limiter.release()
                self.budget.give_back(self.estimate)
                if isinstance(exc, ImagenbError):
                    return exc
                reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                return ImagenbError(f"the {self.engine.backend.name} backend failed: {reason}")
            else:
                await limiter.release()
                return response, self.estimate, time.monotonic() - started
            finally:
                run.in_flight -= self.images
            await self._pause(wait or 0.0)
            await limiter.acquire(self.images)

    def _lost(self) -> None:
        self.lost += 1
        self.budget.uncertain(self.estimate)
        self.run.uncertain_usd += self.estimate

    async def _pause(self, seconds: float) -> None:
        """Wait before the next try, cut short if the run is halted meanwhile."""
        deadline = time.monotonic() + seconds
        while not self.run.halted and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.1))

    def _over_budget(self) -> BudgetExceeded:
        cap = self.budget.cap or 0.0
        return BudgetExceeded(
            f"not sent: the ${cap:.2f} budget cannot cover another ${self.estimate:.4f} "
            "(lost answers that may have been billed count against it); raise it with "
            "ig.configure(budget_usd=...)",
            estimate_usd=self.estimate,
            left_usd=0.0,
        )


def _after_lost(exc: AnswerLost, times: int) -> AnswerLost:
    """The last lost answer, saying how often this request was asked."""
    asked = "once" if times == 1 else f"{times} times"
    error = type(exc)(
        f"{exc} (asked {asked}; each may have been billed and is counted in "
        "ig.spent().uncertain_usd; re-run to ask again)",
        status=exc.status,
        code=exc.code,
        request_id=exc.request_id,
    )
    return error
