"""Collecting a finished batch: its output and error files, read line by line into the store.

Runs in a worker thread (it decodes and writes images); each result is handed to `report` as
soon as it is stored, so a waiting display moves while a large file is read. Lines are matched
by `custom_id` (the store key), in whatever order they come; a line that got no result at all
gets an error saying why (the batch expired, was cancelled or failed validation).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from imagenb.backends.base import BatchBackend, BatchState
from imagenb.batch import lines as batch_lines
from imagenb.batch.store import LineRecord
from imagenb.core import catalog, cost
from imagenb.engine.runner import Origin, resolved_params, write_image
from imagenb.errors import BackendError, ImagenbError, TransientError
from imagenb.store.images import GeneratedImage
from imagenb.store.index import Store

# What a line that came back with nothing means, by the batch's final status.
_NO_RESULT = {
    "expired": "the batch expired (24 h window) before this request ran",
    "cancelled": "the batch was cancelled before this request ran",
}
RESUBMIT_HINT = "; job.resubmit_missing() or `imagenb batch resubmit ID` sends it again"
WRITERS = 8

Report = Callable[[str, GeneratedImage | None, ImagenbError | None], None]


@dataclass
class Collection:
    """What collecting one part produced: errors by key (images went to the store)."""

    seen: set[str] = field(default_factory=set)
    errors: dict[str, ImagenbError] = field(default_factory=dict)


def ingest(
    path: Path,
    lines: Mapping[str, LineRecord],
    state: BatchState,
    *,
    store: Store,
    backend: BatchBackend,
    backend_name: str,
    thumbnail_px: int,
    report: Report,
    into: Collection,
) -> None:
    """Store every result line of the downloaded file at `path` whose key is in `lines`.

    Images are written by `WRITERS` threads (each write waits on fsyncs, as the online engine's
    do), with a bounded number in hand, so memory stays flat however large the file.
    """

    def store_one(line: LineRecord, result: batch_lines.LineResult) -> None:
        try:
            image = _store(store, line, result, state.id, backend_name, thumbnail_px)
        except ImagenbError as exc:  # not an image: the store says what it got
            into.errors[line.key] = exc
            report(line.key, None, exc)
            return
        report(line.key, image, None)

    in_hand: deque[Future[None]] = deque()
    with ThreadPoolExecutor(WRITERS, thread_name_prefix="imagenb-batch") as pool:
        for result in batch_lines.read(path):
            line = lines.get(result.custom_id)
            if line is None or result.custom_id in into.seen:
                continue  # not ours, or a line seen twice
            into.seen.add(line.key)
            if not result.ok:
                error = line_error(backend, result)
                into.errors[line.key] = error
                report(line.key, None, error)
                continue
            in_hand.append(pool.submit(store_one, line, result))
            while len(in_hand) > 2 * WRITERS:
                in_hand.popleft().result()
        while in_hand:
            in_hand.popleft().result()


def settle_missing(
    lines: Mapping[str, LineRecord], state: BatchState | None, report: Report, into: Collection
) -> None:
    """Give every line with no result an error that says why."""
    order = {key: number for number, key in enumerate(lines, start=1)}
    problems = {p.line: p for p in (state.problems if state else ())}
    general = "; ".join(p.message for p in (state.problems if state else ()) if p.line is None)
    for key in lines:
        if key in into.seen or key in into.errors:
            continue
        error: ImagenbError
        status = state.status if state else "failed"
        if status == "failed":
            problem = problems.get(order[key])
            message = problem.message if problem else general or "no reason given"
            error = BackendError(f"the batch failed validation: {message}", code="batch_failed")
        else:
            reason = _NO_RESULT.get(status, f"the batch ({status}) returned no result for it")
            error = TransientError(reason + RESUBMIT_HINT, code=f"batch_{status}")
        into.errors[key] = error
        report(key, None, error)


def line_error(backend: BatchBackend, result: batch_lines.LineResult) -> ImagenbError:
    """The imagenb error for a failed line, mapped like the same failure online."""
    error = result.error or {}
    if error.get("code") == "batch_expired":
        return TransientError(_NO_RESULT["expired"] + RESUBMIT_HINT, code="batch_expired")
    return backend.batch_error(result.status, error, request_id=result.request_id)


def _store(
    store: Store,
    line: LineRecord,
    result: batch_lines.LineResult,
    batch_id: str,
    backend_name: str,
    thumbnail_px: int,
) -> GeneratedImage:
    """Write one result image at the batch price, marked `batch: true`, the batch id as its
    request id."""
    existing = store.get(line.key)
    if existing is not None and existing.request_id == batch_id:  # collected before a crash
        return GeneratedImage.from_stored(existing, cached=False, thumbnail_px=thumbnail_px)
    spec = catalog.lookup(line.model)
    if result.usage is not None:
        usd, is_estimate = cost.usage_cost(spec, result.usage, batch=True), False
    else:
        usd, is_estimate = line.estimate_usd, True
    params = {**line.params, "n": 1, "batch": True, **resolved_params(result.resolved)}
    origin = Origin(line.prompt, line.model, line.kind, line.input_keys, backend_name)
    return write_image(
        store,
        origin,
        result.images[0],
        key=line.key,
        variant=line.variant,
        params=params,
        usage=result.usage,
        cost_usd=usd,
        cost_is_estimate=is_estimate,
        latency_s=None,
        request_id=batch_id,
        thumbnail_px=thumbnail_px,
    )
