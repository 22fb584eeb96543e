"""Contact sheets: a labelled grid of images drawn into one picture (PNG, JPEG) or pages (PDF).

Big grids are where other tools crash (a 1,400-megapixel grid, Pillow's decompression-bomb
error, the 65,535-pixel side limit of JPEG), so the size is planned before anything is drawn:
cells shrink until the sheet fits `Image.MAX_IMAGE_PIXELS` and the side limit, and a grid too
big even at `MIN_CELL_PX` is split into tiles (PDF: pages) that each repeat their labels.
Labels are wrapped and drawn with `imagenb.text.fonts`, so Japanese, Korean, Chinese, Hindi and
Bengali prompts read correctly. Images are decoded in a thread pool (Pillow releases the GIL
while decoding) and only one tile's worth is held in memory at a time.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

from imagenb.errors import InvalidRequest
from imagenb.text import fonts

MAX_SIDE = 65_535  # JPEG's hard limit, and where most viewers give up
DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's default MAX_IMAGE_PIXELS
MIN_CELL_PX = 128  # smaller than this, a thumbnail stops being recognisable: tile instead
PDF_PAGE_PIXELS = 24_000_000
PDF_PAGE_SIDE = 14_400  # PDF's largest page is 14,400 units; at 150 dpi that is ample
PDF_DPI = 150.0
PDF_PAGE_RATIO = 1.5  # pages no taller than this times their width, so they print
_BACKGROUND = (250, 250, 250)
_INK = (30, 30, 30)
_MUTED = (110, 110, 110)
_ERROR_INK = (160, 20, 20)
_ERROR_FILL = (253, 232, 232)
_PENDING_FILL = (236, 236, 236)
_FRAME = (210, 210, 210)


@dataclass(frozen=True)
class Tile:
    """One image slot: a file to show, or `text` (an error, a prompt not made) in its place.
    `width`/`height` give the aspect ratio of the box."""

    path: Path | None
    width: int
    height: int
    text: str = ""
    error: bool = False
    caption: str = ""


@dataclass(frozen=True)
class Sheet:
    """What to draw: `cells[r][c]` holds the tiles of that cell (several for n > 1)."""

    title: str
    row_labels: Sequence[str]
    col_labels: Sequence[str]
    corner: str
    cells: Sequence[Sequence[Sequence[Tile]]]


@dataclass(frozen=True)
class _Geometry:
    """Sizes at one cell width: everything else follows from `cell`."""

    cell: int
    font: int
    pad: int
    label_w: int
    header_h: int
    caption_h: int
    title_h: int
    row_h: tuple[int, ...]

    @property
    def gap(self) -> int:
        """Between cells: wider than between the variants inside one, so cells read apart."""
        return 3 * self.pad

    def width(self, cols: int) -> int:
        return self.pad + self.label_w + cols * (self.cell + self.gap)

    def height(self, rows: Sequence[int]) -> int:
        return self.title_h + self.header_h + sum(self.row_h[r] + self.gap for r in rows) + self.pad


def save(
    sheet: Sheet,
    path: str | os.PathLike[str],
    *,
    cell_px: int = 384,
    max_pixels: int | None = None,
    max_side: int = MAX_SIDE,
) -> list[Path]:
    """Write `sheet` to `path` (.png, .jpg or .pdf); tiles go to `name-2.png`, ... Returns the
    files written."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix == ".pdf":
        pages = render(sheet, cell_px=cell_px, max_pixels=PDF_PAGE_PIXELS, max_side=PDF_PAGE_SIDE,
                       shrink=False, page_ratio=PDF_PAGE_RATIO)  # fmt: skip
        pages[0].save(target, "PDF", save_all=True, append_images=pages[1:], resolution=PDF_DPI)
        return [target]
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise InvalidRequest(f"a contact sheet is .png, .jpg or .pdf, not {suffix!r}")
    written = []
    for i, im in enumerate(
        render(sheet, cell_px=cell_px, max_pixels=max_pixels, max_side=max_side)
    ):
        out = target if i == 0 else target.with_name(f"{target.stem}-{i + 1}{target.suffix}")
        if suffix == ".png":
            im.save(out, "PNG", compress_level=6)
        else:
            im.save(out, "JPEG", quality=90, optimize=True)
        written.append(out)
    return written


def render(
    sheet: Sheet,
    *,
    cell_px: int = 384,
    max_pixels: int | None = None,
    max_side: int = MAX_SIDE,
    shrink: bool = True,
    page_ratio: float | None = None,
) -> list[Image.Image]:
    """The sheet as one image, or as tiles when it cannot fit the limits (after shrinking the
    cells down to `MIN_CELL_PX`, when `shrink`). `page_ratio` also caps each tile's height
    at that multiple of its width (PDF pages)."""
    limit = max_pixels or Image.MAX_IMAGE_PIXELS or DEFAULT_MAX_PIXELS
    n_rows, n_cols = len(sheet.cells), max((len(r) for r in sheet.cells), default=0)
    cell = max(MIN_CELL_PX, cell_px) if shrink else cell_px
    geo = _geometry(sheet, cell)
    while shrink and cell > MIN_CELL_PX:
        w, h = geo.width(n_cols), geo.height(range(n_rows))
        if w * h <= limit and max(w, h) <= max_side:
            break
        scale = min(0.9, math.sqrt(limit / (w * h)), max_side / max(w, h))
        cell = max(MIN_CELL_PX, int(cell * scale))
        geo = _geometry(sheet, cell)
    chunks = _tiles(geo, n_rows, n_cols, limit, max_side, page_ratio)
    return [
        _draw(sheet, geo, rows, cols, part=(i + 1, len(chunks)))
        for i, (rows, cols) in enumerate(chunks)
    ]


def _geometry(sheet: Sheet, cell: int) -> _Geometry:
    font = max(11, min(24, round(cell / 18)))
    pad = max(4, cell // 32)
    line = _line_h(font)
    label_w = 0
    if sheet.row_labels:
        widest = max(fonts.text_width(label, font, bold=True) for label in sheet.row_labels)
        label_w = min(cell, max(int(widest) + 2 * pad, cell // 3))
    header_h = 0
    if sheet.col_labels:
        lines = max(len(fonts.wrap(lb, font, cell - pad, 4, bold=True)) for lb in sheet.col_labels)
        header_h = max(1, lines) * line + pad
    captions = any(t.caption for row in sheet.cells for cell_ in row for t in cell_)
    caption_h = 2 * _line_h(_small(font)) if captions else 0
    rows = tuple(
        max((_cell_height(tiles, cell, pad, caption_h) for tiles in row), default=cell // 2)
        for row in sheet.cells
    )
    return _Geometry(cell, font, pad, label_w, header_h, caption_h, line + 2 * pad, rows)


def _line_h(font: int) -> int:
    return round(font * 1.35)


def _small(font: int) -> int:
    return max(10, round(font * 0.8))


def _per_line(count: int) -> int:
    return 1 if count == 1 else 2 if count <= 4 else 3


def _box(tile: Tile, width: int) -> tuple[int, int]:
    ratio = min(3.0, max(1 / 3, tile.height / max(tile.width, 1)))
    return width, max(1, round(width * ratio))


def _slots(
    tiles: Sequence[Tile], cell: int, pad: int, caption_h: int
) -> list[tuple[int, int, int, int]]:
    """`(x, y, w, h)` of each tile's image box inside its cell (captions go under each box)."""
    per = _per_line(len(tiles))
    width = (cell - pad * (per - 1)) // per
    out, y = [], 0
    for start in range(0, len(tiles), per):
        line = tiles[start : start + per]
        boxes = [_box(t, width) for t in line]
        for j, (w, h) in enumerate(boxes):
            out.append((j * (width + pad), y, w, h))
        y += max(h for _, h in boxes) + caption_h + pad
    return out


def _cell_height(tiles: Sequence[Tile], cell: int, pad: int, caption_h: int) -> int:
    if not tiles:
        return 0
    slots = _slots(tiles, cell, pad, caption_h)
    return max(y + h for _, y, _, h in slots) + caption_h


def _tiles(
    geo: _Geometry, n_rows: int, n_cols: int, limit: int, max_side: int, ratio: float | None
) -> list[tuple[range, range]]:
    """Split rows and columns so that every piece fits the pixel and side limits."""
    per_cols = max(1, min(n_cols, (max_side - geo.pad - geo.label_w) // (geo.cell + geo.gap)))
    one_row = geo.title_h + geo.header_h + max(geo.row_h, default=0) + 2 * geo.pad
    while per_cols > 1 and geo.width(per_cols) * one_row > limit:
        per_cols -= 1
    per_cols = _even(n_cols, per_cols)
    width = geo.width(per_cols)

    def fits(rows: range) -> bool:
        h = geo.height(rows)
        return len(rows) == 1 or (
            h <= max_side and h * width <= limit and not (ratio and h > ratio * width)
        )

    row_chunks: list[range] = []
    start = 0
    while start < n_rows:
        end = start + 1
        while end < n_rows and fits(range(start, end + 1)):
            end += 1
        row_chunks.append(range(start, end))
        start = end
    if len(row_chunks) > 1:  # 6 + 6 rather than 10 + 2, when the rows allow it
        size = _even(n_rows, max(len(c) for c in row_chunks))
        even = [range(r, min(r + size, n_rows)) for r in range(0, n_rows, size)]
        if len(even) == len(row_chunks) and all(fits(c) for c in even):
            row_chunks = even
    col_chunks = [range(c, min(c + per_cols, n_cols)) for c in range(0, n_cols, per_cols)]
    return [(r, c) for r in row_chunks or [range(0)] for c in col_chunks or [range(0)]]


def _even(total: int, most: int) -> int:
    """The smallest chunk size that needs no more chunks than `most` per chunk does."""
    chunks = math.ceil(total / max(1, most)) if total else 1
    return max(1, math.ceil(total / chunks))


def _draw(
    sheet: Sheet, geo: _Geometry, rows: range, cols: range, *, part: tuple[int, int]
) -> Image.Image:
    width, height = geo.width(len(cols)), geo.height(rows)
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    pad, font = geo.pad, geo.font
    title = sheet.title + (f" · part {part[0]} of {part[1]}" if part[1] > 1 else "")
    for line in fonts.wrap(title, font, width - 2 * pad, 1):
        fonts.draw_text(draw, (pad, pad), line, font, _MUTED)
    top = geo.title_h
    x0 = pad + geo.label_w
    if sheet.corner and geo.label_w and geo.header_h:
        for k, line in enumerate(fonts.wrap(sheet.corner, _small(font), geo.label_w - pad, 3)):
            fonts.draw_text(
                draw, (pad, top + k * _line_h(_small(font))), line, _small(font), _MUTED
            )
    if geo.header_h:
        for j, c in enumerate(cols):
            label = sheet.col_labels[c] if c < len(sheet.col_labels) else ""
            _centred(draw, label, x0 + j * (geo.cell + geo.gap), top, geo.cell, geo.header_h - pad,
                     font, bold=True, bottom=True)  # fmt: skip
        top += geo.header_h
    jobs = _load_all(sheet, geo, rows, cols)
    y = top
    for r in rows:
        row_h = geo.row_h[r]
        if geo.label_w:
            label = sheet.row_labels[r] if r < len(sheet.row_labels) else ""
            _centred(draw, label, pad, y, geo.label_w - pad, row_h, font, bold=True, right=True)
        for j, c in enumerate(cols):
            tiles = sheet.cells[r][c] if c < len(sheet.cells[r]) else ()
            x = x0 + j * (geo.cell + geo.gap)
            for k, (sx, sy, w, h) in enumerate(_slots(tiles, geo.cell, pad, geo.caption_h)):
                _draw_tile(canvas, draw, tiles[k], jobs.get((r, c, k)), (x + sx, y + sy, w, h), geo)
        y += row_h + geo.gap
    return canvas


def _draw_tile(
    canvas: Image.Image,
    draw: ImageDraw.ImageDraw,
    tile: Tile,
    picture: concurrent.futures.Future[Image.Image | None] | None,
    box: tuple[int, int, int, int],
    geo: _Geometry,
) -> None:
    x, y, w, h = box
    im = picture.result() if picture is not None else None
    if im is not None:
        with im:
            px, py = x + (w - im.width) // 2, y + (h - im.height) // 2
            if im.mode == "RGBA":
                canvas.paste(im, (px, py), im)
            else:
                canvas.paste(im, (px, py))
        draw.rectangle((x - 1, y - 1, x + w, y + h), outline=_FRAME)
    else:
        text = tile.text or ("missing file" if tile.path is not None else "")
        fill, ink = (_ERROR_FILL, _ERROR_INK) if tile.error else (_PENDING_FILL, _MUTED)
        draw.rectangle((x, y, x + w - 1, y + h - 1), fill=fill, outline=ink)
        size = _small(geo.font)
        lines = fonts.wrap(text, size, w - 2 * geo.pad, max(1, (h - 2 * geo.pad) // _line_h(size)))
        for k, line in enumerate(lines):
            fonts.draw_text(draw, (x + geo.pad, y + geo.pad + k * _line_h(size)), line, size, ink)
    if tile.caption and geo.caption_h:
        size = _small(geo.font)
        for k, line in enumerate(fonts.wrap(tile.caption, size, w, 2)):
            fonts.draw_text(draw, (x, y + h + 2 + k * _line_h(size)), line, size, _INK)


def _centred(
    draw: ImageDraw.ImageDraw,
    text: str,
    x: int,
    y: int,
    w: int,
    h: int,
    font: int,
    *,
    bold: bool = False,
    right: bool = False,
    bottom: bool = False,
) -> None:
    """Wrap `text` into the box and centre it (right-align for row labels, sit it on the
    bottom edge for column labels, so short labels hug their images)."""
    line_h = _line_h(font)
    lines = fonts.wrap(text, font, w, max(1, h // line_h), bold=bold)
    top = y + (h - len(lines) * line_h) if bottom else y + (h - len(lines) * line_h) // 2
    for k, line in enumerate(lines):
        lw = fonts.text_width(line, font, bold=bold)
        lx = x + w - lw if right else x + (w - lw) / 2
        fonts.draw_text(draw, (lx, top + k * line_h), line, font, _INK, bold=bold)


def _load_all(
    sheet: Sheet, geo: _Geometry, rows: range, cols: range
) -> dict[tuple[int, int, int], concurrent.futures.Future[Image.Image | None]]:
    """Start decoding every picture of this tile, scaled to its box, on a thread pool."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2))
    jobs = {}
    with pool:
        for r in rows:
            for c in cols:
                tiles = sheet.cells[r][c] if c < len(sheet.cells[r]) else ()
                for k, (_, _, w, h) in enumerate(_slots(tiles, geo.cell, geo.pad, geo.caption_h)):
                    if tiles[k].path is not None:
                        jobs[(r, c, k)] = pool.submit(_fit, tiles[k].path, w, h)
    return jobs


def _fit(path: Path | None, w: int, h: int) -> Image.Image | None:
    """`path` decoded and shrunk to fit `w` x `h` (RGB, or RGBA where it has transparency);
    None when the file is unreadable (drawn as "missing file", never a crash)."""
    if path is None:
        return None
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                im.draft("RGB", (w, h))
            im.thumbnail((w, h), Image.Resampling.LANCZOS, reducing_gap=2.0)
            alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            return im.convert("RGBA" if alpha else "RGB")
    except (OSError, Image.DecompressionBombError):
        return None
