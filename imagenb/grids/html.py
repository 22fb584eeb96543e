"""How a grid looks: the HTML table in a notebook (live, then static) and in a saved page,
and the contact-sheet description `sheet.py` draws.

Static by design: no JavaScript, no widget manager and no `<style>` block, so the last state
saved in the notebook reads the same in JupyterLab (trusted or not), VS Code, Colab, nbviewer,
GitHub and exported HTML. Each image is one WebP thumbnail (at most 384 px, within
`display.MAX_THUMB_BYTES`), shown at up to 192 px in a column that shares the output's width;
its tooltip names the size, cost and full-resolution file. The saved `.html` page is opened
from disk, where `file://` links do work, so there each thumbnail links to its full file.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence, Sized
from typing import TYPE_CHECKING, Protocol

from imagenb.render import html as display
from imagenb.render.html import PREVIEW_NOTICE, clip, esc
from imagenb.render.sheet import Sheet, Tile

if TYPE_CHECKING:
    from imagenb.core.frames import Layout
    from imagenb.grids.grid import Item
    from imagenb.grids.view import Thumbnails
    from imagenb.store.images import GeneratedImage
    from imagenb.text.match import TextCheck

THUMB_PX = 384  # stored thumbnail; cells show it at up to CELL_PX (sharp on HiDPI screens)
CELL_PX = 192
PAGE_CELL_PX = 384  # a saved grid.html shows the thumbnails at full size
SMALLEST_PX = 110  # below this a notebook grid scrolls sideways instead of shrinking
ROW_LABEL_PX = 140
PARTIAL_PX = 128
# Text budgets. Escaping can make a character 6 bytes (&quot;), and one image's markup must
# stay under 40 KB with a 37.3 KB worst-case thumbnail, so per-image text is kept short.
LABEL_CHARS = 160  # CSS shows four lines of it anyway
LABEL_TITLE_CHARS = 300
TITLE_CHARS = 120
ALT_CHARS = 60
CAPTION_CHARS = 120
PLACEHOLDER_CHARS = 180
ERROR_CHARS = 300

# Inline styles only (see display.py): nothing here can restyle another output, and an
# untrusted notebook or GitHub shows the same layout. JupyterLab styles every output table
# (right-aligned cells, zebra rows, a hover colour, borders and padding): each row and cell
# states its own alignment, background and padding, which beat those rules.
_GRID = f"{display.INK};{display.FONT}"
_SCROLL = "overflow-x:auto;max-width:100%;padding-bottom:4px"
_TABLE = "border-collapse:separate;border-spacing:6px;margin:0;table-layout:fixed;border:none"
_ROW = "background:transparent!important;border:none"
_CELL = "vertical-align:top;padding:0;border:none;background:transparent;text-align:left"
_HEAD = (
    "font-weight:600;text-align:center;vertical-align:bottom;padding:0 2px;border:none;"
    "background:transparent;overflow-wrap:anywhere"
)
_ROWHEAD = (
    "font-weight:600;text-align:right;vertical-align:middle;padding:0 4px 0 0;border:none;"
    "background:transparent;overflow-wrap:anywhere"
)
_CORNER = "font-weight:400;opacity:.7;text-align:left;vertical-align:bottom;border:none"
_LABEL = (
    "display:-webkit-box;-webkit-line-clamp:4;-webkit-box-orient:vertical;overflow:hidden;"
    "overflow-wrap:anywhere"
)
_BOX = "display:flex;flex-wrap:wrap;gap:4px"
_ITEM = "margin:0;min-width:0"
_IMG = "display:block;border-radius:4px;width:100%;height:auto;margin:0"
_PH = (
    "display:flex;flex-direction:column;justify-content:center;box-sizing:border-box;"
    "width:100%;padding:6px;border:1px dashed var(--jp-border-color1,rgba(128,128,128,.6));"
    "border-radius:4px;overflow:hidden;font-size:11px;opacity:.85;overflow-wrap:anywhere"
)
_ERR = (
    "display:flex;flex-direction:column;justify-content:center;box-sizing:border-box;"
    "width:100%;padding:6px;border:1px solid #b91c1c;border-radius:4px;overflow:hidden;"
    "font-size:11px;color:#b91c1c;background:rgba(185,28,28,.08);overflow-wrap:anywhere"
)
_PARTIAL_TAG = (
    "position:absolute;left:4px;top:4px;padding:0 4px;border-radius:3px;"
    "background:rgba(0,0,0,.6);color:#fff;font-size:10px"
)
_CAP = "font-size:11px;opacity:.8;overflow-wrap:anywhere"
_OCR = (
    "display:inline-block;margin-top:2px;padding:0 5px;border-radius:8px;font-size:10px;"
    "font-weight:600;color:#fff;background:{colour}"
)
_SUMMARY = "margin:2px 0 6px"


class GridLike(Protocol):
    """What the views below read: a `Grid`, or anything laid out like one (a storyboard).
    `table` only gives the number of rows, and `items(row)` their images as they stand."""

    @property
    def layout(self) -> Layout: ...
    @property
    def plan_line(self) -> str: ...
    @property
    def table(self) -> Sized: ...
    @property
    def thumbs(self) -> Thumbnails: ...
    @property
    def finished(self) -> bool: ...
    def items(self, row: int) -> list[Item]: ...
    def version(self) -> tuple[int, ...]: ...
    def progress_line(self) -> str: ...
    def describe(self) -> str: ...


def render(grid: GridLike, *, live: bool, standalone: bool = False) -> str:
    """The grid as one HTML fragment (or, `standalone`, a complete page)."""
    lay = grid.layout
    per_row = [grid.items(i) for i in range(len(grid.table))]
    grid.thumbs.prefetch([i.image for row in per_row for i in row if i.image], THUMB_PX)
    body = _table(grid, per_row, live=live, standalone=standalone)
    preview = any(
        i.image is not None and i.image.backend == "preview" for items in per_row for i in items
    )
    head = esc(readable_summary([i for items in per_row for i in items], live=live))
    run_state = esc(" · ".join(part for part in (grid.plan_line, grid.progress_line()) if part))
    if preview:
        head += f' <span class="imagenb-flag" style="{display.FLAG}">{esc(PREVIEW_NOTICE)}</span>'
    fragment = (
        f'<div class="imagenb-grid {display.NO_MATH}" style="{_GRID}" '
        f'data-rows="{lay.shape[0]}" data-cols="{lay.shape[1]}">'
        f'<div class="imagenb-summary" style="{_SUMMARY}" title="{run_state}">{head}</div>'
        f"{body}</div>"
    )
    if not standalone:
        return fragment
    return page(grid.describe(), fragment)


def readable_summary(items: Sequence[Item], *, live: bool) -> str:
    """`6 images · 4 new ($0.0240) · 2 from the store (free) · 1 failed`, in words a reader
    follows without knowing how runs work (`progress_line` keeps the run's own figures)."""
    total = len(items)
    made = [i.image for i in items if i.image is not None]
    new = [m for m in made if not m.cached]
    cached = len(made) - len(new)
    failed = sum(1 for i in items if i.status == "error")
    missing = total - len(made) - failed
    parts = [f"{total} image{'' if total == 1 else 's'}"]
    if new:
        usd = sum(m.cost_usd or 0.0 for m in new)
        if all(m.backend == "preview" for m in new):
            parts.append(f"{len(new)} new previews (free; ≈ ${usd:.4f} if real)")
        else:
            est = " est." if any(m.cost_is_estimate for m in new) else ""
            parts.append(f"{len(new)} new (${usd:.4f}{est})")
    if cached:
        parts.append(f"{'all ' if cached == total else ''}{cached} from the store (free)")
    if failed:
        parts.append(f"{failed} failed")
    if missing:
        parts.append(f"{missing} still coming" if live else f"{missing} not made")
    return " · ".join(parts)


def page(title: str, fragment: str) -> str:
    """A saved grid as a complete page titled with what made it and when."""
    import datetime

    when = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    heading = f"imagenb grid · {title} · saved {when}"
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{esc(clip(heading, 200))}'
        f'</title></head><body style="margin:16px;{display.FONT}">'
        f'<h1 style="font-size:18px;margin:0 0 8px">{esc(heading)}</h1>{fragment}</body></html>'
    )


def _table(grid: GridLike, per_row: list[list[Item]], *, live: bool, standalone: bool) -> str:
    """Columns share the output's width (scaled between SMALLEST_PX and the cell size); a
    grid too wide even then scrolls sideways inside its own box."""
    lay = grid.layout
    cell_px = PAGE_CELL_PX if standalone else CELL_PX
    cols = max(1, len(lay.cells[0]) if lay.cells else 1)
    label_px = ROW_LABEL_PX if lay.row_labels else 0
    widest = label_px + cols * (cell_px + 6) + 6
    narrowest = label_px + cols * (SMALLEST_PX + 6) + 6
    out = [
        f'<div class="imagenb-scroll" style="{_SCROLL}"><table style="{_TABLE};width:100%;'
        f'max-width:{widest}px;min-width:{narrowest}px">'
    ]
    out.append(
        "<colgroup>"
        + (f'<col style="width:{label_px}px">' if label_px else "")
        + "<col>" * cols
        + "</colgroup>"
    )
    if lay.col_labels:
        corner = _corner(lay.row_axis, lay.col_axis)
        first = f'<th style="{_CORNER}">{corner}</th>' if lay.row_labels else ""
        heads = "".join(f'<th style="{_HEAD}">{_label(label)}</th>' for label in lay.col_labels)
        out.append(f'<thead><tr style="{_ROW}">{first}{heads}</tr></thead>')
    out.append("<tbody>")
    for r, line in enumerate(lay.cells):
        out.append(f'<tr style="{_ROW}">')
        if lay.row_labels:
            label = _label(lay.row_labels[r])
            out.append(f'<th class="imagenb-rowlabel" scope="row" style="{_ROWHEAD}">{label}</th>')
        for cell in line:
            items = [item for row in cell for item in per_row[row]]
            out.append(f'<td style="{_CELL}">{_cell(grid, items, cell_px, live, standalone)}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _label(text: str) -> str:
    """An axis label clamped to four lines, the longer text in its tooltip."""
    title = esc(clip(text, LABEL_TITLE_CHARS))
    return (
        f'<div class="imagenb-label" style="{_LABEL}" title="{title}">'
        f"{esc(clip(text, LABEL_CHARS))}</div>"
    )


def _corner(row_axis: str | None, col_axis: str | None) -> str:
    parts = []
    if row_axis:
        parts.append(f"{esc(row_axis)} ↓")
    if col_axis:
        parts.append(f"{esc(col_axis)} →")
    return "<br>".join(parts)


def _cell(grid: GridLike, items: list[Item], cell_px: int, live: bool, standalone: bool) -> str:
    if not items:
        return ""
    per_line = 1 if len(items) == 1 else 2 if len(items) <= 4 else 3
    width = (cell_px - 4 * (per_line - 1)) // per_line
    share = f"calc((100% - {4 * (per_line - 1)}px) / {per_line})"
    parts = [_item(grid, i, width, live=live, standalone=standalone, share=share) for i in items]
    return f'<div class="imagenb-cell" style="{_BOX}">{"".join(parts)}</div>'


ANNOTATIONS = ("{cost}", "{latency}", "{cer}", "{status}")


def annotate(caption: str, item: Item) -> str:
    """Fill a caption template's result fields once the image is there: `{cost}` (what this
    image cost, "cached (free)" from the store), `{latency}`, `{cer}` (text check) and
    `{status}`. Row columns were filled earlier (`frames.captions`)."""
    if "{" not in caption:
        return caption
    image = item.image
    cost = latency = cer = ""
    if image is not None:
        cost = _cost_text(image)
        latency = f"{image.latency_s:.1f} s" if image.latency_s and not image.cached else ""
    if item.check is not None:
        cer = f"CER {item.check.cer:.2f}"
    values = dict(zip(ANNOTATIONS, (cost, latency, cer, item.status), strict=True))
    for token, value in values.items():
        caption = caption.replace(token, value)
    return caption


def _cost_text(image: GeneratedImage) -> str:
    if image.cached:
        return "cached (free)"
    if image.backend == "preview":
        return f"≈ ${image.cost_usd or 0:.4f} if real"
    return f"${image.cost_usd or 0:.4f}"


def _item(
    grid: GridLike,
    item: Item,
    width: int,
    *,
    live: bool,
    standalone: bool,
    share: str = "100%",
) -> str:
    """One image (or its placeholder) at `share` of its cell; `width` px where styles are
    stripped."""
    w, h = item.aspect
    text = annotate(item.caption, item)
    caption = (
        f'<div class="imagenb-cap" style="{_CAP}">{esc(clip(text, CAPTION_CHARS))}</div>'
        if text
        else ""
    )
    box = f"aspect-ratio:{max(w, 1)}/{max(h, 1)};min-height:24px"
    if item.image is not None:
        body = _picture(grid, item, width, standalone=standalone)
    elif item.status == "error":
        text = clip(item.error or "failed", ERROR_CHARS)
        body = (
            f'<div class="imagenb-ph imagenb-err" style="{_ERR};{box}" '
            f'title="{esc(clip(item.error or "", 1000))}">⚠ {esc(text)}</div>'
        )
    elif item.partial is not None and live:
        body = (
            f'<div class="imagenb-partial" style="position:relative">'
            f'<img src="{_partial_uri(item.partial)}" style="{_IMG};{box}" width="{width}" '
            f'alt="partial image"><span style="{_PARTIAL_TAG}">partial</span></div>'
        )
    else:
        state = "waiting…" if live else "not made (the run stopped)"
        body = (
            f'<div class="imagenb-ph" style="{_PH};{box}" '
            f'title="{esc(clip(item.prompt, TITLE_CHARS))}">'
            f"<div>{esc(clip(item.prompt, PLACEHOLDER_CHARS))}</div><i>{state}</i></div>"
        )
    badge = _check_badge(item.check) if item.image is not None else ""
    if item.image is not None and hasattr(grid, "score_badge"):  # grid(..., judge=RUBRIC)
        badge += grid.score_badge(item.image)
    return (
        f'<figure class="imagenb-item" style="{_ITEM};width:{share}">'
        f"{body}{badge}{caption}</figure>"
    )


def _check_badge(check: TextCheck | None) -> str:
    """`✓ text CER 0.00` under a checked image, with what was read in its tooltip."""
    if check is None:
        return ""  # not checked, or (while live) the check is still running
    kind, colour = ("", "#15803d") if check.passed else (" imagenb-ocr-fail", "#b91c1c")
    tip = esc(clip(check.describe(), TITLE_CHARS))
    style = _OCR.format(colour=colour)
    badge = esc(check.badge())
    return f'<div class="imagenb-ocr{kind}" style="{style}" title="{tip}">{badge}</div>'


def _picture(grid: GridLike, item: Item, width: int, *, standalone: bool) -> str:
    """The thumbnail; its tooltip holds the prompt, size, cost and file. In a saved page it
    links to the full file (file:// links work there; in a notebook the file is outside the
    server's root)."""
    image = item.image
    assert image is not None
    uri, tw, th = grid.thumbs.get(image, THUMB_PX)
    shown_h = max(1, round(width * th / max(tw, 1)))
    alt = esc(clip(item.prompt, ALT_CHARS))
    tag = f'<img src="{uri}" width="{width}" height="{shown_h}" style="{_IMG}" alt="{alt}">'
    cost = _cost_text(image)
    title = esc(
        f"{clip(item.prompt, TITLE_CHARS)}\n{image.width}x{image.height} · {cost}\n{image.path}"
    )
    if standalone:
        href = esc(image.path.resolve().as_uri())
        return f'<a href="{href}" title="{title}" style="display:block">{tag}</a>'
    return f'<div class="imagenb-pic" title="{title}">{tag}</div>'


def _partial_uri(data: bytes) -> str:
    """A small JPEG of a streamed partial image (live view only, never saved)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.thumbnail((PARTIAL_PX, PARTIAL_PX))
            buf = io.BytesIO()
            im.convert("RGB").save(buf, "JPEG", quality=50)
    except OSError:
        return ""
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --- the contact sheet's description ----------------------------------------------------------


def sheet_of(grid: GridLike) -> Sheet:
    """What `sheet.render` draws: labels, and per cell its images, errors and placeholders."""
    lay = grid.layout
    per_row = [grid.items(i) for i in range(len(grid.table))]
    cells = tuple(
        tuple(tuple(_tile(item) for row in cell for item in per_row[row]) for cell in line)
        for line in lay.cells
    )
    corner = " · ".join(
        f"{axis}: {name}" for axis, name in (("rows", lay.row_axis), ("cols", lay.col_axis)) if name
    )  # words, not arrows: common label fonts lack the arrow glyphs
    title = f"imagenb grid · {grid.describe()}"
    return Sheet(title, lay.row_labels, lay.col_labels, corner, cells)


def _tile(item: Item) -> Tile:
    w, h = item.aspect
    text = annotate(item.caption, item)
    if item.image is not None:
        badge = item.check.badge(symbols=False) if item.check is not None else ""
        caption = " · ".join(part for part in (badge, text) if part)
        return Tile(item.image.path, w, h, caption=caption)
    if item.status == "error":
        return Tile(None, w, h, text=item.error or "failed", error=True, caption=text)
    return Tile(None, w, h, text=f"not made: {item.prompt}", caption=text)
