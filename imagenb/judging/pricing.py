"""What a judging request costs: estimated before sending, and actual from `usage`.

Estimate (an upper bound unless the image formula is off): the instructions' text tokens
(`cost.text_tokens`, plus 10% and a message overhead), each image's tokens at `detail="high"`
by the catalog's patch rule, and the full `max_output_tokens` the request allows (reasoning
tokens are counted inside output tokens and capped by it too). The image rule (shared
reference, section 2.1): fit the image in 2048x2048; count 32-px patches; above the model's
patch budget, shrink to fit the budget with a whole number of patches across; bill
`ceil(factor x patches)` tokens (1.2 on GPT-5.6 and GPT-6: 1024x1024 -> 1,229).

Actual: `(input - cached - cache_write) x in + cached x cached_in + cache_write x 1.25 in +
output x out`, per 1M tokens at the judge model's standard rates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from imagenb.backends.base import JudgeRequest
from imagenb.core import cost
from imagenb.core.catalog import MainlineSpec

PATCH = 32
FIT = 2048
MESSAGE_OVERHEAD_TOKENS = 12
CACHE_WRITE_FACTOR = 1.25


def image_patches(width: int, height: int, budget: int) -> int:
    """32-px patches of an image sent at `detail="high"`."""
    scale = min(1.0, FIT / max(width, height))
    w, h = width * scale, height * scale
    patches = math.ceil(w / PATCH) * math.ceil(h / PATCH)
    if patches <= budget:
        return patches
    shrink = math.sqrt(budget * PATCH * PATCH / (w * h))
    w, h = w * shrink, h * shrink
    across = math.floor(w / PATCH)
    return across * math.ceil(h * (across * PATCH / w) / PATCH)


def image_tokens(spec: MainlineSpec, width: int, height: int) -> int:
    patches = image_patches(width, height, spec.image_patch_budget)
    return math.ceil(spec.image_token_factor * patches)


def input_tokens(spec: MainlineSpec, request: JudgeRequest) -> int:
    text = math.ceil(cost.text_tokens(request.instructions) * 1.1) + MESSAGE_OVERHEAD_TOKENS
    return text + sum(image_tokens(spec, i.width, i.height) for i in request.images)


def estimate_usd(spec: MainlineSpec, request: JudgeRequest) -> float:
    """The most this request should cost (its output capped by `max_output_tokens`)."""
    tokens_in = input_tokens(spec, request)
    return (tokens_in * spec.text_in + request.max_output_tokens * spec.text_out) / 1e6


def usage_cost(spec: MainlineSpec, usage: Mapping[str, Any] | None) -> float:
    """Actual USD of one Responses call from its `usage`."""
    if not usage:
        return 0.0
    details = usage.get("input_tokens_details") or {}
    total_in = int(usage.get("input_tokens") or 0)
    cached = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_write_tokens") or 0)
    fresh = max(0, total_in - cached - written)
    usd = (
        fresh * spec.text_in
        + cached * spec.text_in_cached
        + written * spec.text_in * CACHE_WRITE_FACTOR
        + int(usage.get("output_tokens") or 0) * spec.text_out
    )
    return usd / 1e6
