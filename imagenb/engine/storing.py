"""Turning an answer into stored images, one image at a time: check it is whole, embed what
made it, write it atomically, and serve what the store already has.

When the store cannot be written at all (disk full, read-only, no permission), an image that
was paid for is parked in memory (`park`), and the next run against the same store writes it
before anything else (`flush_parked`): nothing paid for is lost while the process lives.
"""

from __future__ import annotations

import errno
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagenb import __version__
from imagenb.store import provenance
from imagenb.store.images import GeneratedImage
from imagenb.store.index import Store, StoredImage

if TYPE_CHECKING:
    from imagenb.core.request import ImageRequest
    from imagenb.engine.runner import Run

ImageSink = Callable[[int, GeneratedImage], None]
PARK_LIMIT_BYTES = 1 << 30  # images kept in memory while the store cannot take them
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
_SQLITE_STORAGE = ("full", "readonly", "read-only", "unable to open", "disk i/o")


def storage_failure(exc: BaseException) -> bool:
    """Whether `exc` says the store cannot be written at all (not: this image is bad)."""
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno in _STORAGE_ERRNOS:
            return True
        if isinstance(link, sqlite3.OperationalError):
            return any(word in str(link).lower() for word in _SQLITE_STORAGE)
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(out) < 8:
        out.append(link)
        link = link.__cause__ or link.__context__
    return out


def whole_image_problem(data: bytes) -> str | None:
    """Why `data` is not a whole PNG, JPEG or WebP file (truncated in transit or by the
    server), or None. Structural only: cheap next to decoding."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        pos = 8
        while pos + 8 <= len(data):
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            kind = data[pos + 4 : pos + 8]
            pos += 12 + length
            if kind == b"IEND":
                return None if pos <= len(data) else "the PNG is truncated"
        return "the PNG is truncated (no IEND chunk)"
    if data.startswith(b"\xff\xd8"):
        return None if data.rstrip(b"\x00").endswith(b"\xff\xd9") else "the JPEG is truncated"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        (size,) = struct.unpack("<I", data[4:8])
        return None if len(data) >= size + 8 else "the WebP is truncated"
    return None  # not an image at all: the store refuses it with its own message


@dataclass(frozen=True)
class Origin:
    """What made an image, as recorded with it: enough to store a result whose `ImageRequest`
    is gone (a batch collected by another process)."""

    prompt: str
    model: str
    kind: str
    input_keys: tuple[str, ...]
    backend: str

    @classmethod
    def of(cls, request: ImageRequest, backend: str) -> Origin:
        inputs = tuple(i.sha256 for i in request.images)
        return cls(request.prompt, request.model, request.kind, inputs, backend)


@dataclass(frozen=True)
class Paid:
    """One image that was paid for, with everything needed to store it."""

    origin: Origin
    data: bytes
    key: str
    variant: int
    params: dict[str, Any]
    usage: dict[str, Any] | None
    cost_usd: float
    cost_is_estimate: bool
    latency_s: float | None
    request_id: str | None

    def write(self, store: Store, thumbnail_px: int) -> GeneratedImage:
        return write_image(
            store,
            self.origin,
            self.data,
            key=self.key,
            variant=self.variant,
            params=self.params,
            usage=self.usage,
            cost_usd=self.cost_usd,
            cost_is_estimate=self.cost_is_estimate,
            latency_s=self.latency_s,
            request_id=self.request_id,
            thumbnail_px=thumbnail_px,
        )


_parked: dict[Path, dict[str, Paid]] = {}
_parked_lock = threading.Lock()


def park(store: Store, image: Paid) -> bool:
    """Keep a paid image in memory until the store can take it; False if memory is full."""
    with _parked_lock:
        held = sum(len(p.data) for lot in _parked.values() for p in lot.values())
        if held + len(image.data) > PARK_LIMIT_BYTES:
            return False
        _parked.setdefault(store.root, {})[image.key] = image
        return True


def parked_count(store: Store) -> int:
    with _parked_lock:
        return len(_parked.get(store.root, {}))


def parked_keys(store: Store) -> set[str]:
    """Keys paid for and waiting in memory for `store`: never to be asked for again."""
    with _parked_lock:
        return set(_parked.get(store.root, {}))


def flush_parked(store: Store, thumbnail_px: int) -> int:
    """Write the images parked for `store` (call off the loop); returns how many went in.
    Stops at the first storage failure: the store is still full."""
    with _parked_lock:
        waiting = list(_parked.get(store.root, {}).values())
    written = 0
    for image in waiting:
        try:
            image.write(store, thumbnail_px)
        except Exception as exc:
            if storage_failure(exc):
                break
        with _parked_lock:
            _parked.get(store.root, {}).pop(image.key, None)
        written += 1
    return written


def serve_cached(
    store: Store, run: Run, thumbnail_px: int, on_image: ImageSink | None = None
) -> list[list[int]]:
    """Fill in every stored variant of `run`; return the missing variant indices per request."""
    keys = {r.key(v): (i, v) for i, r in enumerate(run.requests) for v in range(r.n)}
    found = store.get_many(list(keys))
    missing: list[list[int]] = [[] for _ in run.requests]
    for key, (index, variant) in keys.items():
        if row := found.get(key):
            serve_row(run, index, variant, row, thumbnail_px, on_image)
        else:
            missing[index].append(variant)
    return missing


def serve_row(
    run: Run,
    index: int,
    variant: int,
    row: StoredImage,
    thumbnail_px: int,
    on_image: ImageSink | None,
) -> None:
    """Fill in one variant of `run` from the store, at no cost."""
    image = GeneratedImage.from_stored(row, cached=True, thumbnail_px=thumbnail_px)
    run.results[index][variant] = image
    run.cached += 1
    if on_image:
        on_image(index, image)


def write_image(
    store: Store,
    origin: Origin,
    data: bytes,
    *,
    key: str,
    variant: int,
    params: dict[str, Any],
    usage: dict[str, Any] | None,
    cost_usd: float,
    cost_is_estimate: bool,
    latency_s: float | None,
    request_id: str | None,
    thumbnail_px: int,
) -> GeneratedImage:
    """Store one image (atomically, provenance embedded) and return it as a fresh result.
    The row's source is what `store` (a serving view) writes."""
    bill = {
        "source": store.policy.writes,
        "usage": usage,
        "cost_usd": cost_usd,
        "cost_is_estimate": cost_is_estimate,
        "request_id": request_id,
        "kind": origin.kind,
    }
    row = store.put(
        key=key,
        data=_with_provenance(data, origin, key, variant, params, bill),
        prompt=origin.prompt,
        model=origin.model,
        backend=origin.backend,
        params=params,
        variant=variant,
        usage=usage,
        cost_usd=cost_usd,
        cost_is_estimate=cost_is_estimate,
        latency_s=latency_s,
        request_id=request_id,
        kind=origin.kind,
        input_keys=origin.input_keys,
    )
    return GeneratedImage.from_stored(row, cached=False, thumbnail_px=thumbnail_px)


def _with_provenance(
    data: bytes,
    origin: Origin,
    key: str,
    variant: int,
    params: dict[str, Any],
    bill: dict[str, Any],
) -> bytes:
    """The image bytes with what made them written inside (PNG iTXt, JPEG COM, WebP XMP):
    enough for `imagenb store repair` to rebuild the image's row from the file alone."""
    header = provenance.probe(data)
    if header is None:
        return data  # the store refuses it with a clear message
    meta = {
        "imagenb": __version__,
        "key": key,
        "prompt": origin.prompt,
        "model": origin.model,
        "backend": origin.backend,
        "params": params,
        "variant": variant,
        "inputs": list(origin.input_keys),
        "created": time.time(),
        **bill,
    }
    return provenance.embed(data, header.format, meta)


def resolved_params(resolved: Mapping[str, Any]) -> dict[str, Any]:
    """What the server chose where the request said `auto`, under `resolved_*` names."""
    return {f"resolved_{k}": v for k, v in resolved.items() if v is not None}


def release_claims(store: Store, keys: Sequence[str], owner: str) -> None:
    """Drop our claims; if the store cannot be written now, remember them and try again at
    the next run, so a full disk never leaves this process waiting on its own claims."""
    _unreleased.append((store, list(keys), owner))
    retry_releases()


_unreleased: list[tuple[Store, list[str], str]] = []


def retry_releases() -> None:
    """Release every claim whose release failed before (engine loop only)."""
    pending = list(_unreleased)
    _unreleased.clear()
    for store, keys, owner in pending:
        try:
            store.release(keys, owner)
        except Exception:
            _unreleased.append((store, keys, owner))
