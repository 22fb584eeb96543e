"""Thumbnails stay small (even for random noise), are cached, and HTML never lets a prompt
out of its text: everything untrusted is escaped."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagenb.render import html as display

EVIL = "<script>alert(1)</script><img src=x onerror=alert(2)>\"'&"


@dataclass
class Result:
    """The duck type display reads (what `GeneratedImage` offers)."""

    path: Path
    prompt: str = "a red fox"
    model: str = "gpt-image-2"
    backend: str = "openai"
    params: dict[str, Any] = field(
        default_factory=lambda: {"size": "1536x864", "quality": "low", "output_format": "webp"}
    )
    cost_usd: float | None = 0.0036
    cost_is_estimate: bool = False
    cached: bool = False
    latency_s: float | None = 12.3
    key: str = "k" * 64
    width: int = 1536
    height: int = 864


def save(path: Path, im: Image.Image, **kw: Any) -> Path:
    with im:
        im.save(path, **kw)
    return path


def noise(path: Path, size: tuple[int, int], mode: str = "RGB") -> Path:
    data = os.urandom(size[0] * size[1] * len(mode))
    return save(path, Image.frombytes(mode, size, data))


def decoded(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


@pytest.mark.parametrize("size", [(2560, 1440), (864, 1536), (100, 60), (1024, 1024)])
@pytest.mark.parametrize("px", [128, 256])
def test_thumbnail_long_edge_is_at_most_px(tmp_path: Path, size: tuple[int, int], px: int) -> None:
    path = save(tmp_path / "a.png", Image.new("RGB", size, "teal"))
    data, mime = display.thumbnail(path, px)
    assert mime == "image/webp"
    with decoded(data) as im:
        assert max(im.size) <= px
        assert max(im.size) == min(px, max(size))


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("size", [(256, 256), (300, 200), (2560, 1440)])
def test_even_random_noise_fits_the_budget(
    tmp_path: Path, mode: str, size: tuple[int, int]
) -> None:
    data, _ = display.thumbnail(noise(tmp_path / "n.png", size, mode), 256)
    assert len(data) <= display.MAX_THUMB_BYTES < 40 * 1024
    with decoded(data) as im:
        assert max(im.size) <= 256
        assert im.mode == mode  # alpha is kept


def test_jpeg_sources_and_alpha(tmp_path: Path) -> None:
    jpeg = save(tmp_path / "a.jpg", Image.new("RGB", (3840, 2160), "orange"), quality=90)
    with decoded(display.thumbnail(jpeg, 256)[0]) as im:
        assert im.size == (256, 144)
    clear = save(tmp_path / "c.png", Image.new("RGBA", (512, 512), (0, 0, 0, 0)))
    with decoded(display.thumbnail(clear, 256)[0]) as im:
        assert im.mode == "RGBA" and im.getchannel("A").getpixel((5, 5)) == 0


def test_jpeg_fallback_without_webp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(display, "_has_webp", lambda: False)
    path = noise(tmp_path / "n.png", (256, 256), "RGBA")
    data, mime = display.thumbnail(path, 256)
    assert mime == "image/jpeg" and len(data) <= display.MAX_THUMB_BYTES
    assert display.thumbnail_format() == "jpg"


def test_cache_file_is_written_then_reused(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", Image.new("RGB", (1024, 1024), "navy"))
    cache = tmp_path / "thumbs" / "key-256.webp"
    data, mime = display.thumbnail(path, 256, cache)
    assert cache.read_bytes() == data
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no tmp file left
    path.unlink()  # the source is gone: only the cache can answer
    assert display.thumbnail(path, 256, cache) == (data, mime)


def test_unwritable_cache_is_not_an_error(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", Image.new("RGB", (64, 64), "red"))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    data, _ = display.thumbnail(path, 256, blocker / "t.webp")
    assert data


def test_html_uses_the_store_thumbnail_cache(tmp_path: Path) -> None:
    obj = tmp_path / "store" / "objects" / "ab" / "abcdef.png"
    obj.parent.mkdir(parents=True)
    (tmp_path / "store" / "thumbs").mkdir()
    save(obj, Image.new("RGB", (1536, 864), "green"))
    display.image_html(Result(path=obj), 256)
    assert (tmp_path / "store" / "thumbs" / f"{'k' * 64}-256.webp").is_file()


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def test_prompts_and_metadata_are_escaped(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", Image.new("RGB", (1536, 864), "red"))
    item = Result(path=path, prompt=EVIL, model=EVIL, params={"quality": EVIL}, cached=True)
    for html in (display.image_html(item, 256), display.images_html([item], 256, title=EVIL)):
        assert "<script" not in html.lower()
        assert "&lt;script&gt;" in html
        tags = parse(html)
        assert {t for t, _ in tags} <= {"style", "figure", "img", "figcaption", "div", "span", "b"}
        for tag, attrs in tags:
            assert not any(name.startswith("on") for name in attrs), (tag, attrs)
            if tag == "img":
                assert (attrs["src"] or "").startswith("data:image/webp;base64,")
        titles = [a["title"] for t, a in tags if t == "div" and a.get("title")]
        assert EVIL in titles  # the full prompt, unescaped by the parser: it was escaped


def test_preview_badge_only_for_the_preview_backend(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", Image.new("RGB", (1024, 1024), "red"))
    real = display.image_html(Result(path=path), 256)
    fake = display.image_html(Result(path=path, backend="preview", cost_is_estimate=True), 256)
    assert display.PREVIEW_NOTICE not in real
    assert display.PREVIEW_NOTICE in fake
    assert "if real" in fake
    assert display.PREVIEW_NOTICE in display.images_html(
        [Result(path=path), Result(path=path, backend="preview")], 256
    )
    assert display.PREVIEW_NOTICE not in display.images_html([Result(path=path)], 256)
    previews = [Result(path=path, backend="preview") for _ in range(3)]
    assert display.images_html(previews, 256).count(display.PREVIEW_NOTICE) == 1  # per output


def test_caption_shows_settings_cost_and_badges(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", Image.new("RGB", (1536, 864), "red"))
    html = display.image_html(Result(path=path, cost_is_estimate=True, cached=True), 256)
    assert "gpt-image-2 · 1536x864 · low · webp · $0.0036 est." in html
    assert ">cached</span>" in html
    assert 'width="256" height="144"' in html


def test_one_figure_stays_within_the_output_budget(tmp_path: Path) -> None:
    path = noise(tmp_path / "n.png", (256, 256))
    html = display.image_html(Result(path=path, prompt="a fox " * 5000, width=256, height=256), 256)
    assert len(html.encode()) <= display.MAX_OUTPUT_BYTES


def test_gallery_summary(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", Image.new("RGB", (1024, 1024), "red"))
    items = [Result(path=path, cost_usd=0.01), Result(path=path, cached=True), Result(path=path)]
    html = display.images_html(items, 128, title="Foxes")
    assert "<b>Foxes</b> · 3 images · $0.0136 · 1 cached (free)" in html
    assert html.count("<figure") == 3 and "<style" not in html
    assert "0 images" in display.images_html([], 128)


def test_text_fallback(tmp_path: Path) -> None:
    path = tmp_path / "a.webp"
    item = Result(path=path, cached=True)
    assert display.image_text(item) == (
        f"GeneratedImage('a red fox', gpt-image-2 1536x864 low webp, $0.0036, cached) -> {path}"
    )
    preview = Result(path=path, backend="preview", cost_is_estimate=True)
    assert "PREVIEW" in display.image_text(preview) and "if real" in display.image_text(preview)
    text = display.images_text([item, preview])
    assert text.splitlines()[0] == "ImageSet(2 images, ≈ $0.0036 if real, 1 cached (free))"
    assert "data:" not in text and len(text.splitlines()) == 3


def test_generated_image_displays_through_this_module(tmp_path: Path) -> None:
    from imagenb.store.images import GeneratedImage, ImageSet

    path = save(tmp_path / "a.png", Image.new("RGB", (1536, 864), "red"))
    img = GeneratedImage(
        key="k" * 64, path=path, prompt=EVIL, model="gpt-image-2", backend="preview",
        params={"quality": "low", "output_format": "png"}, width=1536, height=864,
    )  # fmt: skip
    bundle = img._repr_mimebundle_()
    assert "data:image/webp;base64," in bundle["text/html"] and "<script" not in bundle["text/html"]
    assert "data:" not in bundle["text/plain"]
    assert ImageSet([img])._repr_mimebundle_()["text/html"].count("<figure") == 1


def test_thumbnail_of_a_big_noisy_png_is_small(tmp_path: Path) -> None:
    """Noise is the worst case for the encoder: the thumbnail still fits the byte cap (its
    speed is measured by `benchmarks/`, not here)."""
    path = save(tmp_path / "big.png", Image.effect_noise((2560, 1440), 64).convert("RGB"))
    data, mime = display.thumbnail(path, 256)
    with Image.open(io.BytesIO(data)) as thumb:
        assert thumb.size == (256, 144) and mime == f"image/{thumb.format.lower()}"
    assert len(data) <= display.MAX_THUMB_BYTES


def test_config_repr_is_one_setting_a_line_and_names_the_live_backend() -> None:
    from imagenb.core import config

    text = repr(config.configure())
    lines = text.splitlines()
    fields = len(config.Config().public())
    assert lines[0] == "Config(" and lines[-1] == ")" and len(lines) == fields + 2  # one a line
    assert lines[1] == "    backend='auto',  # auto: preview now"  # no key in the test env
    assert "    budget_usd=None," in lines
    key = repr(config.configure(backend="preview", api_key="sk-test-secret-value"))
    assert "# the live backend" in key and "sk-test" not in key and "'<set>'" in key
