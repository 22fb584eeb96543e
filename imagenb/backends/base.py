"""The backend protocol: small on purpose, so a new service is one class.

A backend turns one validated `ImageRequest` into encoded images. It does no caching,
retrying, pacing or cost accounting: the engine does those once, for every backend. Errors
are raised as `imagenb.errors` classes, with `retryable` set truthfully.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..config import Config
from ..request import ImageRequest


@dataclass(frozen=True)
class Partial:
    """A partial (in-progress) image while streaming. `slot` is the position among the images
    of the call it most likely belongs to (the API does not say for n > 1)."""

    slot: int
    index: int
    data: bytes


@dataclass(frozen=True)
class Response:
    """What one call produced: encoded image bytes in request order, and the bill."""

    images: list[bytes]
    usage: dict[str, Any] | None
    usage_is_estimate: bool = False
    request_id: str | None = None
    resolved: dict[str, Any] = field(default_factory=dict)  # size, quality, ... as the server chose


PartialCallback = Callable[[Partial], None]


@runtime_checkable
class Backend(Protocol):
    """Makes images. `paid` says whether results cost real money."""

    name: ClassVar[str]
    paid: ClassVar[bool]

    def __init__(self, config: Config) -> None: ...

    async def run(
        self,
        request: ImageRequest,
        variants: Sequence[int],
        *,
        partial_images: int = 0,
        on_partial: PartialCallback | None = None,
    ) -> Response:
        """Produce one image per entry of `variants` (the variant indices wanted)."""
        ...

    async def aclose(self) -> None:
        """Release connections; the backend is not used afterwards."""
        ...
