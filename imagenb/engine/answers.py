"""What an answer cost, and storing its images one by one.

The cost comes from the answer's `usage` when it is sane; usage that is negative, not a
number or absurd next to the estimate is treated as a malformed answer: the images are kept
and the cost falls back to the estimate, marked as such. Each image is then checked and
stored on its own, so one bad image (truncated, not base64, a URL instead of data, a file
the store refuses) is that image's error and never its siblings'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from imagenb.backends.base import Response
from imagenb.core import cost
from imagenb.core.request import ImageRequest
from imagenb.engine.storing import (
    Origin,
    Paid,
    park,
    resolved_params,
    storage_failure,
    whole_image_problem,
)
from imagenb.errors import ImagenbError, StoreUnwritable
from imagenb.store.images import GeneratedImage
from imagenb.store.index import Store


@dataclass(frozen=True)
class Bill:
    """What one answer cost, and whether that is the service's figure or our estimate."""

    usd: float
    is_estimate: bool
    usage: dict[str, Any] | None
    paid: bool
    note: str | None = None  # why the usage was not trusted


def bill_for(
    request: ImageRequest, variants: Sequence[int], response: Response, paid: bool
) -> Bill:
    """The cost of `response` (the estimate when it carries no usage, or a usage that
    cannot be right)."""
    estimate = cost.estimate(request, images=len(variants)).usd
    if response.usage is None:
        return Bill(estimate, True, None, paid)
    problem = cost.usage_problem(request.spec, response.usage, estimate)
    if problem is not None:
        return Bill(estimate, True, None, paid, f"usage ignored: {problem}")
    usd = cost.usage_cost(request.spec, response.usage)
    return Bill(usd, response.usage_is_estimate, response.usage, paid)


def store_answer(
    store: Store,
    origin: Origin,
    request: ImageRequest,
    variants: Sequence[int],
    response: Response,
    bill: Bill,
    latency: float,
    thumbnail_px: int,
) -> list[GeneratedImage | ImagenbError]:
    """Store each image of `response` (call off the loop); per variant, the stored image or
    why it could not be stored. Never raises."""
    if len(response.images) != len(variants):
        error = ImagenbError(
            f"asked for {len(variants)} image(s), the answer held {len(response.images)}"
        )
        return [error] * len(variants)
    share = bill.usd / len(variants)
    params = {**request.params(), "n": len(variants), **resolved_params(response.resolved)}
    out: list[GeneratedImage | ImagenbError] = []
    for position, (variant, data) in enumerate(zip(variants, response.images, strict=True)):
        problem = response.problems.get(position) or whole_image_problem(data)
        if problem is not None:
            out.append(ImagenbError(f"image {variant + 1} of the answer is unusable: {problem}"))
            continue
        paid = Paid(
            origin, data, request.key(variant), variant, params, bill.usage, share,
            bill.is_estimate, latency, response.request_id,
        )  # fmt: skip
        out.append(_store_one(store, paid, thumbnail_px))
    return out


def _store_one(store: Store, paid: Paid, thumbnail_px: int) -> GeneratedImage | ImagenbError:
    try:
        return paid.write(store, thumbnail_px)
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        if storage_failure(exc):
            kept = park(store, paid)
            where = (
                "kept in memory: re-run once the store can be written to store it at no cost"
                if kept
                else "memory for such images is full, so it is lost"
            )
            return StoreUnwritable(f"could not be stored ({reason}); {where}")
        if isinstance(exc, ImagenbError):
            return exc
        return ImagenbError(f"could not be stored: {type(exc).__name__}: {reason}")
