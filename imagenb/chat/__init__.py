"""Conversations: refine an image turn by turn with a mainline model (the Responses API).

`ig.chat(...)` is the entry point. Importing this package makes Python bind the package to
`imagenb.chat`, over the lazily exported function of the same name, so the package module is
made callable: `ig.chat(...)` means the same whichever of the two the name holds.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from .conversation import Chat, chat
from .turn import Turn

__all__ = ["Chat", "Turn", "chat"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Chat:
        return chat(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
