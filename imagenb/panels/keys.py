"""The panel's keyboard shortcuts: Ctrl/Cmd+Enter generates (or edits), Esc closes the
enlarged view. An invisible anywidget in the panel listens in the browser (`keys.js`)
and asks the kernel, which clicks the same buttons a person would."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget

if TYPE_CHECKING:
    from imagenb.panels.widget import Panel


class PanelKeys(anywidget.AnyWidget):
    """Shortcuts for one panel (it must be among the panel's children to hear its keys)."""

    _esm = Path(__file__).parent / "keys.js"

    def __init__(self, panel: Panel) -> None:
        super().__init__(layout={"display": "none"})
        self.panel = panel
        self.on_msg(self._on_key)

    def _on_key(self, _: Any, content: dict[str, Any], buffers: list[Any]) -> None:
        key = content.get("key")
        if key == "generate" and not self.panel.generate_button.disabled:
            self.panel.generate_button.click()
        elif key == "escape":
            self.panel.gallery.viewer.hide()
