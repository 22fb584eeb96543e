"""The replay backend: answers only from the store.

The engine serves every stored image before it calls a backend, so reaching `run` means the
image was never made: a classroom notebook on a shared replay store says so plainly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from imagenb.backends.base import JudgeAnswer, JudgeRequest, PartialCallback, Response
from imagenb.core.config import Config
from imagenb.core.request import ImageRequest
from imagenb.errors import NotInStore


class ReplayBackend:
    """Never makes an image; a request missing from the store raises `NotInStore`."""

    name: ClassVar[str] = "replay"
    paid: ClassVar[bool] = False

    def __init__(self, config: Config) -> None:
        self._store = config.store

    async def run(
        self,
        request: ImageRequest,
        variants: Sequence[int],
        *,
        partial_images: int = 0,
        on_partial: PartialCallback | None = None,
    ) -> Response:
        where = self._store or "the default store"
        raise NotInStore(
            f"replay: {request.model} {request.size} {request.quality} variant(s) "
            f"{list(variants)} of {request.prompt[:60]!r} are not in {where}; run it once with "
            "a key (backend='openai') or use backend='preview'"
        )

    async def judge(self, request: JudgeRequest) -> JudgeAnswer:
        raise NotInStore(
            f"replay: no stored {request.model} verdict for this image and rubric in "
            f"{self._store or 'the default store'}; judge it once with a key, or use "
            "backend='preview'"
        )

    async def aclose(self) -> None:
        return None
