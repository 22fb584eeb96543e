"""Two images compared in a widget: one over the other with a slider that uncovers the second,
or side by side. It holds two thumbnails (never the full files); the panel's Compare shows it
for two selected results."""

from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

from imagenb.render import html as display
from imagenb.store.images import GeneratedImage

_HERE = Path(__file__).parent
COMPARE_PX = 512


class CompareView(anywidget.AnyWidget):
    """`left` and `right` at `px` (long edge); `side_by_side` switches the layout."""

    _esm = _HERE / "compare_view.js"
    _css = _HERE / "compare_view.css"

    side_by_side = traitlets.Bool(False).tag(sync=True)
    left_label = traitlets.Unicode().tag(sync=True)
    right_label = traitlets.Unicode().tag(sync=True)
    mime = traitlets.Unicode().tag(sync=True)
    _left = traitlets.Bytes().tag(sync=True)
    _right = traitlets.Bytes().tag(sync=True)

    def __init__(
        self, left: GeneratedImage, right: GeneratedImage, *, px: int = COMPARE_PX
    ) -> None:
        (a, mime), (b, _) = display.thumbnail(left.path, px), display.thumbnail(right.path, px)
        super().__init__(
            _left=a,
            _right=b,
            mime=mime,
            left_label=display.clip(left.prompt, 60),
            right_label=display.clip(right.prompt, 60),
        )
