"""Cost before sending (estimates) and after (from each response's `usage`).

Estimates use the gpt-image-2 output-token formula reverse-engineered from OpenAI's published
calculator (it reproduces every documented point: 1024x1024 high = 7,024 tokens = $0.211,
3840x2160 high = 13,342 tokens = $0.400), the documented token table for older models, a
text-token approximation for the prompt, and +100 output tokens per partial image. `auto`
quality or size is estimated at its most expensive standard choice (high, 1024x1024), so an
estimate used as a budget guard errs high. Batch requests cost half.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagenb.core.catalog import ModelSpec
from imagenb.core.request import ImageRequest
from imagenb.core.sizes import dimensions

BATCH_DISCOUNT = 0.5
PARTIAL_IMAGE_TOKENS = 100
PROMPT_OVERHEAD_TOKENS = 6
_QUALITY_FACTOR = {"low": 16, "medium": 48, "high": 96}
_TABLE = {  # IG "Earlier GPT Image models": gpt-image-1, 1-mini and 1.5 output tokens
    "low": {"1024x1024": 272, "1024x1536": 408, "1536x1024": 400},
    "medium": {"1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568},
    "high": {"1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208},
}
_PATCH = 32
_PATCH_BUDGET = 1536


def gpt_image_2_output_tokens(quality: str, width: int, height: int) -> int:
    """Output image tokens of one gpt-image-2 image (the calculator's formula)."""
    f = _QUALITY_FACTOR[quality]
    long, short = max(width, height), min(width, height)
    s = (2 * f * short + long) // (2 * long)
    return (f * s * (2_000_000 + width * height) + 4_000_000 - 1) // 4_000_000


def output_tokens(spec: ModelSpec, quality: str, size: str) -> int:
    """Estimated output image tokens of one image; `auto` counts as its priciest choice."""
    q = quality if quality in _QUALITY_FACTOR else "high"  # auto, xhigh, max: no formula
    wh = dimensions(size) or (1024, 1024)
    if spec.token_method == "table":
        key = f"{wh[0]}x{wh[1]}"
        return _TABLE[q].get(key, _TABLE[q]["1024x1024"])
    return gpt_image_2_output_tokens(q, *wh)


def text_tokens(text: str) -> int:
    """Approximate o200k token count: ~4 ASCII characters a token, one token a CJK character."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars) + PROMPT_OVERHEAD_TOKENS


def input_image_tokens(width: int, height: int) -> int:
    """Approximate input tokens of one edit input: 32-px patches of the image with its long
    side brought to at least 1024, capped at 1,536 patches (community measurement)."""
    scale = max(1.0, 1024 / max(width, height))
    w, h = width * scale, height * scale
    patches = math.ceil(w / _PATCH) * math.ceil(h / _PATCH)
    if patches > _PATCH_BUDGET:
        shrink = math.sqrt(_PATCH_BUDGET / patches)
        patches = math.floor(w * shrink / _PATCH) * math.floor(h * shrink / _PATCH)
    return patches


@dataclass(frozen=True)
class Estimate:
    """The expected cost of some requests, before anything is sent."""

    usd: float
    images: int
    requests: int
    output_tokens: int
    input_tokens: int = 0
    cached_images: int = 0
    batch: bool = False

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(
            self.usd + other.usd,
            self.images + other.images,
            self.requests + other.requests,
            self.output_tokens + other.output_tokens,
            self.input_tokens + other.input_tokens,
            self.cached_images + other.cached_images,
            self.batch or other.batch,
        )

    def __repr__(self) -> str:
        return (
            f"Estimate(~${self.usd:.4f}: {self.images} image(s) in {self.requests} request(s), "
            f"{self.output_tokens:,} output tokens, {self.cached_images} already in the store"
            f"{', batch price' if self.batch else ''})"
        )

    def __str__(self) -> str:
        cached = f", {self.cached_images} already in the store" if self.cached_images else ""
        batch = " at the batch price" if self.batch else ""
        return (
            f"{self.images} image(s) in {self.requests} request(s){cached}: ~${self.usd:.4f}{batch}"
        )


ZERO = Estimate(0.0, 0, 0, 0)


def estimate(
    request: ImageRequest, *, images: int | None = None, partials: int = 0, batch: bool = False
) -> Estimate:
    """Cost of asking for `images` variants of `request` (default: all `n`) in one call."""
    count = request.n if images is None else images
    if count == 0:
        return ZERO
    spec = request.spec
    out = count * (output_tokens(spec, request.quality, request.size) + partials * 100)
    text_in = text_tokens(request.prompt)
    image_in = sum(input_image_tokens(i.width, i.height) for i in request.images)
    if request.mask:
        image_in += input_image_tokens(request.mask.width, request.mask.height)
    p = spec.prices
    usd = (text_in * p.text_in + image_in * p.image_in + out * p.image_out) / 1e6
    factor = BATCH_DISCOUNT if batch else 1.0
    return Estimate(usd * factor, count, 1, out, text_in + image_in, batch=batch)


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def usage_cost(spec: ModelSpec, usage: Mapping[str, Any], *, batch: bool = False) -> float:
    """Actual USD of one response from its `usage`, every token kind at its own rate.

    Streaming `completed` events carry no `output_tokens_details`: all output is image tokens.
    """
    p = spec.prices
    in_details = _get(usage, "input_tokens_details") or {}
    out_details = _get(usage, "output_tokens_details")
    input_tokens = int(_get(usage, "input_tokens") or 0)
    image_in = int(_get(in_details, "image_tokens") or 0)
    text_in = int(_get(in_details, "text_tokens") or max(0, input_tokens - image_in))
    cached_text = int(_get(in_details, "cached_text_tokens") or 0)
    cached_image = int(_get(in_details, "cached_image_tokens") or 0)
    output = int(_get(usage, "output_tokens") or 0)
    if out_details:
        text_out = int(_get(out_details, "text_tokens") or 0)
        image_out = int(_get(out_details, "image_tokens") or max(0, output - text_out))
    else:
        text_out, image_out = 0, output
    usd = (
        (text_in - cached_text) * p.text_in
        + cached_text * p.text_in_cached
        + (image_in - cached_image) * p.image_in
        + cached_image * p.image_in_cached
        + image_out * p.image_out
        + text_out * p.text_out
    ) / 1e6
    return usd * (BATCH_DISCOUNT if batch else 1.0)


ABSURD_FACTOR = 20.0  # usage costing more than this many estimates cannot be right


def usage_problem(spec: ModelSpec, usage: Mapping[str, Any], estimate_usd: float) -> str | None:
    """Why `usage` cannot be a true bill (negative or non-numeric token counts, or a cost
    far above the estimate), or None. A budget must never trust a negative cost."""
    for name, value in _leaves(usage):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            return f"{name}={value!r} is not a token count"
    usd = usage_cost(spec, usage)
    if usd > estimate_usd * ABSURD_FACTOR + 0.01:
        return f"it would cost ${usd:.4f}, over {ABSURD_FACTOR:g}x the estimate"
    return None


def _leaves(obj: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in obj.items():
        if isinstance(value, Mapping):
            out += _leaves(value, f"{prefix}{key}.")
        elif value is not None:
            out.append((f"{prefix}{key}", value))
    return out
