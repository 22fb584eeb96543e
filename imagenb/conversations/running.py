"""Running conversation turns on the engine loop: the backend for the configuration, the
engine's retry policy, the stateless fallback when the service lost the parent, and the
partial images of a streamed turn."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace

from imagenb.backends.base import Partial
from imagenb.backends.turns import (
    ContextLost,
    ConversationBackend,
    PartialSink,
    TurnCall,
    TurnReply,
)
from imagenb.conversations import money
from imagenb.conversations.offline import PreviewTurns, ReplayTurns
from imagenb.conversations.settings import ChatSettings
from imagenb.conversations.turn import Turn
from imagenb.core import config as config_mod
from imagenb.engine import session
from imagenb.engine.retry import RetryPolicy
from imagenb.errors import BackendError, ImagenbError, InvalidRequest


@dataclass
class Pending:
    """A turn validated, estimated and ready to send."""

    parent: Turn | None
    text: str
    settings: ChatSettings
    key: str
    call: TurnCall
    estimate: money.TurnCost
    parent_image: bytes | None


class PartialPreviewSink:
    """Partial images of a streamed turn: counted always, shown in a notebook (the newest,
    small, replaced by the turn when it is done)."""

    def __init__(self, px: int) -> None:
        from imagenb.api.progress import PartialPreview, in_notebook

        self.received = 0
        self.preview = PartialPreview(px) if in_notebook() else None

    def offer(self, index: int, data: bytes) -> None:
        self.received += 1
        if self.preview is not None:
            self.preview.offer(0, Partial(0, index, data))

    def show(self) -> None:
        if self.preview is not None:
            self.preview.show_latest()

    def clear(self) -> None:
        if self.preview is not None:
            self.preview.clear()


async def run_all(
    cfg: config_mod.Config, pending: Sequence[Pending], on_partial: PartialSink | None
) -> list[tuple[TurnReply, str | None] | ImagenbError]:
    """Every pending turn at once (variations), each with its retries and fallback; a turn
    that fails is its own error, so the answers of the others are kept (and paid for once)."""
    backend = _backend(cfg)
    results = await asyncio.gather(
        *(_run(backend, cfg, p, on_partial) for p in pending), return_exceptions=True
    )
    out: list[tuple[TurnReply, str | None] | ImagenbError] = []
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, ImagenbError):
            raise result  # a bug or an interrupt, not a turn's outcome
        out.append(result)
    return out


def _backend(cfg: config_mod.Config) -> ConversationBackend:
    name = session.backend_name(cfg)
    if name == "preview":
        return PreviewTurns()
    if name == "replay":
        return ReplayTurns()
    backend = session.engine_for(cfg).backend
    if not isinstance(backend, ConversationBackend):
        raise InvalidRequest(f"the {name} backend cannot hold conversations; use openai or preview")
    return backend


async def _run(
    backend: ConversationBackend,
    cfg: config_mod.Config,
    p: Pending,
    on_partial: PartialSink | None = None,
) -> tuple[TurnReply, str | None]:
    """One turn with the engine's retry policy; a lost parent is sent again as an image."""
    policy, rng = RetryPolicy(max_attempts=cfg.max_attempts), random.Random()
    call, notice, attempts, limited = p.call, None, 0, 0
    while True:
        try:
            return await backend.converse(call, on_partial=on_partial), notice
        except ContextLost:
            if p.parent_image is None or call.parent_image is not None:
                raise
            call = replace(call, previous_response_id=None, parent_image=p.parent_image)
            notice = (
                "imagenb: the service no longer has the previous turn's response (expired or "
                "not stored); continuing from its image, sent again as an input image"
            )
        except BackendError as error:
            delay = policy.delay(error, attempts, limited, rng)
            if delay is None:
                raise
            limited += error.status == 429
            attempts += error.status != 429
            await asyncio.sleep(delay)
