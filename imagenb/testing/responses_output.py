"""What the fake's `/v1/responses` answers: output items, usage, the bill and the stream.

The "model" is deterministic: with the image tool present (and `tool_choice` not "none") it
draws, unless the turn's text has one of `ResponsesState.text_only_words`; its revised prompt,
reasoning summary, search query, source titles and message all quote the user's text, so a
hostile text reaches every untrusted field a client must escape.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagenb.testing.http import ApiError
from imagenb.testing.images import ImageJob, moderation_block, validate
from imagenb.testing.inputs import RawRequest
from imagenb.testing.models import (
    PARTIAL_IMAGE_TOKENS,
    image_input_tokens,
    output_tokens_per_image,
    text_tokens,
)
from imagenb.testing.responses import MAINLINE_RULES, Bill, StoredResponse, TurnInput

if TYPE_CHECKING:
    from imagenb.testing.handler import FakeHandler
    from imagenb.testing.server import FakeImagesServer

TOOL_TOKENS = 150  # a tool definition in the mainline's context
REASONING_TOKENS = {
    "none": 0,
    "minimal": 16,
    "low": 64,
    "medium": 192,
    "high": 512,
    "xhigh": 1024,
    "max": 2048,
}
CACHE_BLOCK = 128  # cached prefixes count in blocks, from 1,024 tokens on
WEB_SEARCH_USD = 10.0 / 1000  # per call
DEFAULT_TOOL_MODEL = "gpt-image-2.6-sunburst"  # what the service uses when `model` is left out
# USD per 1M: text in, image in, image out (gpt-image-2 family rates; 1.5 and mini differ)
_IMAGE_PRICES = {
    "gpt-image-1.5": (5.0, 8.0, 32.0),
    "chatgpt-image-latest": (5.0, 8.0, 32.0),
    "gpt-image-1-mini": (2.0, 2.5, 8.0),
}
_GPT2_PRICES = (5.0, 8.0, 30.0)


@dataclass(frozen=True)
class Answer:
    response: dict[str, Any]
    bill: Bill
    stored: StoredResponse
    job: ImageJob | None


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def answer(turn: TurnInput, fake: FakeImagesServer) -> Answer:
    """Work out the whole response for `turn` (nothing is billed or kept here)."""
    prev = turn.previous
    carried = prev.carried_tokens if prev else 0
    new_tokens = text_tokens(turn.text) + sum(
        image_input_tokens(p.width, p.height) for p in turn.pictures
    )
    overhead = turn.tools_count * TOOL_TOKENS + (
        text_tokens(turn.instructions) if turn.instructions else 0
    )
    reference = (
        (turn.pictures[-1].width, turn.pictures[-1].height)
        if turn.pictures
        else (prev.last_image if prev else None)
    )
    output: list[dict[str, Any]] = []
    out_tokens = REASONING_TOKENS[turn.effort] if turn.effort else 0
    if turn.effort:
        summary = _summary(turn.text, reference is not None) if turn.summary else None
        output.append(
            {
                "id": _id("rs"),
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": summary}] if summary else [],
            }
        )
    citations: list[dict[str, Any]] = []
    searches = 0
    if turn.web_search:
        searches = 1
        output.append(_web_search(turn, citations))
        citations += [
            {"type": "url_citation", "url": url, "title": title, "start_index": 0, "end_index": 0}
            for title, url in fake.responses.extra_citations
        ]
    job, image_gen, last_image = None, _zero_image_usage(), reference
    draws = (
        turn.image_tool is not None
        and turn.tool_choice != "none"
        and not any(w.lower() in turn.text.lower() for w in fake.responses.text_only_words if w)
    )
    if draws and turn.image_tool is not None:
        revised = _revised(turn.text, reference is not None)
        out_tokens += text_tokens(revised)
        job = _image_job(turn, revised)
        item, image_gen = _image_call(turn, job, revised, reference, fake)
        output.append(item)
        if item["status"] == "completed":
            last_image = (job.width, job.height)
        else:
            job = None
    message = _message(turn.text, job is not None, draws)
    out_tokens += text_tokens(message)
    output.append(
        {
            "id": _id("msg"),
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": message, "annotations": citations}],
        }
    )
    input_tokens = carried + new_tokens + overhead
    cached = carried // CACHE_BLOCK * CACHE_BLOCK if carried >= 1024 else 0
    usage = {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": out_tokens,
        "output_tokens_details": {"reasoning_tokens": REASONING_TOKENS.get(turn.effort or "", 0)},
        "total_tokens": input_tokens + out_tokens,
    }
    tool_usage = {"image_gen": image_gen, "web_search": {"num_requests": searches}}
    response_id = _id("resp")
    image_model = str(turn.image_tool.get("model", DEFAULT_TOOL_MODEL)) if turn.image_tool else None
    usd = _mainline_usd(turn.model, usage) + _image_usd(image_model, image_gen)
    usd += searches * WEB_SEARCH_USD
    response = {
        "id": response_id,
        "object": "response",
        "created_at": time.time(),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": turn.instructions or None,
        "model": turn.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": prev.id if prev else None,
        "reasoning": {"effort": turn.effort, "summary": turn.summary},
        "store": turn.store,
        "temperature": 1.0,
        "top_p": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": turn.tool_choice,
        "tools": [],
        "truncation": "disabled",
        "metadata": {},
        "usage": usage,
        "tool_usage": tool_usage,
    }
    after = carried + new_tokens + text_tokens(message)
    if job is not None:
        after += image_input_tokens(job.width, job.height)
    return Answer(
        response,
        Bill(response_id, turn.model, image_model, usd, usage, tool_usage),
        StoredResponse(response_id, turn.model, after, last_image),
        job,
    )


def _revised(text: str, refine: bool) -> str:
    how = "keeping the previous image and changing only what is asked" if refine else "new image"
    return f"{text.strip()} ({how}; balanced composition, crisp legible lettering)"


def _summary(text: str, refine: bool) -> str:
    plan = (
        "keep the layout of the last image and change only that"
        if refine
        else ("plan the layout first, then the lettering")
    )
    return f"**Planning the image**\n\nThe request is: {text.strip()[:300]}. I will {plan}."


def _message(text: str, drew: bool, wanted: bool) -> str:
    if drew:
        return "Here is the image."
    if wanted:
        return f"I would rather describe it than draw it: {text.strip()[:160]}"
    return f"Noted: {text.strip()[:160]}"


def _web_search(turn: TurnInput, citations: list[dict[str, Any]]) -> dict[str, Any]:
    query = turn.text.strip()[:100]
    digest = hashlib.sha256(query.encode()).hexdigest()[:12]
    urls = [f"https://example.org/ref/{digest}/{i}" for i in (1, 2)]
    for i, url in enumerate(urls, 1):
        citations.append(
            {
                "type": "url_citation",
                "url": url,
                "title": f"Reference {i}: {query}",
                "start_index": 0,
                "end_index": 0,
            }
        )
    action: dict[str, Any] = {"type": "search", "query": query}
    if "web_search_call.action.sources" in turn.include:
        action["sources"] = [{"type": "url", "url": u} for u in urls]
    return {"id": _id("ws"), "type": "web_search_call", "status": "completed", "action": action}


def _image_job(turn: TurnInput, revised: str) -> ImageJob:
    assert turn.image_tool is not None
    options = {
        k: v for k, v in turn.image_tool.items() if k not in ("type", "action", "input_image_mask")
    }
    options.setdefault("model", DEFAULT_TOOL_MODEL)
    body = {**options, "prompt": revised, "stream": turn.stream or None}
    try:
        return validate("generation", RawRequest({k: v for k, v in body.items() if v is not None}))
    except ApiError as error:  # the same rule, named where it sits in this request
        error.param = f"tools[0].{error.param}" if error.param else "tools[0]"
        raise


def _image_call(
    turn: TurnInput,
    job: ImageJob,
    revised: str,
    reference: tuple[int, int] | None,
    fake: FakeImagesServer,
) -> tuple[dict[str, Any], dict[str, Any]]:
    item: dict[str, Any] = {
        "id": _id("ig"),
        "type": "image_generation_call",
        "revised_prompt": revised,
        "action": "edit" if reference else "generate",
        "background": job.background,
        "output_format": job.output_format,
        "quality": job.quality,
        "size": job.size,
    }
    blocked = moderation_block(
        turn.text, fake.faults.moderation_words, fake.faults.moderation_category
    )
    if blocked:
        item.update(status="failed", result=None, error=blocked.body()["error"])
        return item, _zero_image_usage()
    item.update(status="completed", result=b"".join(fake.renderer.image_b64(job, 0)).decode())
    text_in = text_tokens(revised)
    image_in = image_input_tokens(*reference) if reference else 0
    out = output_tokens_per_image(job.quality, job.width, job.height)
    out += PARTIAL_IMAGE_TOKENS * job.partial_images
    usage = {
        "input_tokens": text_in + image_in,
        "input_tokens_details": {"image_tokens": image_in, "text_tokens": text_in},
        "output_tokens": out,
        "output_tokens_details": {"image_tokens": out, "text_tokens": 0},
        "total_tokens": text_in + image_in + out,
    }
    return item, usage


def _zero_image_usage() -> dict[str, Any]:
    return {
        "input_tokens": 0,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
        "output_tokens": 0,
        "total_tokens": 0,
    }


def _mainline_usd(model: str, usage: dict[str, Any]) -> float:
    p_in, p_cached, p_out = MAINLINE_RULES[model][1]
    cached = int(usage["input_tokens_details"]["cached_tokens"])
    fresh = int(usage["input_tokens"]) - cached
    return (fresh * p_in + cached * p_cached + int(usage["output_tokens"]) * p_out) / 1e6


def _image_usd(model: str | None, usage: dict[str, Any]) -> float:
    if model is None:
        return 0.0
    p_text, p_image, p_out = _IMAGE_PRICES.get(model, _GPT2_PRICES)
    details = usage["input_tokens_details"]
    text_in, image_in = int(details["text_tokens"]), int(details["image_tokens"])
    return (text_in * p_text + image_in * p_image + int(usage["output_tokens"]) * p_out) / 1e6


def request_shape(body: bytes) -> dict[str, Any]:
    """The body as tests read it: every field, with image payloads reduced to their hash."""
    shape: dict[str, Any] = json.loads(body)
    items: list[Any] = shape["input"] if isinstance(shape.get("input"), list) else []
    images = 0
    for item in items:
        for part in item.get("content") if isinstance(item.get("content"), list) else []:
            if part.get("type") == "input_image":
                url = str(part.get("image_url", ""))
                part["image_url"] = "sha256:" + hashlib.sha256(url.encode()).hexdigest()
                images += 1
    shape["input_images"] = images
    return shape


# --- streaming --------------------------------------------------------------------------------


def events(answer: Answer, fake: FakeImagesServer) -> list[dict[str, Any]]:
    """The event sequence of a streamed response, in order (sequence numbers added last)."""
    response = answer.response
    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    out: list[dict[str, Any]] = [
        {"type": "response.created", "response": pending},
        {"type": "response.in_progress", "response": pending},
    ]
    for index, item in enumerate(response["output"]):
        ref = {"item_id": item["id"], "output_index": index}
        started = {k: v for k, v in item.items() if k not in ("result", "summary", "content")}
        started["status"] = "in_progress"
        if item["type"] == "reasoning":
            started["summary"] = []
        out.append({"type": "response.output_item.added", "output_index": index, "item": started})
        out += _item_events(item, ref, answer, fake)
        out.append({"type": "response.output_item.done", "output_index": index, "item": item})
    out.append({"type": "response.completed", "response": response})
    for number, event in enumerate(out):
        event["sequence_number"] = number
    return out


def _item_events(
    item: dict[str, Any], ref: dict[str, Any], answer: Answer, fake: FakeImagesServer
) -> list[dict[str, Any]]:
    kind = item["type"]
    if kind == "reasoning":
        out = []
        for i, part in enumerate(item["summary"]):
            at = {**ref, "summary_index": i}
            out += [
                {
                    "type": "response.reasoning_summary_part.added",
                    **at,
                    "part": {"type": "summary_text", "text": ""},
                },
                {"type": "response.reasoning_summary_text.delta", **at, "delta": part["text"]},
                {"type": "response.reasoning_summary_text.done", **at, "text": part["text"]},
                {"type": "response.reasoning_summary_part.done", **at, "part": part},
            ]
        return out
    if kind == "web_search_call":
        return [
            {"type": f"response.web_search_call.{s}", **ref}
            for s in ("in_progress", "searching", "completed")
        ]
    if kind == "image_generation_call":
        prefix = "response.image_generation_call"
        out = [{"type": f"{prefix}.in_progress", **ref}, {"type": f"{prefix}.generating", **ref}]
        job = answer.job
        for index in range(job.partial_images if job else 0):
            data = b"".join(fake.renderer.partial_b64(job, index)).decode() if job else ""
            out.append(
                {
                    "type": f"{prefix}.partial_image",
                    **ref,
                    "partial_image_index": index,
                    "partial_image_b64": data,
                }
            )
        return [*out, {"type": f"{prefix}.completed", **ref}]
    part = item["content"][0]
    at = {**ref, "content_index": 0}
    return [
        {
            "type": "response.content_part.added",
            **at,
            "part": {"type": "output_text", "text": "", "annotations": []},
        },
        {"type": "response.output_text.delta", **at, "delta": part["text"], "logprobs": []},
        {"type": "response.output_text.done", **at, "text": part["text"], "logprobs": []},
        {"type": "response.content_part.done", **at, "part": part},
    ]


def stream(handler: FakeHandler, answer: Answer) -> None:
    """Write the events as server-sent events over chunked encoding."""
    handler.entry["status"] = 200
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.send_header("x-request-id", handler.request_id)
    handler.send_header("Cache-Control", "no-cache")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler._record()
    for event in events(answer, handler.fake):
        handler._chunk(
            [f"event: {event['type']}\ndata: ".encode(), json.dumps(event).encode(), b"\n\n"]
        )
    handler._chunk([])
