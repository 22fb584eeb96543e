"""Run many image requests at once: serve what the store has, send the rest through the
shared limiter with one retry policy, and write every image to the store the moment it arrives.

A `Run` is the observable state of one call (counts, dollars, ETA, per-request results and
errors), read by progress displays and grids while the run goes on. Results keep the order of
the requests; one failing request (or one bad image of an answer) never stops the others,
and nothing but cancellation leaves a request's task as an exception.

Money: a request is only sent while the run's `Reservation` covers its estimate; its answer
replaces the hold with the actual cost before anything is stored (an image paid for and then
lost to a full disk was still paid for). A run-wide error (a wrong key, no quota, an unknown
model, an unwritable store) stops the run from sending more; so does `Run.stop()` (the first
interrupt), which still collects what is in flight.

Before paying for an image, a call claims its key in the store (`Store.claim`): when another
kernel sharing the store is already paying for it, the call waits for that kernel's row and
serves it, so two notebooks running the same grid at once pay for each image once.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from imagenb.backends.base import Backend, Partial, Response
from imagenb.core.ledger import Ledger, Reservation
from imagenb.core.request import ImageRequest
from imagenb.engine.answers import Bill, bill_for, store_answer
from imagenb.engine.attempts import Attempts
from imagenb.engine.limiter import AdaptiveLimiter
from imagenb.engine.retry import RetryPolicy
from imagenb.engine.storing import (
    ImageSink,
    Origin,
    flush_parked,
    parked_keys,
    release_claims,
    resolved_params,
    retry_releases,
    serve_cached,
    serve_row,
    write_image,
)
from imagenb.errors import ImagenbError, StoreUnwritable
from imagenb.store import owners
from imagenb.store.images import GeneratedImage
from imagenb.store.index import Store

CLAIM_POLL_S = 0.5  # how often a call waiting on another kernel's claim looks again
PartialSink = Callable[[int, Partial], None]

__all__ = [
    "Delivery",
    "Engine",
    "Origin",
    "Run",
    "resolved_params",
    "serve_cached",
    "serve_row",
    "write_image",
]


@dataclass(frozen=True)
class Delivery:
    """Where a run's results go as they arrive: partial images while streaming (how many per
    image, and to whom), and each finished image."""

    partial_images: int = 0
    on_partial: PartialSink | None = None
    on_image: ImageSink | None = None

    def partial_sink(self, index: int) -> Callable[[Partial], None] | None:
        """The backend's callback for the partials of request `index`."""
        on_partial = self.on_partial
        return (lambda p: on_partial(index, p)) if on_partial else None


@dataclass
class Run:
    """Live state of one execution. Written only on the engine loop; safe to read anywhere."""

    requests: Sequence[ImageRequest]
    results: list[list[GeneratedImage | None]] = field(init=False)
    errors: list[ImagenbError | None] = field(init=False)
    total: int = field(init=False)
    done: int = 0
    cached: int = 0
    failed: int = 0
    usd: float = 0.0
    uncertain_usd: float = 0.0  # answers lost after the request may have been billed
    in_flight: int = 0  # images in requests that are out now
    stopped: int = 0  # images never asked for because the run was stopped
    fatal: ImagenbError | None = None  # a run-wide error: nothing more is sent
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    settled: threading.Event = field(default_factory=threading.Event)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    # Set by a remote executor (the Batch API): what it reports, and how many of the images
    # it has finished, whether or not they have been collected into the store yet.
    note: str = ""
    remote_settled: int = 0

    def __post_init__(self) -> None:
        self.results = [[None] * r.n for r in self.requests]
        self.errors = [None] * len(self.requests)
        self.total = sum(r.n for r in self.requests)

    @property
    def pending(self) -> int:
        return self.total - self.done - self.cached - self.failed - self.stopped

    @property
    def halted(self) -> bool:
        """Nothing more may be sent: stopped, or a run-wide error."""
        return self.stop_requested.is_set() or self.fatal is not None

    def stop(self) -> int:
        """Send nothing more, but collect what is in flight (any thread). Returns how many
        images are still being made."""
        self.stop_requested.set()
        return self.in_flight

    def eta_s(self) -> float | None:
        """Seconds left at the rate new images have been arriving (None before the first)."""
        if not self.done or not self.pending:
            return None if self.pending else 0.0
        elapsed = (self.finished or time.monotonic()) - self.started
        return elapsed / self.done * self.pending


@dataclass
class Engine:
    """Executes requests on one backend into one store. Create and use it on the engine loop."""

    backend: Backend
    store: Store
    limiter: AdaptiveLimiter
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    thumbnail_px: int = 256
    rng: random.Random = field(default_factory=random.Random)
    ambiguous_retries: int = 1

    async def execute(
        self,
        run: Run,
        *,
        fresh: bool = False,
        partial_images: int = 0,
        on_partial: PartialSink | None = None,
        on_image: ImageSink | None = None,
        split_variants: bool = False,
        reservation: Reservation | None = None,
    ) -> Run:
        """Fill `run` in; returns when every request has finished, failed or was stopped.
        With `split_variants`, each missing variant is its own call (`best_of` candidates:
        k independent samples rather than one call with n=k). Without a `reservation`, the
        run is unbudgeted (tests, tools)."""
        budget = reservation or Ledger().reserve(0.0, None, paid=self.backend.paid)
        try:
            retry_releases()
            if not fresh:
                await asyncio.to_thread(flush_parked, self.store, self.thumbnail_px)
            missing = None if fresh else serve_cached(self.store, run, self.thumbnail_px, on_image)
            if missing is not None:
                missing = _skip_parked(self.store, run, missing)
            delivery = Delivery(partial_images, on_partial, on_image)
            tasks = []
            for index, request in enumerate(run.requests):
                variants = list(range(request.n)) if missing is None else missing[index]
                calls = [[v] for v in variants] if split_variants else [variants]
                for call in filter(None, calls):
                    call_run = _Call(self, run, index, call, delivery, budget)
                    tasks.append(asyncio.create_task(call_run.go(fresh)))
            await _gather_cancelling(tasks)
        finally:
            if reservation is None:
                budget.close()
            run.finished = time.monotonic()
            run.settled.set()
        return run


def _skip_parked(store: Store, run: Run, missing: list[list[int]]) -> list[list[int]]:
    """Variants paid for earlier and still waiting in memory (the store cannot take them
    yet) are errors now, not requests to pay for again."""
    parked = parked_keys(store)
    if not parked:
        return missing
    left: list[list[int]] = []
    for index, variants in enumerate(missing):
        request = run.requests[index]
        waiting = [v for v in variants if request.key(v) in parked]
        if waiting:
            run.errors[index] = StoreUnwritable(
                "paid for already and kept in memory, but the store still cannot be written; "
                "free some space and re-run"
            )
            run.failed += len(waiting)
        left.append([v for v in variants if v not in waiting])
    return left


async def _gather_cancelling(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every task; if this is cancelled (the second interrupt), cancel them all and
    wait for them to unwind (claims released, lost answers counted)."""
    if not tasks:
        return
    try:
        await asyncio.gather(*tasks)
    except asyncio.CancelledError:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class _Call:
    """One call of a run: claim, hold its estimate, send (with retries), store the answer."""

    def __init__(
        self,
        engine: Engine,
        run: Run,
        index: int,
        variants: list[int],
        delivery: Delivery,
        budget: Reservation,
    ) -> None:
        self.engine = engine
        self.run = run
        self.index = index
        self.variants = variants
        self.delivery = delivery
        self.budget = budget

    async def go(self, fresh: bool) -> None:
        """Never raises but for cancellation: every failure becomes this call's error."""
        engine, run = self.engine, self.run
        request = run.requests[self.index]
        owner = None if fresh else owners.owner_id(unique=True)
        keys = [request.key(v) for v in self.variants]
        claimed = False
        try:
            await engine.limiter.acquire(len(self.variants))
            if run.halted:
                await engine.limiter.give_back()
                self._not_sent()
                return
            if owner is not None:
                claimed = True
                self.variants = await self._claim(keys, owner)
            if self.variants:
                await self._pay()
            else:
                await engine.limiter.give_back()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(_as_error(exc))
        finally:
            if owner is not None and claimed:
                release_claims(engine.store, keys, owner)

    async def _claim(self, keys: list[str], owner: str) -> list[int]:
        """Claim `keys` (holding a slot; waiting, without one, while another kernel holds
        them), serve those now stored, and return the variants left to pay for."""
        engine, run, variants = self.engine, self.run, self.variants
        # claimed on the loop, not in a thread: a cancelled await must not leave a claim behind
        holding = True  # the limiter slot taken before the claim
        try:
            while engine.store.claim(keys, owner):
                await engine.limiter.give_back()
                holding = False
                while engine.store.held(keys, owner):  # another kernel is paying for these
                    await asyncio.sleep(CLAIM_POLL_S)
                await engine.limiter.acquire(len(variants))
                holding = True
        except Exception as exc:
            if holding:
                await engine.limiter.give_back()
            raise _store_error(exc) from exc
        rows = engine.store.get_many(keys)
        for variant, key in zip(variants, keys, strict=True):
            if row := rows.get(key):
                px, on_image = engine.thumbnail_px, self.delivery.on_image
                serve_row(run, self.index, variant, row, px, on_image)
        return [v for v, key in zip(variants, keys, strict=True) if key not in rows]

    async def _pay(self) -> None:
        """Send the call (a limiter slot is held on entry) until it succeeds or may not be
        tried again, then account for and store what came back."""
        engine, run, request = self.engine, self.run, self.run.requests[self.index]
        partials = self.delivery.partial_images if self.delivery.on_partial else 0
        attempts = Attempts(engine, run, self.budget, request, len(self.variants), partials)
        outcome = await attempts.send(
            lambda: engine.backend.run(
                request,
                self.variants,
                partial_images=self.delivery.partial_images,
                on_partial=self.delivery.partial_sink(self.index),
            )
        )
        if isinstance(outcome, ImagenbError):
            self._fail(outcome)
            return
        if outcome is None:
            self._not_sent()
            return
        response, held, latency = outcome
        bill = bill_for(request, self.variants, response, engine.backend.paid)
        self.budget.spend(held, bill.usd, request.model, len(self.variants) if bill.paid else 0)
        run.usd += bill.usd
        await self._store(response, bill, latency)

    async def _store(self, response: Response, bill: Bill, latency: float) -> None:
        """Store each image on its own (shielded: an interrupt must not lose a paid image)."""
        engine, run = self.engine, self.run
        request = run.requests[self.index]
        origin = Origin.of(request, engine.backend.name)
        outcomes = await asyncio.shield(
            asyncio.to_thread(
                store_answer, engine.store, origin, request, self.variants, response, bill,
                latency, engine.thumbnail_px,
            )
        )  # fmt: skip
        for variant, outcome in zip(self.variants, outcomes, strict=True):
            if isinstance(outcome, GeneratedImage):
                run.results[self.index][variant] = outcome
                run.done += 1
                if self.delivery.on_image:
                    self._deliver(outcome)
            else:
                self._fail(outcome, count=1)

    def _deliver(self, image: GeneratedImage) -> None:
        on_image = self.delivery.on_image
        assert on_image is not None
        try:
            on_image(self.index, image)
        except Exception:
            import traceback

            traceback.print_exc()

    def _not_sent(self) -> None:
        """The run was halted before this call went out."""
        fatal = self.run.fatal
        if fatal is None or self.run.stop_requested.is_set():
            self.run.stopped += len(self.variants)
        elif isinstance(fatal, StoreUnwritable):
            self._fail(StoreUnwritable(f"not sent: the store cannot be written ({fatal})"))
        else:
            self._fail(fatal)

    def _fail(self, exc: ImagenbError, count: int | None = None) -> None:
        run = self.run
        run.errors[self.index] = exc
        run.failed += len(self.variants) if count is None else count
        if isinstance(exc, StoreUnwritable) and run.fatal is None:
            run.fatal = exc  # images could not be kept: send nothing more


def _as_error(exc: Exception) -> ImagenbError:
    """Any failure of one call as an `ImagenbError` with a one-line reason."""
    if isinstance(exc, ImagenbError):
        return exc
    return ImagenbError(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])


def _store_error(exc: Exception) -> ImagenbError:
    from imagenb.engine.storing import storage_failure

    if storage_failure(exc):
        return StoreUnwritable(f"the store cannot be written ({exc}); nothing was sent")
    return _as_error(exc)
