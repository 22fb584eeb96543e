"""`ig.mask(image)`: paint, over the image, the area an edit may change.

Built on anywidget: the view is one small ES module shipped in the package (`painter.js`, no
build step) that draws strokes at once in the browser and sends each finished one to the
kernel as a binary buffer of float32 points (a widget message buffer, not base64 JSON). The
kernel paints it into the full-resolution mask (`canvas.MaskCanvas`) and answers with a small
overlay PNG at display size, so the view always shows what the kernel holds.

The widget state holds the picture at display size and that overlay only: never the
full-resolution image. Displayed, the painter adds a static picture of the image with the
mask over it (updated after every change), which a notebook reopened without a kernel shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from imagenb.core import inputs
from imagenb.errors import InvalidRequest
from imagenb.masks import static
from imagenb.masks.canvas import MaskCanvas

if TYPE_CHECKING:
    from PIL import Image

_HERE = Path(__file__).parent
TOOLS = ("brush", "eraser", "rectangle")


class MaskPainter(anywidget.AnyWidget):
    """A mask painter over one image. Draw in the notebook, or from code (`stroke`,
    `rectangle`, `invert`, `clear`, `undo`); read `.mask`, `.save(path)`, or pass the painter
    itself as `mask=` to `ig.edit` or `%%imageedit --mask`."""

    _esm = _HERE / "painter.js"
    _css = _HERE / "painter.css"

    width = traitlets.Int(help="the image's width in pixels (the mask's too)").tag(sync=True)
    height = traitlets.Int(help="the image's height in pixels").tag(sync=True)
    brush = traitlets.Int(48, help="brush diameter in image pixels").tag(sync=True)
    tool = traitlets.Unicode("brush", help=f"one of {', '.join(TOOLS)}").tag(sync=True)
    painted = traitlets.Float(0.0, help="fraction of the image painted").tag(sync=True)
    can_undo = traitlets.Bool(False).tag(sync=True)
    _picture = traitlets.Bytes(help="the image at display size (WebP or JPEG)").tag(sync=True)
    _picture_mime = traitlets.Unicode().tag(sync=True)
    _overlay = traitlets.Bytes(help="the painted area at display size (PNG)").tag(sync=True)
    _acked = traitlets.Int(0, help="the last view operation applied").tag(sync=True)

    def __init__(self, image: Any, *, brush: int = 48, display_px: int = 512) -> None:
        if isinstance(brush, bool) or not isinstance(brush, int) or brush < 1:
            raise InvalidRequest(f"brush={brush!r}; give a diameter in pixels, such as 48")
        source = inputs.load(image, role="image")
        self.image = image  # as given: `ig.edit(prompt, painter.image, mask=painter)`
        self.image_sha256 = source.sha256
        self.canvas = MaskCanvas(source.width, source.height)
        data, mime, self._small = static.picture(source.data, display_px)
        super().__init__(
            width=source.width,
            height=source.height,
            brush=brush,
            _picture=data,
            _picture_mime=mime,
            _overlay=static.overlay_png(self.canvas.area, self._small.size),
        )
        self._static_id = f"imagenb-mask-{uuid.uuid4().hex}"
        self._static_shown = False
        self.on_msg(self._on_view_message)

    @traitlets.validate("tool")
    def _check_tool(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in TOOLS:
            raise traitlets.TraitError(f"tool must be one of {', '.join(TOOLS)}")
        return str(proposal["value"])

    # --- the mask -----------------------------------------------------------------------------

    @property
    def mask(self) -> Image.Image:
        """The mask at the image's size: RGBA, transparent where painted (the API's way)."""
        return self.canvas.rgba()

    def save(self, path: str | Path) -> Path:
        """Write the mask as a PNG (what `ig.edit(mask=...)` and the API take)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.mask.save(target, "PNG")
        return target

    # --- operations (the view sends the same ones) --------------------------------------------

    def stroke(
        self, points: Sequence[tuple[float, float]], *, size: int | None = None, erase: bool = False
    ) -> None:
        """Paint (or erase) along `points` in image pixels, `size` (default `brush`) wide."""
        self.canvas.stroke(points, (size or self.brush) / 2, erase=erase)
        self._changed()

    def rectangle(self, corners: Iterable[float], *, erase: bool = False) -> None:
        """Paint (or erase) the rectangle `(x0, y0, x1, y1)` in image pixels."""
        self.canvas.rectangle(corners, erase=erase)
        self._changed()

    def invert(self) -> None:
        self.canvas.invert()
        self._changed()

    def clear(self) -> None:
        self.canvas.clear()
        self._changed()

    def undo(self) -> bool:
        """Take back the last change; False when there is none."""
        done = self.canvas.undo()
        self._changed()
        return done

    def _on_view_message(self, _: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        """One finished operation from the view: `{op, seq, erase, size}` with its points as
        float32 (x, y) pairs in image pixels in the first buffer."""
        op = content.get("op")
        if op in ("stroke", "rectangle"):
            values = memoryview(buffers[0]).cast("B").cast("f").tolist() if buffers else []
            points = list(zip(values[0::2], values[1::2], strict=True))
            erase = bool(content.get("erase"))
            if op == "stroke":
                size = float(content.get("size") or self.brush)
                self.canvas.stroke(points, size / 2, erase=erase)
            elif len(points) == 2:
                self.canvas.rectangle([*points[0], *points[1]], erase=erase)
        elif op in ("invert", "clear", "undo"):
            getattr(self.canvas, op)()
        self._changed(int(content.get("seq") or 0))

    def _changed(self, seq: int | None = None) -> None:
        with self.hold_sync():
            self._overlay = static.overlay_png(self.canvas.area, self._small.size)
            self.painted = self.canvas.painted
            self.can_undo = self.canvas.can_undo
            if seq is not None:
                self._acked = max(self._acked, seq)
        if self._static_shown:
            from IPython.display import update_display

            update_display(self._static(), raw=True, display_id=self._static_id)

    # --- display ------------------------------------------------------------------------------

    def _describe(self) -> str:
        return (
            f"mask painter over a {self.width}x{self.height} image · "
            f"{self.painted:.1%} painted (transparent in .mask)"
        )

    def __repr__(self) -> str:
        return self._describe()

    def _static(self) -> dict[str, str]:
        caption = f"{self._describe()} · a static picture: run the cell to paint"
        return static.snapshot_bundle(self._small, self.canvas.area, caption)

    def _ipython_display_(self) -> None:
        """The widget, then the static picture of the mask (kept up to date)."""
        from IPython.display import display

        shown = self._repr_mimebundle_()
        if shown is not None:
            display(shown[0], raw=True)
        display(self._static(), raw=True, display_id=self._static_id)
        self._static_shown = True
