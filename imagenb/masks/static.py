"""What the mask painter shows, always small: the picture at display size, the painted area as a
tinted overlay, and the static picture (image with the mask over it) that a saved notebook
keeps, so one reopened without a kernel shows the mask instead of a widget error.

Notebook outputs never carry a full-resolution image: everything here goes through
`display.thumbnail` (at most `display.MAX_THUMB_BYTES`) or is a small PNG of the overlay.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

from imagenb.render import html as display

if TYPE_CHECKING:
    from PIL import Image

TINT = (255, 0, 96)  # the painted area, shown at half opacity over the picture

# In JupyterLab the static picture follows the painter's widget output: a live painter hides
# it; a widget output with no painter in it (no kernel, "model not found") is hidden instead.
# Without the CSS (untrusted notebooks, other viewers) the picture simply shows.
_CSS = (
    "<style>"
    ".jp-OutputArea-child:has(.imagenb-painter)+.jp-OutputArea-child:has(.imagenb-mask-static)"
    "{display:none}"
    ".jp-OutputArea-child:not(:has(.imagenb-painter)):has(+.jp-OutputArea-child "
    ".imagenb-mask-static){display:none}"
    ".imagenb-mask-static{display:inline-block;border:1px dashed var(--jp-border-color1,#bbb);"
    "border-radius:8px;padding:8px;font:12px var(--jp-ui-font-family,sans-serif);"
    "color:var(--jp-ui-font-color2,#666)}"
    ".imagenb-mask-static img{display:block;max-width:100%;height:auto;margin-bottom:4px}"
    "</style>"
)


def picture(data: bytes, px: int) -> tuple[bytes, str, Image.Image]:
    """The image at display size: its encoded bytes, their MIME type, and decoded (RGB)."""
    from PIL import Image

    small, mime = display.thumbnail(data, px)
    with Image.open(io.BytesIO(small)) as im:
        return small, mime, im.convert("RGB")


def overlay_png(area: Image.Image, size: tuple[int, int]) -> bytes:
    """The painted area at display `size`: opaque tint where painted (the view shows it at
    half opacity), transparent elsewhere, soft where a pixel is partly painted."""
    from PIL import Image

    tint = Image.new("RGBA", size, (*TINT, 0))
    tint.putalpha(area.resize(size, Image.Resampling.BOX))
    buf = io.BytesIO()
    tint.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def snapshot_bundle(small: Image.Image, area: Image.Image, caption: str) -> dict[str, str]:
    """The picture with the mask over it, as self-contained HTML (and text)."""
    from PIL import Image

    shown = small.copy()
    half = area.resize(shown.size, Image.Resampling.BOX).point(lambda v: v // 2)
    shown.paste(TINT, (0, 0, *shown.size), half)
    buf = io.BytesIO()
    shown.save(buf, "PNG")
    data, mime = display.thumbnail(buf.getvalue(), max(shown.size))
    text = display.esc(caption)
    return {
        "text/html": (
            f'{_CSS}<div class="imagenb-mask-static {display.NO_MATH}">'
            f'<img src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}" '
            f'alt="{text}" title="{text}">'
            f"{text}</div>"
        ),
        "text/plain": caption,
    }
