"""The fake's structured-output judge: `POST /v1/responses` bodies whose `text.format` is a
strict JSON schema, answered deterministically with JSON that validates against that schema.

Written from the API reference (the Responses API, structured outputs, image inputs),
deliberately independent of `imagenb.judging` and `imagenb.core.catalog`, so it catches the client's
mistakes instead of sharing them. It is as strict as the real service may be:

- a schema outside the strict subset (an object without `additionalProperties: false` or with
  a property missing from `required`) is refused with 400, as is an unknown model, a
  reasoning effort the model does not take, or an image over the patch limit;
- usage counts image input tokens as the service does (32-px patches; `high` fits the image
  in 2048x2048 and 2,500 patches; `low` in 512x512; `original`, and `auto` or no `detail` on
  these models, keeps the full size and refuses more than 30,000 patches; 1.2 tokens a
  patch), text at ~4 characters a token, output as the answer's length plus the reasoning
  an effort spends; `max_output_tokens` cuts an answer off (`status: incomplete`);
- each answered request is billed in `JudgeDesk.ledger`, refusals and cut-off answers too.

Content: every image gets a "merit" from the hash of its bytes. Scores follow the merit of the
image judged; a comparison picks the image of higher merit, except that when the two are
close the judge says "first", as real judges favour the first position: so the swap rule
is exercised. `refuse_words` in the prompt make the judge refuse; `malformed_words` make the
answer broken JSON (what a lax compatible server may send).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from imagenb.testing.http import ApiError, invalid
from imagenb.testing.inputs import _image_ref, inspect_image

# USD per 1M tokens: input, output (standard tier), and the lowest reasoning effort taken.
PRICES: dict[str, tuple[float, float, str]] = {
    "gpt-6-luna": (0.10, 0.50, "none"),
    "gpt-5.6-luna": (0.20, 1.20, "none"),
    "gpt-5.6-terra": (2.00, 12.00, "none"),
    "gpt-6.2-sol": (2.00, 10.00, "low"),
}
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
REASONING_SPENT = {"none": 0, "minimal": 24, "low": 160, "medium": 640, "high": 2400,
                   "xhigh": 6000, "max": 12000}  # fmt: skip
TOKENS_PER_PATCH = 1.2
ORIGINAL_PATCH_LIMIT = 30_000
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CLOSE_MERITS = 0.15  # closer than this, the fake judge prefers whichever image comes first


@dataclass
class JudgeDesk:
    """The judge's knobs and its bill: one entry per answered request."""

    refuse_words: tuple[str, ...] = ()
    malformed_words: tuple[str, ...] = ()
    ledger: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def billed_usd(self) -> float:
        with self.lock:
            return float(sum(entry["usd"] for entry in self.ledger))

    @property
    def requests(self) -> int:
        with self.lock:
            return len(self.ledger)

    def bill(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.ledger.append(entry)


def is_judge_body(body: dict[str, Any]) -> bool:
    """Whether a /v1/responses body asks for a structured (json_schema) answer."""
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    return isinstance(fmt, dict) and fmt.get("type") == "json_schema"


def answer(desk: JudgeDesk, body: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The Response object for a judging body (or `ApiError`), billed in `desk.ledger`."""
    model = body.get("model")
    if model not in PRICES:
        raise ApiError(
            400, f"The model '{model}' does not exist or you do not have access to it.",
            code="model_not_found", param="model",
        )  # fmt: skip
    price_in, price_out, lowest = PRICES[str(model)]
    effort = _effort(body, lowest)
    fmt = body["text"]["format"]
    schema = _checked_format(fmt)
    texts, images = _content(body, str(model))
    prompt = "\n".join(texts)
    reply, refused = _reply(desk, schema, prompt, [data for data, _ in images])
    tokens_in = sum(_text_tokens(t) for t in texts) + 4 + sum(tokens for _, tokens in images)
    reasoning = REASONING_SPENT[effort]
    tokens_out = _text_tokens(reply) + reasoning
    cap = body.get("max_output_tokens")
    status, incomplete = "completed", None
    if isinstance(cap, int) and tokens_out > cap:
        status, incomplete = "incomplete", {"reason": "max_output_tokens"}
        keep = max(0, (cap - reasoning) * 4)
        reply, tokens_out = reply[:keep], cap
    usage = {
        "input_tokens": tokens_in,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": tokens_out,
        "output_tokens_details": {"reasoning_tokens": min(reasoning, tokens_out)},
        "total_tokens": tokens_in + tokens_out,
    }
    usd = (tokens_in * price_in + tokens_out * price_out) / 1e6
    desk.bill({"model": model, "request_id": request_id, "usd": usd, "usage": usage,
               "schema": fmt.get("name"), "status": status})  # fmt: skip
    part = (
        {"type": "refusal", "refusal": reply}
        if refused
        else {"type": "output_text", "text": reply, "annotations": [], "logprobs": []}
    )
    output: list[dict[str, Any]] = []
    if reasoning:
        output.append({"type": "reasoning", "id": "rs_" + uuid.uuid4().hex, "summary": []})
    output.append({"type": "message", "id": "msg_" + uuid.uuid4().hex, "status": status,
                   "role": "assistant", "content": [part]})  # fmt: skip
    return {
        "id": "resp_" + uuid.uuid4().hex, "object": "response", "created_at": time.time(),
        "status": status, "error": None, "incomplete_details": incomplete,
        "instructions": None, "max_output_tokens": cap, "model": model, "output": output,
        "parallel_tool_calls": True, "reasoning": {"effort": effort, "summary": None},
        "store": body.get("store", True), "temperature": 1.0, "text": body["text"],
        "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
        "usage": usage, "metadata": {},
    }  # fmt: skip


# --- the request ----------------------------------------------------------------------------


def _effort(body: dict[str, Any], lowest: str) -> str:
    reasoning = body.get("reasoning") or {}
    effort = reasoning.get("effort", "medium") if isinstance(reasoning, dict) else None
    allowed = EFFORTS[EFFORTS.index(lowest) :]
    if effort not in allowed:
        raise invalid(
            f"Unsupported value: 'reasoning.effort' does not support {effort!r} with this "
            f"model. Supported values are: {', '.join(repr(e) for e in allowed)}.",
            param="reasoning.effort", code="unsupported_value",
        )  # fmt: skip
    return str(effort)


def _checked_format(fmt: dict[str, Any]) -> dict[str, Any]:
    name, schema = fmt.get("name"), fmt.get("schema")
    if not isinstance(name, str) or not _NAME.match(name):
        raise invalid("Invalid 'text.format.name': use a-z, A-Z, 0-9, _ or -, at most 64.",
                      param="text.format.name")  # fmt: skip
    if not isinstance(schema, dict):
        raise invalid("Missing required parameter: 'text.format.schema'.",
                      param="text.format.schema", code="missing_required_parameter")  # fmt: skip
    if fmt.get("strict") is True:
        _strict(schema, name, ())
    return schema


def _strict(schema: dict[str, Any], name: str, where: tuple[str, ...]) -> None:
    """The strict subset: every object closed and every property required."""
    if schema.get("type") == "object":
        props = schema.get("properties") or {}
        problem = None
        if schema.get("additionalProperties") is not False:
            problem = "'additionalProperties' is required to be supplied and to be false"
        elif sorted(schema.get("required") or []) != sorted(props):
            problem = "'required' is required to be supplied and to be an array including " \
                "every key in properties"  # fmt: skip
        if problem:
            raise invalid(f"Invalid schema for response_format '{name}': In context={where}, "
                          f"{problem}.", param="text.format.schema",
                          code="invalid_json_schema")  # fmt: skip
        for key, sub in props.items():
            _strict(sub, name, (*where, "properties", key))
    elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        _strict(schema["items"], name, (*where, "items"))


def _content(body: dict[str, Any], model: str) -> tuple[list[str], list[tuple[bytes, int]]]:
    """The texts, and each image with its billed tokens, of the input messages."""
    messages = body.get("input")
    if isinstance(messages, str):
        return [messages], []
    if not isinstance(messages, list) or not messages:
        raise invalid("Missing required parameter: 'input'.", param="input",
                      code="missing_required_parameter")  # fmt: skip
    texts: list[str] = []
    images: list[tuple[bytes, int]] = []
    for m, message in enumerate(messages):
        parts = message.get("content") if isinstance(message, dict) else None
        if isinstance(parts, str):
            texts.append(parts)
            continue
        for p, part in enumerate(parts or []):
            where = f"input[{m}].content[{p}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "input_text":
                texts.append(str(part.get("text") or ""))
            elif kind == "input_image":
                images.append(_image(part, where))
            else:
                raise invalid(f"Invalid value: {kind!r}. Supported values are: 'input_text', "
                              "'input_image' and 'input_file'.", param=f"{where}.type")  # fmt: skip
    return texts, images


def _image(part: dict[str, Any], where: str) -> tuple[bytes, int]:
    detail = part.get("detail", "auto")
    if detail not in ("low", "high", "auto", "original"):
        raise invalid(f"Invalid value: {detail!r}. Supported values are: 'low', 'high', "
                      "'auto' and 'original'.", param=f"{where}.detail")  # fmt: skip
    ref = {k: part[k] for k in ("image_url", "file_id") if k in part}
    data = _image_ref(ref, where, lambda file_id: None)
    info = inspect_image(data, where)
    return data, _image_tokens(info.width, info.height, str(detail), where)


def _image_tokens(width: int, height: int, detail: str, where: str) -> int:
    fit, budget = {"high": (2048, 2500), "low": (512, 256)}.get(detail, (0, 0))
    if not fit:  # original, and auto on these models: the image as it is
        patches = math.ceil(width / 32) * math.ceil(height / 32)
        if patches > ORIGINAL_PATCH_LIMIT:
            raise invalid(f"Invalid '{where}': the image is {patches} patches at full size; "
                          f"the limit is {ORIGINAL_PATCH_LIMIT}. Send it with detail 'high'.",
                          param=where, code="image_too_large")  # fmt: skip
        return math.ceil(TOKENS_PER_PATCH * patches)
    scale = min(1.0, fit / max(width, height))
    w, h = width * scale, height * scale
    patches = math.ceil(w / 32) * math.ceil(h / 32)
    if patches > budget:
        shrink = math.sqrt(budget * 1024 / (w * h))
        across = math.floor(w * shrink / 32)
        patches = across * math.ceil(h * shrink * (across * 32 / (w * shrink)) / 32)
    return math.ceil(TOKENS_PER_PATCH * patches)


def _text_tokens(text: str) -> int:
    return math.ceil(len(text.encode()) / 4)


# --- the answer -----------------------------------------------------------------------------


def _merit(data: bytes) -> float:
    return int.from_bytes(hashlib.sha256(b"merit" + data).digest()[:8], "big") / 2**64


def _reply(
    desk: JudgeDesk, schema: dict[str, Any], prompt: str, images: list[bytes]
) -> tuple[str, bool]:
    lowered = prompt.lower()
    if any(word.lower() in lowered for word in desk.refuse_words):
        return "I'm sorry, but I can't help with judging this image.", True
    value = _fill(schema, "", _Context(prompt, [_merit(d) for d in images]))
    text = json.dumps(value, ensure_ascii=False)
    if any(word.lower() in lowered for word in desk.malformed_words):
        return text[: len(text) // 2], False
    return text, False


@dataclass(frozen=True)
class _Context:
    prompt: str
    merits: list[float]

    def pick(self, path: str, count: int) -> int:
        digest = hashlib.sha256(f"{path}\0{self.prompt}\0{self.merits}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % max(1, count)


def _fill(schema: dict[str, Any], path: str, ctx: _Context) -> Any:
    """A value valid under `schema`, deterministic in the schema path, prompt and images."""
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return _choose(enum, path, ctx)
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties") or {}
        return {key: _fill(sub, f"{path}/{key}", ctx) for key, sub in props.items()}
    if kind == "array":
        return []
    if kind == "boolean":
        merit = ctx.merits[0] if ctx.merits else 0.5
        return merit + ctx.pick(path, 100) / 400 > 0.4
    if kind in ("integer", "number"):
        low, high = int(schema.get("minimum", 0)), int(schema.get("maximum", 5))
        return low + ctx.pick(path, high - low + 1)
    if kind == "string":
        if path.endswith("text_in_image"):
            return ""
        return f"fake judge on {path.strip('/').split('/')[-2:][0] or 'the answer'}"
    return None


def _choose(enum: list[Any], path: str, ctx: _Context) -> Any:
    if set(enum) >= {"first", "second"} and len(ctx.merits) >= 2:
        first, second = ctx.merits[:2]
        return "first" if abs(first - second) < CLOSE_MERITS or first > second else "second"
    if all(isinstance(v, int) for v in enum):
        merit = ctx.merits[0] if ctx.merits else 0.5
        shift = (ctx.pick(path, 3) - 1) / len(enum)
        index = min(len(enum) - 1, max(0, int((merit + shift) * len(enum))))
        return sorted(enum)[index]
    return enum[ctx.pick(path, len(enum))]


def loggable(body: dict[str, Any]) -> dict[str, Any]:
    """What the request log keeps of a judging body: the schema's name, the effort, each
    image's `detail` as sent (None when left out) and the SHA-256 of each image's bytes."""
    details, hashes = [], []
    for message in body.get("input") or []:
        for part in (message.get("content") if isinstance(message, dict) else None) or []:
            if isinstance(part, dict) and part.get("type") == "input_image":
                details.append(part.get("detail"))
                url = str(part.get("image_url") or "")
                with contextlib.suppress(ValueError):
                    data = base64.b64decode(url.partition(",")[2], validate=True)
                    hashes.append(hashlib.sha256(data).hexdigest())
    reasoning = body.get("reasoning")
    return {
        "schema": body["text"]["format"].get("name"),
        "effort": reasoning.get("effort") if isinstance(reasoning, dict) else None,
        "details": details,
        "image_sha256s": hashes,
    }
