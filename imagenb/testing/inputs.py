"""Request bodies -> `RawRequest`: JSON or multipart fields plus the edit input images.

Edits reach the service two ways (multipart `image`/`image[]` parts from `images.edit()`, or
the JSON body with `images: [{image_url} | {file_id}]` that batch lines use); both end up
here as the same `RawRequest`, so validation has one code path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from imagenb.testing.http import FormPart, invalid

FileResolver = Callable[[str], bytes | None]

MAX_EDIT_IMAGES = 16
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_IMAGE_URL_CHARS = 20_971_520
INT_FIELDS = frozenset(
    {"n", "output_compression", "partial_images", "frame_count", "frame_duration_ms"}
)
BOOL_FIELDS = frozenset({"stream"})
IMAGE_FIELDS = frozenset({"image", "images", "mask", "markup"})
_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}
_SUPPORTED = "Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'."


@dataclass(frozen=True)
class InputImage:
    """An edit input as the server saw it; the sha256 lets tests check what was sent."""

    sha256: str
    width: int
    height: int
    format: str
    has_alpha: bool


@dataclass(frozen=True)
class RawRequest:
    """An image request body before validation, from JSON or multipart alike."""

    fields: dict[str, Any]
    images: tuple[bytes, ...] = ()
    mask: bytes | None = None
    markup: bytes | None = None
    form: bool = False

    def loggable(self) -> dict[str, Any]:
        """The body without image payloads, for the request log."""
        return {k: v for k, v in self.fields.items() if k not in IMAGE_FIELDS}


def raw_from_json(body: dict[str, Any], *, edit: bool, resolve_file: FileResolver) -> RawRequest:
    if not edit:
        return RawRequest(fields=body)
    images = body.get("images")
    refs: list[bytes] = []
    if images is not None:
        if not isinstance(images, list):
            msg = "Invalid type for 'images': expected an array."
            raise invalid(msg, param="images", code="invalid_type")
        refs = [_image_ref(ref, f"images[{i}]", resolve_file) for i, ref in enumerate(images)]
    overlays = {
        name: _image_ref(body[name], name, resolve_file)
        for name in ("mask", "markup")
        if body.get(name) is not None
    }
    return RawRequest(body, tuple(refs), overlays.get("mask"), overlays.get("markup"))


def raw_from_form(parts: Sequence[FormPart]) -> RawRequest:
    """Multipart edits: `image` or repeated `image[]` files, `mask`, and string fields."""
    fields: dict[str, Any] = {}
    images: list[bytes] = []
    files: dict[str, bytes] = {}
    for part in parts:
        name = part.name.split("[", 1)[0]  # image[] -> image, svg[model] -> svg
        if name == "image":
            images.append(part.data)
            fields["image"] = True
        elif name in ("mask", "markup"):
            files[name] = part.data
            fields[name] = True
        else:
            fields[name] = _form_value(name, part.data.decode("utf-8", "replace"))
    return RawRequest(fields, tuple(images), files.get("mask"), files.get("markup"), form=True)


def _form_value(name: str, text: str) -> Any:
    """Form fields arrive as text; convert the typed ones the way the service does."""
    if text == "":
        return None
    if name in INT_FIELDS:
        try:
            return int(text)
        except ValueError:
            return text  # rejected later with the usual invalid_type message
    if name in BOOL_FIELDS and text in ("true", "false"):
        return text == "true"
    return text


def _image_ref(ref: Any, param: str, resolve_file: FileResolver) -> bytes:
    if not isinstance(ref, dict) or len({"image_url", "file_id"} & ref.keys()) != 1:
        msg = f"Invalid '{param}': give exactly one of 'image_url' or 'file_id'."
        raise invalid(msg, param=param)
    unknown = sorted(set(ref) - {"image_url", "file_id"})
    if unknown:
        msg = f"Unrecognized request argument supplied: {param}.{unknown[0]}"
        raise invalid(msg, param=param, code="unknown_parameter")
    if "file_id" in ref:
        data = resolve_file(str(ref["file_id"]))
        if data is None:
            msg = f"Invalid '{param}.file_id': file '{ref['file_id']}' not found."
            raise invalid(msg, param=f"{param}.file_id")
        return data
    url, where = ref["image_url"], f"{param}.image_url"
    if not isinstance(url, str) or len(url) > MAX_IMAGE_URL_CHARS:
        msg = f"Invalid '{where}': expected a URL of at most {MAX_IMAGE_URL_CHARS} characters."
        raise invalid(msg, param=where)
    header, sep, payload = url.partition(",")
    if not url.startswith("data:") or not sep or not header.endswith(";base64"):
        msg = (
            f"Invalid '{where}': the fake server accepts only base64 data: URLs (it cannot "
            "fetch remote images); inline the image or upload it and pass a file_id."
        )
        raise invalid(msg, param=where, code="invalid_image_url")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        msg = f"Invalid '{where}': the base64 payload does not decode."
        raise invalid(msg, param=where, code="invalid_image_url") from None


def inspect_image(data: bytes, param: str) -> InputImage:
    """Check an input image's format and structure (cheap: the pixels are not decoded)."""
    from PIL import Image, UnidentifiedImageError

    if len(data) >= MAX_IMAGE_BYTES:
        msg = f"Invalid file '{param}': {len(data)} bytes. Images must be smaller than 50 MB."
        raise invalid(msg, param=param, code="image_too_large")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, (width, height), mode, info = img.format or "", img.size, img.mode, img.info
            img.verify()  # checks structure and checksums without decoding the pixels
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, Warning):
        msg = f"Invalid file '{param}': the data could not be decoded as an image. {_SUPPORTED}"
        raise invalid(msg, param=param, code="invalid_image_format") from None
    if fmt not in _FORMATS:
        msg = f"Invalid file '{param}': unsupported mimetype ('image/{fmt.lower()}'). {_SUPPORTED}"
        raise invalid(msg, param=param, code="invalid_image_format")
    has_alpha = "A" in mode or "transparency" in info
    return InputImage(hashlib.sha256(data).hexdigest(), width, height, _FORMATS[fmt], has_alpha)


def inspect_edit_images(raw: RawRequest) -> tuple[tuple[InputImage, ...], InputImage | None]:
    """Check 1-16 inputs, and a mask/markup that is an alpha PNG the size of the first."""
    param = "image" if raw.form else "images"
    if not raw.images:
        msg = f"Missing required parameter: '{param}'."
        raise invalid(msg, param=param, code="missing_required_parameter")
    if len(raw.images) > MAX_EDIT_IMAGES:
        msg = (
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{MAX_EDIT_IMAGES}, but got an array with length {len(raw.images)} instead."
        )
        raise invalid(msg, param=param, code="array_above_max_length")
    inputs = tuple(inspect_image(data, f"{param}[{i}]") for i, data in enumerate(raw.images))
    first = inputs[0]
    mask: InputImage | None = None
    for name, data in (("mask", raw.mask), ("markup", raw.markup)):
        if data is None:
            continue
        overlay = inspect_image(data, name)
        if overlay.format != "png" or not overlay.has_alpha:
            alpha = "with" if overlay.has_alpha else "without"
            msg = (
                f"Invalid '{name}': it must be a PNG with an alpha channel "
                f"(got {overlay.format} {alpha} alpha)."
            )
            raise invalid(msg, param=name)
        if (overlay.width, overlay.height) != (first.width, first.height):
            msg = (
                f"Invalid '{name}': its size {overlay.width}x{overlay.height} does not match "
                f"the first image's size {first.width}x{first.height}."
            )
            raise invalid(msg, param=name)
        if name == "mask":
            mask = overlay
    return inputs, mask
