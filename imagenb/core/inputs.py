"""Edit inputs (images and masks) read once, checked before anything is sent, and identified by
the SHA-256 of their bytes so that store keys change exactly when an input changes.

Accepts paths, bytes, PIL images and anything with a `.path` (a `GeneratedImage`). Pillow is
imported only here and only when an input is actually read.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagenb.errors import InvalidRequest

MAX_INPUT_BYTES = 50 * 1024 * 1024
MAX_INPUT_PIXELS = 64_000_000  # far above any real input; refuses decompression bombs
_MIME = {"PNG": "image/png", "WEBP": "image/webp", "JPEG": "image/jpeg"}
_EXT = {"PNG": "png", "WEBP": "webp", "JPEG": "jpg"}


@dataclass(frozen=True)
class ImageInput:
    """One input image, already validated. Equal inputs compare equal by content hash."""

    sha256: str
    format: str  # PNG, WEBP or JPEG
    width: int
    height: int
    has_alpha: bool
    name: str
    data: bytes = field(repr=False, compare=False)

    @property
    def mime(self) -> str:
        return _MIME[self.format]

    @property
    def filename(self) -> str:
        return f"{Path(self.name).stem or 'image'}.{_EXT[self.format]}"

    def as_upload(self) -> tuple[str, bytes, str]:
        """The `(filename, content, mime)` tuple the SDK sends as a multipart file."""
        return (self.filename, self.data, self.mime)

    def as_data_url(self) -> str:
        """The image inline, as the JSON bodies (`images: [{image_url}]`) carry it."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def load(source: Any, *, role: str = "image") -> ImageInput:
    """Read and check one input; `role` names it in error messages ("image 2", "mask")."""
    name, data = _read(source, role)
    if len(data) >= MAX_INPUT_BYTES:
        raise InvalidRequest(
            f"{role} {name!r} is {len(data) / 2**20:.1f} MB; inputs must be under 50 MB "
            "(save it as JPEG or WebP, or resize it)"
        )
    return _inspect(name, data, role)


def load_many(sources: Any, *, limit: int) -> tuple[ImageInput, ...]:
    """Read a single input or a sequence of them (1 to `limit`)."""
    items = list(sources) if _is_sequence(sources) else [sources]
    if not items:
        raise InvalidRequest("edit needs at least one input image")
    if len(items) > limit:
        raise InvalidRequest(f"{len(items)} input images given; this model accepts 1 to {limit}")
    return tuple(load(item, role=f"image {i + 1}") for i, item in enumerate(items))


def _is_sequence(value: Any) -> bool:
    if isinstance(value, (str, bytes, bytearray, os.PathLike)) or hasattr(value, "read"):
        return False  # a file object iterates lines, not images
    return hasattr(value, "__iter__") and not hasattr(value, "getpixel")


def _read(source: Any, role: str) -> tuple[str, bytes]:
    painted = getattr(source, "mask", None)
    if role == "mask" and hasattr(painted, "getpixel"):  # an ig.mask painter: its mask
        source = painted
    if isinstance(source, (bytes, bytearray, memoryview)):
        return role, bytes(source)
    if isinstance(source, (str, os.PathLike)):
        return _read_path(Path(source), role)
    if hasattr(source, "path") and isinstance(source.path, (str, os.PathLike)):
        return _read_path(Path(source.path), role)
    if hasattr(source, "read"):  # an open file or BytesIO
        return _read_file(source, role)
    if hasattr(source, "save") and hasattr(source, "getpixel"):  # a PIL image
        buf = io.BytesIO()
        image = source if source.mode in ("RGB", "RGBA", "L", "LA") else source.convert("RGBA")
        image.save(buf, format="PNG")
        return getattr(source, "filename", "") or role, buf.getvalue()
    raise InvalidRequest(
        f"{role}: cannot use {type(source).__name__} as an image; pass a path, bytes, "
        "a PIL image or a GeneratedImage" + (" (or an ig.mask painter)" if role == "mask" else "")
    )


def _read_file(source: Any, role: str) -> tuple[str, bytes]:
    """An open binary file: named by its file name if it has one, else by its role (never
    by a repr such as `<_io.BytesIO object at 0x...>`)."""
    name = getattr(source, "name", None)
    label = Path(name).name if isinstance(name, str) and name else role
    try:
        data = source.read(MAX_INPUT_BYTES)
    except (OSError, ValueError) as exc:  # closed, not readable
        raise InvalidRequest(f"{role} {label!r} cannot be read: {exc}") from None
    if not isinstance(data, (bytes, bytearray)):
        raise InvalidRequest(f"{role} {label!r} is a text file; open it in binary mode ('rb')")
    return label, bytes(data)


def _read_path(path: Path, role: str) -> tuple[str, bytes]:
    if not path.is_file():
        raise InvalidRequest(f"{role}: no such file {str(path)!r}")
    if path.stat().st_size >= MAX_INPUT_BYTES:
        raise InvalidRequest(
            f"{role} {path.name!r} is {path.stat().st_size / 2**20:.1f} MB; inputs must be "
            "under 50 MB"
        )
    return path.name, path.read_bytes()


def _named(role: str, name: str) -> str:
    """`image 2 'cat.png'`, or just `image 2` when the input has no name of its own."""
    return role if name == role else f"{role} {name!r}"


def _inspect(name: str, data: bytes, role: str) -> ImageInput:
    from PIL import Image, UnidentifiedImageError

    bombs = (Image.DecompressionBombError, Image.DecompressionBombWarning)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
        with im:
            fmt, (w, h), mode = im.format or "", im.size, im.mode
            if w * h > MAX_INPUT_PIXELS:
                raise InvalidRequest(
                    f"{role} {name!r} claims {w}x{h} pixels, more than any image model accepts "
                    "(possibly a decompression bomb); resize it"
                )
            im.verify()
    except InvalidRequest:
        raise
    except bombs:
        raise InvalidRequest(
            f"{role} {name!r} is too large to decode safely (a decompression bomb?); resize it"
        ) from None
    except UnidentifiedImageError:
        raise InvalidRequest(
            f"{_named(role, name)} is not a readable PNG, WebP or JPEG image (its bytes are no "
            "image format Pillow knows)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest(
            f"{_named(role, name)} is not a readable PNG, WebP or JPEG image ({exc})"
        ) from None
    if fmt not in _MIME:
        raise InvalidRequest(f"{role} {name!r} is {fmt or 'unknown'}; use PNG, WebP or JPEG")
    alpha = "A" in mode or (mode == "P" and b"tRNS" in data[:4096])
    return ImageInput(hashlib.sha256(data).hexdigest(), fmt, w, h, alpha, name, data)
