"""Conversations: refine an image turn by turn with a mainline model (the Responses API)."""

from __future__ import annotations

from .conversation import Chat, chat
from .turn import Turn

__all__ = ["Chat", "Turn", "chat"]
