"""Run many image requests at once: serve what the store has, send the rest through the
shared limiter with one retry policy, and write every image to the store the moment it arrives.

A `Run` is the observable state of one call (counts, dollars, ETA, per-request results and
errors), read by progress displays and grids while the run goes on. Results keep the order of
the requests; one failing request never stops the others.

Before paying for an image, a call claims its key in the store (`Store.claim`): when another
kernel sharing the store is already paying for it, the call waits for that kernel's row and
serves it, so two notebooks running the same grid at once pay for each image once.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import __version__, cost, owners, provenance
from ..backends.base import Backend, Partial, Response
from ..errors import BackendError, ImagenbError, RateLimited
from ..request import ImageRequest
from ..results import GeneratedImage
from ..store import Store, StoredImage
from .limiter import AdaptiveLimiter
from .retry import RetryPolicy

CLAIM_POLL_S = 0.5  # how often a call waiting on another kernel's claim looks again
PartialSink = Callable[[int, Partial], None]
ImageSink = Callable[[int, GeneratedImage], None]


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
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    settled: threading.Event = field(default_factory=threading.Event)
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
        return self.total - self.done - self.cached - self.failed

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

    async def execute(
        self,
        run: Run,
        *,
        fresh: bool = False,
        partial_images: int = 0,
        on_partial: PartialSink | None = None,
        on_image: ImageSink | None = None,
        split_variants: bool = False,
    ) -> Run:
        """Fill `run` in; returns when every request has finished or failed. With
        `split_variants`, each missing variant is its own call (`best_of` candidates: k
        independent samples rather than one call with n=k)."""
        try:
            missing = self._serve_cached(run, on_image) if not fresh else None
            delivery = Delivery(partial_images, on_partial, on_image)
            async with asyncio.TaskGroup() as group:
                for index, request in enumerate(run.requests):
                    variants = list(range(request.n)) if missing is None else missing[index]
                    calls = [[v] for v in variants] if split_variants else [variants]
                    for call in filter(None, calls):
                        group.create_task(self._one(run, index, call, delivery, fresh))
        finally:
            run.finished = time.monotonic()
            run.settled.set()
        return run

    def _serve_cached(self, run: Run, on_image: ImageSink | None) -> list[list[int]]:
        return serve_cached(self.store, run, self.thumbnail_px, on_image)

    async def _one(
        self,
        run: Run,
        index: int,
        variants: list[int],
        delivery: Delivery,
        fresh: bool,
    ) -> None:
        """One call for `variants` of request `index`. Unless `fresh`, its keys are claimed
        once it may send (a limiter slot is its), and what another kernel stored meanwhile is
        served; then it pays for the rest, and the claims go."""
        owner = None if fresh else owners.owner_id(unique=True)
        keys = [run.requests[index].key(v) for v in variants]
        try:
            await self.limiter.acquire(len(variants))
            if owner is not None:
                variants = await self._claim(run, index, variants, keys, owner, delivery)
            if variants:
                await self._pay(run, index, variants, delivery)
            else:
                await self.limiter.give_back()
        finally:
            if owner is not None:
                self.store.release(keys, owner)

    async def _claim(
        self,
        run: Run,
        index: int,
        variants: list[int],
        keys: list[str],
        owner: str,
        delivery: Delivery,
    ) -> list[int]:
        """Claim `keys` (holding a slot; waiting, without one, while another kernel holds
        them), serve those now stored, and return the variants left to pay for."""
        # claimed on the loop, not in a thread: a cancelled await must not leave a claim behind
        while self.store.claim(keys, owner):
            await self.limiter.give_back()
            while self.store.held(keys, owner):  # another kernel is paying for these
                await asyncio.sleep(CLAIM_POLL_S)
            await self.limiter.acquire(len(variants))
        rows = self.store.get_many(keys)
        for variant, key in zip(variants, keys, strict=True):
            if row := rows.get(key):
                serve_row(run, index, variant, row, self.thumbnail_px, delivery.on_image)
        return [v for v, key in zip(variants, keys, strict=True) if key not in rows]

    async def _pay(
        self,
        run: Run,
        index: int,
        variants: list[int],
        delivery: Delivery,
    ) -> None:
        """Send the call (a limiter slot is held on entry) until it succeeds or the retry
        policy gives up, then store what came back."""
        request = run.requests[index]
        attempts = rate_limited = 0
        while True:
            started = time.monotonic()
            try:
                response = await self.backend.run(
                    request,
                    variants,
                    partial_images=delivery.partial_images,
                    on_partial=delivery.partial_sink(index),
                )
            except BackendError as exc:
                limited = isinstance(exc, RateLimited)
                await self.limiter.release(rate_limited=limited, retry_after=exc.retry_after)
                rate_limited += limited
                attempts += not limited
                wait = self.policy.delay(exc, attempts, rate_limited, self.rng)
                if wait is None:
                    self._fail(run, index, len(variants), exc)
                    return
                await asyncio.sleep(wait)
                await self.limiter.acquire(len(variants))
                continue
            except ImagenbError as exc:  # NotInStore, InvalidRequest from a plugin, ...
                await self.limiter.release()
                self._fail(run, index, len(variants), exc)
                return
            except BaseException:
                await self.limiter.release()
                raise
            await self.limiter.release()
            break
        latency = time.monotonic() - started
        try:
            # shielded: an interrupt must not lose an image that was already paid for
            images = await asyncio.shield(
                asyncio.to_thread(self._store_response, request, variants, response, latency)
            )
        except ImagenbError as exc:
            self._fail(run, index, len(variants), exc)
            return
        for variant, image in zip(variants, images, strict=True):
            run.results[index][variant] = image
            run.done += 1
            run.usd += image.cost_usd or 0.0
            if delivery.on_image:
                delivery.on_image(index, image)

    def _fail(self, run: Run, index: int, count: int, exc: ImagenbError) -> None:
        run.errors[index] = exc
        run.failed += count

    def _store_response(
        self, request: ImageRequest, variants: list[int], response: Response, latency: float
    ) -> list[GeneratedImage]:
        """Write each image of `response` to the store (atomically) with its share of the bill."""
        if len(response.images) != len(variants):
            raise BackendError(f"asked for {len(variants)} image(s), got {len(response.images)}")
        if response.usage is not None:
            usd = cost.usage_cost(request.spec, response.usage)
            is_estimate = response.usage_is_estimate
        else:
            usd, is_estimate = cost.estimate(request, images=len(variants)).usd, True
        share = usd / len(variants)
        params = {**request.params(), "n": len(variants), **resolved_params(response.resolved)}
        origin = Origin.of(request, self.backend.name)
        return [
            write_image(
                self.store,
                origin,
                data,
                key=request.key(variant),
                variant=variant,
                params=params,
                usage=response.usage,
                cost_usd=share,
                cost_is_estimate=is_estimate,
                latency_s=latency,
                request_id=response.request_id,
                thumbnail_px=self.thumbnail_px,
            )
            for variant, data in zip(variants, response.images, strict=True)
        ]


def serve_cached(
    store: Store, run: Run, thumbnail_px: int, on_image: ImageSink | None = None
) -> list[list[int]]:
    """Fill in every stored variant of `run`; return the missing variant indices per request."""
    keys = {r.key(v): (i, v) for i, r in enumerate(run.requests) for v in range(r.n)}
    found = store.get_many(list(keys))
    missing: list[list[int]] = [[] for _ in run.requests]
    for key, (index, variant) in keys.items():
        if row := found.get(key):
            serve_row(run, index, variant, row, thumbnail_px, on_image)
        else:
            missing[index].append(variant)
    return missing


def serve_row(
    run: Run,
    index: int,
    variant: int,
    row: StoredImage,
    thumbnail_px: int,
    on_image: ImageSink | None,
) -> None:
    """Fill in one variant of `run` from the store, at no cost."""
    image = GeneratedImage.from_stored(row, cached=True, thumbnail_px=thumbnail_px)
    run.results[index][variant] = image
    run.cached += 1
    if on_image:
        on_image(index, image)


@dataclass(frozen=True)
class Origin:
    """What made an image, as recorded with it: enough to store a result whose `ImageRequest`
    is gone (a batch collected by another process)."""

    prompt: str
    model: str
    kind: str
    input_keys: tuple[str, ...]
    backend: str

    @classmethod
    def of(cls, request: ImageRequest, backend: str) -> Origin:
        inputs = tuple(i.sha256 for i in request.images)
        return cls(request.prompt, request.model, request.kind, inputs, backend)


def write_image(
    store: Store,
    origin: Origin,
    data: bytes,
    *,
    key: str,
    variant: int,
    params: dict[str, Any],
    usage: dict[str, Any] | None,
    cost_usd: float,
    cost_is_estimate: bool,
    latency_s: float | None,
    request_id: str | None,
    thumbnail_px: int,
) -> GeneratedImage:
    """Store one image (atomically, provenance embedded) and return it as a fresh result.
    The row's source is what `store` (a serving view) writes."""
    bill = {
        "source": store.policy.writes,
        "usage": usage,
        "cost_usd": cost_usd,
        "cost_is_estimate": cost_is_estimate,
        "request_id": request_id,
        "kind": origin.kind,
    }
    row = store.put(
        key=key,
        data=_with_provenance(data, origin, key, variant, params, bill),
        prompt=origin.prompt,
        model=origin.model,
        backend=origin.backend,
        params=params,
        variant=variant,
        usage=usage,
        cost_usd=cost_usd,
        cost_is_estimate=cost_is_estimate,
        latency_s=latency_s,
        request_id=request_id,
        kind=origin.kind,
        input_keys=origin.input_keys,
    )
    return GeneratedImage.from_stored(row, cached=False, thumbnail_px=thumbnail_px)


def _with_provenance(
    data: bytes,
    origin: Origin,
    key: str,
    variant: int,
    params: dict[str, Any],
    bill: dict[str, Any],
) -> bytes:
    """The image bytes with what made them written inside (PNG iTXt, JPEG COM, WebP XMP):
    enough for `imagenb store repair` to rebuild the image's row from the file alone."""
    header = provenance.probe(data)
    if header is None:
        return data  # the store refuses it with a clear message
    meta = {
        "imagenb": __version__,
        "key": key,
        "prompt": origin.prompt,
        "model": origin.model,
        "backend": origin.backend,
        "params": params,
        "variant": variant,
        "inputs": list(origin.input_keys),
        "created": time.time(),
        **bill,
    }
    return provenance.embed(data, header.format, meta)


def resolved_params(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """What the server chose where the request said `auto`, under `resolved_*` names."""
    return {f"resolved_{k}": v for k, v in resolved.items() if v is not None}
