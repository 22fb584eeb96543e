"""The backend protocol: small on purpose, so a new service is one class.

A backend turns one validated `ImageRequest` into encoded images. It does no caching,
retrying, pacing or cost accounting: the engine does those once, for every backend. Errors
are raised as `imagenb.errors` classes, with `retryable` set truthfully.

A backend that can also run asynchronous batch jobs (OpenAI's Batch API) implements
`BatchBackend` as well: files in and out, and a batch's lifecycle. `imagenb.batch.jobs` builds the
request lines and does everything else. A backend that can hold a conversation implements
`ConversationBackend` (`turns.py`: one Responses API turn) as well.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from imagenb.backends.turns import ConversationBackend as ConversationBackend
from imagenb.core.config import Config
from imagenb.core.request import ImageRequest
from imagenb.errors import BackendError


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
    problems: dict[int, str] = field(default_factory=dict)  # image i unusable (its bytes b""): why


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


# --- batches ----------------------------------------------------------------------------------

BatchEndpoint = Literal["/v1/images/generations", "/v1/images/edits"]
FilePurpose = Literal["batch", "vision"]
BATCH_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True)
class BatchProblem:
    """Why a batch failed validation: `line` is 1-based in the input file, when known."""

    line: int | None
    code: str | None
    message: str


@dataclass(frozen=True)
class BatchState:
    """A batch as the service reports it. The counts are requests, not images."""

    id: str
    status: str
    endpoint: str
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: float | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    problems: tuple[BatchProblem, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        """No further change will come: results (if any) can be downloaded."""
        return self.status in BATCH_TERMINAL


@runtime_checkable
class BatchBackend(Protocol):
    """The Files and Batches calls batch mode needs, each raising `imagenb.errors`."""

    async def upload_file(
        self, filename: str, content: bytes | Path, *, purpose: FilePurpose, mime: str
    ) -> str:
        """Upload a file; returns its id."""
        ...

    async def create_batch(
        self, input_file_id: str, endpoint: BatchEndpoint, *, metadata: Mapping[str, str]
    ) -> BatchState: ...

    async def retrieve_batch(self, batch_id: str) -> BatchState: ...

    async def cancel_batch(self, batch_id: str) -> BatchState: ...

    def list_batches(self) -> AsyncIterator[BatchState]:
        """Every batch of the account, newest first (paged lazily)."""
        ...

    async def download_file(self, file_id: str, target: Path) -> int:
        """Stream a file's content to `target` (results can be gigabytes); returns its size."""
        ...

    def batch_error(
        self, status: int | None, error: Mapping[str, Any], *, request_id: str | None = None
    ) -> BackendError:
        """The imagenb error for one failed line: its HTTP status and API error object."""
        ...


# --- judging (structured outputs through the Responses API) ---------------------------------


@dataclass(frozen=True)
class JudgeImage:
    """One image shown to a judge: encoded bytes, their MIME type and pixel size."""

    data: bytes = field(repr=False)
    mime: str
    width: int
    height: int


@dataclass(frozen=True)
class JudgeRequest:
    """One structured-output request: `instructions` and `images` in one user message, the
    answer constrained to the strict JSON `schema` (named `schema_name`)."""

    model: str
    instructions: str
    images: tuple[JudgeImage, ...]
    schema_name: str
    schema: dict[str, Any]
    detail: str = "high"
    effort: str | None = None
    max_output_tokens: int = 1024


@dataclass(frozen=True)
class JudgeAnswer:
    """What the judge said: the parsed JSON `payload`, or a `refusal`, or `problem` (a
    malformed or incomplete answer). `usage` is billed either way."""

    payload: dict[str, Any] | None
    usage: dict[str, Any] | None
    refusal: str | None = None
    problem: str | None = None
    usage_is_estimate: bool = False
    request_id: str | None = None


@runtime_checkable
class JudgeBackend(Protocol):
    """A backend that can ask a vision model for a structured verdict."""

    async def judge(self, request: JudgeRequest) -> JudgeAnswer: ...
