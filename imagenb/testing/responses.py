"""`POST /v1/responses` for the fake server: the Responses API with the `image_generation` and
`web_search` tools, as strict as the real service reads (reference: openai-responses-image-tool).

A request is validated (a mainline `model`, never an image model; known top-level fields;
tools with known fields only, so `tools[0].n` is refused; `tool_choice` naming a tool that is
there; reasoning efforts the model accepts; `previous_response_id` that is stored), then
answered with output items, `usage` (the mainline) and `tool_usage.image_gen` (the image
model), as JSON or as the streaming event sequence. Every answered response is billed in
`ResponsesState.bills` at this module's own prices (kept apart from `imagenb.core.catalog`, so the
fake does not share a client's mistakes). `forget()` drops every stored response, as 30-day
retention would; `store=false` responses are never kept.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagenb.testing.http import ApiError, invalid, parse_json_object
from imagenb.testing.inputs import inspect_image
from imagenb.testing.models import MODELS as IMAGE_MODELS
from imagenb.testing.models import RETIRED as RETIRED_IMAGE_MODELS

if TYPE_CHECKING:
    from imagenb.testing.handler import FakeHandler

_ALL_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
# mainline -> reasoning efforts it accepts (empty: not a reasoning model), USD per 1M in/cached/out
MAINLINE_RULES: dict[str, tuple[tuple[str, ...], tuple[float, float, float]]] = {
    "gpt-6.2-sol": (("low", "medium", "high", "xhigh", "max"), (2.00, 0.10, 10.00)),
    "gpt-6-luna": (
        ("none", "minimal", "low", "medium", "high", "xhigh", "max"),
        (0.10, 0.01, 0.50),
    ),
    "gpt-6.1-sol": (("low", "medium", "high", "xhigh"), (2.00, 0.10, 10.00)),
    "gpt-5.6-terra": (_ALL_EFFORTS, (2.00, 0.20, 12.00)),
    "gpt-5.6-luna": (_ALL_EFFORTS, (0.20, 0.02, 1.20)),
    "gpt-5.5": (("low", "medium", "high", "xhigh"), (5.00, 0.50, 30.00)),
    "gpt-5": (("minimal", "low", "medium", "high"), (1.25, 0.125, 10.00)),
    "gpt-4.1": ((), (2.00, 0.50, 8.00)),
}
SHUT_DOWN = {"gpt-4.1-nano": "2026-10-23", "o4-mini": "2026-10-23"}

_TOP_LEVEL = {
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "reasoning",
    "previous_response_id",
    "store",
    "stream",
    "stream_options",
    "include",
    "metadata",
    "max_output_tokens",
    "max_tool_calls",
    "parallel_tool_calls",
    "truncation",
    "text",
    "user",
    "safety_identifier",
    "temperature",
    "top_p",
    "conversation",
    "background",
    "service_tier",
    "prompt_cache_key",
}
IMAGE_TOOL_FIELDS = {
    "type",
    "model",
    "action",
    "size",
    "quality",
    "background",
    "output_format",
    "output_compression",
    "moderation",
    "partial_images",
    "input_fidelity",
    "input_image_mask",
    "complexity",
}
_WEB_TOOLS = ("web_search", "web_search_2025_08_26")
_WEB_TOOL_FIELDS = {"type", "filters", "search_context_size", "user_location"}
_INCLUDABLE = {
    "reasoning.encrypted_content",
    "web_search_call.action.sources",
    "web_search_call.results",
    "message.input_image.image_url",
    "message.output_text.logprobs",
}
_SUMMARIES = ("auto", "concise", "detailed")


@dataclass(frozen=True)
class InputPicture:
    """An `input_image` the request carried."""

    sha256: str
    width: int
    height: int


@dataclass(frozen=True)
class TurnInput:
    """A validated `/v1/responses` body, with what the answer needs already worked out."""

    model: str
    text: str
    pictures: tuple[InputPicture, ...]
    image_tool: dict[str, Any] | None
    web_search: bool
    tool_choice: Any
    effort: str | None
    summary: str | None
    previous: StoredResponse | None
    store: bool
    stream: bool
    include: tuple[str, ...]
    tools_count: int
    instructions: str


@dataclass(frozen=True)
class StoredResponse:
    """What a later turn re-reads: the tokens of the whole chain so far and its last image."""

    id: str
    model: str
    carried_tokens: int  # text and image tokens of every input and output item of the chain
    last_image: tuple[int, int] | None  # size of the newest image in the chain


@dataclass(frozen=True)
class Bill:
    """One answered response as the real service would bill it."""

    response_id: str
    mainline: str
    image_model: str | None
    usd: float
    usage: dict[str, Any]
    tool_usage: dict[str, Any]


@dataclass
class ResponsesState:
    """Stored responses, the billing ledger and the knobs of `/v1/responses`.

    `text_only_words`: a turn whose text has one gets a text answer and no image, even when the
    image tool is forced (seen in production). `extra_citations` lets a test plant hostile
    source titles and URLs. `requests` keeps every body's shape, valid or not (never images or
    the key), so tests can assert what was sent."""

    text_only_words: tuple[str, ...] = ()
    extra_citations: tuple[tuple[str, str], ...] = ()  # (title, url) added to every search
    forgetful: bool = False  # True: nothing is kept (as if every response had expired)
    stored: dict[str, StoredResponse] = field(default_factory=dict)
    bills: list[Bill] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def forget(self) -> None:
        """Drop every stored response (retention ran out); later ones are still kept."""
        with self.lock:
            self.stored.clear()

    def keep(self, response: StoredResponse) -> None:
        with self.lock:
            if not self.forgetful:
                self.stored[response.id] = response

    def find(self, response_id: str) -> StoredResponse | None:
        with self.lock:
            return self.stored.get(response_id)

    def bill(self, bill: Bill) -> None:
        with self.lock:
            self.bills.append(bill)

    def billed_usd(self, response_id: str | None = None) -> float:
        """Total billed, or the bill of one response."""
        with self.lock:
            return sum(b.usd for b in self.bills if response_id in (None, b.response_id))


def parse(body: bytes, state: ResponsesState) -> TurnInput:
    """Validate a request body the way the real service does; the first problem is raised."""
    f = parse_json_object(body)
    for name in f:
        if name not in _TOP_LEVEL:
            raise invalid(f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")
    model = _mainline(f.get("model"))
    efforts = MAINLINE_RULES[model][0]
    tools = f.get("tools") or []
    if not isinstance(tools, list):
        raise invalid("Invalid type for 'tools': expected an array.", param="tools")
    image_tool, web = _tools(tools)
    effort, summary = _reasoning(f.get("reasoning"), model, efforts)
    previous = None
    if (prev_id := f.get("previous_response_id")) is not None:
        if f.get("conversation") is not None:
            msg = "'previous_response_id' cannot be used in conjunction with 'conversation'."
            raise invalid(msg, param="previous_response_id")
        previous = state.find(str(prev_id))
        if previous is None:
            raise ApiError(
                400,
                f"Previous response with id '{prev_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
    include = f.get("include") or []
    for i, item in enumerate(include):
        if item not in _INCLUDABLE:
            raise invalid(f"Invalid value: '{item}'.", param=f"include[{i}]")
    text, pictures = _input(f.get("input"))
    store, stream = f.get("store", True), f.get("stream", False)
    if not isinstance(store, bool) or not isinstance(stream, bool):
        raise invalid("Invalid type for 'store'/'stream': expected a boolean.", param="store")
    if image_tool and image_tool.get("partial_images") and not stream:
        msg = "partial_images is only supported when stream is true."
        raise invalid(msg, param="tools[0].partial_images")
    return TurnInput(
        model=model,
        text=text,
        pictures=pictures,
        image_tool=image_tool,
        web_search=web,
        tool_choice=_tool_choice(f.get("tool_choice", "auto"), image_tool, web),
        effort=effort,
        summary=summary,
        previous=previous,
        store=store,
        stream=stream,
        include=tuple(include),
        tools_count=len(tools),
        instructions=str(f.get("instructions") or ""),
    )


def _mainline(model: Any) -> str:
    if model is None:
        raise invalid(
            "Missing required parameter: 'model'.", param="model", code="missing_required_parameter"
        )
    if model in IMAGE_MODELS or model in RETIRED_IMAGE_MODELS:
        msg = (
            f"The model '{model}' is not supported with the Responses API. Image models are "
            "used through the image_generation tool; use a mainline model such as gpt-6.2-sol."
        )
        raise invalid(msg, param="model", code="unsupported_model")
    if model not in MAINLINE_RULES:
        extra = f" It was shut down on {SHUT_DOWN[model]}." if model in SHUT_DOWN else ""
        msg = f"The model `{model}` does not exist or you do not have access to it.{extra}"
        raise ApiError(404, msg, code="model_not_found", param="model")
    return str(model)


def _tools(tools: list[Any]) -> tuple[dict[str, Any] | None, bool]:
    image_tool: dict[str, Any] | None = None
    web = False
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "image_generation":
            allowed = IMAGE_TOOL_FIELDS
            image_tool = dict(tool)
        elif kind in _WEB_TOOLS:
            allowed, web = _WEB_TOOL_FIELDS, True
        else:
            raise invalid(
                f"Invalid value: '{kind}'. Supported tool types here are "
                "'image_generation' and 'web_search'.",
                param=f"tools[{i}].type",
            )
        for name in tool:
            if name not in allowed:
                msg = f"Unknown parameter: 'tools[{i}].{name}'."
                raise invalid(msg, param=f"tools[{i}].{name}", code="unknown_parameter")
    return image_tool, web


def _tool_choice(choice: Any, image_tool: dict[str, Any] | None, web: bool) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    kind = choice.get("type") if isinstance(choice, dict) else None
    present = {"image_generation": image_tool is not None, "web_search": web}
    if kind not in present:
        raise invalid(f"Invalid value for 'tool_choice': {choice!r}.", param="tool_choice")
    if not present[kind]:
        msg = f"Tool choice '{kind}' not found in 'tools' parameter."
        raise invalid(msg, param="tool_choice")
    return choice


def _reasoning(
    reasoning: Any, model: str, efforts: tuple[str, ...]
) -> tuple[str | None, str | None]:
    if reasoning is None:
        return ("medium" if efforts else None), None
    if not isinstance(reasoning, dict):
        raise invalid("Invalid type for 'reasoning': expected an object.", param="reasoning")
    if not efforts:
        msg = (
            f"Unsupported parameter: 'reasoning.effort' is not supported with this model ({model})."
        )
        raise invalid(msg, param="reasoning.effort", code="unsupported_parameter")
    effort = reasoning.get("effort", "medium")
    if effort not in efforts:
        shown = ", ".join(f"'{e}'" for e in efforts)
        msg = (
            f"Unsupported value: 'reasoning.effort' does not support '{effort}' with this "
            f"model. Supported values are: {shown}."
        )
        raise invalid(msg, param="reasoning.effort", code="unsupported_value")
    summary = reasoning.get("summary")
    if summary is not None and summary not in _SUMMARIES:
        raise invalid(f"Invalid value: '{summary}'.", param="reasoning.summary")
    return str(effort), summary


def _input(value: Any) -> tuple[str, tuple[InputPicture, ...]]:
    if isinstance(value, str):
        return value, ()
    if not isinstance(value, list) or not value:
        raise invalid(
            "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
        )
    texts: list[str] = []
    pictures: list[InputPicture] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict) or item.get("type", "message") != "message":
            msg = f"Invalid 'input[{i}]': the fake models message items only."
            raise invalid(msg, param=f"input[{i}]")
        content = item.get("content")
        parts = [{"type": "input_text", "text": content}] if isinstance(content, str) else content
        for j, part in enumerate(parts or []):
            where = f"input[{i}].content[{j}]"
            if part.get("type") == "input_text":
                texts.append(str(part.get("text", "")))
            elif part.get("type") == "input_image":
                pictures.append(_picture(part, where))
            else:
                raise invalid(f"Invalid value: '{part.get('type')}'.", param=f"{where}.type")
    return "\n".join(texts), tuple(pictures)


def _picture(part: dict[str, Any], where: str) -> InputPicture:
    url = part.get("image_url")
    header, _, payload = str(url or "").partition(",")
    if not header.startswith("data:") or not header.endswith(";base64"):
        msg = f"Invalid '{where}.image_url': the fake accepts base64 data: URLs only."
        raise invalid(msg, param=f"{where}.image_url", code="invalid_image_url")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"Invalid '{where}.image_url': bad base64.", param=where) from None
    seen = inspect_image(data, where)
    return InputPicture(seen.sha256, seen.width, seen.height)


def handle(handler: FakeHandler, body: bytes) -> dict[str, Any] | None:
    """The route's entry point (called from the fake's handler): validate, apply the same
    gate and faults as image requests, answer, bill, keep."""
    from imagenb.testing import responses_output as output

    fake = handler.fake
    state: ResponsesState = fake.responses
    try:  # every request is logged, the invalid ones too: a test sees all that was sent
        shape = output.request_shape(body)
    except (ValueError, TypeError, AttributeError):
        shape = {"unparsable": True}
    with state.lock:
        state.requests.append(shape)
    turn = parse(body, state)
    handler.entry.update(model=turn.model, prompt=turn.text, stream=turn.stream)
    fake.check_gate()
    draw = fake.draw()
    if draw.error_status:
        fake.stats.add("errors_injected")
        raise fake.injected_error(draw.error_status)
    if draw.drop:
        fake.stats.add("dropped")
        handler.entry["fault"] = "drop"
        handler._drop()
        return None
    if draw.slow_seconds:
        handler.entry["fault"] = "slow"
    if not fake.sleep(fake.latency * draw.latency_factor + draw.slow_seconds):
        handler._drop()
        return None
    answer = output.answer(turn, fake)
    state.bill(answer.bill)
    if turn.store:
        state.keep(answer.stored)
    lost = fake.draw_money(turn.text).lost
    if lost and not turn.stream:  # done and billed, then the answer never arrives whole
        handler._lose([json.dumps(answer.response).encode()], lost)
        return None
    if turn.stream:
        output.stream(handler, answer)
        return None
    return answer.response
