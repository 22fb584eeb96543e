"""The images a judge looks at, whatever the caller passed: an `ImageSet`, `GeneratedImage`s,
a `Grid` or a `Storyboard` (finished cells only), paths, bytes or PIL images.

Each becomes a `Subject`: its key (a stored image's request key, else the SHA-256 of its
bytes: how verdicts and ratings find it again), its bytes checked by `imagenb.core.inputs`, and the
prompt that made it when known.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from imagenb.backends.base import JudgeImage
from imagenb.core import inputs
from imagenb.errors import InvalidRequest


@dataclass(frozen=True)
class Subject:
    key: str
    sha256: str
    image: JudgeImage
    prompt: str | None = None


def one(source: Any, role: str = "image") -> Subject:
    """A `Subject` for one image-like value."""
    loaded = inputs.load(source, role=role)
    key = getattr(source, "key", None)
    return Subject(
        key if isinstance(key, str) else loaded.sha256,
        loaded.sha256,
        JudgeImage(loaded.data, loaded.mime, loaded.width, loaded.height),
        getattr(source, "prompt", None),
    )


def finished_images(container: Any) -> list[Any]:
    """The images of a grid or storyboard (waiting for it first), in frame order."""
    wait = getattr(container, "wait", None)
    if callable(wait):
        wait()
    return [img for img in container.frame["image"] if img is not None]


def many(images: Any) -> list[Subject]:
    """`Subject`s for everything `images` holds, in order; `InvalidRequest` if none."""
    if hasattr(images, "frame") and not isinstance(images, (str, bytes)):
        items: list[Any] = finished_images(images)
    elif _single(images):
        items = [images]
    elif isinstance(images, Iterable):
        items = list(images)
    else:
        raise InvalidRequest(
            f"cannot judge a {type(images).__name__}; pass an ImageSet, a Grid, a Storyboard, "
            "GeneratedImages, paths, bytes or PIL images"
        )
    if not items:
        raise InvalidRequest("there are no finished images to judge")
    return [one(item, role=f"image {i + 1}") for i, item in enumerate(items)]


def _single(value: Any) -> bool:
    return (
        isinstance(value, (str, bytes, bytearray, os.PathLike))
        or hasattr(value, "getpixel")
        or isinstance(getattr(value, "key", None), str)
    )
