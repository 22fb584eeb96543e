"""How a preview answers its prompt: the style words become a visible treatment of the
backdrop and the quality a level of detail, so an offline grid of styles or qualities shows
differences a reader can see (the real model's are richer; these only teach the layout).

Deterministic: the same request draws the same pixels (the detail marks come from the
request key's bytes), and cheap: a blur, a posterize or a few dozen ellipses.
"""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFilter, ImageOps

# (words that name a style, its treatment); the first match wins
STYLES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("pixel art", "pixel-art", "8-bit", "pixelated"), "pixel"),
    (("watercolour", "watercolor", "gouache"), "watercolour"),
    (("sketch", "pencil", "ink", "line art", "charcoal", "black and white"), "sketch"),
    (("oil painting", "impasto", "impressionist", "oil on canvas", "painting"), "oil"),
    (("neon", "cyberpunk", "synthwave"), "neon"),
)
DETAIL_MARKS = {"low": 0, "medium": 14, "high": 40, "auto": 40}


def style_of(prompt: str) -> str | None:
    """The treatment the prompt's words ask for, or None (a plain backdrop)."""
    text = prompt.lower()
    for words, style in STYLES:
        if any(word in text for word in words):
            return style
    return None


def treat(im: Image.Image, prompt: str, quality: str, seed: bytes) -> Image.Image:
    """`im` (RGB) restyled for `prompt` and detailed for `quality`; returns a new image."""
    style = style_of(prompt)
    w, h = im.size
    if style == "pixel":
        cells = max(4, round(24 * w / max(w, h))), max(4, round(24 * h / max(w, h)))
        with (
            im.resize(cells, Image.Resampling.BOX) as small,
            ImageOps.posterize(small, 2) as few_colours,
        ):
            out = few_colours.resize((w, h), Image.Resampling.NEAREST)
    elif style == "watercolour":
        with im.filter(ImageFilter.GaussianBlur(max(2, w // 90))) as soft:
            out = Image.blend(soft, Image.new("RGB", (w, h), (250, 246, 236)), 0.35)
    elif style == "sketch":
        with (
            ImageOps.grayscale(im) as grey,
            ImageOps.autocontrast(grey) as strong,
            strong.convert("RGB") as rgb,
        ):
            out = Image.blend(rgb, Image.new("RGB", (w, h), (255, 255, 255)), 0.3)
    elif style == "oil":
        out = ImageOps.posterize(im, 3)
    elif style == "neon":
        out = ImageOps.invert(im)
    else:
        out = im.copy()
    _detail(out, DETAIL_MARKS.get(quality, 0), seed)
    return out


def _detail(im: Image.Image, marks: int, seed: bytes) -> None:
    """`marks` soft seeded ellipses: more of them, smaller, at higher quality."""
    if not marks:
        return
    w, h = im.size
    draw = ImageDraw.Draw(im, "RGBA")
    unit = min(w, h) / (6 if marks < 20 else 10)
    for i in range(marks):
        a, b, c = seed[i % len(seed)], seed[(i * 7 + 3) % len(seed)], seed[(i * 13 + 5) % len(seed)]
        x, y = (a * 97 + i * 131) % w, (b * 89 + i * 71) % h
        r = unit * (0.25 + c / 255 * 0.5)
        tone = (255, 255, 255, 46) if i % 2 else (0, 0, 0, 40)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tone)
