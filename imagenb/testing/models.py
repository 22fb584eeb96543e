"""What the fake knows about each image model, and how it counts tokens.

Written from the API reference (docs/openai-images-api.md), deliberately independent of
`imagenb.core.catalog`: the fake exists to catch the client's mistakes, so it must not share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

STANDARD_SIZES = ("1024x1024", "1536x1024", "1024x1536")
BASE_QUALITIES = ("low", "medium", "high", "auto")
EXTRA_QUALITIES = ("xhigh", "max")


@dataclass(frozen=True)
class ModelRule:
    """The per-model switches the validator needs."""

    name: str
    flexible_sizes: bool = False  # any WxH within the gpt-image-2 rule, not just the 3 presets
    extra_qualities: bool = False  # xhigh / max
    complexity: bool = False
    input_fidelity: tuple[str, ...] = ()  # allowed values; empty: the parameter is rejected
    markup: bool = False

    @property
    def qualities(self) -> tuple[str, ...]:
        return BASE_QUALITIES + (EXTRA_QUALITIES if self.extra_qualities else ())


def _rules() -> dict[str, ModelRule]:
    gpt2 = ModelRule("gpt-image-2", flexible_sizes=True)
    v25 = ModelRule("", flexible_sizes=True, extra_qualities=True, markup=True)
    v26 = ModelRule("", complexity=True)
    legacy = ModelRule("", input_fidelity=("high", "low"))
    table = [
        gpt2,
        replace(gpt2, name="gpt-image-2-2026-04-21"),
        *(
            replace(v25, name=f"gpt-image-2.5-{variant}{snapshot}")
            for variant in ("sunburst", "flare")
            for snapshot in ("", "-2026-09-08")
        ),
        replace(v26, name="gpt-image-2.6-sunburst"),
        replace(v26, name="gpt-image-2.6-flare"),
        replace(legacy, name="gpt-image-1.5"),
        replace(legacy, name="chatgpt-image-latest"),
        ModelRule("gpt-image-1-mini", input_fidelity=("low",)),
    ]
    return {rule.name: rule for rule in table}


MODELS: dict[str, ModelRule] = _rules()

RETIRED = {
    "gpt-image-1": "was shut down on 2026-10-23",
    "dall-e-2": "was retired on 2026-05-12",
    "dall-e-3": "was retired on 2026-05-12",
}

# --- token maths --------------------------------------------------------------------------

_QUALITY_FACTOR = {"low": 16, "medium": 48, "high": 96}
PARTIAL_IMAGE_TOKENS = 100
_PATCH = 32
_PATCH_BUDGET = 1536


def resolve_quality(quality: str) -> str:
    """The quality the response reports: `auto` becomes `medium`."""
    return "medium" if quality == "auto" else quality


def output_tokens_per_image(quality: str, width: int, height: int) -> int:
    """gpt-image-2 output tokens (community formula, reference §7), used for every model.

    xhigh/max have no published formula; they are billed like high here.
    """
    q = resolve_quality(quality)
    factor = _QUALITY_FACTOR["high" if q in EXTRA_QUALITIES else q]
    long_edge, short_edge = max(width, height), min(width, height)
    steps = (2 * factor * short_edge + long_edge) // (2 * long_edge)
    return (factor * steps * (2_000_000 + width * height) + 4_000_000 - 1) // 4_000_000


def text_tokens(prompt: str) -> int:
    """About one token per four characters plus the ~6 overhead tokens seen on /generations."""
    return math.ceil(len(prompt) / 4) + 6


def image_input_tokens(width: int, height: int) -> int:
    """32-px patches of the image scaled to a 1024-px long side, capped at 1536 per image."""
    scale = 1024 / max(width, height, 1)
    w = max(1, round(width * scale))
    h = max(1, round(height * scale))
    return min(math.ceil(w / _PATCH) * math.ceil(h / _PATCH), _PATCH_BUDGET)


@dataclass(frozen=True)
class Usage:
    text_tokens: int
    image_input_tokens: int
    output_tokens: int

    @property
    def input_tokens(self) -> int:
        return self.text_tokens + self.image_input_tokens

    def as_dict(self, *, output_details: bool = True) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {
                "text_tokens": self.text_tokens,
                "image_tokens": self.image_input_tokens,
            },
            "output_tokens": self.output_tokens,
            "total_tokens": self.input_tokens + self.output_tokens,
        }
        if output_details:
            usage["output_tokens_details"] = {"image_tokens": self.output_tokens, "text_tokens": 0}
        return usage
