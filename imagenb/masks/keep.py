"""Masked edits that keep the outside: the API treats a mask as guidance ("may not follow its
exact shape"), so the model's answer is composited onto the input, which it then equals
everywhere outside the mask but in a seam a few pixels wide.

The raw answer stays in the store under its request key (it was paid for); the composite is
stored beside it under a key derived from the raw answer's key and content, so a re-run is
served from the store at no cost, and a `fresh` answer gets a composite of its own. Composite
rows cost nothing and are not counted as images made (`store.DERIVED_KINDS`).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from imagenb.core import sizes
from imagenb.errors import InvalidRequest

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image

    from imagenb.core.config import Config
    from imagenb.core.request import ImageRequest
    from imagenb.store.images import GeneratedImage
    from imagenb.store.index import Store, StoredImage

KEEP_VERSION = 1  # bump when the composite changes: old composites then are not served
KIND = "composite"
# Models re-encode the whole picture, so every pixel drifts a little; a pixel counts as changed
# when one of its channels moves by more than this (of 255).
CHANGE_TOLERANCE = 12
_ASPECT_TOLERANCE = 0.01


def feather_px(width: int, height: int) -> int:
    """Half-width of the seam: about 0.4% of the short side, at least 2 px (4 px at 1024)."""
    return max(2, round(min(width, height) / 256))


def edit_area(mask: Image.Image) -> Image.Image:
    """The area to edit as an 8-bit image, 255 where the mask is transparent (alpha < 128),
    0 elsewhere: the API's convention, made binary."""
    alpha = mask.getchannel("A") if "A" in mask.getbands() else mask.convert("RGBA").getchannel("A")
    return alpha.point(lambda a: 255 if a < 128 else 0)


def composite(original: Image.Image, answer: Image.Image, area: Image.Image) -> Image.Image:
    """`answer` inside `area`, `original` outside, blended over a band `feather_px` wide on
    each side of the edge. A box blur has a finite reach, so beyond the band the result is
    the original to the last bit."""
    from PIL import Image, ImageFilter

    weight = area.filter(ImageFilter.BoxBlur(feather_px(*area.size)))
    return Image.composite(answer, original, weight)


def changed_fraction(original: Image.Image, answer: Image.Image, area: Image.Image) -> float:
    """The fraction of pixels outside `area` whose colour the model changed (0.0 when the mask
    covers everything)."""
    import numpy as np
    from PIL import ImageChops

    moved = np.asarray(ImageChops.difference(original, answer))
    changed = (moved.max(axis=2) if moved.ndim == 3 else moved) > CHANGE_TOLERANCE
    outside = np.asarray(area) == 0
    count = int(outside.sum())
    return float(changed[outside].sum()) / count if count else 0.0


def composite_key(raw: GeneratedImage) -> str:
    """The composite's store key: the raw answer's key and content, and the method's version."""
    form = {"v": KEEP_VERSION, "keep_outside": raw.key, "raw_sha256": raw.path.stem}
    return hashlib.sha256(json.dumps(form, sort_keys=True).encode()).hexdigest()


def wanted(mask: Any, keep_outside: bool | None) -> bool:
    """Whether to composite: by default whenever there is a mask; asking for it without one is
    an error (nothing to keep)."""
    if keep_outside is None:
        return mask is not None
    if keep_outside and mask is None:
        raise InvalidRequest("keep_outside=True needs a mask: paint one with ig.mask(image)")
    return bool(keep_outside)


def prepare(request: ImageRequest) -> ImageRequest:
    """The request to send: with `size` left to the model, the input's own size when the model
    allows it (so the composite needs no resampling); a size of another shape than the input
    is refused before anything is sent."""
    first = request.images[0]
    wanted_size = sizes.dimensions(request.size)
    if wanted_size is None:
        try:
            return replace(
                request, size=sizes.resolve(f"{first.width}x{first.height}", request.spec)
            )
        except InvalidRequest:
            return request  # the model picks a size; the answer is resampled to the input's
    if not _same_shape(wanted_size, (first.width, first.height)):
        raise InvalidRequest(
            f"size {request.size} has another shape than the input ({first.width}x{first.height})"
            ", so its outside cannot be kept; leave size out, choose one of the input's shape, "
            "or pass keep_outside=False for the model's answer as it is"
        )
    return request


def finish(
    request: ImageRequest, answers: Sequence[GeneratedImage], cfg: Config
) -> list[GeneratedImage]:
    """Each answer composited onto the first input (stored, or served from the store), with
    `.changed_outside`, `.raw` and the answer's cost."""
    from PIL import Image

    from imagenb.engine import session

    assert request.mask is not None, "finish() needs a masked request"
    store = session.store_for(cfg)
    with (
        Image.open(io.BytesIO(request.images[0].data)) as first,
        Image.open(io.BytesIO(request.mask.data)) as mask,
    ):
        first.load()
        area = edit_area(mask)
        return [_kept(store, request, raw, first, area, cfg.thumbnail_px) for raw in answers]


def add_lineage(frame: pd.DataFrame, rows: Sequence[StoredImage], store: Store) -> None:
    """History columns: `sources` (store keys of each row's input images, for those in the
    store: an input is known by the SHA-256 of its file) and `changed_outside`."""
    known = {row.sha256: row.key for row in store.history(None)} if rows else {}
    frame["sources"] = [[known[s] for s in row.input_keys if s in known] for row in rows]
    frame["changed_outside"] = [row.params.get("changed_outside") for row in rows]


def _kept(
    store: Store,
    request: ImageRequest,
    raw: GeneratedImage,
    first: Image.Image,
    area: Image.Image,
    thumbnail_px: int,
) -> GeneratedImage:
    from imagenb.store.images import GeneratedImage

    key = composite_key(raw)
    row = store.get(key)
    if row is not None:
        kept = GeneratedImage.from_stored(row, cached=True, thumbnail_px=thumbnail_px)
    else:
        kept = _make(store, request, raw, first, area, key, thumbnail_px)
    return replace(
        kept,
        cost_usd=raw.cost_usd,  # what this image cost is what its answer cost
        cost_is_estimate=raw.cost_is_estimate,
        usage=raw.usage,
        cached=raw.cached,
        latency_s=raw.latency_s,
        raw=raw,
    )


def _make(
    store: Store,
    request: ImageRequest,
    raw: GeneratedImage,
    first: Image.Image,
    area: Image.Image,
    key: str,
    thumbnail_px: int,
) -> GeneratedImage:
    from imagenb.engine.runner import Origin, write_image

    with raw.image as answer:
        original, answer_, area_ = _aligned(first, answer, area)
        changed = changed_fraction(original, answer_, area_)
        data = _encode(composite(original, answer_, area_), raw.params)
    inputs = tuple(i.sha256 for i in request.images)
    params = {
        **raw.params,
        "keep_outside": True,
        "raw_key": raw.key,
        "changed_outside": round(changed, 6),
        "feather_px": feather_px(*area_.size),
    }
    return write_image(
        store,
        Origin(raw.prompt, raw.model, KIND, inputs, raw.backend),
        data,
        key=key,
        variant=raw.variant,
        params=params,
        usage=None,
        cost_usd=0.0,  # made here, from an answer whose row carries the cost
        cost_is_estimate=False,
        latency_s=None,
        request_id=None,
        thumbnail_px=thumbnail_px,
    )


def _aligned(
    first: Image.Image, answer: Image.Image, area: Image.Image
) -> tuple[Image.Image, Image.Image, Image.Image]:
    """Input, answer and area at one size and mode: the answer's size when it has the input's
    shape (the input resampled), else the input's (the answer resampled)."""
    from PIL import Image

    alpha = any(
        im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info for im in (first, answer)
    )
    mode = "RGBA" if alpha else "RGB"
    original, result = first.convert(mode), answer.convert(mode)
    if result.size != original.size:
        if _same_shape(result.size, original.size):
            original = original.resize(result.size, Image.Resampling.LANCZOS)
            area = area.resize(result.size, Image.Resampling.BILINEAR).point(
                lambda v: 255 if v >= 128 else 0
            )
        else:
            result = result.resize(original.size, Image.Resampling.LANCZOS)
    return original, result, area


def _same_shape(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return abs(a[0] / a[1] - b[0] / b[1]) <= _ASPECT_TOLERANCE * (b[0] / b[1])


def _encode(image: Image.Image, params: dict[str, Any]) -> bytes:
    """The composite in the format the answer came in (PNG stays lossless, so the outside is
    bit-for-bit the input's; JPEG and WebP at the requested compression)."""
    fmt = str(params.get("output_format", "png"))
    compression = params.get("output_compression")
    buf = io.BytesIO()
    if fmt == "jpeg":
        image.convert("RGB").save(buf, "JPEG", quality=min(95, compression or 95))
    elif fmt == "webp":
        options = {"lossless": True} if compression is None else {"quality": compression}
        image.save(buf, "WEBP", **options)
    else:
        image.save(buf, "PNG")
    return buf.getvalue()
