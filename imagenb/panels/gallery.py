"""The panel's results: thumbnail cards to select and enlarge, the enlarged view, the history
list, and the static snapshot a saved notebook shows when no kernel backs the widget.

Widget state holds thumbnails only (each at most `display.MAX_THUMB_BYTES`), never a
full-resolution image; every text shown is HTML-escaped (prompts are untrusted).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from imagenb.core import config
from imagenb.engine import session
from imagenb.panels.stars import star_row
from imagenb.render import html as display
from imagenb.render.html import clip, esc
from imagenb.store.images import GeneratedImage

GALLERY_MAX = 24  # cards kept in the gallery; older results stay in the store (History)
HISTORY_ENTRIES = 12
HISTORY_ROWS = 400
ENLARGE_PX = 768
CARD_PX = 172
INPUT_PX = 64

# JupyterLab light/dark theme variables with fallbacks; one <style> for the whole panel.
CSS = """
.imagenb-panel{border:1px solid var(--jp-border-color2,#e0e0e0);border-radius:10px;
 padding:12px 14px;margin:4px 0;background:var(--jp-layout-color1,#fff);max-width:1000px;
 box-sizing:border-box;font-family:var(--jp-ui-font-family,system-ui,sans-serif)}
.imagenb-panel .widget-label,.imagenb-panel .widget-label-basic{color:var(--jp-ui-font-color1)}
.ipanel-head{display:flex;align-items:center;gap:10px;margin-bottom:6px}
.ipanel-title{font-size:15px;font-weight:600;color:var(--jp-ui-font-color0,#111)}
.ipanel-sub{font-size:12px;color:var(--jp-ui-font-color2,#666)}
.ipanel-pill{display:inline-block;padding:1px 8px;border-radius:10px;font-size:11px;
 font-weight:600;background:#b45309;color:#fff}
.ipanel-prompt textarea{font:14px/1.45 var(--jp-ui-font-family,system-ui,sans-serif);
 padding:8px 10px;border-radius:6px;min-height:66px;resize:vertical}
.ipanel-label{font-size:11px;font-weight:600;letter-spacing:.04em;text-transform:uppercase;
 color:var(--jp-ui-font-color2,#666)}
.ipanel-results-title{border-top:1px solid var(--jp-border-color2,#e0e0e0);margin-top:10px;
 padding-top:6px}
.ipanel-estimate{font-size:13px;color:var(--jp-ui-font-color1,#222)}
.ipanel-estimate b{color:var(--jp-ui-font-color0,#000)}
.ipanel-muted{color:var(--jp-ui-font-color2,#777)}
.ipanel-bad{color:var(--jp-error-color1,#c62828)}
.ipanel-message .ipanel-box{padding:6px 10px;border-radius:6px;font-size:13px;margin:2px 0;
 overflow-wrap:anywhere}
.ipanel-box.error{background:var(--jp-error-color3,#fdecea);color:var(--jp-error-color0,#8e1b1b);
 border-left:3px solid var(--jp-error-color1,#c62828)}
.ipanel-box.ok{background:var(--jp-success-color3,#e8f5e9);color:var(--jp-success-color0,#1b5e20);
 border-left:3px solid var(--jp-success-color1,#2e7d32)}
.ipanel-box.info{background:var(--jp-layout-color2,#f3f3f3);color:var(--jp-ui-font-color1)}
.ipanel-status{font-size:12px;color:var(--jp-ui-font-color1,#333)}
.ipanel-section{font-size:13px;font-weight:600;color:var(--jp-ui-font-color0,#111);
 margin:8px 0 2px}
.ipanel-card{border:1px solid var(--jp-border-color2,#ddd);border-radius:8px;padding:6px;
 background:var(--jp-layout-color1,#fff);width:188px;box-sizing:border-box}
.ipanel-card.ipanel-selected{border-color:var(--jp-brand-color1,#1976d2);
 box-shadow:0 0 0 2px var(--jp-brand-color2,#64b5f6)}
.ipanel-thumb{border-radius:5px;background:var(--jp-layout-color2,#f3f3f3)}
.ipanel-caption{font-size:11px;line-height:1.35;color:var(--jp-ui-font-color2,#555);
 overflow-wrap:anywhere}
.ipanel-caption .p{color:var(--jp-ui-font-color1,#222);display:-webkit-box;
 -webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden}
.ipanel-badge{display:inline-block;margin-left:3px;padding:0 5px;border:1px solid currentColor;
 border-radius:8px;font-size:10px}
.ipanel-viewer{border:1px solid var(--jp-border-color2,#ddd);border-radius:8px;padding:8px;
 background:var(--jp-layout-color2,#f7f7f7)}
.ipanel-inputs{padding:4px 8px;border-radius:6px;background:var(--jp-layout-color2,#f3f3f3);
 align-items:center}
.ipanel-history-card{border:1px solid var(--jp-border-color2,#ddd);border-radius:8px;
 padding:6px;width:calc(50% - 4px);min-width:280px;box-sizing:border-box;align-items:center}
.ipanel-history{margin-bottom:8px}
.ipanel-gallery{margin-top:4px}
.ipanel-busy .progress-bar{background-image:linear-gradient(45deg,rgba(255,255,255,.3) 25%,
 transparent 25%,transparent 50%,rgba(255,255,255,.3) 50%,rgba(255,255,255,.3) 75%,transparent 75%,
 transparent);background-size:18px 18px;animation:ipanel-stripes .8s linear infinite}
@keyframes ipanel-stripes{from{background-position:18px 0}to{background-position:0 0}}
.ipanel-code textarea{font-family:var(--jp-code-font-family,monospace);font-size:12px}
"""


def close_all(widget: Any) -> None:
    """Close `widget`, its children, layout and style (each is a model in the front end)."""
    for child in getattr(widget, "children", ()):
        close_all(child)
    for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
        if isinstance(part, widgets.Widget):
            part.close()
    widget.close()


def thumb(image: GeneratedImage, px: int) -> tuple[bytes, str]:
    """A small WebP/JPEG of `image` (cached in the store's thumbs/): `(data, widget format)`."""
    cfg = config.current()
    store = session.store_for(cfg)
    cache: Path | None = store.thumb_path(image.path, px, display.thumbnail_format())
    if Path(image.path).parent.parent.parent != store.root:
        cache = None  # an image from another store: don't leave thumbnails in this one
    data, mime = display.thumbnail(image.path, px, cache)
    return data, mime.split("/")[1]


def cost_text(image: GeneratedImage) -> str:
    if image.cached:
        return "$0 (stored)"
    if image.cost_usd is None:
        return "cost unknown"
    if image.backend == "preview":
        return f"≈${image.cost_usd:.4f} if real"
    return f"${image.cost_usd:.4f}" + (" est." if image.cost_is_estimate else "")


def settings_text(image: GeneratedImage) -> str:
    parts = [f"{image.width}\u00d7{image.height}", image.params.get("quality"), image.format]
    return " · ".join(str(p) for p in parts if p)


def caption_html(image: GeneratedImage) -> str:
    if image.cached:
        cost = '<span class="ipanel-badge" title="from the store: no charge">cached, free</span>'
    else:
        cost = " · " + esc(cost_text(image))
    if image.backend == "preview":
        cost += '<span class="ipanel-badge" title="offline preview backend">preview</span>'
    return (
        f'<div class="ipanel-caption"><div class="p" title="{esc(clip(image.prompt, 2000))}">'
        f"{esc(clip(image.prompt, 160))}</div>{esc(settings_text(image))}{cost}</div>"
    )


class Card:
    """One result: thumbnail, a Select toggle, an Enlarge button and a caption."""

    def __init__(
        self,
        image: GeneratedImage,
        data: bytes,
        fmt: str,
        order: tuple[int, int],
        on_select: Callable[[Card], None],
        on_enlarge: Callable[[Card], None],
    ) -> None:
        self.image = image
        self.thumb = (data, fmt)
        self.order = order
        side = f"{CARD_PX}px"
        self.picture = widgets.Image(
            value=data, format=fmt, layout=widgets.Layout(width=side, height=side)
        )
        self.picture.layout.object_fit = "contain"
        self.picture.add_class("ipanel-thumb")
        self.select = widgets.ToggleButton(
            description="Select",
            icon="check",
            tooltip="Select for Edit or Save",
            layout=widgets.Layout(width="124px"),
        )
        self.select.add_class("ipanel-select")
        self.enlarge_button = widgets.Button(
            icon="search-plus", tooltip="Enlarge", layout=widgets.Layout(width="40px")
        )
        self.enlarge_button.add_class("ipanel-enlarge")
        self.caption = widgets.HTML(caption_html(image))
        buttons = widgets.HBox([self.select, self.enlarge_button])
        self.box = widgets.VBox([self.picture, buttons, star_row(image), self.caption])
        self.box.add_class("ipanel-card")
        self.select.observe(lambda _change: on_select(self), "value")
        self.enlarge_button.on_click(lambda _button: on_enlarge(self))

    @property
    def selected(self) -> bool:
        return bool(self.select.value)

    def mark(self) -> None:
        """Show the selection on the card itself (border) and on its toggle."""
        if self.selected:
            self.box.add_class("ipanel-selected")
            self.select.button_style = "primary"
            self.select.description = "Selected"
        else:
            self.box.remove_class("ipanel-selected")
            self.select.button_style = ""
            self.select.description = "Select"

    def close(self) -> None:
        close_all(self.box)


class Viewer:
    """The enlarged view of one result: a bigger thumbnail (never the full file) and details."""

    def __init__(self) -> None:
        self.title = widgets.HTML()
        self.close_button = widgets.Button(
            description="Close", icon="times", layout=widgets.Layout(width="90px")
        )
        self.close_button.add_class("ipanel-viewer-close")
        self.picture = widgets.Image(
            value=b"",
            format="webp",
            layout=widgets.Layout(
                width="auto", max_width="100%", max_height="560px", align_self="center"
            ),
        )
        self.picture.add_class("ipanel-thumb")
        self.details = widgets.HTML()
        head = widgets.HBox(
            [self.title, self.close_button],
            layout=widgets.Layout(justify_content="space-between", align_items="center"),
        )
        self.box = widgets.VBox(
            [head, self.picture, self.details], layout=widgets.Layout(display="none")
        )
        self.box.add_class("ipanel-viewer")
        self.image: GeneratedImage | None = None
        self.close_button.on_click(lambda _b: self.hide())

    def show(self, image: GeneratedImage) -> None:
        data, fmt = thumb(image, ENLARGE_PX)
        self.image = image
        self.title.value = (
            f'<span class="ipanel-section">{esc(settings_text(image))} · {esc(image.model)}</span>'
        )
        with self.picture.hold_sync():
            self.picture.format = fmt
            self.picture.value = data
        self.details.value = (
            f'<div class="ipanel-caption"><div style="color:var(--jp-ui-font-color1)">'
            f"{esc(clip(image.prompt, 4000))}</div>{esc(cost_text(image))} · "
            f"full-resolution file: <code>{esc(image.path)}</code></div>"
        )
        self.box.layout.display = "flex"

    def hide(self) -> None:
        self.image = None
        self.picture.value = b""  # keep widget state small
        self.box.layout.display = "none"


class Gallery:
    """The results, newest run first, at most `GALLERY_MAX` cards."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self.box = widgets.Box(
            layout=widgets.Layout(display="flex", flex_flow="row wrap", grid_gap="10px")
        )
        self.box.add_class("ipanel-gallery")
        self.viewer = Viewer()
        self.cards: list[Card] = []
        self._on_change = on_change

    @property
    def images(self) -> list[GeneratedImage]:
        return [c.image for c in self.cards]

    @property
    def selected(self) -> list[GeneratedImage]:
        return [c.image for c in self.cards if c.selected]

    def add(self, image: GeneratedImage, data: bytes, fmt: str, order: tuple[int, int]) -> Card:
        """Add (or move to its new run) the card of `image`; `order` is (run, slot)."""
        old = next((c for c in self.cards if c.image.key == image.key), None)
        if old is not None:
            self.cards.remove(old)
            old.close()
        card = Card(image, data, fmt, order, self._selected, self._enlarge)
        self.cards.append(card)
        self.cards.sort(key=lambda c: (-c.order[0], c.order[1]))
        for extra in self.cards[GALLERY_MAX:]:
            extra.close()
        del self.cards[GALLERY_MAX:]
        self._show()
        return card

    def clear(self) -> None:
        for card in self.cards:
            card.close()
        self.cards = []
        self.viewer.hide()
        self._show()

    def select_none(self) -> None:
        for card in self.cards:
            card.select.value = False

    def _show(self) -> None:
        self.box.children = [c.box for c in self.cards]
        self._on_change()

    def _selected(self, card: Card) -> None:
        card.mark()
        self._on_change()

    def _enlarge(self, card: Card) -> None:
        self.viewer.show(card.image)


# --- history ----------------------------------------------------------------------------------


@dataclass
class HistoryEntry:
    """The stored images of one earlier request (same prompt, parameters and inputs)."""

    images: list[GeneratedImage]
    kind: str = "generate"

    @property
    def first(self) -> GeneratedImage:
        return self.images[0]

    @property
    def prompt(self) -> str:
        return self.first.prompt

    @property
    def params(self) -> dict[str, Any]:
        return self.first.params


def history_entries(rows: Sequence[Any], limit: int = HISTORY_ENTRIES) -> list[HistoryEntry]:
    """Group store rows (newest first) into requests; the newest `limit` of them."""
    groups: dict[str, list[GeneratedImage]] = {}
    kinds: dict[str, str] = {}
    for row in rows:
        params = {k: v for k, v in row.params.items() if k != "n" and not k.startswith("resolved_")}
        ident = json.dumps(
            [row.prompt, row.kind, params, list(row.input_keys)], sort_keys=True, default=str
        )
        if ident not in groups:
            if len(groups) == limit:
                continue
            groups[ident], kinds[ident] = [], row.kind
        groups[ident].append(GeneratedImage.from_stored(row, cached=True))
    return [HistoryEntry(sorted(g, key=lambda i: i.variant), kinds[k]) for k, g in groups.items()]


def _ago(created: float) -> str:
    seconds = max(0.0, time.time() - created)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


class HistoryCard:
    """One earlier request: a thumbnail, its prompt and settings, and Reload."""

    def __init__(
        self, entry: HistoryEntry, data: bytes, fmt: str, on_reload: Callable[[HistoryEntry], None]
    ) -> None:
        self.entry = entry
        self.picture = widgets.Image(
            value=data, format=fmt, layout=widgets.Layout(width="84px", height="84px")
        )
        self.picture.layout.object_fit = "contain"
        self.picture.add_class("ipanel-thumb")
        count = len(entry.images)
        kind = "· edit " if entry.kind == "edit" else ""
        self.text = widgets.HTML(
            f'<div class="ipanel-caption"><div class="p">{esc(clip(entry.prompt, 120))}</div>'
            f"{count} image{'' if count == 1 else 's'} · {esc(entry.first.model)} · "
            f"{esc(settings_text(entry.first))} {esc(kind)}· {_ago(entry.first.created)}</div>"
        )
        self.reload_button = widgets.Button(
            description="Reload", icon="undo", tooltip="Back into the panel, at no cost"
        )
        self.reload_button.layout.width = "96px"
        self.reload_button.add_class("ipanel-reload")
        self.reload_button.on_click(lambda _b: on_reload(entry))
        self.box = widgets.HBox(
            [self.picture, widgets.VBox([self.text, self.reload_button])],
            layout=widgets.Layout(grid_gap="8px"),
        )
        self.box.add_class("ipanel-history-card")

    def close(self) -> None:
        close_all(self.box)


class HistoryList:
    """Earlier results from the store, shown on demand."""

    def __init__(self, on_reload: Callable[[HistoryEntry], None]) -> None:
        self.header = widgets.HTML()
        self.list = widgets.Box(
            layout=widgets.Layout(display="flex", flex_flow="row wrap", grid_gap="8px")
        )
        self.box = widgets.VBox([self.header, self.list], layout=widgets.Layout(display="none"))
        self.box.add_class("ipanel-history")
        self.cards: list[HistoryCard] = []
        self._on_reload = on_reload

    @property
    def visible(self) -> bool:
        return bool(self.box.layout.display != "none")

    def show(self, entries: Sequence[tuple[HistoryEntry, bytes, str]]) -> None:
        self._drop()
        self.cards = [HistoryCard(e, data, fmt, self._on_reload) for e, data, fmt in entries]
        self.list.children = [c.box for c in self.cards]
        text = (
            f"History · the {len(entries)} most recent requests in the store"
            if entries
            else "History · the store is empty so far"
        )
        self.header.value = f'<div class="ipanel-section">{esc(text)}</div>'
        self.box.layout.display = "flex"

    def loading(self) -> None:
        self.header.value = '<div class="ipanel-section">History · reading the store…</div>'
        self.box.layout.display = "flex"

    def hide(self) -> None:
        self._drop()
        self.box.layout.display = "none"

    def _drop(self) -> None:
        for card in self.cards:
            card.close()
        self.cards = []
        self.list.children = []


def load_history(limit: int = HISTORY_ENTRIES) -> list[tuple[HistoryEntry, bytes, str]]:
    """The newest entries with their thumbnails (slow part: run it off the kernel thread)."""
    store = session.store_for(config.current())
    entries = history_entries(store.history(HISTORY_ROWS), limit)
    px = config.current().thumbnail_px
    return [(e, *thumb(e.first, px)) for e in entries]


# --- static snapshot --------------------------------------------------------------------------

# The snapshot follows the panel's widget output. A live panel hides it (a rule in the
# panel's own `<style>`, which exists only while the widget is live); everywhere else (a
# reopened notebook without a kernel, an untrusted copy, GitHub) it shows the gallery as it
# was, styled inline only. Its one `<style>` rule styles nothing: in a trusted notebook with
# no kernel it hides the dead widget output just before it ("Error displaying widget");
# where it is stripped, that output shows the widget's one line of text instead.
SNAPSHOT_MAX = 24  # newest images kept in the snapshot (each at most ~40 KB)
HIDE_SNAPSHOT_CSS = (
    ".jp-OutputArea-child:has(.imagenb-panel)+.jp-OutputArea-child:has(.imagenb-snapshot)"
    "{display:none}"
)
HIDE_DEAD_WIDGET = (
    "<style>.jp-OutputArea-child:not(:has(.imagenb-panel)):has(+.jp-OutputArea-child "
    ".imagenb-snapshot){display:none}</style>"
)
_SNAPSHOT = (
    "border:1px dashed var(--jp-border-color1,#bbb);border-radius:10px;padding:10px 12px;"
    "max-width:1000px;box-sizing:border-box"
)
_SNAPSHOT_HEAD = (
    "font:13px var(--jp-ui-font-family,sans-serif);margin-bottom:6px;"
    "color:var(--jp-ui-font-color2,#666)"
)


def snapshot_bundle(images: Sequence[GeneratedImage]) -> dict[str, str]:
    """The panel's gallery (newest first) as static HTML (thumbnails only) and text."""
    if images:
        shown = list(images[:SNAPSHOT_MAX])
        px = config.current().thumbnail_px
        more = len(images) - len(shown)
        title = f"{len(images)} image(s) in the gallery" + (
            f", the newest {len(shown)} shown" if more else ""
        )
        body = display.images_html(shown, px, title=title)
        head = "imagenb panel · its gallery (a static snapshot; run the cell for live controls)"
        plain = display.images_text(shown)
    else:
        body = ""
        head = "imagenb panel · no results yet (run the cell for live controls)"
        plain = head
    return {
        "text/html": (
            f'{HIDE_DEAD_WIDGET}<div class="imagenb-snapshot" style="{_SNAPSHOT}">'
            f'<div class="imagenb-snapshot-head" style="{_SNAPSHOT_HEAD}">{esc(head)}</div>'
            f"{body}</div>"
        ),
        "text/plain": plain,
    }
