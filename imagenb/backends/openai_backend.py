"""The OpenAI backend: the only module that imports the `openai` SDK.

It uses the SDK's async client with the SDK's own retries switched off (`max_retries=0`), so the
engine's single retry policy decides what is tried again, and it maps every SDK exception onto
`imagenb.errors` with `retryable` and the server's `retry-after` filled in. It also implements
`BatchBackend` (Files and Batches) for `imagenb.batch.jobs`; a failed batch line's error object is
mapped by the same rules as an HTTP error.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import openai

from imagenb.backends import openai_responses
from imagenb.backends.base import (
    BatchEndpoint,
    BatchProblem,
    BatchState,
    FilePurpose,
    JudgeAnswer,
    JudgeRequest,
    Partial,
    PartialCallback,
    Response,
)
from imagenb.backends.turns import ContextLost, PartialSink, TurnCall, TurnReply
from imagenb.core.config import Config, redact
from imagenb.core.request import ImageRequest
from imagenb.errors import (
    AnswerLost,
    BackendError,
    InvalidRequest,
    ModerationBlocked,
    QuotaExceeded,
    RateLimited,
    ResponseTimeout,
    TransientError,
)

_RESOLVED = ("size", "quality", "background", "output_format")
CONNECT_S = 10.0  # seconds to open a connection; the SDK's default is 5


class OpenAIBackend:
    """OpenAI Images API (and compatible servers through `base_url`)."""

    name: ClassVar[str] = "openai"
    paid: ClassVar[bool] = True

    def __init__(self, config: Config) -> None:
        if config.api_key is None:
            raise InvalidRequest(
                "the openai backend needs an API key: set OPENAI_API_KEY in the environment "
                "(not in a notebook cell), or use backend='preview'"
            )
        self._client = openai.AsyncOpenAI(
            api_key=config.api_key.reveal(),
            base_url=config.base_url,
            max_retries=0,
            # a dead network fails fast (and is retried); an answer may take timeout_s
            timeout=openai.Timeout(config.timeout_s, connect=min(CONNECT_S, config.timeout_s)),
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def run(
        self,
        request: ImageRequest,
        variants: Sequence[int],
        *,
        partial_images: int = 0,
        on_partial: PartialCallback | None = None,
    ) -> Response:
        # only what was asked: the service applies its own defaults (SPEC §7.11)
        params = request.with_n(len(variants)).wire_params()
        try:
            if partial_images and on_partial:
                return await self._stream(request, params, partial_images, on_partial)
            result = await self._call(request, params, stream=False)
            return _response(result)
        except openai.APIError as exc:
            raise translate(exc) from None

    async def _call(self, request: ImageRequest, params: dict[str, Any], *, stream: bool) -> Any:
        # `stream` and `partial_images` only when streaming: `stream=False` is the default
        extra = {"partial_images": params.pop("partial_images"), "stream": True} if stream else {}
        if request.kind == "generate":
            return await self._client.images.generate(prompt=request.prompt, **params, **extra)
        if "moderation" in params:
            return await self._edit_json(request, {**params, **extra}, stream=stream)
        files = [i.as_upload() for i in request.images]
        return await self._client.images.edit(
            image=files if len(files) > 1 else files[0],
            mask=request.mask.as_upload() if request.mask else openai.omit,
            prompt=request.prompt,
            **params,
            **extra,
        )

    async def _edit_json(
        self, request: ImageRequest, params: dict[str, Any], *, stream: bool
    ) -> Any:
        """An edit in the JSON form of `/images/edits`: the only form that takes `moderation`
        (the SDK's multipart `images.edit()` has no such field, and strict servers refuse it)."""
        body: dict[str, Any] = {
            "prompt": request.prompt,
            **params,
            "images": [{"image_url": i.as_data_url()} for i in request.images],
        }
        if request.mask is not None:
            body["mask"] = {"image_url": request.mask.as_data_url()}
        return await self._client.post(
            "/images/edits",
            body=body,
            cast_to=openai.types.ImagesResponse,
            stream=stream,
            stream_cls=openai.AsyncStream[openai.types.ImageEditStreamEvent],
        )

    async def _stream(
        self,
        request: ImageRequest,
        params: dict[str, Any],
        partial_images: int,
        on_partial: PartialCallback,
    ) -> Response:
        expected = int(params.get("n", 1))
        images: list[bytes] = []
        usage: dict[str, Any] | None = None
        resolved: dict[str, Any] = {}
        stream = await self._call(
            request, {**params, "partial_images": partial_images}, stream=True
        )
        problems: dict[int, str] = {}
        async for event in stream:
            if event.type.endswith(".partial_image"):
                data, problem = _decode(event)
                if problem is None:
                    on_partial(Partial(len(images), event.partial_image_index, data))
            elif event.type.endswith(".completed"):
                data, problem = _decode(event)
                if problem is not None:
                    problems[len(images)] = problem
                images.append(data)
                usage = _add_usage(usage, _dump(event.usage))
                resolved = {k: getattr(event, k, None) for k in _RESOLVED}
        if len(images) != expected:
            raise AnswerLost(
                f"the stream ended after {len(images)} of {expected} image(s), before its "
                "final event; the service may have billed the rest"
            )
        return Response(images, usage, resolved=resolved, problems=problems)

    async def converse(self, call: TurnCall, *, on_partial: PartialSink | None = None) -> TurnReply:
        """One conversation turn through the Responses API (`openai_responses`)."""
        try:
            return await openai_responses.converse(self._client, call, on_partial, error_from)
        except openai.APIError as exc:
            error = translate(exc)
            if error.code == "previous_response_not_found":
                raise ContextLost(str(error), status=error.status, code=error.code) from None
            raise error from None

    async def judge(self, request: JudgeRequest) -> JudgeAnswer:
        try:
            return await ask_judge(self._client, request)
        except openai.APIError as exc:
            raise translate(exc) from None

    # --- the Batch API ------------------------------------------------------------------------

    async def upload_file(
        self, filename: str, content: bytes | Path, *, purpose: FilePurpose, mime: str
    ) -> str:
        try:
            uploaded = await self._client.files.create(
                file=(filename, content, mime), purpose=purpose
            )
        except openai.APIError as exc:
            raise translate(exc) from None
        return uploaded.id

    async def create_batch(
        self, input_file_id: str, endpoint: BatchEndpoint, *, metadata: Mapping[str, str]
    ) -> BatchState:
        try:
            batch = await self._client.batches.create(
                input_file_id=input_file_id,
                endpoint=endpoint,
                completion_window="24h",
                metadata=dict(metadata),
            )
        except openai.APIError as exc:
            raise translate(exc) from None
        return _batch_state(batch)

    async def retrieve_batch(self, batch_id: str) -> BatchState:
        try:
            return _batch_state(await self._client.batches.retrieve(batch_id))
        except openai.APIError as exc:
            raise translate(exc) from None

    async def cancel_batch(self, batch_id: str) -> BatchState:
        try:
            return _batch_state(await self._client.batches.cancel(batch_id))
        except openai.APIError as exc:
            raise translate(exc) from None

    async def list_batches(self) -> AsyncIterator[BatchState]:
        try:
            async for batch in self._client.batches.list(limit=100):
                yield _batch_state(batch)
        except openai.APIError as exc:
            raise translate(exc) from None

    async def download_file(self, file_id: str, target: Path) -> int:
        size = 0
        try:
            async with self._client.files.with_streaming_response.content(file_id) as response:
                with open(target, "wb") as fh:
                    async for chunk in response.iter_bytes(1 << 20):
                        fh.write(chunk)
                        size += len(chunk)
        except openai.APIError as exc:
            raise translate(exc) from None
        return size

    def batch_error(
        self, status: int | None, error: Mapping[str, Any], *, request_id: str | None = None
    ) -> BackendError:
        return error_from(status, error, request_id=request_id)


def _response(result: Any) -> Response:
    decoded = [_decode(item) for item in result.data or []]
    return Response(
        [data for data, _ in decoded],
        _dump(result.usage),
        request_id=getattr(result, "_request_id", None),
        resolved={k: getattr(result, k, None) for k in _RESOLVED},
        problems={i: problem for i, (_, problem) in enumerate(decoded) if problem},
    )


def _decode(item: Any) -> tuple[bytes, str | None]:
    """An answer's image bytes, or b"" and why they are unusable (one bad image of an answer
    is that image's error, not the whole answer's)."""
    b64 = getattr(item, "b64_json", None)
    if not b64:
        if getattr(item, "url", None):
            return b"", "the server sent a URL instead of the image (b64_json); not fetched"
        return b"", "the server sent no image data (b64_json is empty)"
    try:
        return base64.b64decode(b64, validate=True), None
    except (binascii.Error, ValueError) as exc:
        return b"", f"the server sent image data that is not valid base64 ({exc})"


async def ask_judge(client: openai.AsyncOpenAI, request: JudgeRequest) -> JudgeAnswer:
    """One structured-output request through the Responses API: the images at an explicit
    `detail` (left out, some models take them at full size), the answer held to the schema."""
    content: list[Any] = [{"type": "input_text", "text": request.instructions}]
    for image in request.images:
        url = f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"
        content.append({"type": "input_image", "image_url": url, "detail": request.detail})
    body: dict[str, Any] = {
        "model": request.model,
        "input": [{"role": "user", "content": content}],
        "text": {
            "format": {
                "type": "json_schema",
                "name": request.schema_name,
                "schema": request.schema,
                "strict": True,
            }
        },
        "max_output_tokens": request.max_output_tokens,
        "store": False,  # nothing to continue from: a verdict is one question
    }
    if request.effort:
        body["reasoning"] = {"effort": request.effort}
    result = await client.responses.create(**body)
    usage = _dump(result.usage)
    request_id = getattr(result, "_request_id", None)
    texts, refusal = [], None
    for item in result.output:
        for part in getattr(item, "content", None) or []:
            if part.type == "output_text":
                texts.append(part.text)
            elif part.type == "refusal":
                refusal = part.refusal
    if refusal is not None:
        return JudgeAnswer(None, usage, refusal=refusal, request_id=request_id)
    if result.status != "completed":
        reason = result.incomplete_details.reason if result.incomplete_details else None
        problem = f"the answer is {result.status} ({reason or 'no reason given'})"
        return JudgeAnswer(None, usage, problem=problem, request_id=request_id)
    try:
        payload = json.loads("".join(texts))
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        problem = f"the answer is not a JSON object: {''.join(texts)[:80]!r}"
        return JudgeAnswer(None, usage, problem=problem, request_id=request_id)
    return JudgeAnswer(payload, usage, request_id=request_id)


def _batch_state(batch: Any) -> BatchState:
    counts = batch.request_counts
    problems = tuple(
        BatchProblem(e.line, e.code, redact(e.message or e.code or "invalid line"))
        for e in ((batch.errors.data or []) if batch.errors else [])
    )
    return BatchState(
        id=batch.id,
        status=batch.status,
        endpoint=batch.endpoint,
        input_file_id=batch.input_file_id,
        output_file_id=batch.output_file_id,
        error_file_id=batch.error_file_id,
        created_at=batch.created_at,
        total=counts.total if counts else 0,
        completed=counts.completed if counts else 0,
        failed=counts.failed if counts else 0,
        problems=problems,
        metadata=dict(batch.metadata or {}),
    )


def _dump(usage: Any) -> dict[str, Any] | None:
    if usage is None:
        return None
    dumped: dict[str, Any] = usage.model_dump(exclude_none=True)
    return dumped


def _add_usage(total: dict[str, Any] | None, more: dict[str, Any] | None) -> dict[str, Any] | None:
    """Sum two usage dicts (a stream with n > 1 bills each image in its own event)."""
    if total is None or more is None:
        return more if total is None else total
    out: dict[str, Any] = {}
    for key in total.keys() | more.keys():
        a, b = total.get(key), more.get(key)
        if isinstance(a, Mapping) or isinstance(b, Mapping):
            out[key] = _add_usage(dict(a or {}), dict(b or {}))
        else:
            out[key] = (a or 0) + (b or 0)
    return out


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait: `retry-after-ms`, else `retry-after` (seconds or
    an HTTP date)."""
    if ms := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    if value := headers.get("retry-after"):
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            return max(0.0, parsed.timestamp() - time.time())
    return None


# Timeouts raised before the whole request was out: the service cannot have started on it.
_UNSENT_TIMEOUTS = frozenset({"ConnectTimeout", "PoolTimeout", "WriteTimeout"})


def _cut_mid_answer(cause: BaseException | None) -> bool:
    """True when the answer had started to arrive (headers, part of the body, some events)
    before the connection went: the work was done. A connection closed before any answer
    ("Server disconnected without sending a response", a stale keep-alive) is retried as
    not sent, as the SDK does."""
    if cause is None or type(cause).__name__ not in ("RemoteProtocolError", "ReadError"):
        return False
    return "without sending a response" not in str(cause)


def translate(exc: openai.APIError) -> BackendError:
    """Map an SDK exception to the imagenb error a user (and the retry policy) can act on."""
    if isinstance(exc, openai.APITimeoutError) and (
        type(exc.__cause__).__name__ not in _UNSENT_TIMEOUTS
    ):
        waited = (exc.request.extensions.get("timeout") or {}).get("read")
        within = f"{waited:g} s" if isinstance(waited, (int, float)) else "the client timeout"
        return ResponseTimeout(
            f"no answer within {within} after the request was sent; the service may have "
            "finished and billed it (allow longer: ig.configure(timeout_s=...))"
        )
    if isinstance(exc, openai.APIConnectionError) and _cut_mid_answer(exc.__cause__):
        return AnswerLost(
            "the connection dropped while the answer was arriving; the service may have "
            f"billed it ({redact(str(exc.__cause__))[:120]})"
        )
    if isinstance(exc, openai.APIConnectionError):  # incl. timeouts before anything was sent
        return TransientError(f"connection problem: {redact(exc.message)}")
    body = exc.body if isinstance(exc.body, Mapping) else {}
    error = {**body, "code": exc.code, "type": exc.type}
    error["message"] = str(body.get("message") or exc.message)
    request_id = getattr(exc, "request_id", None)
    if not isinstance(exc, openai.APIStatusError):  # an error event inside a stream
        return error_from(None, error, request_id=request_id)
    return error_from(exc.status_code, error, headers=exc.response.headers, request_id=request_id)


def error_from(
    status: int | None,
    error: Mapping[str, Any],
    *,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
) -> BackendError:
    """The imagenb error for an API error object (`code`, `type`, `message`, ...) and its HTTP
    status: None for an error without one (a stream's error event)."""
    code, kind = error.get("code"), error.get("type")
    message = redact(str(error.get("message") or code or "no message"))
    if code == "moderation_blocked":
        details = error.get("moderation_details") or {}
        return ModerationBlocked(
            f"blocked by the safety system: {message}",
            categories=details.get("categories") or (),
            stage=details.get("moderation_stage"),
            request_id=request_id,
        )
    if status is None:
        return BackendError(f"the service reported an error: {message}", code=code)
    headers = headers or {}
    if status == 429 and (kind == "insufficient_quota" or code == "insufficient_quota"):
        return QuotaExceeded(
            f"out of quota ({code}): {message} — add credit or raise the spend limit",
            status=status,
            code=code,
            request_id=request_id,
        )
    common: dict[str, Any] = {"status": status, "code": code, "request_id": request_id}
    hint = headers.get("x-should-retry")  # the server's own word wins, as in the SDK
    if status == 429 and hint != "false":
        return RateLimited(f"rate limited: {message}", retry_after=retry_after(headers), **common)
    if hint == "true" or (hint != "false" and (status in (408, 409) or status >= 500)):
        return TransientError(
            f"server error {status}: {message}", retry_after=retry_after(headers), **common
        )
    if status in (401, 403):
        return BackendError(f"not authorised ({status}): {message}", **common)
    return BackendError(f"request refused ({status}, {code}): {message}", **common)
