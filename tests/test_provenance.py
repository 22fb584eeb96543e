"""Provenance embedded at byte level: read back exactly, pixels untouched, files still valid."""

from __future__ import annotations

import io
import json
import struct
import zlib
from typing import Any

import pytest
from PIL import Image

from imagenb.store import provenance

META: dict[str, Any] = {
    "prompt": '猫が「こんにちは」と言う 🐱🎉 한국어 中文 हिन्दी <b>&amp;</b> "q" </imagenb:record>',
    "model": "gpt-image-2",
    "backend": "openai",
    "params": {"size": "1024x1024", "quality": "high", "n": 1},
    "created": 1_760_000_000.25,
    "usage": {"output_tokens": 4160, "input_tokens": 20},
    "cost_usd": 0.1664,
    "key": "ab" * 32,
}

CASES = [
    ("RGB", "PNG", {}),
    ("RGBA", "PNG", {}),
    ("L", "PNG", {}),
    ("RGB", "JPEG", {"quality": 90}),
    ("RGB", "JPEG", {"progressive": True}),
    ("L", "JPEG", {}),
    ("RGB", "WEBP", {"quality": 80}),
    ("RGBA", "WEBP", {"quality": 80}),
    ("RGB", "WEBP", {"lossless": True}),
    ("RGBA", "WEBP", {"lossless": True}),
]


def encode(mode: str, fmt: str, size: tuple[int, int] = (67, 45), **options: Any) -> bytes:
    """A small image with structure in every channel (and real transparency for RGBA)."""
    bands = [
        Image.linear_gradient("L").resize(size).rotate(angle * 90) for angle in range(len(mode))
    ]
    image = Image.merge(mode, bands) if len(mode) > 1 else bands[0]
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def decoded(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()


@pytest.mark.parametrize(("mode", "fmt", "options"), CASES, ids=lambda c: str(c))
def test_round_trip_keeps_pixels(mode: str, fmt: str, options: dict[str, Any]) -> None:
    original = encode(mode, fmt, **options)
    embedded = provenance.embed(original, fmt, META)

    assert provenance.read(embedded) == META
    assert provenance.read(original) is None
    before, after = decoded(original), decoded(embedded)
    assert (after.size, after.mode) == (before.size, before.mode)
    assert after.tobytes() == before.tobytes()
    assert provenance.probe(embedded) == provenance.probe(original)
    assert provenance.probe(original) == provenance.ImageHeader(
        {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}[fmt], 67, 45
    )


@pytest.mark.parametrize(("mode", "fmt", "options"), CASES, ids=lambda c: str(c))
def test_embedding_again_replaces_the_record(mode: str, fmt: str, options: dict[str, Any]) -> None:
    once = provenance.embed(encode(mode, fmt, **options), fmt, META)
    twice = provenance.embed(once, fmt.lower(), {"prompt": "second"})
    assert provenance.read(twice) == {"prompt": "second"}
    assert twice.count(b"second") == 1 and "猫".encode() not in twice
    assert decoded(twice).tobytes() == decoded(once).tobytes()


def test_other_readers_see_the_record() -> None:
    png = provenance.embed(encode("RGBA", "PNG"), "png", META)
    with Image.open(io.BytesIO(png)) as image:
        assert json.loads(image.info["imagenb"]) == META
    jpg = provenance.embed(encode("RGB", "JPEG"), "jpeg", META)
    with Image.open(io.BytesIO(jpg)) as image:
        assert image.info["comment"].startswith(b"imagenb:")
    webp = provenance.embed(encode("RGB", "WEBP"), "webp", META)
    with Image.open(io.BytesIO(webp)) as image:
        assert b"<imagenb:record>" in image.info["xmp"]


def test_png_chunk_sits_before_idat_with_valid_crcs() -> None:
    data = provenance.embed(encode("RGBA", "PNG"), "png", META)
    pos, kinds = 8, []
    while pos < len(data):
        length, kind = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 4 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert zlib.crc32(body) == crc, kind
        kinds.append(kind)
        pos += 12 + length
    assert kinds.index(b"iTXt") < kinds.index(b"IDAT")
    assert kinds[-1] == b"IEND"


def test_jpeg_comment_comes_after_app_segments() -> None:
    exif = Image.Exif()
    exif[0x010E] = "described"  # ImageDescription
    data = provenance.embed(encode("RGB", "JPEG", exif=exif.tobytes()), "jpg", META)
    assert data[2:4] in (b"\xff\xe0", b"\xff\xe1")  # JFIF or Exif stays first
    with Image.open(io.BytesIO(data)) as image:
        assert image.getexif()[0x010E] == "described"


def test_jpeg_long_prompt_is_shortened_to_fit_one_segment() -> None:
    meta = {**META, "prompt": "山" * 60_000 + "🐱" * 1000}
    data = provenance.embed(encode("RGB", "JPEG"), "jpg", meta)
    record = provenance.read(data)
    assert record is not None and record["prompt_truncated"] is True
    assert record["prompt"].startswith("山" * 1000) and record["prompt"].endswith("…")
    assert {k: v for k, v in record.items() if k not in ("prompt", "prompt_truncated")} == {
        k: v for k, v in META.items() if k != "prompt"
    }
    start = data.index(b"imagenb:") - 4
    assert data[start : start + 2] == b"\xff\xfe"
    (length,) = struct.unpack_from(">H", data, start + 2)
    assert length == len(data[start + 4 : data.index(b"\xff", start + 4 + 8)]) + 2 <= 65535
    assert decoded(data).tobytes() == decoded(encode("RGB", "JPEG")).tobytes()


def test_jpeg_record_with_huge_other_fields_still_valid() -> None:
    meta = {"key": "k", "params": {"blob": "x" * 100_000}, "prompt": 3}
    record = provenance.read(provenance.embed(encode("RGB", "JPEG"), "jpg", meta))
    assert record == {"key": "k", "prompt": 3, "truncated": True}


@pytest.mark.parametrize(
    ("mode", "options", "alpha"),
    [("RGB", {}, False), ("RGBA", {"lossless": True}, True), ("RGB", {"lossless": True}, False)],
)
def test_simple_webp_becomes_extended(mode: str, options: dict[str, Any], alpha: bool) -> None:
    original = encode(mode, "WEBP", size=(301, 7), **options)
    assert original[12:16] in (b"VP8 ", b"VP8L")
    data = provenance.embed(original, "webp", META)
    assert data[12:16] == b"VP8X"
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    flags = data[20]
    assert flags & 0x04  # XMP
    assert bool(flags & 0x10) is alpha
    width = int.from_bytes(data[24:27], "little") + 1
    height = int.from_bytes(data[27:30], "little") + 1
    assert (width, height) == (301, 7)


def test_extended_webp_keeps_its_chunks_and_flags() -> None:
    original = encode("RGBA", "WEBP", quality=70)  # lossy with alpha: VP8X + ALPH + VP8
    assert original[12:16] == b"VP8X" and b"ALPH" in original
    data = provenance.embed(original, "webp", META)
    assert data[20] == original[20] | 0x04
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8


def test_webp_with_someone_elses_xmp_keeps_it() -> None:
    foreign = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><!-- theirs --></x:xmpmeta>'
    original = encode("RGB", "WEBP", xmp=foreign)
    data = provenance.embed(original, "webp", META)
    assert provenance.read(data) == META
    with Image.open(io.BytesIO(data)) as image:
        assert image.info["xmp"] == foreign
        image.load()
    assert decoded(data).tobytes() == decoded(original).tobytes()


def test_animated_webp_keeps_every_frame() -> None:
    frames = [Image.new("RGB", (32, 24), color) for color in ("red", "green", "blue")]
    out = io.BytesIO()
    frames[0].save(out, "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    data = provenance.embed(out.getvalue(), "webp", META)
    assert provenance.read(data) == META
    with Image.open(io.BytesIO(data)) as image:
        assert image.n_frames == 3
        image.seek(2)
        assert image.convert("RGB").getpixel((5, 5)) == (0, 0, 255)


def test_read_accepts_paths(tmp_path: Any) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(provenance.embed(encode("RGB", "PNG"), "png", META))
    assert provenance.read(path) == provenance.read(str(path)) == META


def test_garbage_and_truncated_input() -> None:
    png = encode("RGB", "PNG")
    assert provenance.probe(b"GIF89a" + b"\0" * 30) is None
    assert provenance.probe(b"") is None
    assert provenance.probe(b"\xff\xd8\xff") is None
    assert provenance.read(b"not an image") is None
    assert provenance.read(png[:40]) is None
    with pytest.raises(ValueError, match="gif"):
        provenance.embed(png, "gif", META)
    with pytest.raises(ValueError, match="not a JPEG"):
        provenance.embed(png, "jpg", META)
    with pytest.raises(ValueError):
        provenance.embed(png[:40], "png", META)
    with pytest.raises(ValueError):
        provenance.embed(b"\xff\xd8\xff\xe0\x00", "jpg", META)
