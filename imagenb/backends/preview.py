"""The preview backend: offline, free and deterministic stand-ins for real model outputs.

Each image has exactly the requested size and format, so layouts, grids, storage and cost
dry-runs behave as they would with the real model, and it is unmistakably marked: a diagonal
"PREVIEW", a banner, the prompt, and the model, size and quality it stands for. Quoted text
in the prompt (`a sign that says "OPEN"`) is drawn large and centred, so text checks
(`check_text`, `best_of`) can be tried offline; style words and the quality change the
backdrop visibly (`preview_style`), so grids of styles or qualities teach offline.
Colours come from the request key, so equal requests give byte-identical files (no
timestamps, no `optimize`), and different variants look different. The bill is the estimate
of what the real call would cost, flagged as an estimate.

Everything is drawn at low resolution or with Pillow's C operations (gradients, resizes,
pastes): a 3840x2160 PNG takes a fraction of a second, off the event loop.
"""

from __future__ import annotations

import asyncio
import colorsys
import io
import math
from collections.abc import Sequence
from typing import Any, ClassVar

from PIL import Image, ImageDraw, ImageOps

from imagenb.backends import preview_judge
from imagenb.backends.base import JudgeAnswer, JudgeRequest, Partial, PartialCallback, Response
from imagenb.backends.preview_style import treat
from imagenb.core import cost, sizes
from imagenb.core.config import Config
from imagenb.core.request import ImageRequest
from imagenb.text import fonts
from imagenb.text import match as textmatch

AUTO_SIZE = (1024, 1024)
AUTO_QUALITY = "high"  # what the estimate assumes for `auto`, so preview bills match it
PARTIAL_EDGE = 512  # partial images are small, blurry sketches of the final one
_PARTIAL_DETAIL = (24, 64, 160)  # long edge each partial is sketched at before upscaling
_WHITE = (255, 255, 255)


class PreviewBackend:
    """Draws marked placeholder images locally; never touches the network, never costs."""

    name: ClassVar[str] = "preview"
    paid: ClassVar[bool] = False

    def __init__(self, config: Config) -> None:
        self._config = config

    async def run(
        self,
        request: ImageRequest,
        variants: Sequence[int],
        *,
        partial_images: int = 0,
        on_partial: PartialCallback | None = None,
    ) -> Response:
        partials = partial_images if on_partial is not None else 0
        images: list[bytes] = []
        for slot, variant in enumerate(variants):
            final, sketches = await asyncio.to_thread(render, request, variant, partials)
            for index, data in enumerate(sketches):
                if on_partial is not None:
                    on_partial(Partial(slot, index, data))
            images.append(final)
        return Response(
            images,
            usage(request, len(variants), partials),
            usage_is_estimate=True,
            resolved=resolved(request),
        )

    async def judge(self, request: JudgeRequest) -> JudgeAnswer:
        return preview_judge.answer(request)

    async def aclose(self) -> None:
        return None


def resolved(request: ImageRequest) -> dict[str, Any]:
    """What the server would report it chose: `auto` settled the way the estimate assumes."""
    w, h = sizes.dimensions(request.size) or AUTO_SIZE
    return {
        "size": f"{w}x{h}",
        "quality": AUTO_QUALITY if request.quality == "auto" else request.quality,
        "output_format": request.output_format,
        "background": "opaque" if request.background == "auto" else request.background,
    }


def usage(request: ImageRequest, images: int, partials: int = 0) -> dict[str, Any]:
    """A usage dict shaped like the API's, holding the estimated tokens of this call."""
    est = cost.estimate(request, images=images, partials=partials)
    text_in = cost.text_tokens(request.prompt) if images else 0
    return {
        "input_tokens": est.input_tokens,
        "input_tokens_details": {
            "text_tokens": text_in,
            "image_tokens": est.input_tokens - text_in,
        },
        "output_tokens": est.output_tokens,
        "output_tokens_details": {"image_tokens": est.output_tokens, "text_tokens": 0},
        "total_tokens": est.input_tokens + est.output_tokens,
    }


def render(request: ImageRequest, variant: int = 0, partials: int = 0) -> tuple[bytes, list[bytes]]:
    """The encoded preview of `variant`, and `partials` encoded sketches of it."""
    with draw_image(request, variant) as im:
        final = encode(im, request)
        sketches = [_sketch(im, request, i) for i in range(partials)]
    return final, sketches


def draw_image(request: ImageRequest, variant: int = 0) -> Image.Image:
    """The preview as a PIL image (RGB, or RGBA for a transparent background)."""
    w, h = sizes.dimensions(request.size) or AUTO_SIZE
    seed = bytes.fromhex(request.key(variant))
    with _backdrop(w, h, seed) as plain:
        im = treat(plain, request.prompt, resolved(request)["quality"], seed)
    transparent = request.background == "transparent" and request.output_format != "jpeg"
    m = round(min(w, h) * 0.05) if transparent else 0
    box = (m, m, w - m, h - m)
    u = min(box[2] - box[0], box[3] - box[1]) / 1024  # text scale: 1.0 at 1024 px
    draw = ImageDraw.Draw(im, "RGBA")  # RGBA fills blend onto the RGB image
    _thirds(draw, box, u)
    _watermark(im, box)
    top = _banner(draw, box, u)
    if request.images:
        _input_inset(im, draw, request, box, top, u)
    _sign(draw, textmatch.quoted(request.prompt), box, top, u)
    _caption(draw, request, variant, box, u)
    if transparent:
        alpha = Image.new("L", (w, h), 0)
        ImageDraw.Draw(alpha).rounded_rectangle(box, radius=round(60 * u), fill=255)
        im.putalpha(alpha)
        alpha.close()
    return im


def encode(im: Image.Image, request: ImageRequest) -> bytes:
    """Encode as the request asks; `output_compression` is the JPEG/WebP quality (the API's
    default is 100)."""
    quality = 100 if request.output_compression is None else request.output_compression
    buf = io.BytesIO()
    if request.output_format == "png":
        im.save(buf, "PNG", optimize=False)
    elif request.output_format == "webp":
        im.save(buf, "WEBP", quality=quality, method=2)
    else:
        im.save(buf, "JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def _sketch(im: Image.Image, request: ImageRequest, index: int) -> bytes:
    detail = _PARTIAL_DETAIL[min(index, len(_PARTIAL_DETAIL) - 1)]
    scale = PARTIAL_EDGE / max(im.size)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    tiny = (
        max(1, round(size[0] * detail / PARTIAL_EDGE)),
        max(1, round(size[1] * detail / PARTIAL_EDGE)),
    )
    with (
        im.resize(tiny, Image.Resampling.BOX, reducing_gap=2.0) as low,
        low.resize(size, Image.Resampling.BICUBIC) as blurry,
    ):
        return encode(blurry, request)


def _colour(seed: int, offset: float, sat: float, val: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((seed / 255 + offset) % 1.0, sat, val)
    return round(r * 255), round(g * 255), round(b * 255)


def _backdrop(w: int, h: int, seed: bytes) -> Image.Image:
    """A soft two-colour gradient at a seeded angle with a seeded glow, drawn at 256 px and
    scaled up (smooth content needs no more)."""
    sw, sh = max(2, round(256 * w / max(w, h))), max(2, round(256 * h / max(w, h)))
    c1 = _colour(seed[0], 0.0, 0.55, 0.62)
    c2 = _colour(seed[0], 0.18 + seed[1] / 255 * 0.3, 0.6, 0.42)
    glow = _colour(seed[0], 0.5 + seed[2] / 255 * 0.2, 0.35, 0.9)
    with (
        Image.linear_gradient("L") as g,
        g.resize((364, 364)) as big,  # 364 > 256 * sqrt(2): no corner left empty when turned
        big.rotate(seed[3] / 255 * 360, Image.Resampling.BILINEAR) as turned,
        turned.crop((54, 54, 310, 310)) as square,
        square.resize((sw, sh)) as ramp,
    ):
        small = ImageOps.colorize(ramp, c1, c2)
    radius = round(max(sw, sh) * (0.35 + seed[4] / 255 * 0.3))
    with Image.radial_gradient("L") as r, r.resize((2 * radius, 2 * radius)) as disc:
        mask = disc.point(lambda v: max(0, 180 - v) * 140 // 180)  # 0 on the inscribed circle
    cx, cy = round(sw * seed[5] / 255), round(sh * seed[6] / 255)
    small.paste(glow, (cx - radius, cy - radius), mask)
    mask.close()
    with small:
        return small.resize((w, h), Image.Resampling.BILINEAR)


def _thirds(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], u: float) -> None:
    """Faint rule-of-thirds guides: a preview is for judging layout."""
    x0, y0, x1, y1 = box
    width = max(1, round(2 * u))
    for i in (1, 2):
        x, y = x0 + (x1 - x0) * i // 3, y0 + (y1 - y0) * i // 3
        draw.line([(x, y0), (x, y1)], fill=(255, 255, 255, 90), width=width)
        draw.line([(x0, y), (x1, y)], fill=(255, 255, 255, 90), width=width)


def _watermark(im: Image.Image, box: tuple[int, int, int, int]) -> None:
    """A big translucent "PREVIEW" along the diagonal of the box. Drawn and turned at half
    size, then scaled up: soft edges do not matter at this size and it halves the cost."""
    bw, bh = box[2] - box[0], box[3] - box[1]
    word, ref = "PREVIEW", fonts.text_width("PREVIEW", 100, bold=True)
    size = max(8, round(100 * 0.36 * math.hypot(bw, bh) / max(1.0, ref)))
    pad = size // 4
    layer = Image.new("L", (round(ref * size / 100) + 2 * pad, size + 3 * pad))
    fonts.draw_text(ImageDraw.Draw(layer), (pad, pad), word, size, 70, bold=True)
    angle = math.degrees(math.atan2(bh, bw))
    with layer, layer.rotate(angle, Image.Resampling.BILINEAR, expand=True) as turned:
        vis = (min(bw, 2 * turned.width), min(bh, 2 * turned.height))  # the part in the box
        cx, cy = turned.width / 2, turned.height / 2
        src = (cx - vis[0] / 4, cy - vis[1] / 4, cx + vis[0] / 4, cy + vis[1] / 4)
        with turned.resize(vis, Image.Resampling.BILINEAR, box=src) as mask:
            im.paste(_WHITE, (box[0] + (bw - vis[0]) // 2, box[1] + (bh - vis[1]) // 2), mask)


def _banner(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], u: float) -> int:
    """The dark strip along the top that says what this is; returns its bottom edge."""
    size = max(10, round(30 * u))
    pad = round(size * 0.6)
    bottom = box[1] + size + 2 * pad
    draw.rectangle((box[0], box[1], box[2], bottom), fill=(0, 0, 0, 170))
    label = "PREVIEW · not a real model output"
    if fonts.text_width(label, size, bold=True) > box[2] - box[0] - 2 * pad:
        label = "PREVIEW"
    fonts.draw_text(
        draw, (box[0] + pad, box[1] + pad * 0.7), label, size, (255, 200, 80), bold=True
    )
    return bottom


def _input_inset(
    im: Image.Image,
    draw: ImageDraw.ImageDraw,
    request: ImageRequest,
    box: tuple[int, int, int, int],
    top: int,
    u: float,
) -> None:
    """A small copy of the first input in the top-right corner, so an edit chain shows."""
    edge = round(240 * u)
    border = max(2, round(4 * u))
    with Image.open(io.BytesIO(request.images[0].data)) as src:
        src.draft("RGB", (edge, edge))
        src.thumbnail((edge, edge), Image.Resampling.BILINEAR, reducing_gap=2.0)
        thumb = src.convert("RGBA")
    with thumb:
        x = box[2] - thumb.width - round(24 * u)
        y = top + round(24 * u)
        draw.rectangle((x - border, y - border, x + thumb.width + border - 1,
                        y + thumb.height + border - 1), fill=_WHITE)  # fmt: skip
        im.paste(thumb, (x, y), thumb)
    size = max(9, round(20 * u))
    label = f"edit of input 1/{len(request.images)}" + (" + mask" if request.mask else "")
    width = fonts.text_width(label, size)
    ly = y + thumb.height + border + round(6 * u)
    strip = (x - border, ly, x + thumb.width + border, ly + round(size * 1.5))
    draw.rectangle(strip, fill=(0, 0, 0, 150))
    fonts.draw_text(draw, (x + (thumb.width - width) / 2, ly), label, size, _WHITE)


def _sign(
    draw: ImageDraw.ImageDraw,
    lines: list[str],
    box: tuple[int, int, int, int],
    top: int,
    u: float,
) -> None:
    """The prompt's quoted text (`a sign that says "OPEN"`), large, dark and centred on a
    light panel, one quote a line, in each script's font: what a real model would be asked
    to write, so text checks have something to read offline."""
    if not lines:
        return
    x0, y0, x1, y1 = box
    room_top, room_bottom = top + round(24 * u), y1 - round((y1 - y0) * 0.3)  # over the caption
    room_w, room_h = (x1 - x0) * 0.8, max(1, room_bottom - room_top)
    widest = max(fonts.text_width(line, 100, bold=True) for line in lines) / 100
    fit = min(room_h / (1.45 * len(lines) + 1.2), 0.95 * room_w / max(widest, 0.01))
    size = max(12, round(min(fit, 0.11 * min(x1 - x0, y1 - y0))))  # strokes stay thin enough
    most = max(1, int(room_h / (1.45 * size)))
    shown = [part for line in lines for part in fonts.wrap(line, size, room_w, most, bold=True)]
    shown = shown[:most]
    pad, pitch = round(0.6 * size), round(1.45 * size)
    width = max(fonts.text_width(line, size, bold=True) for line in shown)
    height = pitch * len(shown) - round(0.45 * size)
    cx, cy = (x0 + x1) / 2, (room_top + room_bottom) / 2
    half_w, half_h = width / 2 + pad, height / 2 + pad
    panel = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
    draw.rounded_rectangle(panel, radius=round(size / 4), fill=(250, 247, 236))
    y = cy - height / 2 - round(0.12 * size)
    for line in shown:
        line_w = fonts.text_width(line, size, bold=True)
        fonts.draw_text(draw, (cx - line_w / 2, y), line, size, (22, 22, 22), bold=True)
        y += pitch


def _caption(
    draw: ImageDraw.ImageDraw,
    request: ImageRequest,
    variant: int,
    box: tuple[int, int, int, int],
    u: float,
) -> None:
    """The prompt (wrapped, cut to fit) over a dark panel at the bottom, then the settings."""
    size, small = max(10, round(38 * u)), max(9, round(22 * u))
    pad, line = round(28 * u), round(38 * u * 1.45)
    width = box[2] - box[0] - 2 * pad
    most = max(1, min(8, int((box[3] - box[1]) * 0.3 / line)))
    lines = fonts.wrap(request.prompt, size, width, most)
    height = pad + len(lines) * line + round(small * 1.9) + pad
    top = box[3] - height
    draw.rectangle((box[0], top, box[2], box[3]), fill=(0, 0, 0, 160))
    y = top + pad
    for text in lines:
        fonts.draw_text(draw, (box[0] + pad, y), text, size, _WHITE)
        y += line
    r = resolved(request)
    usd = cost.estimate(request, images=1).usd
    meta = (
        f"{request.model} · {r['size']} · quality {request.quality} · {request.output_format}"
        f" · variant {variant + 1} · real ~${usd:.3f}"
    )
    for text in (meta, meta.rsplit(" · real", 1)[0]):
        if fonts.text_width(text, small) <= width:
            break
    fonts.draw_text(draw, (box[0] + pad, y + round(small * 0.4)), text, small, (215, 215, 215))
