"""Turn what a user writes as a size (`1536x864`, `16:9`, `landscape`, `4k`, `auto`) into the
`WxH` the API accepts, or explain precisely why it cannot be sent.

The gpt-image-2 rule (IG, SDK): both sides multiples of 16, long edge at most 3840, aspect
between 1:3 and 3:1, 655,360 to 8,294,400 pixels. Other models accept three fixed sizes.
"""

from __future__ import annotations

import math
import re

from imagenb.core.catalog import ModelSpec
from imagenb.errors import InvalidRequest

MULTIPLE = 16
MAX_EDGE = 3840
MIN_PIXELS = 655_360
MAX_PIXELS = 8_294_400
MAX_ASPECT = 3.0
MAX_SIZE_CHARS = 40  # far above '3840x2160'; keeps int() off 4,301-digit strings

PRESETS = {
    "square": (1024, 1024),
    "landscape": (1536, 1024),
    "portrait": (1024, 1536),
    "2k": (2560, 1440),
    "4k": (3840, 2160),
}

_WXH = re.compile(r"^\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*$")  # also the multiplication sign
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$")


def resolve(size: str | None, model: ModelSpec) -> str:
    """The canonical size string for `model`: `"auto"` or `"WxH"`."""
    if size is None:
        return "auto"
    if not isinstance(size, str):
        raise InvalidRequest(f"size must be a string such as '1536x1024', not {size!r}")
    text = size.strip().lower()
    if len(text) > MAX_SIZE_CHARS:
        raise InvalidRequest(
            f"size is {len(text):,} characters long; use 'WxH' (e.g. '1536x1024'), 'auto', a "
            f"ratio such as '16:9', or a preset: {', '.join(PRESETS)}"
        )
    if text == "auto":
        return "auto"
    if text in PRESETS:
        return _check(*PRESETS[text], model, named=text)
    if m := _WXH.match(text):
        return _check(int(m[1]), int(m[2]), model)
    if m := _RATIO.match(text):
        return _from_ratio(float(m[1]), float(m[2]), model, text)
    raise InvalidRequest(
        f"size {size!r} is not understood; use 'WxH' (e.g. '1536x1024'), 'auto', an aspect "
        f"ratio such as '16:9', or a preset: {', '.join(PRESETS)}"
    )


def dimensions(size: str) -> tuple[int, int] | None:
    """(width, height) of a canonical size, or None for `auto`."""
    m = _WXH.match(size)
    return (int(m[1]), int(m[2])) if m else None


def _check(w: int, h: int, model: ModelSpec, named: str | None = None) -> str:
    text = f"{w}x{h}"
    label = f"size {named!r} ({text})" if named else f"size {text!r}"
    if model.size_rule == "standard":
        if text in model.standard_sizes:
            return text
        raise InvalidRequest(
            f"{label} is not available on {model.name}; choose one of: "
            f"{', '.join((*model.standard_sizes, 'auto'))}"
        )
    problem = flexible_problem(w, h)
    if problem:
        hint = suggest(w, h)
        tip = f"; try size={hint!r}" if hint else ""
        raise InvalidRequest(
            f"{label} is not valid on {model.name}: {problem}{tip} "
            f"(rule: both sides multiples of 16, long edge <= {MAX_EDGE}, aspect 1:3 to 3:1, "
            f"{MIN_PIXELS:,} to {MAX_PIXELS:,} pixels; or 'auto')"
        )
    return text


def flexible_problem(w: int, h: int) -> str | None:
    """What breaks the gpt-image-2 size rule, or None when `w`x`h` is valid."""
    if w <= 0 or h <= 0:
        return "both sides must be positive"
    if w % MULTIPLE or h % MULTIPLE:
        return "width and height must both be divisible by 16"
    if max(w, h) > MAX_EDGE:
        return f"the long edge must be at most {MAX_EDGE}"
    if max(w, h) / min(w, h) > MAX_ASPECT:
        return "the aspect ratio must be between 1:3 and 3:1"
    if not MIN_PIXELS <= w * h <= MAX_PIXELS:
        return f"{w * h:,} pixels is outside {MIN_PIXELS:,} to {MAX_PIXELS:,}"
    return None


def suggest(w: int, h: int) -> str | None:
    """The nearest valid size to `w`x`h` (sides rounded to 16, scaled into the pixel range)."""
    if w <= 0 or h <= 0 or max(w, h) / min(w, h) > MAX_ASPECT:
        return None
    scale = 1.0
    if w * h < MIN_PIXELS:
        scale = math.sqrt(MIN_PIXELS / (w * h))
    elif w * h > MAX_PIXELS or max(w, h) > MAX_EDGE:
        scale = min(math.sqrt(MAX_PIXELS / (w * h)), MAX_EDGE / max(w, h))
    for rounding in (round, math.ceil, math.floor):
        sw = int(rounding(w * scale / MULTIPLE)) * MULTIPLE
        sh = int(rounding(h * scale / MULTIPLE)) * MULTIPLE
        if flexible_problem(sw, sh) is None:
            return f"{sw}x{sh}"
    return None


def _from_ratio(a: float, b: float, model: ModelSpec, text: str) -> str:
    if a <= 0 or b <= 0 or max(a, b) / min(a, b) > MAX_ASPECT:
        raise InvalidRequest(f"aspect ratio {text!r} is outside 1:3 to 3:1")
    if model.size_rule == "standard":
        target = math.log(a / b)
        return min(model.standard_sizes, key=lambda s: abs(_log_aspect(s) - target))
    long_edge = model.default_long_edge
    short = int(long_edge * min(a, b) / max(a, b) / MULTIPLE) * MULTIPLE
    w, h = (long_edge, short) if a >= b else (short, long_edge)
    while flexible_problem(w, h) and max(w, h) < MAX_EDGE:
        # below the pixel minimum at the default long edge: grow both sides in step
        long_edge += MULTIPLE
        short = int(long_edge * min(a, b) / max(a, b) / MULTIPLE) * MULTIPLE
        w, h = (long_edge, short) if a >= b else (short, long_edge)
    return _check(w, h, model, named=text)


def _log_aspect(size: str) -> float:
    w, h = dimensions(size) or (1, 1)
    return math.log(w / h)
