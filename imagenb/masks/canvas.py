"""The painted area at the image's full resolution, and the operations that change it (brush
and eraser strokes, rectangles, invert, clear) with undo. No widget here: the painter and
tests drive it alike.

The area is an 8-bit image, 255 where painted (to be edited); `rgba()` turns it into the
API's mask convention (transparent where painted).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

UNDO_STEPS = 50  # each kept compressed: a few KB for a typical mask even at 4K


class MaskCanvas:
    """The painted area of a `width` x `height` image, with an undo history."""

    def __init__(self, width: int, height: int) -> None:
        from PIL import Image

        self.size = (width, height)
        self.area: Image.Image = Image.new("L", self.size, 0)
        self._undo: list[bytes] = []

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def painted(self) -> float:
        """The fraction of the image painted."""
        histogram = self.area.histogram()
        return sum(histogram[128:]) / (self.size[0] * self.size[1])

    def stroke(self, points: Sequence[tuple[float, float]], radius: float, *, erase: bool) -> None:
        """A round brush of `radius` pixels along `points` (image pixels); one point is a dot."""
        from PIL import ImageDraw

        if not points:
            return
        self._remember()
        draw = ImageDraw.Draw(self.area)
        fill = 0 if erase else 255
        r = max(0.5, float(radius))
        if len(points) > 1:
            draw.line(list(points), fill=fill, width=max(1, round(2 * r)), joint="curve")
        for x, y in (points[0], points[-1]) if len(points) > 1 else points[:1]:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)

    def rectangle(self, corners: Iterable[float], *, erase: bool) -> None:
        """Fill the rectangle between two corners `(x0, y0, x1, y1)`, in either order."""
        from PIL import ImageDraw

        x0, y0, x1, y1 = corners
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        self._remember()
        ImageDraw.Draw(self.area).rectangle(box, fill=0 if erase else 255)

    def invert(self) -> None:
        from PIL import ImageOps

        self._remember()
        self.area = ImageOps.invert(self.area)

    def clear(self) -> None:
        self._remember()
        self.area.paste(0, (0, 0, *self.size))

    def load(self, area: Image.Image) -> None:
        """Replace the area (undoable) with `area`: 255 (or any value >= 128) where painted."""
        self._remember()
        self.area = area.convert("L").resize(self.size).point(lambda v: 255 if v >= 128 else 0)

    def undo(self) -> bool:
        """Go back one operation; False when there is none."""
        from PIL import Image

        if not self._undo:
            return False
        self.area = Image.frombytes("L", self.size, zlib.decompress(self._undo.pop()))
        return True

    def rgba(self) -> Image.Image:
        """The API's mask: opaque black, transparent where painted."""
        from PIL import Image, ImageOps

        mask = Image.new("RGBA", self.size, (0, 0, 0, 255))
        mask.putalpha(ImageOps.invert(self.area))
        return mask

    def _remember(self) -> None:
        self._undo.append(zlib.compress(self.area.tobytes(), 1))
        del self._undo[:-UNDO_STEPS]
