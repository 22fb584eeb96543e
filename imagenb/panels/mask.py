"""The panel's "Paint mask": paint a mask on the selected image, and the next Edit sends it and
keeps the outside, as `ig.edit(..., mask=painter)` does; edited cards name their source, two
selected images can be compared (`compare_view`), and the keyboard works (`panel_keys`).

`attach(panel)` is the panel's one hook. It adds the button and the painter's box, and wraps
two of the panel's steps on that panel alone: the request Generate sends (the mask joins it
when the edit's first input is the painted image) and each arriving image (composited onto
the input before its card is made, on the panel's worker, in arrival order).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from imagenb.core import config, inputs
from imagenb.masks import keep
from imagenb.masks.compare_view import CompareView
from imagenb.masks.painter import MaskPainter
from imagenb.panels.keys import PanelKeys
from imagenb.render.html import clip, esc

if TYPE_CHECKING:
    from imagenb.core.request import ImageRequest
    from imagenb.panels.widget import Panel
    from imagenb.store.images import GeneratedImage

PAINTER_PX = 512


class MaskTool:
    """The mask part of one panel: `button` opens `painter` in `box`."""

    def __init__(self, panel: Panel) -> None:
        from imagenb.panels.controls import make

        self.panel = panel
        self.painter: MaskPainter | None = None
        self.keys = PanelKeys(panel)
        self._sent: ImageRequest | None = None
        self._sources: list[GeneratedImage] = []
        self.button = make(
            widgets.Button, "ipanel-paint-mask", description="Paint mask", icon="paint-brush",
            tooltip="Paint, on the selected image, the area the next Edit may change",
            layout=widgets.Layout(width="120px"),
        )  # fmt: skip
        self.note = widgets.HTML()
        self.off_button = make(
            widgets.Button, "ipanel-mask-off", description="No mask", icon="times",
            tooltip="Edit the whole image again", layout=widgets.Layout(width="100px"),
        )  # fmt: skip
        self.box = make(
            widgets.VBox, "ipanel-mask", children=[self.note, self.off_button],
            layout=widgets.Layout(display="none", margin="4px 0"),
        )  # fmt: skip
        self.button.on_click(panel._mail.locked(self.open))
        self.off_button.on_click(panel._mail.locked(self.close))
        self.compare_button = make(
            widgets.Button, "ipanel-compare", description="Compare", icon="columns",
            tooltip="Compare the two selected images: side by side, or with a slider",
            layout=widgets.Layout(width="110px"),
        )  # fmt: skip
        self.compare_close = make(
            widgets.Button, "ipanel-compare-close", description="Close", icon="times",
            layout=widgets.Layout(width="90px"),
        )  # fmt: skip
        self.compare_box = make(
            widgets.VBox, "ipanel-compare-box", children=[self.compare_close],
            layout=widgets.Layout(display="none", margin="4px 0"),
        )  # fmt: skip
        self.compare_button.on_click(panel._mail.locked(self.compare))
        self.compare_close.on_click(panel._mail.locked(self.end_compare))

    def open(self, _button: Any = None) -> None:
        """Paint on the one selected image, which becomes the input of the next Edit."""
        chosen = self.panel.gallery.selected
        if len(chosen) != 1:
            self.panel._say("info", "Select one image to paint a mask on.")
            return
        self.panel._edit()
        self.close()
        self.painter = MaskPainter(chosen[0], display_px=PAINTER_PX)
        self.note.value = (
            '<span class="ipanel-section">Mask for the next Edit</span> paint the area to '
            "change; everything else stays exactly as it is"
        )
        self.box.children = [self.note, self.painter, self.off_button]
        self.box.layout.display = "flex"

    def close(self, _button: Any = None) -> None:
        if self.painter is not None:
            self.painter.close()
        self.painter = None
        self.box.children = [self.note, self.off_button]
        self.box.layout.display = "none"

    def compare(self, _button: Any = None) -> None:
        """The two selected images, one over the other with a slider (or side by side)."""
        chosen = self.panel.gallery.selected
        if len(chosen) != 2:
            self.panel._say("info", "Select two images to compare.")
            return
        self.end_compare()
        self.compare_box.children = [CompareView(*chosen), self.compare_close]
        self.compare_box.layout.display = "flex"

    def end_compare(self, _button: Any = None) -> None:
        for child in self.compare_box.children[:-1]:
            child.close()
        self.compare_box.children = [self.compare_close]
        self.compare_box.layout.display = "none"

    def request(self, made: ImageRequest) -> ImageRequest:
        """`made` with the painted mask when its first input is the painted image."""
        painter = self.painter
        self._sent, self._sources = None, list(self.panel._inputs)
        if painter is None or not made.images or painter.painted == 0.0:
            return made
        if made.images[0].sha256 != painter.image_sha256:
            return made
        self._sent = keep.prepare(replace(made, mask=inputs.load(painter, role="mask")))
        return self._sent

    def arrived(self, seq: int, image: GeneratedImage) -> None:
        """Engine thread: composite (when masked) and thumbnail on the worker, then show."""
        from imagenb.panels.gallery import thumb
        from imagenb.panels.threads import render

        sent, sources, panel = self._sent, self._sources, self.panel

        def make() -> None:
            shown = image
            if sent is not None and image.key in sent.variant_keys():
                (shown,) = keep.finish(sent, [image], config.current())
            data, fmt = thumb(shown, config.current().thumbnail_px)
            panel._mail.post(lambda: panel._add(seq, shown, data, fmt))
            if sources:  # an edit: name what it came from
                panel._mail.post(lambda: self._name_sources(shown, sources))

        render(make)

    def _name_sources(self, image: GeneratedImage, sources: list[GeneratedImage]) -> None:
        """Under an edited card: the image(s) it came from, and what a kept outside changed."""
        card = next((c for c in self.panel.cards if c.image is image), None)
        if card is None:
            return
        first = sources[0]
        more = f" and {len(sources) - 1} more" if len(sources) > 1 else ""
        line = f"edit of “{clip(first.prompt, 60)}” ({first.key[:8]}){more}"
        if image.changed_outside is not None:
            line += f" · outside kept (the model had changed {image.changed_outside:.0%})"
        card.caption.value += f'<div class="ipanel-caption ipanel-lineage">{esc(line)}</div>'


def attach(panel: Panel) -> MaskTool:
    """Give `panel` its "Paint mask" button and painter (see the module's docstring)."""
    tool = MaskTool(panel)
    original_request = panel.request
    panel.request = lambda: tool.request(original_request())  # type: ignore[method-assign]
    panel._arrived = lambda seq, index, image: tool.arrived(seq, image)  # type: ignore[method-assign]
    toolbar = next(c for c in panel.children if panel.edit_button in getattr(c, "children", ()))
    at = list(toolbar.children).index(panel.edit_button) + 1
    toolbar.children = [
        *toolbar.children[:at],
        tool.button,
        tool.compare_button,
        *toolbar.children[at:],
    ]
    at = list(panel.children).index(panel.inputs_box) + 1
    panel.children = [*panel.children[:at], tool.box, *panel.children[at:], tool.keys]
    at = list(panel.children).index(panel.gallery.viewer.box)
    panel.children = [*panel.children[:at], tool.compare_box, *panel.children[at:]]
    return tool
