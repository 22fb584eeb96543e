"""Masks: paint the area an edit may change, and keep everything outside it as it was.

`mask(image)` opens the painter widget (ipywidgets and anywidget load only then);
`keep` composites a masked edit's answer onto its input and says how much of the outside the
model had changed; `before_after(before, after)` shows the two (and the raw answer) side by side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from imagenb.masks.compare import BeforeAfter
    from imagenb.masks.painter import MaskPainter


def mask(image: Any, *, brush: int = 48, display_px: int = 512) -> MaskPainter:
    """A painter over `image` (a path, bytes, a PIL image or a GeneratedImage): brush,
    eraser, rectangle, invert, clear, undo. `.mask` is the RGBA mask at the image's size,
    transparent where painted, which `ig.edit(..., mask=painter)` accepts as it is."""
    from imagenb.masks.painter import MaskPainter

    return MaskPainter(image, brush=brush, display_px=display_px)


def before_after(before: Any, after: Any, *, px: int = 256) -> BeforeAfter:
    """`before` beside `after` (a masked edit's result), with the model's raw answer between."""
    from imagenb.masks.compare import BeforeAfter

    return BeforeAfter(before, after, px)


def __getattr__(name: str) -> Any:
    if name == "MaskPainter":
        from imagenb.masks.painter import MaskPainter

        return MaskPainter
    raise AttributeError(f"module 'imagenb.masks' has no attribute {name!r}")


__all__ = ["MaskPainter", "before_after", "mask"]
