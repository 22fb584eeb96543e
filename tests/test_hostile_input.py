"""Hostile and broken input gets a clear error and sends nothing."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

import imagenb as ig
from imagenb.errors import InvalidRequest


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0"))
        + chunk(b"IEND", b"")
    )


def test_bad_edit_inputs_are_refused_before_sending(fake, tmp_path):
    big = tmp_path / "huge.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * (60 * 1024 * 1024))
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming(100_000, 100_000))
    cases = {
        big: "under 50 MB",
        text: "not a readable",
        bomb: "decompression bomb",
        tmp_path / "missing.png": "no such file",
    }
    for path, message in cases.items():
        with pytest.raises(InvalidRequest, match=message):
            ig.edit("make it blue", path)
    with pytest.raises(InvalidRequest, match="1 to 16"):
        ig.edit("too many", [Image.new("RGB", (64, 64))] * 17)
    assert fake.stats.requests == 0


def test_masks_must_be_png_with_alpha_and_the_same_size(fake):
    image = Image.new("RGB", (256, 256), "red")
    buf = io.BytesIO()
    Image.new("RGB", (256, 256)).save(buf, "PNG")
    with pytest.raises(InvalidRequest, match="alpha"):
        ig.edit("x", image, mask=buf.getvalue())
    with pytest.raises(InvalidRequest, match="same size"):
        ig.edit("x", image, mask=Image.new("RGBA", (128, 128)))
    assert fake.stats.requests == 0


@pytest.mark.parametrize("bad", [None, float("nan"), 42, "", "x" * 32_001])
def test_bad_prompts_in_a_frame_stop_the_grid_before_sending(fake, bad):
    rows = [{"prompt": "a fine prompt"}, {"prompt": bad}]
    with pytest.raises(InvalidRequest, match="prompt"):
        ig.grid(rows, quality="low", size="square")
    assert fake.stats.requests == 0


def test_save_names_cannot_leave_their_folder(tmp_path):
    images = ig.generate("a fox", size="square", quality="low")
    with pytest.raises(ValueError, match="leave the folder"):
        images.save(tmp_path / "out", pattern="../../escaped-{i}.{ext}")
    assert not list(tmp_path.glob("escaped*"))
