"""The second backend operation: one conversation turn (the Responses API with the image tool).

The Images API call (`Backend.run`) stays as it is; a backend that can hold a conversation
also implements `ConversationBackend.converse`. A turn goes in as a `TurnCall` (everything the
service needs, already validated) and comes back as a `TurnReply` (what the service made and
both usages: the mainline's `usage` and the image tool's `tool_usage.image_gen`). Nothing here
caches, retries or prices: `imagenb.conversations` does that once, for every backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from imagenb.errors import BackendError


@dataclass(frozen=True)
class TurnCall:
    """One turn as sent. `previous_response_id` continues a stored chain; without it,
    `parent_image` (the image being refined) goes in as an `input_image` (stateless)."""

    mainline: str
    text: str
    image_model: str
    image_options: dict[str, Any]  # size, quality, output_format, background, ... as sent
    thinking: str | None = None  # reasoning effort; its summary is asked for
    web_search: bool = False
    force_image: bool = False  # tool_choice names the image tool (refine turns)
    previous_response_id: str | None = None
    parent_image: bytes | None = None
    input_images: tuple[bytes, ...] = ()
    stream: bool = False
    partial_images: int = 0
    store: bool = True


@dataclass(frozen=True)
class TurnReply:
    """What one turn produced. `image` is None for a text-only answer (or a blocked image:
    then `blocked` holds the moderation error)."""

    response_id: str
    image: bytes | None
    image_call_id: str | None = None
    reasoning_id: str | None = None
    revised_prompt: str | None = None
    reasoning: str | None = None
    text: str = ""
    sources: tuple[tuple[str, str], ...] = ()  # (title, url); the title may be empty
    usage: dict[str, Any] | None = None
    tool_usage: dict[str, Any] | None = None
    usage_is_estimate: bool = False
    resolved: dict[str, Any] = field(default_factory=dict)  # size, quality, ... as made
    blocked: BackendError | None = None


class ContextLost(BackendError):
    """The service no longer has the parent response (expired, `store=false`, or never
    kept): continue statelessly by sending the parent image."""


PartialSink = Callable[[int, bytes], None]  # (index, encoded partial image)


@runtime_checkable
class ConversationBackend(Protocol):
    """A backend that can run conversation turns."""

    async def converse(self, call: TurnCall, *, on_partial: PartialSink | None = None) -> TurnReply:
        """Run one turn; raise `ContextLost` when `previous_response_id` is unknown."""
        ...
