"""Batch mode: image requests run by OpenAI's Batch API at half price, safe across restarts.

`start(requests)` serves what the store has, follows any unfinished job that already covers
the rest (the same cell re-run after a kernel restart, another kernel), submits only what
nobody has, and returns a `BatchJob` at once. Its `run` is the engine's `Run`, filled in as
results are collected, so grids and progress displays treat it like a live run.

Crash safety comes from ordering: the job is recorded in the store (`batch_store`) before
anything is uploaded, and each remote batch carries the job id in its metadata. A process
killed at any point leaves a record that the next one either follows (the batch exists) or
finds the batch for (created, but its id never written) or marks abandoned (never created:
nothing was sent, so the requests are submitted again).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from imagenb.api import calls as api
from imagenb.api.progress import wait_showing
from imagenb.backends.base import BatchBackend, BatchState
from imagenb.batch import collect as batch_collect
from imagenb.batch.store import (
    BatchRecords,
    JobRecord,
    LineRecord,
    PartRecord,
    error_from_record,
    error_record,
)
from imagenb.batch.submit import (
    PartId,
    Submitter,
    backend_for,
    require_support,
    supported,
    tmp_prefix,
)
from imagenb.core import config as config_mod
from imagenb.core import cost
from imagenb.core.request import ImageRequest
from imagenb.engine import loop, session
from imagenb.engine.runner import Run, serve_cached
from imagenb.errors import BackendError, ImagenbError, InvalidRequest, TransientError
from imagenb.store.images import GeneratedImage, ImageSet

__all__ = [
    "BatchJob",
    "describe",
    "estimate",
    "jobs",
    "require_support",
    "resume",
    "start",
    "status",
    "supported",
]

POLL_FIRST_S = 1.0  # then each wait is POLL_GROWTH times longer, up to POLL_MAX_S
POLL_GROWTH = 1.5
POLL_MAX_S = 60.0


# --- the public entry points --------------------------------------------------------------


def estimate(
    requests: Sequence[ImageRequest], cfg: config_mod.Config | None = None, *, fresh: bool = False
) -> cost.Estimate:
    """What `start(requests)` would make and cost at the batch price. Stored images are free
    (counted as cached); images an unfinished job already covers are counted at $0 (they are
    paid for) and in no request (nothing is sent for them)."""
    cfg = cfg or config_mod.current()
    store = session.store_for(cfg)
    keys = [k for r in requests for k in r.variant_keys()]
    found = set() if fresh else set(store.get_many(keys))
    covered = set(BatchRecords(store).covering(k for k in keys if k not in found))
    total = cost.ZERO
    for r in requests:
        new = [k for k in r.variant_keys() if k not in found and k not in covered]
        if new:
            total += cost.estimate(r, images=len(new), batch=True)
        cached = sum(1 for k in r.variant_keys() if k in found)
        followed = sum(1 for k in r.variant_keys() if k in covered)
        total += cost.Estimate(0.0, followed, 0, 0, cached_images=cached, batch=True)
    return total


def start(
    requests: Sequence[ImageRequest],
    cfg: config_mod.Config | None = None,
    *,
    label: str | None = None,
    fresh: bool = False,
    check: bool = True,
) -> BatchJob:
    """Run `requests` through the Batch API; returns once they are submitted (or found
    already submitted). The budget is checked first, against what is new, unless
    `check=False`. Nothing is sent for stored images (unless `fresh`) or for images an
    unfinished job already covers: that job is followed instead."""
    cfg = cfg or config_mod.current()
    require_support(cfg)
    requests = list(requests)
    slots: dict[str, list[tuple[int, int]]] = {}
    for i, r in enumerate(requests):
        for v in range(r.n):
            slots.setdefault(r.key(v), []).append((i, v))
    sources = {r.key(v): (r, v) for r in requests for v in range(r.n)}
    job = BatchJob(cfg, Run(requests), slots, sources, label=label)
    if fresh:
        missing = list(slots)
    else:
        wanted = serve_cached(job.store, job.run, cfg.thumbnail_px)
        missing = list(
            dict.fromkeys(r.key(v) for r, vs in zip(requests, wanted, strict=True) for v in vs)
        )
    if missing:
        loop.wait(loop.submit(job._submitter.submit(missing, check=check)))
    job._start_following()
    return job


def resume(ident: str, cfg: config_mod.Config | None = None) -> BatchJob:
    """A recorded job (its id, a unique prefix, or one of its batch ids), from any process:
    `wait()` collects what it made into the store. Its `run` has one entry per line."""
    cfg = cfg or config_mod.current()
    require_support(cfg)
    records = BatchRecords(session.store_for(cfg))
    record = records.job(ident)
    lines = [line for part in record.parts for line in records.lines(record.id, part.part)]
    placeholders = [ImageRequest(prompt=line.prompt, model=line.model) for line in lines]
    slots = {line.key: [(i, 0)] for i, line in enumerate(lines)}
    sources = {line.key: (r, line.variant) for line in lines if (r := _rebuild(line))}
    job = BatchJob(cfg, Run(placeholders), slots, sources, label=record.label)
    job._follow_parts((p.job_id, p.part) for p in record.parts)
    return job  # it starts following when waited on


def jobs(cfg: config_mod.Config | None = None, limit: int | None = None) -> list[JobRecord]:
    """The recorded jobs, newest first, as last seen (no network)."""
    return BatchRecords(session.store_for(cfg or config_mod.current())).jobs(limit)


def status(ident: str, cfg: config_mod.Config | None = None) -> JobRecord:
    """A recorded job after asking the service once about each of its unfinished batches."""
    cfg = cfg or config_mod.current()
    records = BatchRecords(session.store_for(cfg))
    record = records.job(ident)

    async def refresh() -> None:
        backend = backend_for(cfg)
        for part in record.parts:
            if part.batch_id and not part.collected:
                state = await backend.retrieve_batch(part.batch_id)
                await asyncio.to_thread(records.update_from, part.job_id, part.part, state)

    loop.wait(loop.submit(refresh()))
    return records.job(record.id)


def describe(job: JobRecord) -> str:
    """`bj_1a2b3c  in_progress  230/500 processed · 0 stored · est $2.10 · "grid: cats"`"""
    parts = f"{len(job.parts)} batches" if len(job.parts) > 1 else "1 batch"
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created))
    text = (
        f"{job.id}  {when}  {job.status or 'empty'}  {job.processed}/{job.lines} processed · "
        f"{job.stored} stored · {job.errors} errors · ${job.cost_usd:.4f} paid "
        f"(est ${job.estimate_usd:.4f}) · {parts}"
    )
    return text + (f" · {job.label!r}" if job.label else "")


# --- the job ------------------------------------------------------------------------------


class BatchJob(api.Job):
    """A `Job` whose requests run at the Batch API, so a grid or a progress display can hold
    either. `future` is the polling (with backoff) and collecting; stopping it, or `wait()`
    with Ctrl-C, only stops watching: the batches go on, and re-running the same requests
    picks them up. `cancel()` cancels the batches themselves."""

    __eq__ = object.__eq__  # not the dataclass comparison of `Job` (it would start polling)
    __hash__ = object.__hash__

    def __init__(
        self,
        cfg: config_mod.Config,
        run: Run,
        slots: dict[str, list[tuple[int, int]]],
        sources: dict[str, tuple[ImageRequest, int]],
        *,
        label: str | None = None,
    ) -> None:
        self.config = cfg
        self.run = run
        self.label = label
        self.store = session.store_for(cfg)
        self.records = BatchRecords(self.store)
        self._slots = slots  # store key -> its (request index, variant) places in `run`
        self._parts: dict[PartId, bool] = {}  # followed parts -> collected (and applied) here
        self._added = 0  # bumped whenever parts are added, so a follower never stops early
        self._errors: dict[str, ImagenbError] = {}
        self._paid = session.backend_name(cfg) not in ("preview", "replay")
        self._future: concurrent.futures.Future[Run] | None = None
        self._submitter = Submitter(
            cfg, self.store, sources, label=label, follow=self._follow_parts
        )

    # --- what callers use -------------------------------------------------------------------

    @property
    def ids(self) -> list[str]:
        """The ids of the recorded jobs this one follows (usually one)."""
        return sorted({job_id for job_id, _ in self._parts})

    @property
    def future(self) -> concurrent.futures.Future[Run]:
        """The follower (polling, collecting); started on first use."""
        if self._future is None:
            self._start_following()
        assert self._future is not None
        return self._future

    @future.setter
    def future(self, value: concurrent.futures.Future[Run]) -> None:
        self._future = value

    @property
    def finished(self) -> bool:
        return self.future.done()

    @property
    def complete(self) -> bool:
        """Every followed batch is collected: nothing more will arrive."""
        return all(self._parts.values())

    def wait(
        self,
        *,
        progress: bool = True,
        label: str | None = None,
        tick: Callable[[], None] | None = None,
    ) -> Run:
        """Poll (with backoff) and collect until every batch is in; Ctrl-C stops waiting."""
        if self.future.done() and not self.complete:
            self._start_following()  # an earlier wait was interrupted: pick up again
        label = label or self.label or "batch"
        try:
            return wait_showing(self.run, self.future, label=label, progress=progress, tick=tick)
        except KeyboardInterrupt as exc:
            ids = " ".join(self.ids)
            exc.add_note(
                f"batch job {ids} goes on at the service; run the same cell again, or "
                f"`imagenb batch collect {ids}`, to collect it"
            )
            raise

    def cancel(self) -> None:
        """Cancel the unfinished batches; what they completed is still collected (`wait()`)."""
        loop.wait(loop.submit(self._cancel()))

    def resubmit_missing(self) -> int:
        """Submit again every image that failed for a reason that may pass now (the batch
        expired or was cancelled, a server error); returns how many. Moderation blocks and
        invalid requests are not sent again."""
        count = loop.wait(loop.submit(self._resubmit()))
        if count and self.future.done():
            self._start_following()
        return count

    def images(self) -> ImageSet:
        """Every image collected so far, in request order."""
        return ImageSet([img for row in self.run.results for img in row if img is not None])

    def __repr__(self) -> str:
        from imagenb.api.progress import summary

        return f"BatchJob({' '.join(self.ids) or 'nothing to send'}: {summary(self.run)})"

    # --- following ----------------------------------------------------------------------------

    def _follow_parts(self, parts: Iterable[PartId]) -> None:
        for part in parts:
            if part not in self._parts:
                self._parts[part] = False
                self._added += 1

    def _start_following(self) -> None:
        self._future = loop.submit(self._follow())

    async def _follow(self) -> Run:
        self.run.finished = None
        self.run.settled.clear()
        interval = POLL_FIRST_S
        try:
            while True:
                added = self._added
                pending = await self._poll() if self._parts else 0
                if not pending and added == self._added:
                    break
                await asyncio.sleep(interval)
                interval = min(interval * POLL_GROWTH, POLL_MAX_S)
            self._settle_unanswered()
        finally:
            self.run.finished = time.monotonic()
            self.run.settled.set()
        return self.run

    async def _poll(self) -> int:
        """Look at every followed part once, collecting the finished ones; returns how many
        are still going."""
        backend = backend_for(self.config)
        pending = 0
        for part in await self._part_records():
            ident = (part.job_id, part.part)
            if self._parts.get(ident):
                continue
            if part.collected:  # by another process (or before a restart)
                await self._apply_collected(part)
                continue
            if part.batch_id is None:
                if not self._submitter.alive(part):
                    await self._submitter.recover(backend, part)
                pending += 1
                continue
            try:
                state = await backend.retrieve_batch(part.batch_id)
            except BackendError as exc:
                if not exc.retryable:
                    raise
                pending += 1  # the service is busy: ask again next round
                continue
            await asyncio.to_thread(self.records.update_from, part.job_id, part.part, state)
            if not state.terminal:
                pending += 1
                continue
            try:
                await self._collect(backend, part, state)
            except BackendError as exc:
                if not exc.retryable:
                    raise
                pending += 1
        self._show(await self._part_records())
        return pending

    async def _part_records(self) -> list[PartRecord]:
        found = await asyncio.to_thread(self.records.parts, {j for j, _ in self._parts})
        return [p for p in found if (p.job_id, p.part) in self._parts]

    def _show(self, parts: Sequence[PartRecord]) -> None:
        """The remote state as the `Run`'s note: `batch in_progress: 230/500 processed`."""
        states = "+".join(dict.fromkeys(p.status for p in parts if not p.collected))
        processed = sum(p.total if p.collected else p.completed + p.failed for p in parts)
        total = sum(p.total for p in parts)
        self.run.note = f"batch {states or 'collected'}: {processed}/{total} processed"
        self.run.remote_settled = min(processed, self.run.total - self.run.cached)

    async def _collect(self, backend: BatchBackend, part: PartRecord, state: BatchState) -> None:
        """Download a finished part's files and store every line; then mark it collected."""
        records = await asyncio.to_thread(self.records.lines, part.job_id, part.part)
        lines = {line.key: line for line in records}
        into = batch_collect.Collection()
        report = self._reporter()
        for file_id in (state.output_file_id, state.error_file_id):
            if not file_id:
                continue
            path = self._tmp_path(f"{file_id}.jsonl")
            try:
                await backend.download_file(file_id, path)
                # shielded: an interrupt must not lose images that were already paid for
                await asyncio.shield(
                    asyncio.to_thread(
                        batch_collect.ingest,
                        path,
                        lines,
                        state,
                        store=self.store,
                        backend=backend,
                        backend_name=session.backend_name(self.config),
                        thumbnail_px=self.config.thumbnail_px,
                        report=report,
                        into=into,
                    )
                )
            finally:
                path.unlink(missing_ok=True)
        batch_collect.settle_missing(lines, state, report, into)
        errors = {key: error_record(error) for key, error in into.errors.items()}
        await asyncio.to_thread(self.records.mark_collected, part.job_id, part.part, errors)
        self._parts[(part.job_id, part.part)] = True

    async def _apply_collected(self, part: PartRecord) -> None:
        """Show a part someone else collected: its images from the store, its errors."""
        lines = await asyncio.to_thread(self.records.lines, part.job_id, part.part)
        ours = [line for line in lines if line.key in self._slots]
        stored = await asyncio.to_thread(self.store.get_many, [line.key for line in ours])
        px = self.config.thumbnail_px
        for line in ours:
            row = stored.get(line.key)
            if row is not None:  # made by this batch, or by anyone meanwhile (then: cached)
                cached = row.request_id != part.batch_id
                self._got(line.key, GeneratedImage.from_stored(row, cached=cached, thumbnail_px=px))
            elif line.error is not None:
                self._failed(line.key, error_from_record(line.error))
        self._parts[(part.job_id, part.part)] = True

    def _reporter(self) -> batch_collect.Report:
        """A callback for the collecting thread that applies each result on the engine loop."""
        engine_loop = asyncio.get_running_loop()

        def report(key: str, image: GeneratedImage | None, error: ImagenbError | None) -> None:
            if image is not None:
                engine_loop.call_soon_threadsafe(self._got, key, image)
            elif error is not None:
                engine_loop.call_soon_threadsafe(self._failed, key, error)

        return report

    def _got(self, key: str, image: GeneratedImage) -> None:
        """Put an image in every slot of its key (a repeated request is paid for once)."""
        for index, variant in self._slots.get(key, ()):
            if self.run.results[index][variant] is not None:
                continue
            self.run.results[index][variant] = image
            if image.cached:
                self.run.cached += 1
                continue
            self.run.done += 1
            self.run.usd += image.cost_usd or 0.0
            session.ledger.add(image.model, image.cost_usd or 0.0, paid=self._paid)
            image = dataclasses.replace(image, cached=True)  # for the repeats

    def _failed(self, key: str, error: ImagenbError) -> None:
        if key in self._errors:
            return
        empty = [(i, v) for i, v in self._slots.get(key, ()) if self.run.results[i][v] is None]
        if not empty:
            return
        self._errors[key] = error
        for index, _ in empty:
            self.run.errors[index] = error
        self.run.failed += len(empty)

    def _settle_unanswered(self) -> None:
        """Once every part is in, a slot with neither image nor error would wait forever."""
        if not self.complete:
            return
        for key, slots in self._slots.items():
            empty = any(self.run.results[i][v] is None for i, v in slots)
            if empty and key not in self._errors:
                self._failed(key, TransientError("no batch answered for this request"))

    # --- submitting ---------------------------------------------------------------------------

    # --- cancelling and resubmitting --------------------------------------------------------

    async def _cancel(self) -> None:
        backend = backend_for(self.config)
        for part in await self._part_records():
            if part.batch_id and not part.collected and not part.terminal:
                try:
                    state = await backend.cancel_batch(part.batch_id)
                except BackendError as exc:
                    if exc.status != 400:  # 400: it finished meanwhile; it gets collected
                        raise
                    continue
                await asyncio.to_thread(self.records.update_from, part.job_id, part.part, state)

    async def _resubmit(self) -> int:
        keys = [k for k, e in self._errors.items() if getattr(e, "retryable", False)]
        stored = await asyncio.to_thread(self.store.get_many, keys)  # made meanwhile
        unknown = [k for k in keys if k not in self._submitter.sources and k not in stored]
        if unknown:
            raise InvalidRequest(
                f"{len(unknown)} failed edit(s) cannot be rebuilt from the store (their input "
                "images are not kept there); run the notebook cell that made them again"
            )
        previous = {key: self._errors.pop(key) for key in keys}
        failing = {i for k in self._errors for i, _ in self._slots[k]}
        for key in keys:
            for index, variant in self._slots[key]:
                self.run.failed -= self.run.results[index][variant] is None
                if index not in failing:
                    self.run.errors[index] = None
            if key in stored:
                px = self.config.thumbnail_px
                self._got(
                    key, GeneratedImage.from_stored(stored[key], cached=True, thumbnail_px=px)
                )
        send = [k for k in keys if k not in stored]
        try:
            if send:
                await self._submitter.submit(send, check=True)
        except BaseException:  # over budget, say: the cells show their old errors again
            for key in send:
                self._failed(key, previous[key])
            raise
        return len(send)

    def _tmp_path(self, name: str) -> Path:
        return self.store.tmp / f"{tmp_prefix('batch')}-{secrets.token_hex(4)}-{name}"


# --- helpers ------------------------------------------------------------------------------


def _rebuild(line: LineRecord) -> ImageRequest | None:
    """The request of a generation line, from what was recorded (edits keep no inputs)."""
    if line.kind != "generate":
        return None
    fields = set(ImageRequest.__dataclass_fields__) - {"prompt", "images", "mask"}
    params = {k: v for k, v in line.params.items() if k in fields}
    try:
        request = ImageRequest(prompt=line.prompt, **params)
    except TypeError:
        return None
    return request if request.key(line.variant) == line.key else None
