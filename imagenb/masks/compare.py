"""Before and after a masked edit, side by side: the input, the model's answer as it came and
the result that kept the outside, as thumbnails with what each one is. Static HTML (no
script), so a saved notebook shows it anywhere; never a full-resolution image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagenb.core import inputs
from imagenb.render import html as display
from imagenb.store.images import GeneratedImage

_CSS = (
    "<style>.imagenb-compare{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start;"
    "font:12px/1.4 var(--jp-ui-font-family,system-ui,sans-serif);"
    "color:var(--jp-ui-font-color1,inherit)}"
    ".imagenb-compare figure{margin:0;padding:6px;border:1px solid "
    "var(--jp-border-color2,rgba(128,128,128,.35));border-radius:6px}"
    ".imagenb-compare img{display:block;max-width:100%;height:auto;border-radius:4px}"
    ".imagenb-compare figcaption{margin-top:4px;max-width:256px}</style>"
)


@dataclass(frozen=True)
class BeforeAfter:
    """`before` (anything `ig.edit` takes as an image) beside `after`, a result of a masked
    edit (with its raw answer between them when it kept the outside)."""

    before: Any
    after: GeneratedImage
    px: int = 256

    def panels(self) -> list[tuple[bytes, str, str]]:
        """(thumbnail, MIME type, caption) of each image shown, left to right."""
        shown = [
            (*display.thumbnail(inputs.load(self.before, role="before").data, self.px), "before")
        ]
        raw, changed = self.after.raw, self.after.changed_outside
        if raw is not None:
            note = "" if changed is None else f" · it changed {changed:.0%} of the outside"
            shown.append((*display.thumbnail(raw.path, self.px), f"the model's answer{note}"))
        kept = "after · the outside kept as it was" if raw is not None else "after"
        shown.append((*display.thumbnail(self.after.path, self.px), kept))
        return shown

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        import base64

        panels = self.panels()
        figures = "".join(
            f'<figure><img src="data:{mime};base64,{base64.b64encode(data).decode("ascii")}" '
            f'alt="{display.esc(caption)}"><figcaption>{display.esc(caption)}</figcaption></figure>'
            for data, mime, caption in panels
        )
        plain = " | ".join(caption for _, _, caption in panels)
        return {
            "text/html": f'{_CSS}<div class="imagenb-compare {display.NO_MATH}">{figures}</div>',
            "text/plain": plain,
        }
