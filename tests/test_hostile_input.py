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


# --- issue 17 §5: each gap a clear error before anything is sent --------------------------------

PNG = io.BytesIO()
Image.new("RGB", (64, 64), "red").save(PNG, "PNG")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ig.edit("make it night", None), "needs the image"),
        (lambda: ig.generate("a \ud800 cat"), "lone surrogate"),
        (lambda: ig.generate("a cat", size="1" * 4301 + "x16"), "4,304 characters"),
        (lambda: ig.generate("a cat", quality=""), "quality='' is empty"),
        (lambda: ig.generate("a cat", model=""), "model='' is empty"),
        (lambda: ig.generate("a cat", output_format=" "), "output_format"),
        (lambda: ig.generate("\u200b"), "no visible characters"),
        (lambda: ig.generate("\u200b\ufeff \u2060\t"), "no visible characters"),
        (lambda: ig.start(["a cat"]), "built requests"),
        (lambda: ig.start("a cat"), "built requests"),
        (lambda: ig.grid(["a cat", "a dog"], caption="{prompt[x]}"), "caption template"),
        (lambda: ig.grid(["a cat"], caption="{prompt.nope}"), "caption template"),
    ],
)
def test_gaps_in_validation_are_clear_errors_that_send_nothing(fake, call, message):
    with pytest.raises(InvalidRequest, match=message):
        call()
    assert fake.stats.requests == 0


def test_repeated_prompt_columns_are_named_in_our_words(fake):
    import pandas as pd

    frame = pd.DataFrame([["a cat", "a dog"]], columns=["prompt", "prompt"])
    for call in (ig.grid, ig.estimate):
        with pytest.raises(InvalidRequest, match="repeated column names: prompt"):
            call(frame)
    assert fake.stats.requests == 0


def test_estimate_takes_a_lazy_polars_frame_like_grid():
    import polars as pl

    lazy = pl.DataFrame({"prompt": ["a cat", "a dog"], "quality": ["low", "high"]}).lazy()
    estimate = ig.estimate(lazy)
    assert estimate.images == 2
    assert estimate.usd == pytest.approx(
        ig.estimate("a cat", quality="low").usd + ig.estimate("a dog", quality="high").usd
    )


def test_an_axis_label_that_cannot_be_saved_is_refused_before_paying(fake, tmp_path):
    rows = [{"prompt": "a cat", "style": "ink"}, {"prompt": "a dog", "style": "bad \udc80"}]
    with pytest.raises(InvalidRequest, match=r"row 2, column 'style'.*lone surrogate"):
        ig.grid(rows, cols="style", quality="low")
    assert fake.stats.requests == 0


def test_unreadable_inputs_are_named_by_their_name_or_role_never_a_repr(fake, tmp_path):
    with pytest.raises(InvalidRequest) as unnamed:
        ig.edit("x", io.BytesIO(b"not an image"))
    assert str(unnamed.value).startswith("image 1 is not a readable")
    path = tmp_path / "notes.png"
    path.write_bytes(b"not an image")
    with open(path, "rb") as fh, pytest.raises(InvalidRequest) as named:
        ig.edit("x", [PNG.getvalue(), fh])
    assert "image 2 'notes.png'" in str(named.value)
    for error in (unnamed.value, named.value):
        assert "object at 0x" not in str(error) and "BytesIO" not in str(error)
    with open(path) as text_mode, pytest.raises(InvalidRequest, match="binary mode"):
        ig.edit("x", text_mode)
    assert fake.stats.requests == 0


def test_an_open_image_file_is_an_input(fake):
    images = ig.edit("make it night", io.BytesIO(PNG.getvalue()), quality="low")
    assert len(images) == 1 and fake.log[-1]["image_count"] == 1


def test_an_open_file_in_a_magic_is_one_image(fake):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("imagenb")
    shell.user_ns["photo"] = io.BytesIO(PNG.getvalue() + b"\n" * 3)  # newlines: not split
    with capture_output() as cap:
        shell.run_cell("%%imageedit -i photo -q low -o night\nmake it night", store_history=False)
    assert not cap.stderr, cap.stderr
    assert fake.log[-1]["image_count"] == 1 and len(shell.user_ns.pop("night")) == 1
