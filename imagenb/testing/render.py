"""Cheap, deterministic synthetic images of exactly the requested size and format.

Encoding a 3840x2160 PNG costs ~0.5 s of CPU, and benchmarks measure the *client* on a
shared 2-core machine, so the server must not re-encode per request. A base image is encoded
once per (size, format, background, compression, colour bucket) and its base64 cached; each
response is then made unique by splicing a small metadata chunk (PNG tEXt before IEND, JPEG
COM after APP0, WebP trailing RIFF chunk). Base64 of `A + B` equals `b64(A) + b64(B)` when
`len(A) % 3 == 0`, so the cached base64 is reused and only a few bytes are encoded per image.
"""

from __future__ import annotations

import base64
import colorsys
import hashlib
import io
import json
import random
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image

    from imagenb.testing.images import ImageJob

_PNG_IEND_LEN = 12


@dataclass(frozen=True)
class _Key:
    width: int
    height: int
    output_format: str
    background: str
    compression: int | None
    bucket: int  # colour bucket; negative for the blurred partial images


@dataclass(frozen=True)
class _Encoded:
    """A base image split around the spot where the per-response chunk goes."""

    head: bytes  # raw bytes before the chunk (len % 3 == 0 after the chunk is added)
    cached_b64: bytes  # base64 of the large middle, computed once
    tail: bytes  # raw bytes after the middle (the chunk is inserted before them)
    output_format: str

    @property
    def cost(self) -> int:
        return len(self.cached_b64) + len(self.head) + len(self.tail)


class ImageRenderer:
    """Thread-safe cache of encoded base images, bounded by `cache_bytes` (LRU)."""

    def __init__(self, *, buckets: int = 16, cache_bytes: int = 256 * 1024 * 1024) -> None:
        self.buckets = max(1, buckets)
        self.cache_bytes = cache_bytes
        self._cache: OrderedDict[_Key, _Encoded] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self._key_locks: dict[_Key, threading.Lock] = {}

    def image_b64(self, job: ImageJob, variant: int) -> list[bytes]:
        """Base64 of the final image `variant` of `job`, as pieces to write out in order."""
        digest = hashlib.sha256(job.prompt.encode("utf-8")).hexdigest()
        encoded = self._get(_key(job, bucket=int(digest[:8], 16) % self.buckets))
        meta = f"prompt_sha256={digest[:16]} variant={variant} model={job.model} size={job.size}"
        return _splice(encoded, meta.encode("ascii"))

    def warm(self, job: ImageJob) -> None:
        """Encode every colour bucket for the job's size and format ahead of time."""
        for bucket in range(self.buckets):
            self._get(_key(job, bucket=bucket))

    def partial_b64(self, job: ImageJob, index: int) -> list[bytes]:
        """A blurred, colourless preview at the final size (shared by every prompt)."""
        encoded = self._get(_key(job, bucket=-1 - index))
        return _splice(encoded, f"partial={index}".encode("ascii"))

    def _get(self, key: _Key) -> _Encoded:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one thread encodes a key; the others wait for it instead of repeating
            with self._lock:
                hit = self._cache.get(key)
            if hit is None:
                hit = _encode(key, self.buckets)
                with self._lock:
                    self._cache[key] = hit
                    self._size += hit.cost
                    while self._size > self.cache_bytes and len(self._cache) > 1:
                        _, old = self._cache.popitem(last=False)
                        self._size -= old.cost
                    self._key_locks.pop(key, None)
            return hit


def _key(job: ImageJob, *, bucket: int) -> _Key:
    return _Key(job.width, job.height, job.output_format, job.background, job.compression, bucket)


def response_pieces(renderer: ImageRenderer, job: ImageJob, created: int) -> list[bytes]:
    """The non-streaming `ImagesResponse` JSON, as pieces (the base64 is never copied)."""
    meta = _metadata(job) | {"created": created, "usage": job.usage().as_dict()}
    pieces = [json.dumps(meta)[:-1].encode() + b', "data": [']
    for variant in range(job.n):
        pieces.append(b'{"b64_json": "' if variant == 0 else b'"}, {"b64_json": "')
        pieces.extend(renderer.image_b64(job, variant))
    pieces.append(b'"}]}')
    return pieces


def stream_events(renderer: ImageRenderer, job: ImageJob, created: int) -> Iterator[list[bytes]]:
    """SSE events for a streamed request: per image, its partials then its completed event.

    With n > 1 the events carry no image index (neither does the real API); each completed
    event's usage covers its own image, and the first also carries the request's input
    tokens, so the usages sum to the whole request's.
    """
    meta = _metadata(job) | {"created_at": created}
    for variant in range(job.n):
        for index in range(job.partial_images):
            event = {"type": f"{job.event_prefix}.partial_image", **meta}
            event["partial_image_index"] = index
            yield _sse(event, renderer.partial_b64(job, index))
        usage = job.usage(images=1, with_input=variant == 0).as_dict(output_details=False)
        event = {"type": f"{job.event_prefix}.completed", **meta, "usage": usage}
        yield _sse(event, renderer.image_b64(job, variant))


def _metadata(job: ImageJob) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "background": job.background,
        "output_format": job.output_format,
        "quality": job.quality,
        "size": job.size,
    }
    if job.safety_identifier:
        meta["safety_identifier"] = job.safety_identifier
    return meta


def _sse(event: dict[str, Any], b64: list[bytes]) -> list[bytes]:
    head = f"event: {event['type']}\ndata: " + json.dumps(event)[:-1] + ', "b64_json": "'
    return [head.encode(), *b64, b'"}\n\n']


def _splice(encoded: _Encoded, meta: bytes) -> list[bytes]:
    if encoded.output_format == "png":
        chunk_data = b"imagenb-fake\x00" + meta
        chunk = struct.pack(">I", len(chunk_data)) + b"tEXt" + chunk_data
        chunk += struct.pack(">I", zlib.crc32(b"tEXt" + chunk_data))
        tail = encoded.tail[:-_PNG_IEND_LEN] + chunk + encoded.tail[-_PNG_IEND_LEN:]
        return [encoded.cached_b64, base64.b64encode(tail)]
    if encoded.output_format == "jpeg":
        payload = b"imagenb-fake " + meta
        payload += b" " * (-(len(encoded.head) + 4 + len(payload)) % 3)  # keep head % 3 == 0
        segment = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
        return [base64.b64encode(encoded.head + segment), encoded.cached_b64]
    payload = meta + (b" " if len(meta) % 2 else b"")  # RIFF chunks are padded to even size
    chunk = b"IMNB" + struct.pack("<I", len(payload)) + payload
    riff_size = len(encoded.head) + len(encoded.tail) + len(chunk) - 8
    riff_size += len(encoded.cached_b64) // 4 * 3
    head = b"RIFF" + struct.pack("<I", riff_size) + encoded.head[8:]
    return [base64.b64encode(head), encoded.cached_b64, base64.b64encode(encoded.tail + chunk)]


def _split(data: bytes, output_format: str) -> _Encoded:
    """Cut the encoded image so the large middle is base64-encoded once, 3-byte aligned."""
    if output_format == "png":  # chunk goes before IEND
        cut = (len(data) - _PNG_IEND_LEN) // 3 * 3
        return _Encoded(b"", base64.b64encode(data[:cut]), data[cut:], output_format)
    if output_format == "jpeg":  # COM segment goes after SOI (and after the JFIF APP0)
        cut = 2
        if data[2:4] == b"\xff\xe0":
            cut += 2 + struct.unpack(">H", data[4:6])[0]
        return _Encoded(data[:cut], base64.b64encode(data[cut:]), b"", output_format)
    body_end = 12 + (len(data) - 12) // 3 * 3  # WebP: RIFF header | aligned body | rest
    return _Encoded(data[:12], base64.b64encode(data[12:body_end]), data[body_end:], output_format)


def _encode(key: _Key, buckets: int) -> _Encoded:
    image = _synthesize(key, buckets)
    buffer = io.BytesIO()
    quality = 100 if key.compression is None else key.compression
    if key.output_format == "png":
        image.save(buffer, "PNG", compress_level=1)
    elif key.output_format == "jpeg":
        image.convert("RGB").save(buffer, "JPEG", quality=min(quality, 95))
    else:
        image.save(buffer, "WEBP", quality=quality, method=0)
    return _split(buffer.getvalue(), key.output_format)


def _synthesize(key: _Key, buckets: int) -> Image:
    """A tinted gradient with deterministic grain, so PNG sizes look like real output."""
    from PIL import Image, ImageChops

    size = (key.width, key.height)
    partial = key.bucket < 0
    rgb = (128, 128, 128)
    if not partial:
        r, g, b = colorsys.hsv_to_rgb(key.bucket / buckets, 0.65, 0.9)
        rgb = (round(r * 255), round(g * 255), round(b * 255))
    gx = Image.linear_gradient("L").rotate(90).resize(size)
    gy = Image.linear_gradient("L").resize(size)
    gxy = ImageChops.multiply(gx, gy)
    if not partial:  # grain from a seeded RNG: Image.effect_noise is not reproducible
        small = (max(1, key.width // 4), max(1, key.height // 4))
        rng = random.Random(f"{key.width}x{key.height}:{key.bucket}")
        grain = Image.frombytes("L", small, rng.randbytes(small[0] * small[1]))
        grain = grain.resize(size, Image.Resampling.BILINEAR)
        gx, gy, gxy = (Image.blend(g, grain, 0.3) for g in (gx, gy, gxy))
    channels = [
        g.point(lambda v, c=c: (c * 3 + v * 2) // 5)
        for g, c in zip((gx, gy, gxy), rgb, strict=True)
    ]
    if key.background == "transparent":
        alpha = Image.radial_gradient("L").resize(size).point(lambda v: max(0, 255 - v * 2))
        return Image.merge("RGBA", (*channels, alpha))
    return Image.merge("RGB", channels)
