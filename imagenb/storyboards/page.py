"""Comic pages: storyboard panels in rows and columns with gutters and black borders, lettered
by imagenb (a narration box and speech bubbles, in any script `imagenb.text.fonts` covers). One
picture per page (PNG, JPEG, WebP), or one PDF with a page each.

The model is asked not to letter panels: text drawn here is exact, in the right language,
and can be changed without paying for new images.
"""

from __future__ import annotations

import base64
import concurrent.futures
import html
import io
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from imagenb.errors import InvalidRequest
from imagenb.render.sheet import PDF_DPI
from imagenb.text import fonts

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
SUFFIXES = (*IMAGE_SUFFIXES, ".pdf")
DEFAULT_PANEL_PX = 768
MIN_FONT_PX = 10
TEXT_SHARE = 0.6  # lettering may cover at most this much of a panel's height
_PAPER = (255, 255, 255)
_INK = (20, 20, 20)
_MUTED = (110, 110, 110)
_NARRATION = (255, 236, 170)
_MISSING = (232, 232, 232)


@dataclass(frozen=True)
class Panel:
    """One panel to draw: the image file (None when it was not made: `note` says why), its
    aspect (`width` x `height`), and its lettering."""

    path: Path | None
    width: int
    height: int
    caption: str = ""
    dialogue: tuple[tuple[str | None, str], ...] = ()
    note: str = ""


@dataclass(frozen=True)
class _Geometry:
    cols: int
    rows: int
    panel_w: int
    panel_h: int
    gutter: int
    title_h: int

    @property
    def size(self) -> tuple[int, int]:
        width = self.cols * self.panel_w + (self.cols + 1) * self.gutter
        height = self.title_h + self.rows * self.panel_h + (self.rows + 1) * self.gutter
        return width, height

    def origin(self, slot: int) -> tuple[int, int]:
        r, c = divmod(slot, self.cols)
        x = self.gutter + c * (self.panel_w + self.gutter)
        return x, self.title_h + self.gutter + r * (self.panel_h + self.gutter)


def save(
    panels: Sequence[Panel],
    path: str | os.PathLike[str],
    *,
    rows: int,
    cols: int,
    panel_px: int = DEFAULT_PANEL_PX,
    lettering: bool = True,
    title: str | None = None,
) -> list[Path]:
    """Write the pages: `name.png`, `name-2.png`, ... (or .jpg/.webp), or one `.pdf` with a
    page per page. Returns the files written."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidRequest(
            f"cannot save a storyboard as {suffix or 'a file without suffix'!r}; use "
            f"{', '.join(SUFFIXES)} (or .html for the notebook view)"
        )
    images = render(
        panels, rows=rows, cols=cols, panel_px=panel_px, lettering=lettering, title=title
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".pdf":
        images[0].save(
            target,
            "PDF",
            save_all=True,
            append_images=images[1:],
            resolution=PDF_DPI,
            title=title or "imagenb storyboard",
        )
        return [target]
    written = []
    for i, page in enumerate(images):
        out = target if i == 0 else target.with_name(f"{target.stem}-{i + 1}{target.suffix}")
        if suffix == ".png":
            page.save(out, "PNG", compress_level=6)
        else:
            page.save(out, "JPEG" if suffix != ".webp" else "WEBP", quality=90)
        written.append(out)
    return written


def render(
    panels: Sequence[Panel],
    *,
    rows: int,
    cols: int,
    panel_px: int = DEFAULT_PANEL_PX,
    lettering: bool = True,
    title: str | None = None,
    only: int | None = None,
) -> list[Image.Image]:
    """One image per page of `rows` x `cols` panels, in reading order (or just page `only`,
    counted from 0). Every page has the same size; each panel's image is cropped to fill its
    frame (the first made panel's aspect sets the frame's)."""
    if not panels:
        raise InvalidRequest("there are no panels to draw")
    per_page = rows * cols
    count = pages(len(panels), rows, cols)
    if only is not None and not 0 <= only < count:
        raise InvalidRequest(f"page {only + 1} does not exist; there are {count} page(s)")
    geo = _geometry(panels, rows, cols, panel_px, title)
    return [
        _page(panels[k * per_page : (k + 1) * per_page], geo, lettering, _title(title, k, count))
        for k in (range(count) if only is None else [only])
    ]


def pages(panels: int, rows: int, cols: int) -> int:
    return math.ceil(panels / (rows * cols))


@dataclass(frozen=True, eq=False)
class Page:
    """One rendered page: `.image` at full resolution; in a notebook, a thumbnail of it (the
    notebook never holds the full page)."""

    image: Image.Image
    number: int
    count: int
    px: int = 640

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, str]:
        from imagenb.render.html import thumbnail

        buf = io.BytesIO()
        self.image.save(buf, "PNG", compress_level=1)
        data, mime = thumbnail(buf.getvalue(), self.px)
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        scale = min(1.0, self.px / max(self.image.size))
        width = round(self.image.width * scale)
        return {
            "text/html": f'<img src="{uri}" width="{width}" alt="{html.escape(repr(self))}">',
            "text/plain": repr(self),
        }

    def __repr__(self) -> str:
        w, h = self.image.size
        return f"<storyboard page {self.number} of {self.count}, {w}x{h}>"


def _geometry(
    panels: Sequence[Panel], rows: int, cols: int, panel_px: int, title: str | None
) -> _Geometry:
    shape = next((p for p in panels if p.path is not None), panels[0])
    ratio = min(3.0, max(1 / 3, shape.height / max(1, shape.width)))
    width = max(64, panel_px)
    gutter = max(6, round(width / 28))
    title_h = round(_font_px(width) * 1.6) if title else 0
    return _Geometry(cols, rows, width, round(width * ratio), gutter, title_h)


def _title(title: str | None, page: int, pages: int) -> str:
    if not title:
        return ""
    return f"{title} · {page + 1}/{pages}" if pages > 1 else title


def _font_px(panel_w: int) -> int:
    return max(MIN_FONT_PX, round(panel_w / 27))


def _page(panels: Sequence[Panel], geo: _Geometry, lettering: bool, title: str) -> Image.Image:
    canvas = Image.new("RGB", geo.size, _PAPER)
    draw = ImageDraw.Draw(canvas)
    if title:
        size = _font_px(geo.panel_w)
        width = fonts.text_width(title, size, bold=True)
        fonts.draw_text(draw, ((geo.size[0] - width) / 2, geo.gutter), title, size, _INK, bold=True)
    with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 2)) as pool:
        # Pillow decodes and resizes without the GIL: a page of 2K panels loads in parallel.
        pictures = list(pool.map(lambda p: _cover(p.path, geo.panel_w, geo.panel_h), panels))
    border = max(2, round(geo.panel_w / 220))
    for slot, (panel, picture) in enumerate(zip(panels, pictures, strict=True)):
        x, y = geo.origin(slot)
        box = (x, y, x + geo.panel_w, y + geo.panel_h)
        if picture is not None:
            canvas.paste(picture, (x, y))
        else:
            draw.rectangle(box, fill=_MISSING)
            _note(draw, panel.note or "not made", box)
        if lettering:
            _letter(draw, panel, box)
        draw.rectangle(
            (x - border, y - border, box[2] + border - 1, box[3] + border - 1),
            outline=_INK,
            width=border,
        )
    return canvas


def _cover(path: Path | None, w: int, h: int) -> Image.Image | None:
    """`path` scaled to fill `w` x `h` and centre-cropped (transparency on white); None when
    there is no file or it cannot be read (drawn as a missing panel, never a crash)."""
    if path is None:
        return None
    try:
        with Image.open(path) as im:
            scale = max(w / im.width, h / im.height)
            size = (max(w, math.ceil(im.width * scale)), max(h, math.ceil(im.height * scale)))
            if im.format == "JPEG":
                im.draft("RGB", size)
            if im.mode in ("RGBA", "LA", "PA", "P"):
                rgba = im.convert("RGBA")
                flat = Image.new("RGB", rgba.size, _PAPER)
                flat.paste(rgba, mask=rgba.getchannel("A"))
            else:
                flat = im.convert("RGB")
    except (OSError, Image.DecompressionBombError):
        return None
    scaled = flat.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    left, top = (scaled.width - w) // 2, (scaled.height - h) // 2
    return scaled.crop((left, top, left + w, top + h))


def _note(draw: ImageDraw.ImageDraw, text: str, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    size = max(MIN_FONT_PX, round((x1 - x0) / 40))
    pad, line_h = size, _line_h(size)
    lines = fonts.wrap(text, size, x1 - x0 - 2 * pad, max(1, (y1 - y0 - 2 * pad) // line_h))
    top = y0 + (y1 - y0 - len(lines) * line_h) // 2
    for k, line in enumerate(lines):
        width = fonts.text_width(line, size)
        fonts.draw_text(draw, (x0 + (x1 - x0 - width) / 2, top + k * line_h), line, size, _MUTED)


# --- lettering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """One box of text, already wrapped: a narration box or a speech bubble."""

    lines: tuple[str, ...]
    bold: str  # the speaker prefix of the first line, drawn in bold
    width: int
    height: int
    bubble: bool
    right: bool = False


def _line_h(size: int) -> int:
    return round(size * 1.3)


def _letter(draw: ImageDraw.ImageDraw, panel: Panel, box: tuple[int, int, int, int]) -> None:
    """The caption box top left, then the speech bubbles under it, speakers alternating left
    and right. Text that would cover more than `TEXT_SHARE` of the panel is set smaller."""
    if not panel.caption and not panel.dialogue:
        return
    x0, y0, x1, y1 = box
    size = _font_px(x1 - x0)
    while True:
        blocks = _blocks(panel, size, x1 - x0)
        pad = max(4, size // 2)
        tail = round(size * 0.9)
        total = pad + sum(b.height + (tail if b.bubble else 0) + pad for b in blocks)
        if total <= TEXT_SHARE * (y1 - y0) or size <= MIN_FONT_PX:
            break
        size = max(MIN_FONT_PX, int(size * 0.85))
    y = y0 + pad
    for block in blocks:
        x = x1 - pad - block.width if block.right else x0 + pad
        _draw_block(draw, block, (x, y), size, tail)
        y += block.height + (tail if block.bubble else 0) + pad


def _blocks(panel: Panel, size: int, panel_w: int) -> list[_Block]:
    pad = max(4, size // 2)
    out = []
    if panel.caption:
        out.append(_block(panel.caption, "", size, panel_w - 2 * pad, bubble=False))
    sides: dict[str | None, bool] = {}
    for speaker, words in panel.dialogue:
        if speaker not in sides:
            sides[speaker] = len(sides) % 2 == 1
        prefix = f"{speaker}: " if speaker else ""
        block = _block(prefix + words, prefix, size, round(panel_w * 0.66), bubble=True)
        out.append(_Block(block.lines, block.bold, block.width, block.height, True, sides[speaker]))
    return out


def _block(text: str, bold: str, size: int, max_w: int, *, bubble: bool) -> _Block:
    inner = size if bubble else max(4, size // 2)  # bubbles round off their corners: more room
    # Bold is a little wider than the regular face the lines are wrapped in: leave room.
    lines = fonts.wrap(text, size, max_w - 2 * inner - size, 5 if bubble else 4)
    widths = [fonts.text_width(line, size) for line in lines]
    if bold and lines and lines[0].startswith(bold.rstrip()):
        extra = fonts.text_width(bold, size, bold=True) - fonts.text_width(bold, size)
        widths[0] += extra
    else:
        bold = ""
    width = math.ceil(max(widths, default=0)) + 2 * inner
    height = len(lines) * _line_h(size) + 2 * max(4, size // 2)
    return _Block(tuple(lines), bold, width, height, bubble)


def _draw_block(
    draw: ImageDraw.ImageDraw, block: _Block, xy: tuple[int, int], size: int, tail: int
) -> None:
    x, y = xy
    w, h = block.width, block.height
    stroke = max(2, round(size / 12))
    if block.bubble:
        draw.rounded_rectangle(
            (x, y, x + w, y + h),
            radius=min(h // 2, round(size * 1.4)),
            fill=_PAPER,
            outline=_INK,
            width=stroke,
        )
        _tail(draw, (x, y, x + w, y + h), block.right, tail, stroke)
        inner = size
    else:
        draw.rectangle((x, y, x + w, y + h), fill=_NARRATION, outline=_INK, width=stroke)
        inner = max(4, size // 2)
    top = y + max(4, size // 2)
    for k, line in enumerate(block.lines):
        lx: float = x + inner
        if k == 0 and block.bold:
            name = block.bold.rstrip()
            lx += fonts.draw_text(draw, (lx, top), name, size, _INK, bold=True)
            line = line[len(name) :]
        fonts.draw_text(draw, (lx, top + k * _line_h(size)), line, size, _INK)


def _tail(
    draw: ImageDraw.ImageDraw,
    bubble: tuple[int, int, int, int],
    right: bool,
    length: int,
    stroke: int,
) -> None:
    """A wedge under the bubble pointing down toward the panel's middle, joined seamlessly:
    its white fill reaches into the bubble and covers the bubble's outline at the joint."""
    x0, _, x1, y1 = bubble
    base = max(6, length // 2)
    at = x0 + (x1 - x0) * (0.72 if right else 0.28)
    lean = -length * 0.6 if right else length * 0.6
    left, rightmost, tip = (at - base / 2, y1), (at + base / 2, y1), (at + lean, y1 + length)
    inside = stroke + 1
    draw.polygon([(left[0], y1 - inside), (rightmost[0], y1 - inside), tip], fill=_PAPER)
    draw.line([left, tip], fill=_INK, width=stroke)
    draw.line([rightmost, tip], fill=_INK, width=stroke)
