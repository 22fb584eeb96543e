""" "Copy as code" for real: the snippet goes onto the browser's clipboard.

Python cannot reach the browser's clipboard, so the panel displays a tiny script in a hidden
Output widget; JupyterLab runs it (the output was made in this session, so it is trusted) and
it calls `navigator.clipboard.writeText`, falling back to `document.execCommand("copy")`
where the Clipboard API is refused. The same text also shows in the panel's text box.
"""

from __future__ import annotations

import json
from typing import Any


def copy_script(text: str) -> str:
    """JavaScript that puts `text` on the clipboard. `text` is embedded as a JSON string
    (`</` escaped), so no prompt can break out of it."""
    literal = json.dumps(text).replace("</", "<\\/")
    return (
        "(async () => { const text = " + literal + ";"
        " try { await navigator.clipboard.writeText(text); }"
        " catch (e) { const t = document.createElement('textarea'); t.value = text;"
        " document.body.appendChild(t); t.select(); document.execCommand('copy');"
        " t.remove(); } })();"
    )


def copy_to_clipboard(output: Any, text: str) -> None:
    """Run `copy_script(text)` in the browser through the `widgets.Output` `output`."""
    from IPython.display import Javascript, display

    output.clear_output()
    with output:
        display(Javascript(copy_script(text)))


def load_magics() -> None:
    """Load the `%imagegen` magics into this kernel, so the pasted cell runs here too."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is not None and "imagenb" not in shell.extension_manager.loaded:
        shell.extension_manager.load_extension("imagenb")
