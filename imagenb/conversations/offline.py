"""Conversation turns without a service: `preview` draws them, `replay` refuses them.

A preview turn is deterministic: the image is the preview backend's drawing of the turn's text
(quoted text drawn large, the parent image inset when refining), with a revised prompt, a short
reasoning summary when thinking, a stand-in source when searching, and the estimated usage.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, ClassVar

from imagenb.backends import preview
from imagenb.backends.turns import PartialSink, TurnCall, TurnReply
from imagenb.conversations import money
from imagenb.conversations.settings import settings
from imagenb.errors import NotInStore


class PreviewTurns:
    """Offline, free, deterministic turns."""

    name: ClassVar[str] = "preview"

    async def converse(self, call: TurnCall, *, on_partial: PartialSink | None = None) -> TurnReply:
        s = settings(
            model=call.image_model,
            mainline=call.mainline,
            thinking=call.thinking,
            web_search=call.web_search,
            **call.image_options,
        )
        parent = (call.parent_image,) if call.parent_image else ()
        req = s.image_request(call.text, parent)
        partials = call.partial_images if call.stream and on_partial else 0
        image, sketches = await asyncio.to_thread(preview.render, req, 0, partials)
        for index, data in enumerate(sketches):
            if on_partial:
                on_partial(index, data)
        how = "refining the previous image" if parent else "a new image"
        digest = hashlib.sha256(f"{call.mainline}|{call.text}|{len(parent)}".encode()).hexdigest()
        estimate = money.estimate(s, call.text, context=0, pictures=[], partials=partials)
        return TurnReply(
            response_id=f"preview_{digest[:24]}",
            image=image,
            image_call_id=f"preview_ig_{digest[:16]}",
            revised_prompt=f"{call.text} (preview: {how})",
            reasoning=f"Preview plan: {call.text}. Keep what works, change what was asked."
            if call.thinking
            else None,
            text="PREVIEW: no model was asked; this stands in for its answer.",
            sources=(("Preview source (no search was made)", "https://example.org/preview"),)
            if call.web_search
            else (),
            usage=_usage(estimate.mainline_usd, s.mainline_spec.text_in),
            tool_usage=None,
            usage_is_estimate=True,
            resolved=preview.resolved(req),
        )


def _usage(usd: float, price_in: float) -> dict[str, Any]:
    """A usage shaped like the API's whose cost at the mainline's input rate is `usd`."""
    tokens = round(usd * 1e6 / price_in) if price_in else 0
    return {
        "input_tokens": tokens,
        "output_tokens": 0,
        "total_tokens": tokens,
        "input_tokens_details": {"cached_tokens": 0},
    }


class ReplayTurns:
    """The store only: reaching `converse` means the turn was never made."""

    name: ClassVar[str] = "replay"

    async def converse(self, call: TurnCall, *, on_partial: PartialSink | None = None) -> TurnReply:
        raise NotInStore(
            f"replay: the turn {call.text[:60]!r} (and its earlier turns as they are) is not in "
            "the store; run the notebook once with a key, or use backend='preview'"
        )
