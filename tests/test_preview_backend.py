"""The preview backend: exact sizes and formats, deterministic bytes, marked output that can
draw every promised script, an estimated bill, partial images, and edits."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageFont

from imagenb.backends import preview
from imagenb.backends.base import Backend, Partial, Response
from imagenb.backends.preview import PreviewBackend
from imagenb.core import cost
from imagenb.core.config import Config
from imagenb.core.request import ImageRequest, build
from imagenb.text import fonts

PIL_FORMAT = {"png": "PNG", "webp": "WEBP", "jpeg": "JPEG"}


def run(request: ImageRequest, variants: list[int] | None = None, **kw: Any) -> Response:
    async def go() -> Response:
        backend = PreviewBackend(Config())
        try:
            return await backend.run(request, variants or [0], **kw)
        finally:
            await backend.aclose()

    return asyncio.run(go())


def open_image(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.fixture
def no_system_fonts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(fonts, "SYSTEM_DIRS", ())
    monkeypatch.delenv("IMAGENB_FONT_PATH", raising=False)
    fonts.clear_cache()
    yield
    fonts.clear_cache()


def test_implements_the_backend_protocol() -> None:
    backend = PreviewBackend(Config())
    assert isinstance(backend, Backend)
    assert (backend.name, backend.paid) == ("preview", False)


@pytest.mark.parametrize("fmt", ["png", "webp", "jpeg"])
@pytest.mark.parametrize("size", ["3840x2160", "1024x3072", "1104x720", "2848x1600", "auto"])
def test_exact_size_and_format(size: str, fmt: str) -> None:
    response = run(build("a lighthouse at dusk", size=size, output_format=fmt, quality="low"))
    [data] = response.images
    with open_image(data) as im:
        assert im.format == PIL_FORMAT[fmt]
        assert im.size == ((1024, 1024) if size == "auto" else tuple(map(int, size.split("x"))))
        assert im.mode == "RGB"
    assert response.resolved["size"] == ("1024x1024" if size == "auto" else size)
    assert response.resolved["output_format"] == fmt


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_transparent_background_has_a_transparent_backdrop(fmt: str) -> None:
    [data] = run(build("a sticker of a cat", output_format=fmt, background="transparent")).images
    with open_image(data) as im:
        assert im.mode == "RGBA"
        alpha = im.getchannel("A")
        assert alpha.getpixel((2, 2)) == 0  # backdrop
        assert alpha.getpixel((im.width // 2, im.height // 2)) == 255  # subject


def test_output_compression_is_the_quality() -> None:
    small = run(build("x", output_format="jpeg", output_compression=10)).images[0]
    large = run(build("x", output_format="jpeg", output_compression=95)).images[0]
    assert len(small) < len(large)


def test_same_request_same_bytes_and_variants_differ() -> None:
    request = build("a fox in the snow", size="1536x1024", n=3, output_format="webp")
    first = run(request, [0, 1, 2]).images
    again = run(request, [0, 1, 2]).images
    assert first == again
    assert len(set(first)) == 3
    assert run(request, [1]).images[0] == first[1]  # a variant does not depend on its batch


def test_usage_is_the_estimate_of_the_real_call() -> None:
    request = build("a fox", size="1536x1024", quality="medium", n=2)
    response = run(request, [0, 1])
    assert response.usage_is_estimate is True
    usage = response.usage
    assert usage is not None
    est = cost.estimate(request, images=2)
    assert usage["output_tokens"] == est.output_tokens
    assert usage["input_tokens"] == est.input_tokens
    assert usage["total_tokens"] == est.input_tokens + est.output_tokens
    assert cost.usage_cost(request.spec, usage) == pytest.approx(est.usd)
    assert response.resolved == {
        "size": "1536x1024",
        "quality": "medium",
        "output_format": "png",
        "background": "opaque",
    }


def test_partial_images_are_reported_before_the_result() -> None:
    seen: list[Partial] = []
    request = build("a fox", size="1536x1024", n=2, output_format="jpeg")
    response = run(request, [0, 1], partial_images=2, on_partial=seen.append)
    assert [(p.slot, p.index) for p in seen] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for p in seen:
        with open_image(p.data) as im:
            assert im.format == "JPEG" and im.width == preview.PARTIAL_EDGE
    assert response.usage is not None
    assert (
        response.usage["output_tokens"]
        == cost.estimate(request, images=2, partials=2).output_tokens
    )
    assert len(run(request, [0], partial_images=2).images) == 1  # no callback, no partials


@pytest.fixture
def flat_backdrop(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same background for every request, so only the drawn text differs between two."""
    monkeypatch.setattr(preview, "_backdrop", lambda w, h, seed: Image.new("RGB", (w, h), "gray"))


def test_an_edit_shows_its_input(flat_backdrop: None) -> None:
    source = run(build("a red fox", size="1024x1024")).images[0]
    edit = build("make it winter", images=[source, source], size="1536x1024")
    [data] = run(edit).images
    with open_image(data) as im:
        assert im.size == (1536, 1024)
    plain = build("make it winter", size="1536x1024")
    with preview.draw_image(edit) as inset, preview.draw_image(plain) as without:
        box = (1536 // 2, 0, 1536, 1024 // 2)  # the inset sits in the top-right corner
        assert ImageChops.difference(inset.crop(box), without.crop(box)).getbbox() is not None


SAMPLES = {
    "cjk": ["東京の夜の街並み", "서울의 밤 풍경입니다", "北京的夜景很美丽"],
    "devanagari": ["नमस्ते दुनिया"],
    "bengali": ["বাংলা ভাষা"],
}


@pytest.mark.parametrize(
    ("script", "prompt"), [(s, p) for s, prompts in SAMPLES.items() for p in prompts]
)
def test_non_latin_prompts_render_real_glyphs(
    flat_backdrop: None, script: str, prompt: str
) -> None:
    if script not in fonts.available():
        pytest.skip(f"no {script} font installed (Debian: fonts-noto-cjk fonts-noto-core)")
    # equally long text of unassigned code points renders as .notdef boxes ("tofu")
    tofu = "".join(" " if ch == " " else "\u0378" for ch in prompt)
    with (
        preview.draw_image(build(prompt)) as real,
        preview.draw_image(build(tofu)) as boxes,
        preview.draw_image(build("Tokyo at night")) as ascii_prompt,
    ):
        assert ImageChops.difference(real, boxes).getbbox() is not None
        assert ImageChops.difference(real, ascii_prompt).getbbox() is not None


def test_bare_machine_falls_back_to_the_builtin_font(no_system_fonts: None) -> None:
    assert fonts.available() == {}
    [data] = run(build("東京の夜 नमस्ते a fox", size="1024x1024")).images
    with open_image(data) as im:
        assert im.size == (1024, 1024)


def test_long_prompts_are_wrapped_and_cut() -> None:
    lines = fonts.wrap("word " * 2000, 38, 900, 4)
    assert len(lines) == 4 and lines[-1].endswith("…")
    assert all(fonts.text_width(line, 38) <= 900 for line in lines)
    [data] = run(build("a very long prompt " * 1500, size="1024x1024")).images
    assert data


def test_fonts_pick_a_face_per_language() -> None:
    if "cjk" not in fonts.available():
        pytest.skip("no CJK font installed")
    faces = [fonts.font_for(t, 20) for t in ("東京の夜", "서울", "北京")]
    names = [str(f.getname()[0]) for f in faces if isinstance(f, ImageFont.FreeTypeFont)]
    if names[0].startswith("Noto Sans CJK"):
        assert [n[-2:] for n in names] == ["JP", "KR", "SC"]


def test_4k_png_is_fast_and_keeps_the_loop_responsive() -> None:
    request = build("a watercolour fox in a snowy forest at dawn", size="3840x2160")
    preview.render(request, 99)  # warm the font caches
    started = time.perf_counter()
    preview.render(request, 0)
    elapsed = time.perf_counter() - started
    print(f"\n4K PNG preview: {elapsed * 1000:.0f} ms")
    assert elapsed < 5  # typically ~0.4 s; generous for slow CI machines

    async def ticking() -> int:
        ticks = 0
        task = asyncio.create_task(PreviewBackend(Config()).run(request, [1]))
        while not task.done():
            await asyncio.sleep(0.005)
            ticks += 1
        await task
        return ticks

    assert asyncio.run(ticking()) >= 3


def test_style_and_quality_visibly_change_the_picture_and_stay_deterministic() -> None:
    """On one and the same backdrop (equal seeds), each style word and a higher quality
    change the picture; the same request still draws the same bytes."""
    from imagenb.backends import preview_style

    seed = bytes(range(32))
    backdrop = preview._backdrop(512, 384, seed)

    def mean_difference(a: Image.Image, b: Image.Image) -> float:
        diff = ImageChops.difference(a, b).convert("L")
        return sum(i * n for i, n in enumerate(diff.histogram())) / (a.width * a.height)

    plain = preview_style.treat(backdrop, "a red fox", "low", seed)
    assert mean_difference(plain, backdrop) == 0
    for style in ("watercolour", "pencil sketch", "pixel art", "oil painting", "neon"):
        styled = preview_style.treat(backdrop, f"a red fox, {style}", "low", seed)
        assert mean_difference(plain, styled) > 3, style
    medium = preview_style.treat(backdrop, "a red fox", "medium", seed)
    high = preview_style.treat(backdrop, "a red fox", "high", seed)
    assert 0 < mean_difference(plain, medium) < mean_difference(plain, high)
    again = build("a red fox, watercolour", quality="high")
    assert run(again).images[0] == run(build("a red fox, watercolour", quality="high")).images[0]
