"""How a grid looks: the HTML table in a notebook (live, then static) and in a saved page,
and the contact-sheet description `sheet.py` draws.

Static by design: no JavaScript and no widget manager, so the last state saved in the notebook
reads the same in JupyterLab, VS Code, Colab, nbviewer and exported HTML. Each image is one
WebP thumbnail (at most 384 px, within `display.MAX_THUMB_BYTES`), shown at half size in its
cell; clicking it (a `<details>` toggle, pure CSS) shows it at full thumbnail size with the
full-resolution file's path, which lives in the store outside the notebook server's root, so
a link to it could not be relied on there. The saved `.html` page is opened from disk, where
`file://` links do work, so there each thumbnail links to its full file.
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import os
import threading
import time
from collections.abc import Sequence, Sized
from typing import TYPE_CHECKING, Any, Protocol

from . import display
from .display import PREVIEW_NOTICE, clip, esc
from .engine import loop
from .sheet import Sheet, Tile

if TYPE_CHECKING:
    from .api import Job
    from .frames import Layout
    from .grids import Item
    from .results import GeneratedImage
    from .store import Store
    from .textmatch import TextCheck

THUMB_PX = 384  # stored thumbnail; cells show it at CELL_PX and enlarge to it on click
CELL_PX = 192
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

_CSS = (
    ".imagenb-grid{font:12px/1.4 var(--jp-ui-font-family,system-ui,sans-serif);"
    "color:var(--jp-ui-font-color1,inherit)}"
    ".imagenb-grid table{border-collapse:separate;border-spacing:6px;margin:0}"
    ".imagenb-grid th{font-weight:600;text-align:center;vertical-align:bottom;padding:0 2px}"
    ".imagenb-grid th.imagenb-rowlabel{text-align:right;vertical-align:middle;max-width:160px}"
    ".imagenb-grid th.imagenb-corner{font-weight:400;opacity:.7;vertical-align:bottom}"
    ".imagenb-grid td{vertical-align:top;padding:0}"
    ".imagenb-label{display:-webkit-box;-webkit-line-clamp:4;-webkit-box-orient:vertical;"
    "overflow:hidden;overflow-wrap:anywhere}"
    ".imagenb-cell{display:flex;flex-wrap:wrap;gap:4px}"
    ".imagenb-item{margin:0}"
    ".imagenb-item img{display:block;border-radius:4px;height:auto}"
    ".imagenb-ph{display:flex;flex-direction:column;justify-content:center;box-sizing:border-box;"
    "padding:6px;border:1px dashed var(--jp-border-color1,rgba(128,128,128,.6));"
    "border-radius:4px;overflow:hidden;font-size:11px;opacity:.85;overflow-wrap:anywhere}"
    ".imagenb-err{border:1px solid #b91c1c;color:#b91c1c;background:rgba(185,28,28,.08);"
    "opacity:1}"
    ".imagenb-partial{position:relative}"
    ".imagenb-partial span{position:absolute;left:4px;top:4px;padding:0 4px;border-radius:3px;"
    "background:rgba(0,0,0,.6);color:#fff;font-size:10px}"
    "details.imagenb-zoom>summary{list-style:none;cursor:zoom-in}"
    "details.imagenb-zoom>summary::-webkit-details-marker{display:none}"
    "details.imagenb-zoom[open]>summary{cursor:zoom-out}"
    "details.imagenb-zoom[open]>summary img{width:auto!important;height:auto!important;"
    "max-width:none;position:relative;z-index:2;box-shadow:0 2px 12px rgba(0,0,0,.45)}"
    ".imagenb-meta{position:relative;z-index:2;width:376px;padding:2px 4px;font-size:10px;"
    "overflow-wrap:anywhere;background:var(--jp-layout-color1,#fff)}"
    ".imagenb-meta code{font-size:10px}"
    ".imagenb-cap{font-size:11px;opacity:.8;overflow-wrap:anywhere}"
    ".imagenb-summary{margin:2px 0 6px}"
    ".imagenb-ocr{display:inline-block;margin-top:2px;padding:0 5px;border-radius:8px;"
    "font-size:10px;font-weight:600;color:#fff;background:#15803d}"
    ".imagenb-ocr-fail{background:#b91c1c}"
    ".imagenb-flag{display:inline-block;margin-left:6px;padding:0 6px;border-radius:4px;"
    "background:#b45309;color:#fff;font-weight:600;font-size:11px}"
)


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
    head = " · ".join(esc(part) for part in (grid.plan_line, grid.progress_line()) if part)
    if preview:
        head += f'<span class="imagenb-flag">{esc(PREVIEW_NOTICE)}</span>'
    fragment = (
        f'<style>{_CSS}</style><div class="imagenb-grid {display.NO_MATH}" '
        f'data-rows="{lay.shape[0]}" data-cols="{lay.shape[1]}">'
        f'<div class="imagenb-summary">{head}</div>{body}</div>'
    )
    if not standalone:
        return fragment
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>imagenb grid</title></head>'
        f'<body style="margin:16px">{fragment}</body></html>'
    )


def _table(grid: GridLike, per_row: list[list[Item]], *, live: bool, standalone: bool) -> str:
    lay = grid.layout
    out = ["<table>"]
    if lay.col_labels:
        corner = _corner(lay.row_axis, lay.col_axis)
        first = f'<th class="imagenb-corner">{corner}</th>' if lay.row_labels else ""
        heads = "".join(
            f'<th style="max-width:{CELL_PX}px">{_label(label)}</th>' for label in lay.col_labels
        )
        out.append(f"<thead><tr>{first}{heads}</tr></thead>")
    out.append("<tbody>")
    for r, line in enumerate(lay.cells):
        out.append("<tr>")
        if lay.row_labels:
            label = _label(lay.row_labels[r])
            out.append(f'<th class="imagenb-rowlabel" scope="row">{label}</th>')
        for cell in line:
            items = [item for row in cell for item in per_row[row]]
            out.append(f"<td>{_cell(grid, items, live=live, standalone=standalone)}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _label(text: str) -> str:
    """An axis label clamped to four lines, the longer text in its tooltip."""
    title = esc(clip(text, LABEL_TITLE_CHARS))
    return f'<div class="imagenb-label" title="{title}">{esc(clip(text, LABEL_CHARS))}</div>'


def _corner(row_axis: str | None, col_axis: str | None) -> str:
    parts = []
    if row_axis:
        parts.append(f"{esc(row_axis)} ↓")
    if col_axis:
        parts.append(f"{esc(col_axis)} →")
    return "<br>".join(parts)


def _cell(grid: GridLike, items: list[Item], *, live: bool, standalone: bool) -> str:
    if not items:
        return ""
    per_line = 1 if len(items) == 1 else 2 if len(items) <= 4 else 3
    width = (CELL_PX - 4 * (per_line - 1)) // per_line
    parts = [_item(grid, i, width, live=live, standalone=standalone) for i in items]
    return f'<div class="imagenb-cell" style="width:{CELL_PX}px">{"".join(parts)}</div>'


def _item(grid: GridLike, item: Item, width: int, *, live: bool, standalone: bool) -> str:
    w, h = item.aspect
    height = max(24, round(width * h / max(w, 1)))
    caption = (
        f'<div class="imagenb-cap">{esc(clip(item.caption, CAPTION_CHARS))}</div>'
        if item.caption
        else ""
    )
    box = f"width:{width}px;height:{height}px"
    if item.image is not None:
        body = _picture(grid, item, width, standalone=standalone)
    elif item.status == "error":
        text = clip(item.error or "failed", ERROR_CHARS)
        body = (
            f'<div class="imagenb-ph imagenb-err" style="{box}" '
            f'title="{esc(clip(item.error or "", 1000))}">⚠ {esc(text)}</div>'
        )
    elif item.partial is not None and live:
        body = (
            f'<div class="imagenb-partial"><img src="{_partial_uri(item.partial)}" '
            f'style="{box}" alt="partial image"><span>partial</span></div>'
        )
    else:
        state = "waiting…" if live else "not made (the run stopped)"
        body = (
            f'<div class="imagenb-ph" style="{box}" title="{esc(clip(item.prompt, TITLE_CHARS))}">'
            f"<div>{esc(clip(item.prompt, PLACEHOLDER_CHARS))}</div><i>{state}</i></div>"
        )
    badge = _check_badge(item.check) if item.image is not None else ""
    if item.image is not None and hasattr(grid, "score_badge"):  # grid(..., judge=RUBRIC)
        badge += grid.score_badge(item.image)
    return f'<figure class="imagenb-item" style="width:{width}px">{body}{badge}{caption}</figure>'


def _check_badge(check: TextCheck | None) -> str:
    """`✓ text CER 0.00` under a checked image, with what was read in its tooltip."""
    if check is None:
        return ""  # not checked, or (while live) the check is still running
    kind = "" if check.passed else " imagenb-ocr-fail"
    tip = esc(clip(check.describe(), TITLE_CHARS))
    return f'<div class="imagenb-ocr{kind}" title="{tip}">{esc(check.badge())}</div>'


def _picture(grid: GridLike, item: Item, width: int, *, standalone: bool) -> str:
    image = item.image
    assert image is not None
    uri, tw, th = grid.thumbs.get(image, THUMB_PX)
    shown_h = max(1, round(width * th / max(tw, 1)))
    alt = esc(clip(item.prompt, ALT_CHARS))
    tag = f'<img src="{uri}" width="{width}" height="{shown_h}" alt="{alt}">'
    title = esc(f"{clip(item.prompt, TITLE_CHARS)}\n{image.path}")
    if standalone:
        return f'<a href="{esc(image.path.resolve().as_uri())}" title="{title}">{tag}</a>'
    cost = f"${image.cost_usd or 0:.4f}"
    if image.cached:
        cost = "cached (free)"
    elif image.backend == "preview":
        cost = f"≈ {cost} if real"
    meta = f"{image.width}x{image.height} · {cost} · <code>{esc(image.path)}</code>"
    return (
        f'<details class="imagenb-zoom"><summary title="{title}">{tag}</summary>'
        f'<div class="imagenb-meta">{meta}</div></details>'
    )


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
    if item.image is not None:
        badge = item.check.badge(symbols=False) if item.check is not None else ""
        caption = " · ".join(part for part in (badge, item.caption) if part)
        return Tile(item.image.path, w, h, caption=caption)
    if item.status == "error":
        return Tile(None, w, h, text=item.error or "failed", error=True, caption=item.caption)
    return Tile(None, w, h, text=f"not made: {item.prompt}", caption=item.caption)


# --- thumbnails -------------------------------------------------------------------------------


class Thumbnails:
    """Data URIs of store thumbnails (`display.thumbnail`, cached on disk by the store), kept
    in memory too, so a redraw re-encodes nothing."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._memo: dict[str, tuple[str, int, int]] = {}

    def get(self, image: GeneratedImage, px: int) -> tuple[str, int, int]:
        """`(data URI, width, height)` of `image`'s thumbnail with its long edge at most `px`."""
        memo = f"{image.path}-{px}"
        if memo not in self._memo:
            cache = self._store.thumb_path(image.path, px, display.thumbnail_format())
            data, mime = display.thumbnail(image.path, px, cache)
            scale = min(1.0, px / max(image.width, image.height, 1))
            uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
            self._memo[memo] = (uri, round(image.width * scale), round(image.height * scale))
        return self._memo[memo]

    def prefetch(self, images: Sequence[GeneratedImage], px: int) -> None:
        """Make missing thumbnails on a few threads (Pillow decodes without the GIL): the
        first view of 64 new 2560x1440 images is CPU-bound."""
        todo = [i for i in images if f"{i.path}-{px}" not in self._memo]
        if len(todo) < 2:
            return
        workers = min(8, os.cpu_count() or 2, len(todo))
        with concurrent.futures.ThreadPoolExecutor(workers, "imagenb-thumbs") as pool:
            for _ in pool.map(lambda image: self.get(image, px), todo):
                pass


# --- notebook glue ----------------------------------------------------------------------------


class LiveView:
    """Keeps a notebook view of a running grid current. Redraws happen only when the grid
    changed, at most every 0.25 s, and slower for big grids so the front end gets at most
    ~400 KB/s (Jupyter drops IOPub output above 1 MB/s); the last redraw is always sent."""

    MIN_INTERVAL = 0.25
    BYTES_PER_S = 400_000

    def __init__(self, grid: GridLike, view: NotebookView) -> None:
        self.grid = grid
        self.view = view
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last: tuple[float, float, tuple[int, ...]] = (0.0, -1.0, ())  # when, gap, version
        view.show(render(grid, live=True), repr(grid))

    def refresh(self, *, force: bool = False) -> None:
        with self._lock:
            when, gap, seen = self._last
            version = self.grid.version()
            if not force and (version == seen or time.monotonic() - when < gap):
                return
            text = render(self.grid, live=not self.grid.finished)
            self.view.update(text, repr(self.grid))
            self._last = (
                time.monotonic(),
                max(self.MIN_INTERVAL, len(text) / self.BYTES_PER_S),
                version,
            )

    def follow(self, job: Job) -> None:
        """Redraw from a background thread (`wait=False`). Started from the running cell, so
        the kernel attributes its output to that cell."""

        def run() -> None:
            try:
                loop.wait(job.future, tick=self.refresh)
            except BaseException:  # a failed or cancelled run shows in its cells
                pass
            finally:
                self.refresh(force=True)

        self._thread = threading.Thread(target=run, name="imagenb-grid-view", daemon=True)
        self._thread.start()

    def wait(self, job: Job) -> None:
        """Block until `job` is done (interruptibly), redrawing unless a thread already does."""
        if self._thread is not None:
            loop.wait(job.future, settled=job.run.settled)
            self._thread.join()
            return
        try:
            loop.wait(job.future, tick=self.refresh, settled=job.run.settled)
        finally:
            self.refresh(force=True)


class NotebookView:
    """An HTML output updated in place by `display_id`; what stays in the notebook is the last
    update, plain HTML."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._count: int | None = None

    def show(self, html: str, plain: str) -> None:
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        self._count = getattr(shell, "execution_count", None)
        self._handle = display({"text/html": html, "text/plain": plain}, raw=True, display_id=True)

    def update(self, html: str, plain: str) -> None:
        if self._handle is not None:
            self._handle.update({"text/html": html, "text/plain": plain}, raw=True)

    def in_current_cell(self) -> bool:
        """True while the cell that showed this view is still the one running."""
        from IPython import get_ipython

        shell = get_ipython()
        return shell is not None and getattr(shell, "execution_count", None) == self._count
