"""What a plan line must say so a default does not surprise: what `auto` quality is priced at,
and what streaming partial images really adds.

imagenb keeps `quality="auto"` as its default: the service picks the quality, and a request
carries only what the user set (SPEC §7.11). But the service may pick `high`, so an estimate
prices `auto` as `high` (a budget guard errs high), and at 1024x1024 that is ~$0.21 an image,
roughly 35 times `low`. Every plan line says so, with the cheaper choice next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from imagenb.core import cost
from imagenb.core.request import ImageRequest


def notes(requests: Sequence[ImageRequest], *, partials: int = 0) -> list[str]:
    """The notes for a plan of `requests` (empty when nothing needs saying)."""
    out = []
    if auto := next((r for r in requests if r.quality == "auto"), None):
        out.append(auto_quality(auto))
    if partials and requests:
        out.append(streaming(requests[0], partials))
    return out


def suffix(requests: Sequence[ImageRequest], *, partials: int = 0) -> str:
    """The notes as the tail of a one-line plan: ` · note · note`, or ``."""
    return "".join(f" · {note}" for note in notes(requests, partials=partials))


def auto_quality(request: ImageRequest) -> str:
    """`quality auto: priced as high, ~$0.2110/image (low: ~$0.0059)`"""
    high = _per_image(request)
    low = _per_image(replace(request, quality="low"))
    return f"quality auto: priced as high, ~${high:.4f}/image (-q low: ~${low:.4f})"


def streaming(request: ImageRequest, partials: int) -> str:
    """`2 partial images: +$0.0060/image (+103%)`: each partial is billed as 100 output
    tokens, which at low quality is about the price of the image itself."""
    extra = partials * cost.PARTIAL_IMAGE_TOKENS * request.spec.prices.image_out / 1e6
    base = _per_image(request)
    share = f" (+{extra / base:.0%})" if base else ""
    return f"{partials} partial images: +${extra:.4f}/image{share}"


def _per_image(request: ImageRequest) -> float:
    return cost.estimate(request, images=1).usd
