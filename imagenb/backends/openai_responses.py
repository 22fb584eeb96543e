"""A conversation turn through OpenAI's Responses API, given the SDK's async client.

`openai_backend.OpenAIBackend.converse` passes its client in and maps the SDK's exceptions, so
this module never imports `openai`. The request carries only what the turn needs (guarantee
11): the image tool always names its model (the tool's default has changed between SDK
versions), `tool_choice` is sent only to force the image tool on refine turns, `reasoning` only
with `thinking`. `tool_usage` is read from the raw response, so an SDK without the field still
bills the image.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from imagenb.backends.turns import PartialSink, TurnCall, TurnReply
from imagenb.errors import BackendError

ErrorMapper = Callable[[int | None, Mapping[str, Any]], BackendError]
SOURCES_INCLUDE = "web_search_call.action.sources"


def _data_url(data: bytes) -> str:
    mime = "image/png"
    if data[:3] == b"\xff\xd8\xff":
        mime = "image/jpeg"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def request_kwargs(call: TurnCall) -> dict[str, Any]:
    """The keyword arguments of `client.responses.create` for `call`."""
    content: list[dict[str, Any]] = [{"type": "input_text", "text": call.text}]
    pictures = ([call.parent_image] if call.parent_image else []) + list(call.input_images)
    content += [
        {"type": "input_image", "image_url": _data_url(p), "detail": "high"} for p in pictures
    ]
    tool: dict[str, Any] = {
        "type": "image_generation",
        "model": call.image_model,
        **call.image_options,
    }
    if call.stream and call.partial_images:
        tool["partial_images"] = call.partial_images
    kwargs: dict[str, Any] = {
        "model": call.mainline,
        "input": [{"role": "user", "content": content}],
        "tools": [tool, *([{"type": "web_search"}] if call.web_search else [])],
    }
    if call.force_image:
        kwargs["tool_choice"] = {"type": "image_generation"}
    if call.thinking:
        kwargs["reasoning"] = {"effort": call.thinking, "summary": "auto"}
    if call.web_search:
        kwargs["include"] = [SOURCES_INCLUDE]
    if call.previous_response_id:
        kwargs["previous_response_id"] = call.previous_response_id
    if not call.store:
        kwargs["store"] = False
    return kwargs


async def converse(
    client: Any, call: TurnCall, on_partial: PartialSink | None, error_from: ErrorMapper
) -> TurnReply:
    """Send `call`; stream when asked (partials to `on_partial`), and read the reply."""
    kwargs = request_kwargs(call)
    if not call.stream:
        response = await client.responses.create(**kwargs)
        return reply_from(response.to_dict(), error_from)
    final: dict[str, Any] | None = None
    stream = await client.responses.create(**kwargs, stream=True)
    async for event in stream:
        kind = event.type
        if kind == "response.image_generation_call.partial_image" and on_partial:
            on_partial(event.partial_image_index, base64.b64decode(event.partial_image_b64))
        elif kind in ("response.completed", "response.incomplete"):
            final = event.response.to_dict()
        elif kind in ("response.failed", "error"):
            body = event.to_dict()
            error = body.get("response", {}).get("error") if kind != "error" else body
            raise error_from(None, error or {"message": kind})
    if final is None:
        raise BackendError("the stream ended before the response was complete", code="stream_cut")
    return reply_from(final, error_from)


def reply_from(raw: Mapping[str, Any], error_from: ErrorMapper) -> TurnReply:
    """A `TurnReply` from the response as JSON (`Response.to_dict()`, extras included)."""
    found: dict[str, Any] = {"reasoning": [], "text": [], "sources": {}}
    for item in raw.get("output") or []:
        kind = item.get("type")
        if kind == "reasoning":
            found["reasoning_id"] = item.get("id")
            found["reasoning"] += [s.get("text", "") for s in item.get("summary") or []]
        elif kind == "image_generation_call":
            _image_call(item, found, error_from)
        elif kind == "web_search_call":
            for source in (item.get("action") or {}).get("sources") or []:
                found["sources"].setdefault(source.get("url", ""), "")
        elif kind == "message":
            for part in item.get("content") or []:
                found["text"].append(part.get("text") or part.get("refusal") or "")
                for note in part.get("annotations") or []:
                    if note.get("type") == "url_citation":
                        found["sources"][note.get("url", "")] = note.get("title") or ""
    tool_usage = raw.get("tool_usage")
    return TurnReply(
        response_id=str(raw["id"]),
        image=found.get("image"),
        image_call_id=found.get("image_call_id"),
        reasoning_id=found.get("reasoning_id"),
        revised_prompt=found.get("revised_prompt"),
        reasoning="\n\n".join(t for t in found["reasoning"] if t) or None,
        text="\n".join(t for t in found["text"] if t),
        sources=tuple((title, url) for url, title in found["sources"].items() if url),
        usage=dict(raw["usage"]) if raw.get("usage") else None,
        tool_usage=dict(tool_usage) if isinstance(tool_usage, Mapping) else None,
        resolved=found.get("resolved", {}),
        blocked=found.get("blocked"),
    )


def _image_call(item: Mapping[str, Any], found: dict[str, Any], error_from: ErrorMapper) -> None:
    if item.get("result"):  # a live stream may leave status "generating" on a finished item
        found["image"] = base64.b64decode(item["result"])
        found["image_call_id"] = item.get("id")
        found["revised_prompt"] = item.get("revised_prompt")
        found["resolved"] = {
            k: item[k] for k in ("size", "quality", "output_format", "background") if item.get(k)
        }
    elif item.get("status") == "failed":
        found["blocked"] = error_from(None, item.get("error") or {"message": "image call failed"})
