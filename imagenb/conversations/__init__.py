"""Conversations: refine an image turn by turn with a mainline model (the Responses API).

`ig.chat(...)` is the entry point. The room is named `conversations`, not `chat`, so that
importing it never binds a module over the `ig.chat` function."""

from __future__ import annotations

from imagenb.conversations.conversation import Chat, chat
from imagenb.conversations.turn import Turn

__all__ = ["Chat", "Turn", "chat"]
