"""The exceptions imagenb raises: one tree, so callers catch what they can act on.

Backends map their vendor errors onto these classes; nothing above the backend layer ever
sees an SDK exception. Each error carries a message that says what was wrong and what to do.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence

from imagenb.redaction import redact

BRIEF_MAX_CHARS = 400  # a message longer than this is clipped in the brief form


class ImagenbError(Exception):
    """Base class of every error imagenb raises on purpose.

    In IPython it renders itself briefly (`_render_traceback_`): what went wrong, what to do,
    and how to see the whole trace; the exception still propagates, so Run All stops."""

    def _render_traceback_(self) -> list[str]:
        """IPython's hook: a few lines the first time; the full traceback when asked again
        (`%tb` re-renders the last exception)."""
        if getattr(self, "_shown_brief", False):
            full = "".join(traceback.format_exception(type(self), self, self.__traceback__))
            return [_redacted(full)]
        self._shown_brief = True
        return brief(self)


class InvalidRequest(ImagenbError, ValueError):
    """The request cannot be valid; raised before anything is sent or spent."""


class BudgetExceeded(ImagenbError):
    """The estimate of what would be sent exceeds what is left of the budget."""

    def __init__(self, message: str, *, estimate_usd: float, left_usd: float) -> None:
        super().__init__(message)
        self.estimate_usd = estimate_usd
        self.left_usd = left_usd


class NotInStore(ImagenbError, LookupError):
    """The replay backend was asked for an image the store does not hold."""


class BackendError(ImagenbError):
    """A backend failed. `retryable` tells the engine whether trying again may help.

    `retry_after` is the server's requested wait in seconds (from `retry-after-ms` or
    `retry-after`), `status` the HTTP status if any, `code` the API's stable error code.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.request_id = request_id


class TransientError(BackendError):
    """A 5xx, a dropped connection, or a timeout before the request was sent: worth retrying
    with backoff."""

    retryable = True


class AnswerLost(BackendError):
    """The request was out and its answer was lost (no answer in time, the connection dropped
    mid-answer, a stream cut before its final event): the service may have billed it.

    The Images API takes no idempotency key, so asking again may pay twice: the engine asks
    again at most `ambiguous_retries` times, and counts each lost answer at its estimate in
    `ig.spent().uncertain_usd` and against the budget."""


class ResponseTimeout(AnswerLost):
    """The request was sent but no answer came within the client timeout."""


class StoreUnwritable(ImagenbError):
    """The store cannot be written (disk full, read-only, no permission): the run sends
    nothing more, and images already paid for are kept in memory until the store takes them."""


class RateLimited(TransientError):
    """HTTP 429 for rate (not quota): wait `retry_after`, then try again."""


class QuotaExceeded(BackendError):
    """HTTP 429 `insufficient_quota`: the account is out of credit; retrying cannot help."""


class ModerationBlocked(BackendError):
    """The safety system refused the prompt or the output; retrying unchanged cannot help."""

    def __init__(
        self,
        message: str,
        *,
        categories: Sequence[str] = (),
        stage: str | None = None,
        status: int | None = 400,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code="moderation_blocked", request_id=request_id)
        self.categories = tuple(categories)
        self.stage = stage


def describe(error: ImagenbError) -> str:
    """How a grid cell or storyboard panel names its failure:
    `ModerationBlocked: blocked by the safety system: ... (categories: violence)`"""
    text = f"{type(error).__name__}: {error}"
    categories = getattr(error, "categories", ())
    if categories:
        text += f" (categories: {', '.join(categories)})"
    return text


def hint(error: BaseException) -> str:
    """What to do next, in Python API terms ("" when the message already says it)."""
    if isinstance(error, ModerationBlocked):
        return "rephrase the prompt; sent unchanged it will be blocked again"
    if isinstance(error, BackendError) and error.status in (401, 403):
        return "check the OPENAI_API_KEY the kernel was started with (ig.configure() shows it)"
    if isinstance(error, ResponseTimeout | TransientError):
        return "finished images are in the store; re-running asks only for what is missing"
    return ""


def brief(error: ImagenbError) -> list[str]:
    """At most 3 lines: the error with its class, the hint, and where the full trace is."""
    first = _redacted(" ".join(describe(error).split()))  # before clipping: no half keys
    if len(first) > BRIEF_MAX_CHARS:
        first = first[: BRIEF_MAX_CHARS - 1] + "…"
    lines = [first]
    if advice := hint(error):
        lines.append(f"hint: {advice}")
    lines.append("(the full traceback: run %tb)")
    return lines


def _redacted(text: str) -> str:
    return redact(text)
