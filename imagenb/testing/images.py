"""Strict validation of image requests, with the real service's error messages and codes.

A `RawRequest` becomes an `ImageJob` (everything resolved: size, quality, background) or an
`ApiError`. The rules come from the API reference, not from imagenb, so that a client bug
shows up as the same 400 the real service would give.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from imagenb.testing.http import ApiError, invalid, user_error
from imagenb.testing.inputs import BOOL_FIELDS, IMAGE_FIELDS, INT_FIELDS, InputImage, RawRequest
from imagenb.testing.inputs import inspect_edit_images as inspect_edit_images
from imagenb.testing.models import (
    MODELS,
    PARTIAL_IMAGE_TOKENS,
    RETIRED,
    STANDARD_SIZES,
    ModelRule,
    Usage,
    image_input_tokens,
    output_tokens_per_image,
    resolve_quality,
    text_tokens,
)

Kind = Literal["generation", "edit"]

MAX_PROMPT_CHARS = 32_000
_COMMON = {
    "prompt", "model", "size", "quality", "n", "background", "output_format",
    "output_compression", "stream", "partial_images", "complexity",
    "safety_identifier", "user", "response_format", "frame_count", "frame_duration_ms", "svg",
}  # fmt: skip
# The fields each body may carry: the SDK's signatures (`images.generate()`, the multipart
# `images.edit()`, which has no `moderation`) and the OpenAPI JSON edit body, which has it.
_FIELDS: dict[str, set[str]] = {
    "generation": _COMMON | {"moderation", "style"},
    "edit-form": _COMMON | {"image", "mask", "markup", "input_fidelity"},
    "edit-json": _COMMON | {"moderation", "images", "mask", "markup", "input_fidelity"},
}
_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "a boolean"}


@dataclass(frozen=True)
class ImageJob:
    """A validated request with every `auto` resolved, ready to render and bill."""

    kind: Kind
    model: str
    prompt: str
    n: int
    width: int
    height: int
    quality: str  # as the response reports it (auto -> medium)
    background: str  # transparent | opaque
    output_format: str
    compression: int | None
    stream: bool
    partial_images: int
    safety_identifier: str | None = None
    inputs: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def event_prefix(self) -> str:
        return "image_generation" if self.kind == "generation" else "image_edit"

    def usage(self, *, images: int | None = None, with_input: bool = True) -> Usage:
        """Token usage of `images` of the n images (default all), streamed partials included."""
        count = self.n if images is None else images
        per_image = output_tokens_per_image(self.quality, self.width, self.height)
        partials = self.partial_images if self.stream else 0
        image_tokens = sum(image_input_tokens(i.width, i.height) for i in self.inputs)
        return Usage(
            text_tokens=text_tokens(self.prompt) if with_input else 0,
            image_input_tokens=image_tokens if with_input else 0,
            output_tokens=count * (per_image + PARTIAL_IMAGE_TOKENS * partials),
        )


def validate(kind: Kind, raw: RawRequest) -> ImageJob:
    """Check a request the way the real service does; the first problem found is raised."""
    f = raw.fields
    allowed = _FIELDS[kind if kind == "generation" else ("edit-form" if raw.form else "edit-json")]
    for name in f:
        if name not in allowed:
            msg = (
                f"Unknown parameter: '{name}'."
                if raw.form
                else f"Unrecognized request argument supplied: {name}"
            )
            raise invalid(msg, param=name, code="unknown_parameter")
    for name in ("response_format", "style"):
        if f.get(name) is not None:
            msg = f"Unknown parameter: '{name}'. GPT image models always return b64_json."
            raise invalid(msg, param=name, code="unknown_parameter")
    _check_types(f)
    prompt = _prompt(f.get("prompt"))
    rule = _model(f.get("model"))
    n = _int_range(f, "n", 1, 10, default=1)
    output_format = _output_format(f)
    quality = _choice(f, "quality", rule.qualities, "auto", model=rule.name)
    width, height = _size(f.get("size"), rule)
    background = _background(f, output_format)
    compression = _compression(f, output_format)
    _choice(f, "moderation", ("low", "auto"), "auto")
    stream = bool(f.get("stream"))
    partial_images = _partial_images(f, stream)
    _model_specific(f, rule, kind)
    inputs, mask = inspect_edit_images(raw) if kind == "edit" else ((), None)
    return ImageJob(
        kind=kind,
        model=rule.name,
        prompt=prompt,
        n=n,
        width=width,
        height=height,
        quality=resolve_quality(quality),
        background=background,
        output_format=output_format,
        compression=compression,
        stream=stream,
        partial_images=partial_images,
        safety_identifier=f.get("safety_identifier") or f.get("user") or None,
        inputs=inputs,
        mask=mask,
        params=raw.loggable(),
    )


def moderation_block(prompt: str, words: Sequence[str], category: str) -> ApiError | None:
    """The input-stage safety rejection for a prompt containing one of `words`."""
    lowered = prompt.lower()
    if not any(word and word.lower() in lowered for word in words):
        return None
    message = (
        "Your request was rejected by the safety system. If you believe this is an error, "
        "contact us at help.openai.com and include the request ID. "
        f"safety_violations=[{category}]"
    )
    details = {"moderation_stage": "input", "categories": [category]}
    error = user_error(message, param=None, code="moderation_blocked")
    error.extra["moderation_details"] = details
    error.fault = "moderation"
    return error


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "an integer" if isinstance(value, int) else "a number"
    if isinstance(value, (list, dict)):
        return "an array" if isinstance(value, list) else "an object"
    return "a string"


def _check_types(f: Mapping[str, Any]) -> None:
    for name, value in f.items():
        if value is None or name in IMAGE_FIELDS or name == "svg":
            continue
        expected = int if name in INT_FIELDS else bool if name in BOOL_FIELDS else str
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            msg = (
                f"Invalid type for '{name}': expected {_TYPE_NAMES[expected]}, "
                f"but got {_type_name(value)} instead."
            )
            raise invalid(msg, param=name, code="invalid_type")


def _prompt(prompt: str | None) -> str:
    if prompt is None:
        msg = "Missing required parameter: 'prompt'."
        raise invalid(msg, param="prompt", code="missing_required_parameter")
    if not prompt:
        msg = (
            "Invalid 'prompt': empty string. Expected a string with minimum length 1, "
            "but got an empty string instead."
        )
        raise invalid(msg, param="prompt", code="empty_string")
    if len(prompt) > MAX_PROMPT_CHARS:
        msg = (
            f"Invalid 'prompt': string too long. Expected a string with maximum length "
            f"{MAX_PROMPT_CHARS}, but got a string with length {len(prompt)} instead."
        )
        raise invalid(msg, param="prompt", code="string_above_max_length")
    return prompt


def _model(model: str | None) -> ModelRule:
    if model in MODELS:
        return MODELS[model]
    message = f"The model `{model or 'dall-e-2'}` does not exist or you do not have access to it."
    if model is None:
        message += (
            f" No `model` was given, so the API defaulted to dall-e-2, which "
            f"{RETIRED['dall-e-2']}. Pass model='gpt-image-2' explicitly."
        )
    elif model in RETIRED:
        message += f" It {RETIRED[model]}; use gpt-image-2 or a newer model."
    raise ApiError(404, message, code="model_not_found")


def _supported(values: Sequence[str]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 1 else quoted[0]


def _choice(
    f: Mapping[str, Any], name: str, values: Sequence[str], default: str, *, model: str = ""
) -> str:
    value = f.get(name)
    if value is None:
        return default
    if value not in values:
        scope = f" for model '{model}'" if model else ""
        msg = f"Invalid value: '{value}'. Supported values{scope} are: {_supported(values)}."
        raise invalid(msg, param=name)
    return str(value)


def _int_range(f: Mapping[str, Any], name: str, low: int, high: int, *, default: int) -> int:
    value = f.get(name)
    if value is None:
        return default
    if value < low:
        msg = (
            f"Invalid '{name}': integer below minimum value. "
            f"Expected a value >= {low}, but got {value} instead."
        )
        raise invalid(msg, param=name, code="integer_below_min_value")
    if value > high:
        msg = (
            f"Invalid '{name}': integer above maximum value. "
            f"Expected a value <= {high}, but got {value} instead."
        )
        raise invalid(msg, param=name, code="integer_above_max_value")
    return int(value)


def _output_format(f: Mapping[str, Any]) -> str:
    value = f.get("output_format")
    if value in ("gif", "svg"):
        msg = (
            f"output_format '{value}' requires preview access, which this project does not "
            "have. Use 'png', 'webp' or 'jpeg'."
        )
        raise invalid(msg, param="output_format")
    for name, needs in (("frame_count", "gif"), ("frame_duration_ms", "gif"), ("svg", "svg")):
        if f.get(name) is not None:
            raise invalid(f"'{name}' is only supported with output_format '{needs}'.", param=name)
    return _choice(f, "output_format", ("png", "webp", "jpeg"), "png")


def _size(size: str | None, rule: ModelRule) -> tuple[int, int]:
    if size is None or size == "auto":
        return 1024, 1024
    match = _SIZE_RE.match(size)
    if not match:
        problem: str | None = ". Expected WIDTHxHEIGHT, for example '1824x1024'."
    else:
        width, height = int(match.group(1)), int(match.group(2))
        problem = _size_problem(size, width, height, rule)
        if problem is None:
            return width, height
    raise user_error(f"Invalid size '{size}'{problem}", param="size")


def _size_problem(size: str, width: int, height: int, rule: ModelRule) -> str | None:
    """What is wrong with a WxH size, as the tail of the service's message; None if fine."""
    if not rule.flexible_sizes:
        if size in STANDARD_SIZES:
            return None
        choices = _supported([*STANDARD_SIZES, "auto"])
        return f" for model '{rule.name}'. Supported sizes are {choices}."
    if width % 16 or height % 16:
        return ". Width and height must both be divisible by 16."
    if max(width, height) > 3840:
        return ". The longest edge must be at most 3840 pixels."
    if not 655_360 <= width * height <= 8_294_400:
        pixels = width * height
        return f". The total number of pixels must be between 655360 and 8294400, got {pixels}."
    if max(width, height) > 3 * min(width, height):
        return ". The aspect ratio must be between 1:3 and 3:1."
    return None


def _background(f: Mapping[str, Any], output_format: str) -> str:
    value = _choice(f, "background", ("transparent", "opaque", "auto"), "auto")
    if value == "transparent" and output_format not in ("png", "webp"):
        msg = (
            f"Transparent background is not supported for output_format '{output_format}'. "
            "Use 'png' or 'webp'."
        )
        raise invalid(msg, param="background")
    return "transparent" if value == "transparent" else "opaque"


def _compression(f: Mapping[str, Any], output_format: str) -> int | None:
    if f.get("output_compression") is None:
        return None
    if output_format not in ("webp", "jpeg"):
        msg = (
            "output_compression is only supported for output_format 'webp' or 'jpeg', "
            f"not '{output_format}'."
        )
        raise invalid(msg, param="output_compression")
    return _int_range(f, "output_compression", 0, 100, default=100)


def _partial_images(f: Mapping[str, Any], stream: bool) -> int:
    if f.get("partial_images") is None:
        return 0
    if not stream:
        msg = "partial_images is only supported when stream is true."
        raise invalid(msg, param="partial_images")
    return _int_range(f, "partial_images", 0, 3, default=0)


def _unsupported(name: str, model: str, hint: str) -> ApiError:
    msg = f"Unsupported parameter: '{name}' is not supported with model '{model}'. {hint}"
    return invalid(msg, param=name, code="unsupported_parameter")


def _model_specific(f: Mapping[str, Any], rule: ModelRule, kind: Kind) -> None:
    if f.get("complexity") is not None:
        if not rule.complexity:
            raise _unsupported("complexity", rule.name, "It is available on gpt-image-2.6 models.")
        _choice(f, "complexity", ("low", "medium", "high"), "medium")
    if kind == "edit" and f.get("input_fidelity") is not None:
        if not rule.input_fidelity:
            hint = "This model always processes input images at high fidelity; omit it."
            raise _unsupported("input_fidelity", rule.name, hint)
        _choice(f, "input_fidelity", rule.input_fidelity, "low", model=rule.name)
    if f.get("markup") is not None:
        if not rule.markup:
            raise _unsupported("markup", rule.name, "Markup is available on gpt-image-2.5 models.")
        if f.get("mask") is not None:
            raise invalid("'markup' cannot be combined with 'mask'.", param="markup")
