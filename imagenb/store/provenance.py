"""Provenance inside the image file itself: what prompt, model and parameters made it, and what
it cost, so a file copied out of the store still says where it came from.

The record is JSON, inserted at byte level without touching the pixels: an `iTXt` chunk in
PNG, a `COM` segment in JPEG, an `XMP ` chunk in WebP (a simple WebP becomes an extended one).
`probe` reads the format and size from the header alone, which is all the store needs.
Only the standard library is used; nothing here decodes an image.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Format = Literal["png", "jpg", "webp"]

KEYWORD = "imagenb"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_MAX_PAYLOAD = 65533  # a segment length is 16 bits and counts its own two bytes

_PNG_KEY = KEYWORD.encode() + b"\x00"
_JPEG_PREFIX = KEYWORD.encode() + b":"
# A WebP holds one XMP chunk; when the file already has someone else's, ours goes in a private
# chunk instead (decoders skip unknown chunks).
_WEBP_OWN_CHUNK = b"imNB"
_XMP_HEAD = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:imagenb="urn:imagenb:provenance:1">'
    "<imagenb:record>"
).encode()
_XMP_TAIL = b'</imagenb:record></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="r"?>'
_VP8X_ALPHA, _VP8X_XMP = 0x10, 0x04
# JPEG start-of-frame markers (they carry the size); C4, C8 and CC are not frames.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass(frozen=True)
class ImageHeader:
    """What the first bytes of an image say. `format` doubles as the file extension."""

    format: Format
    width: int
    height: int


def probe(data: bytes) -> ImageHeader | None:
    """Format and pixel size of a PNG, JPEG or WebP from its header; None for anything else."""
    try:
        if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR":
            width, height = struct.unpack_from(">II", data, 16)
            return ImageHeader("png", width, height)
        if data.startswith(b"\xff\xd8"):
            return _probe_jpeg(data)
        if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            return _probe_webp(data)
    except (struct.error, ValueError, IndexError):
        return None
    return None


def embed(data: bytes, fmt: str, meta: dict[str, Any]) -> bytes:
    """`data` with `meta` embedded (replacing an earlier imagenb record); pixels untouched.

    `fmt` is png, jpg/jpeg or webp. In JPEG the record must fit one 64 KB segment, so a very
    long prompt is shortened (and `prompt_truncated` set) to keep the JSON valid.
    """
    kind = fmt.lower().removeprefix(".")
    try:
        if kind == "png":
            return _embed_png(data, _dumps(meta))
        if kind in ("jpg", "jpeg"):
            return _embed_jpeg(data, _fit(meta, JPEG_MAX_PAYLOAD - len(_JPEG_PREFIX)))
        if kind == "webp":
            return _embed_webp(data, _dumps(meta))
    except (IndexError, struct.error) as exc:
        raise ValueError(f"not a valid {kind} file: {exc}") from exc
    raise ValueError(f"cannot embed provenance in {fmt!r}; expected png, jpg or webp")


def read(source: bytes | str | os.PathLike[str]) -> dict[str, Any] | None:
    """The imagenb record embedded in an image (bytes or a path), or None if it has none."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        data = Path(source).read_bytes()
    try:
        if data.startswith(PNG_SIGNATURE):
            raw = _read_png(data)
        elif data.startswith(b"\xff\xd8"):
            raw = _read_jpeg(data)
        elif data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            raw = _read_webp(data)
        else:
            return None
        record = json.loads(raw) if raw is not None else None
    except (ValueError, IndexError, struct.error, zlib.error):
        return None
    return record if isinstance(record, dict) else None


def _dumps(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _fit(meta: dict[str, Any], limit: int) -> bytes:
    """JSON of `meta` in at most `limit` bytes, shortening the prompt (then dropping fields)."""
    encoded = _dumps(meta)
    if len(encoded) <= limit:
        return encoded
    prompt = meta.get("prompt")
    if isinstance(prompt, str):
        low, high, best = 0, len(prompt), None
        while low <= high:  # the longest prefix of the prompt that fits
            mid = (low + high) // 2
            candidate = _dumps({**meta, "prompt": prompt[:mid] + "…", "prompt_truncated": True})
            if len(candidate) <= limit:
                best, low = candidate, mid + 1
            else:
                high = mid - 1
        if best is not None:
            return best
    short = {k: v for k, v in meta.items() if _is_short(v)}
    encoded = _dumps({**short, "truncated": True})
    return encoded if len(encoded) <= limit else b'{"truncated":true}'


def _is_short(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, int | float | bool)
        or (isinstance(value, str) and len(value) <= 256)
    )


# --- PNG: length, type, payload, CRC ---------------------------------------------------------


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of each chunk up to and including IEND."""
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("truncated PNG chunk")
        yield kind, pos, end
        if kind == b"IEND":
            return
        pos = end
    raise ValueError("PNG without IEND")


def _is_ours_png(data: bytes, kind: bytes, start: int) -> bool:
    return kind == b"iTXt" and data[start + 8 : start + 8 + len(_PNG_KEY)] == _PNG_KEY


def _embed_png(data: bytes, text: bytes) -> bytes:
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    # keyword, NUL, compression flag 0 and method 0, empty language tag and translated keyword
    payload = _PNG_KEY + b"\x00\x00" + b"\x00" + b"\x00" + text
    chunk = struct.pack(">I4s", len(payload), b"iTXt") + payload
    chunk += struct.pack(">I", zlib.crc32(chunk[4:]))
    parts, inserted = [PNG_SIGNATURE], False
    for kind, start, end in _png_chunks(data):
        if _is_ours_png(data, kind, start):
            continue
        if kind in (b"IDAT", b"IEND") and not inserted:
            parts.append(chunk)
            inserted = True
        parts.append(data[start:end])
    return b"".join(parts)


def _read_png(data: bytes) -> bytes | None:
    for kind, start, end in _png_chunks(data):
        if _is_ours_png(data, kind, start):
            body = data[start + 8 + len(_PNG_KEY) : end - 4]
            compressed = body[0] == 1
            text = body[2:].split(b"\x00", 2)[2]  # after language tag and translated keyword
            return zlib.decompress(text) if compressed else text
    return None


# --- JPEG: marker segments up to the start of scan --------------------------------------------


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """(marker, start, end) of each segment after SOI, and where the scan data begins."""
    segments: list[tuple[int, int, int]] = []
    pos = 2
    while True:
        if data[pos] != 0xFF:
            raise ValueError("bad JPEG marker")
        while data[pos + 1] == 0xFF:  # fill bytes
            pos += 1
        marker = data[pos + 1]
        if marker in (0xDA, 0xD9):  # start of scan, end of image: the header is over
            return segments, pos
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # standalone markers have no length
            segments.append((marker, pos, pos + 2))
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        end = pos + 2 + length
        if length < 2 or end > len(data):
            raise ValueError("truncated JPEG segment")
        segments.append((marker, pos, end))
        pos = end


def _probe_jpeg(data: bytes) -> ImageHeader | None:
    segments, _ = _jpeg_segments(data)
    for marker, start, _end in segments:
        if marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, start + 5)
            return ImageHeader("jpg", width, height)
    return None


def _is_ours_jpeg(data: bytes, marker: int, start: int) -> bool:
    return marker == 0xFE and data[start + 4 : start + 4 + len(_JPEG_PREFIX)] == _JPEG_PREFIX


def _embed_jpeg(data: bytes, text: bytes) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG file")
    segments, scan = _jpeg_segments(data)
    payload = _JPEG_PREFIX + text
    comment = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    # after the leading APPn segments, so JFIF and Exif headers stay first as readers expect
    parts, inserted = [data[:2]], False
    for marker, start, end in segments:
        if _is_ours_jpeg(data, marker, start):
            continue
        if not inserted and not 0xE0 <= marker <= 0xEF:
            parts.append(comment)
            inserted = True
        parts.append(data[start:end])
    if not inserted:
        parts.append(comment)
    parts.append(data[scan:])
    return b"".join(parts)


def _read_jpeg(data: bytes) -> bytes | None:
    segments, _ = _jpeg_segments(data)
    for marker, start, end in segments:
        if _is_ours_jpeg(data, marker, start):
            return data[start + 4 + len(_JPEG_PREFIX) : end]
    return None


# --- WebP: RIFF chunks ----------------------------------------------------------------------


def _webp_chunks(data: bytes) -> list[tuple[bytes, int, int]]:
    """(fourcc, start, end) of each chunk inside the RIFF container; `end` includes padding."""
    (riff_size,) = struct.unpack_from("<I", data, 4)
    limit, pos, chunks = min(len(data), 8 + riff_size), 12, []
    while pos + 8 <= limit:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        end = pos + 8 + size + (size & 1)
        if pos + 8 + size > limit:
            raise ValueError("truncated WebP chunk")
        chunks.append((fourcc, pos, min(end, limit)))
        pos = end
    if not chunks:
        raise ValueError("WebP without chunks")
    return chunks


def _bitstream_info(data: bytes, fourcc: bytes, start: int) -> tuple[int, int, bool]:
    """Width, height and alpha of a simple `VP8 ` or `VP8L` bitstream chunk."""
    body = start + 8
    if fourcc == b"VP8 ":
        if data[body + 3 : body + 6] != b"\x9d\x01\x2a":
            raise ValueError("bad VP8 start code")
        width, height = struct.unpack_from("<HH", data, body + 6)
        return width & 0x3FFF, height & 0x3FFF, False
    if fourcc == b"VP8L":
        if data[body] != 0x2F:
            raise ValueError("bad VP8L signature")
        (bits,) = struct.unpack_from("<I", data, body + 1)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    raise ValueError(f"unexpected WebP chunk {fourcc!r}")


def _probe_webp(data: bytes) -> ImageHeader:
    fourcc, start, _end = _webp_chunks(data)[0]
    if fourcc == b"VP8X":
        w = int.from_bytes(data[start + 12 : start + 15], "little") + 1
        h = int.from_bytes(data[start + 15 : start + 18], "little") + 1
        return ImageHeader("webp", w, h)
    width, height, _alpha = _bitstream_info(data, fourcc, start)
    return ImageHeader("webp", width, height)


def _is_ours_webp(data: bytes, fourcc: bytes, start: int) -> bool:
    head = data[start + 8 : start + 8 + len(_XMP_HEAD)]
    return fourcc == _WEBP_OWN_CHUNK or (fourcc == b"XMP " and head == _XMP_HEAD)


def _webp_chunk(fourcc: bytes, payload: bytes) -> bytes:
    return struct.pack("<4sI", fourcc, len(payload)) + payload + b"\x00" * (len(payload) & 1)


def _embed_webp(data: bytes, text: bytes) -> bytes:
    if not (data.startswith(b"RIFF") and data[8:12] == b"WEBP"):
        raise ValueError("not a WebP file")
    chunks = [c for c in _webp_chunks(data) if not _is_ours_webp(data, *c[:2])]
    body = [data[start:end] for _fourcc, start, end in chunks]
    foreign_xmp = any(fourcc == b"XMP " for fourcc, _s, _e in chunks)
    first, start, _end = chunks[0]
    if first == b"VP8X":
        flags = data[start + 8] | (0 if foreign_xmp else _VP8X_XMP)
        body[0] = body[0][:8] + bytes([flags]) + body[0][9:]
    else:  # a simple file: wrap it in the extended format, which allows metadata
        width, height, alpha = _bitstream_info(data, first, start)
        alpha = alpha or any(fourcc == b"ALPH" for fourcc, _s, _e in chunks)
        flags = _VP8X_XMP | (_VP8X_ALPHA if alpha else 0)
        header = bytes([flags, 0, 0, 0])
        header += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
        body.insert(0, _webp_chunk(b"VP8X", header))
    escaped = text.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")
    if foreign_xmp:
        body.append(_webp_chunk(_WEBP_OWN_CHUNK, text))
    else:
        body.append(_webp_chunk(b"XMP ", _XMP_HEAD + escaped + _XMP_TAIL))
    content = b"WEBP" + b"".join(body)
    return b"RIFF" + struct.pack("<I", len(content)) + content


def _read_webp(data: bytes) -> bytes | None:
    for fourcc, start, _end in _webp_chunks(data):
        if not _is_ours_webp(data, fourcc, start):
            continue
        (size,) = struct.unpack_from("<I", data, start + 4)
        payload = data[start + 8 : start + 8 + size]
        if fourcc == _WEBP_OWN_CHUNK:
            return payload
        inner = payload[len(_XMP_HEAD) : payload.rindex(_XMP_TAIL)]
        return inner.replace(b"&lt;", b"<").replace(b"&gt;", b">").replace(b"&amp;", b"&")
    return None
