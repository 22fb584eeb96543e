"""Submitting batch jobs: record first, then upload and create, so nothing is paid twice.

Every new job is written to the store (`batch_store`) before its first upload, in a
transaction that refuses keys another unfinished part already covers. Each remote batch
carries its job id and part number in its metadata, so a part whose submitter died after
creating the batch but before writing its id down is found again (`find_remote`) rather than
created twice; one that never reached the service is marked abandoned, and its requests are
free to be sent again.
"""

from __future__ import annotations

import asyncio
import functools
import random
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeVar

from imagenb.api import calls as api
from imagenb.backends import registry
from imagenb.backends.base import BatchBackend, BatchEndpoint, BatchState
from imagenb.batch import collect as batch_collect
from imagenb.batch import lines as batch_lines
from imagenb.batch.store import ABANDONED, BatchRecords, LineRecord, PartRecord, error_record
from imagenb.core import config as config_mod
from imagenb.core import cost
from imagenb.core.request import ImageRequest
from imagenb.engine import session
from imagenb.engine.retry import RetryPolicy
from imagenb.errors import BackendError, ImagenbError, InvalidRequest, TransientError
from imagenb.store import owners
from imagenb.store.index import Store

SUBMIT_POLICY = RetryPolicy(max_attempts=4)

T = TypeVar("T")
PartId = tuple[str, int]
_submitting: set[PartId] = set()  # parts this process is creating right now (engine loop only)


def supported(cfg: config_mod.Config | None = None) -> bool:
    """Whether the configured backend can run batches."""
    cls = registry.load_class(session.backend_name(cfg or config_mod.current()))
    return issubclass(cls, BatchBackend)


class Submitter:
    """Sends the lines of one `BatchJob`: `sources` maps a store key to its request and
    variant; `follow` is told about every part that covers keys it was asked to send."""

    def __init__(
        self,
        cfg: config_mod.Config,
        store: Store,
        sources: dict[str, tuple[ImageRequest, int]],
        *,
        label: str | None,
        follow: Callable[[Iterable[PartId]], None],
    ) -> None:
        self.config = cfg
        self.store = store
        self.records = BatchRecords(store)
        self.sources = sources
        self.label = label
        self.follow = follow

    async def submit(self, keys: list[str], *, check: bool) -> None:
        """Follow the parts that already cover `keys`; record and submit the rest."""
        backend = backend_for(self.config)
        await self.recover_stale(backend, keys)
        for _ in range(3):  # another process may claim some keys between look and record
            covered = await asyncio.to_thread(self.records.covering, keys)
            self.follow(covered.values())
            new = [k for k in keys if k not in covered]
            if not new:
                return
            if check:
                api.check_budget(self.estimate(new), self.config)
            reservation = session.ledger.reserve(
                self.estimate(new).usd,
                session.budget_cap(self.config),
                paid=session.backend_name(self.config) not in ("preview", "replay"),
            )  # atomic with every other run: BudgetExceeded, nothing sent
            try:
                if await self._submit_new(backend, new):
                    reservation.keep_for_batch()
                    return
            finally:
                reservation.close()
        raise ImagenbError("other processes keep submitting the same requests; try again")

    def estimate(self, keys: Sequence[str]) -> cost.Estimate:
        """What sending `keys` costs at the batch price."""
        counts = Counter(id(self.sources[k][0]) for k in keys)
        requests = {id(r): r for r, _ in (self.sources[k] for k in keys)}
        total = cost.ZERO
        for ident, count in counts.items():
            total += cost.estimate(requests[ident], images=count, batch=True)
        return total

    async def _submit_new(self, backend: BatchBackend, keys: list[str]) -> bool:
        """Record a new job for `keys`, then upload and create its batches. False if another
        process recorded some of the keys first (nothing sent)."""
        job_id = "bj_" + secrets.token_hex(6)
        refs = await self._input_refs(backend, keys)
        parts = await asyncio.to_thread(self._write_files, job_id, keys, refs)
        try:
            if not await asyncio.to_thread(self._record, job_id, parts):
                return False
            ids = [(job_id, number) for number in range(len(parts))]
            _submitting.update(ids)
            self.follow(ids)
            failures: list[BackendError] = []
            try:
                for number, part in enumerate(parts):
                    try:
                        await self._create(backend, job_id, number, part)
                    except BackendError as exc:
                        await self.abandon(job_id, number, exc)
                        failures.append(exc)
            finally:
                _submitting.difference_update(ids)
            if len(failures) == len(parts):
                raise failures[0]
            return True
        finally:
            for part in parts:
                part.path.unlink(missing_ok=True)

    def _record(self, job_id: str, parts: list[batch_lines.PartFile]) -> bool:
        lines = [(p.endpoint, [self._line_record(k) for k in p.keys]) for p in parts]
        return self.records.record(
            job_id,
            label=self.label,
            backend=session.backend_name(self.config),
            base_url=self.config.base_url,
            parts=lines,
        )

    def _line_record(self, key: str) -> LineRecord:
        request, variant = self.sources[key]
        return LineRecord(
            job_id="",
            part=0,
            key=key,
            prompt=request.prompt,
            model=request.model,
            kind=request.kind,
            params=request.params(),
            variant=variant,
            input_keys=tuple(i.sha256 for i in request.images),
            estimate_usd=cost.estimate(request, images=1, batch=True).usd,
        )

    async def _input_refs(
        self, backend: BatchBackend, keys: list[str]
    ) -> dict[str, dict[str, str]]:
        """How each edit input goes into the lines: a data URL, or (shared or large) the id
        of a file uploaded once."""
        uses: Counter[str] = Counter()
        images = {}
        for key in keys:
            request = self.sources[key][0]
            for image in (*request.images, *([request.mask] if request.mask else [])):
                uses[image.sha256] += 1
                images[image.sha256] = image
        refs: dict[str, dict[str, str]] = {}
        for sha, image in images.items():
            if batch_lines.inline(image, uses[sha]):
                refs[sha] = {"image_url": batch_lines.data_url(image)}
                continue
            upload = functools.partial(
                backend.upload_file, image.filename, image.data, purpose="vision", mime=image.mime
            )
            file_id = await retrying(upload)
            refs[sha] = {"file_id": file_id}
        return refs

    def _write_files(
        self, job_id: str, keys: list[str], refs: dict[str, dict[str, str]]
    ) -> list[batch_lines.PartFile]:
        def lines() -> Iterable[tuple[BatchEndpoint, str, bytes]]:
            for key in keys:
                request, variant = self.sources[key]
                yield batch_lines.endpoint(request), key, batch_lines.line(request, variant, refs)

        return batch_lines.write_parts(lines(), self.store.tmp, tmp_prefix(job_id))

    async def _create(
        self, backend: BatchBackend, job_id: str, number: int, part: batch_lines.PartFile
    ) -> None:
        """Upload one part's file and create its batch, each retried; before creating again
        after a failure, look whether the first attempt created it after all."""
        upload = functools.partial(
            backend.upload_file,
            f"imagenb-{job_id}-{number}.jsonl",
            part.path,
            purpose="batch",
            mime="application/jsonl",
        )
        file_id = await retrying(upload)
        await asyncio.to_thread(self.records.update, job_id, number, input_file_id=file_id)
        metadata = {"imagenb_job": job_id, "imagenb_part": str(number)}
        if self.label:
            metadata["imagenb_label"] = self.label[:500]
        since = time.time()

        async def create_once() -> BatchState:
            # a failed attempt may have created it all the same (the answer got lost)
            found = await find_remote(backend, job_id, number, since)
            return found or await backend.create_batch(file_id, part.endpoint, metadata=metadata)

        try:
            state = await backend.create_batch(file_id, part.endpoint, metadata=metadata)
        except BackendError as exc:
            if not exc.retryable:
                raise
            await asyncio.sleep(SUBMIT_POLICY.base_s)
            state = await retrying(create_once)
        await asyncio.to_thread(self.records.update_from, job_id, number, state)

    async def recover_stale(self, backend: BatchBackend, keys: list[str]) -> None:
        """Settle parts covering `keys` whose submitter died before recording a batch id."""
        covered = set((await asyncio.to_thread(self.records.covering, keys)).values())
        parts = await asyncio.to_thread(self.records.parts, {j for j, _ in covered})
        for part in parts:
            ident = (part.job_id, part.part)
            if ident in covered and part.batch_id is None and not self.alive(part):
                await self.recover(backend, part)

    def alive(self, part: PartRecord) -> bool:
        """Whether someone may still be creating this part's batch (leave it to them)."""
        if (part.job_id, part.part) in _submitting:
            return True
        if part.owner == owners.owner_id():  # ours, but no longer being submitted: interrupted
            return False
        return part.submitter_alive()

    async def recover(self, backend: BatchBackend, part: PartRecord) -> None:
        """Adopt the batch a dead submitter created, or mark its part abandoned."""
        job = await asyncio.to_thread(self.records.job, part.job_id)
        found = await find_remote(backend, part.job_id, part.part, job.created)
        if found is not None:
            await asyncio.to_thread(self.records.update_from, part.job_id, part.part, found)
            return
        reason = TransientError(
            "its submission was interrupted before the batch was created (nothing was sent)"
            + batch_collect.RESUBMIT_HINT,
            code="batch_abandoned",
        )
        await self.abandon(part.job_id, part.part, reason)

    async def abandon(self, job_id: str, number: int, error: ImagenbError) -> None:
        """A part that never became a batch: collected, every line failing with `error`."""
        await asyncio.to_thread(
            self.records.update, job_id, number, status=ABANDONED, error=str(error)
        )
        lines = await asyncio.to_thread(self.records.lines, job_id, number)
        errors = {line.key: error_record(error) for line in lines}
        await asyncio.to_thread(self.records.mark_collected, job_id, number, errors)


def tmp_prefix(name: str) -> str:
    """A tmp file name prefix the store sweeps once this process (host, pid) is gone."""
    return f"{owners.file_prefix()}-{name}"


def require_support(cfg: config_mod.Config) -> None:
    if not supported(cfg):
        name = session.backend_name(cfg)
        raise InvalidRequest(
            f"batch mode sends requests through the OpenAI Batch API, which the {name!r} "
            "backend cannot do; configure the openai backend (OPENAI_API_KEY in the "
            "environment), or run live (mode='live'); ig.estimate(..., batch=True) prices a "
            "batch without sending anything"
        )


def backend_for(cfg: config_mod.Config) -> BatchBackend:
    """The configured backend's batch side. Call on the engine loop (loop-bound clients)."""
    backend = session.engine_for(cfg).backend
    if not isinstance(backend, BatchBackend):
        require_support(cfg)
    assert isinstance(backend, BatchBackend)
    return backend


async def find_remote(
    backend: BatchBackend, job_id: str, part: int, since: float
) -> BatchState | None:
    """The batch created for this part, if one was (newest first, back to `since`)."""
    async for state in backend.list_batches():
        meta = state.metadata
        if meta.get("imagenb_job") == job_id and meta.get("imagenb_part") == str(part):
            return state
        if state.created_at is not None and state.created_at < since - 600:
            return None
    return None


async def retrying(call: Callable[[], Awaitable[T]]) -> T:
    """`call()` with the engine's retry policy for transient failures and rate limits."""
    attempts = limited = 0
    rng = random.Random()
    while True:
        try:
            return await call()
        except BackendError as exc:
            limited += exc.status == 429
            attempts += exc.status != 429
            wait = SUBMIT_POLICY.delay(exc, attempts, limited, rng)
            if wait is None:
                raise
            await asyncio.sleep(wait)
