"""How results look in a notebook: small thumbnails and escaped, self-contained HTML.

Notebook outputs never carry full-resolution images (guarantee 4): each image becomes a WebP
thumbnail small enough that one figure, base64 and caption included, stays under
`MAX_OUTPUT_BYTES`. Prompts are untrusted text and are HTML-escaped everywhere (guarantee 5).
The HTML has no JavaScript and takes its colours from JupyterLab's theme variables, with
fallbacks for other front ends.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import io
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

MAX_OUTPUT_BYTES = 40_000  # per image in a notebook output (SPEC §8)
MAX_THUMB_BYTES = 28_000  # base64 turns it into ~37.3 KB, leaving room for the caption
PROMPT_CHARS = 240  # shown under the thumbnail (CSS clamps it to three lines)
TITLE_CHARS = 2_000  # in the tooltip; a 32k-character prompt would blow the output budget
_QUALITIES = (80, 65, 50, 35, 20, 10, 0)
_SHRINK = 0.75

# Every style is inline: JupyterLab drops `<style>` blocks from untrusted outputs (a notebook
# downloaded, handed to a class, shown on GitHub), and a page-global rule from one output
# would restyle the others. Class names stay as hooks for tests and users, never for looks.
FONT = "font:12px/1.4 var(--jp-ui-font-family,system-ui,-apple-system,'Segoe UI',sans-serif)"
INK = "color:var(--jp-ui-font-color1,inherit)"
_FIG = (
    "display:inline-block;vertical-align:top;margin:0 8px 8px 0;padding:6px;"
    "box-sizing:content-box;border:1px solid var(--jp-border-color2,rgba(128,128,128,.35));"
    f"border-radius:6px;background:var(--jp-layout-color1,transparent);{INK};{FONT};"
    "text-align:left;white-space:normal"
)
_IMG = "display:block;max-width:100%;height:auto;border-radius:4px;margin:0"
_PROMPT = (
    "display:-webkit-box;-webkit-line-clamp:3;-webkit-box-orient:vertical;overflow:hidden;"
    "overflow-wrap:anywhere;margin-top:4px"
)
_META = "opacity:.75;font-size:11px;margin-top:2px;overflow-wrap:anywhere"
BADGE = (
    "display:inline-block;margin-left:4px;padding:0 5px;border:1px solid currentColor;"
    "border-radius:8px;font-size:10px"
)
FLAG = (
    "display:inline-block;margin:0 0 0 6px;padding:0 6px;border-radius:4px;background:#b45309;"
    "color:#fff;font-weight:600;font-size:11px"
)
_NOTICE = (
    "display:block;margin-top:4px;padding:2px 6px;border-radius:4px;background:#b45309;"
    "color:#fff;font-weight:600;font-size:11px;text-align:center"
)
SUMMARY = f"margin:2px 0 8px;{INK};font:13px/1.4 var(--jp-ui-font-family,system-ui,sans-serif)"
# JupyterLab (MathJax 3) and the classic notebook (MathJax 2) typeset `$...$` in HTML outputs
# unless an ancestor has one of these classes: a prompt's `$\style{...}{x}$` would restyle the
# page, and "$0.0034 · … $0.0101" would turn into math, instead of showing the text.
NO_MATH = "tex2jax_ignore mathjax_ignore"
PREVIEW_NOTICE = "PREVIEW — not a real model output"
_CACHED_TIP = "from the store: no charge this time"


class Displayable(Protocol):
    """What the display layer reads from a result (`GeneratedImage` has all of it)."""

    @property
    def path(self) -> Path: ...
    @property
    def prompt(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def cost_usd(self) -> float | None: ...
    @property
    def cost_is_estimate(self) -> bool: ...
    @property
    def cached(self) -> bool: ...
    @property
    def latency_s(self) -> float | None: ...
    @property
    def key(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...


# --- thumbnails -------------------------------------------------------------------------------


def thumbnail(path: Path | bytes, px: int, cache_path: Path | None = None) -> tuple[bytes, str]:
    """A WebP (JPEG where Pillow lacks WebP) of `path` (or encoded image bytes, such as a
    streamed partial) with its long edge at most `px` and at
    most `MAX_THUMB_BYTES`; `(data, mime)`. With `cache_path`, reuse that file if present,
    else write it there atomically (a read-only store just means no cache)."""
    if cache_path is not None:
        try:
            data = cache_path.read_bytes()
        except OSError:
            data = b""
        if mime := _sniff(data):
            return data, mime
    data, mime = _make_thumbnail(path, px)
    if cache_path is not None:
        _write_atomic(cache_path, data)
    return data, mime


def thumbnail_format() -> str:
    """`webp`, or `jpg` if this Pillow cannot write WebP (cache file names use it)."""
    return "webp" if _has_webp() else "jpg"


@functools.cache
def _has_webp() -> bool:
    from PIL import features

    return bool(features.check("webp"))


def _make_thumbnail(source: Path | bytes, px: int) -> tuple[bytes, str]:
    from PIL import Image

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as im:
        if im.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale straight away
            im.draft("RGB", (2 * px, 2 * px))
        im.thumbnail((px, px), Image.Resampling.LANCZOS, reducing_gap=2.0)
        alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
        small = im.convert("RGBA" if alpha else "RGB")
    with small:
        return _encode_within(small, MAX_THUMB_BYTES)


def _encode_within(im: Any, limit: int) -> tuple[bytes, str]:
    """Lower the quality step by step, then the size, until the file fits in `limit`: even a
    worst-case random-noise image ends up within it."""
    from PIL import Image

    webp = _has_webp()
    if not webp and im.mode == "RGBA":  # JPEG has no alpha: flatten onto white
        flat = Image.new("RGB", im.size, (255, 255, 255))
        flat.paste(im, mask=im.getchannel("A"))
        im = flat
    current = im
    while True:
        for quality in _QUALITIES:
            buf = io.BytesIO()
            if webp:
                current.save(buf, "WEBP", quality=quality, alpha_quality=quality, method=4)
            else:
                current.save(buf, "JPEG", quality=quality, optimize=True)
            if buf.tell() <= limit or max(current.size) <= 16:
                if current is not im:
                    current.close()
                return buf.getvalue(), "image/webp" if webp else "image/jpeg"
        size = (max(1, int(current.width * _SHRINK)), max(1, int(current.height * _SHRINK)))
        smaller = current.resize(size, Image.Resampling.BILINEAR)
        if current is not im:
            current.close()
        current = smaller


def _sniff(data: bytes) -> str | None:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    return None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:  # a read-only or odd store: go on without a cache
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _cache_path(img: Displayable, px: int) -> Path | None:
    """`thumbs/<key>-<px>.<ext>` next to `objects/` when `img` lives in a store."""
    path = Path(img.path)
    root = path.parent.parent.parent
    if path.parent.parent.name != "objects" or not (root / "thumbs").is_dir():
        return None
    return root / "thumbs" / f"{img.key}-{px}.{thumbnail_format()}"


# --- HTML -------------------------------------------------------------------------------------


def esc(text: object) -> str:
    """`text` as HTML text or a quoted attribute value: every prompt, caption and error
    passes through here on its way into a page."""
    return html.escape(str(text), quote=True)


def clip(text: str, limit: int) -> str:
    """`text` on one line, at most `limit` characters (an ellipsis marks the cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _is_preview(img: Displayable) -> bool:
    return img.backend == "preview"


def _cost(img: Displayable) -> str:
    if img.cost_usd is None:
        return "cost unknown"
    if _is_preview(img):
        return f"≈ ${img.cost_usd:.4f} if real"
    return f"${img.cost_usd:.4f}" + (" est." if img.cost_is_estimate else "")


def _settings(img: Displayable) -> list[str]:
    size = f"{img.width}x{img.height}" if img.width and img.height else img.params.get("size")
    fmt = img.params.get("output_format") or Path(img.path).suffix.lstrip(".")
    return [str(v) for v in (img.model, size, img.params.get("quality"), fmt) if v]


def _figure(img: Displayable, px: int, *, notice: bool = True) -> str:
    """One card. Its PREVIEW notice is the output's one mark; in a set, the set's summary
    carries it instead (each preview image is marked in its own pixels too)."""
    data, mime = thumbnail(img.path, px, _cache_path(img, px))
    dims, width = "", px
    if img.width and img.height:
        scale = min(1.0, px / max(img.width, img.height))
        width = max(1, round(img.width * scale))
        dims = f' width="{width}" height="{max(1, round(img.height * scale))}"'
    src = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    prompt, title = clip(img.prompt, PROMPT_CHARS), clip(img.prompt, TITLE_CHARS)
    meta = " · ".join(esc(s) for s in _settings(img)) + " · " + esc(_cost(img))
    if img.latency_s is not None and not img.cached:
        meta += f" · {img.latency_s:.1f} s"
    if img.cached:
        meta += f' <span class="imagenb-badge" style="{BADGE}" title="{_CACHED_TIP}">cached</span>'
    check = getattr(img, "text_check", None)  # a TextCheck, when the text was checked
    if check is not None:
        colour = "#15803d" if check.passed else "#b91c1c"
        tip = esc(clip(check.describe(), PROMPT_CHARS))
        meta += (
            f' <span class="imagenb-badge" style="{BADGE};color:{colour}" title="{tip}">'
            f"{esc(check.badge())}</span>"
        )
    flag = (
        f'<div class="imagenb-preview" style="{_NOTICE}">{esc(PREVIEW_NOTICE)}</div>'
        if notice and _is_preview(img)
        else ""
    )
    return (
        f'<figure class="imagenb-fig {NO_MATH}" style="{_FIG};width:{max(width, 160)}px">'
        f'<img class="imagenb-img" style="{_IMG}" src="{src}"{dims} alt="{esc(prompt)}">'
        f'<figcaption><div class="imagenb-prompt" style="{_PROMPT}" title="{esc(title)}">'
        f'{esc(prompt)}</div><div class="imagenb-meta" style="{_META}">{meta}</div>{flag}'
        "</figcaption></figure>"
    )


def image_html(img: Displayable, px: int) -> str:
    """One result as a self-contained `<figure>`: thumbnail, prompt, settings, cost, badges."""
    return _figure(img, px)


def images_html(items: Sequence[Displayable], px: int, title: str | None = None) -> str:
    """A responsive gallery of figures under a one-line summary of count, cost and cache."""
    head = f"<b>{esc(title)}</b> · " if title else ""
    summary = head + esc(_summary(items))
    if any(_is_preview(i) for i in items):
        summary += f' <span class="imagenb-preview" style="{FLAG}">{esc(PREVIEW_NOTICE)}</span>'
    figures = "".join(_figure(i, px, notice=False) for i in items)
    return (
        f'<div class="imagenb-set {NO_MATH}" style="{INK};{FONT}">'
        f'<div class="imagenb-summary" style="{SUMMARY}">{summary}</div>'
        f'<div class="imagenb-gallery">{figures}</div></div>'
    )


def _summary(items: Sequence[Displayable]) -> str:
    n = len(items)
    parts = [f"{n} image{'' if n == 1 else 's'}"]
    fresh = [i for i in items if not i.cached]
    usd = sum(i.cost_usd or 0.0 for i in fresh)
    if fresh and all(_is_preview(i) for i in fresh):
        parts.append(f"≈ ${usd:.4f} if real")
    elif fresh:
        est = any(i.cost_is_estimate or i.cost_usd is None for i in fresh)
        parts.append(f"${usd:.4f}" + (" est." if est else ""))
    cached = n - len(fresh)
    if cached:
        parts.append(f"{cached} cached (free)")
    return " · ".join(parts)


# --- text -------------------------------------------------------------------------------------


def image_text(img: Displayable) -> str:
    """`GeneratedImage('a red fox', gpt-image-2 1536x864 low webp, $0.0036, cached) -> /path`"""
    parts = [" ".join(_settings(img)), _cost(img)]
    if img.cached:
        parts.append("cached")
    check = getattr(img, "text_check", None)
    if check is not None:
        parts.append(check.badge())
    if _is_preview(img):
        parts.append("PREVIEW")
    return f"GeneratedImage({clip(img.prompt, 60)!r}, {', '.join(parts)}) -> {img.path}"


def images_text(items: Sequence[Displayable], *, limit: int = 50) -> str:
    """`ImageSet(3 images, $0.0108, 1 cached (free))` and one line per image (up to `limit`)."""
    lines = [f"ImageSet({', '.join(_summary(items).split(' · '))})"]
    lines += [f"  [{i}] {image_text(img)}" for i, img in enumerate(items[:limit])]
    if len(items) > limit:
        lines.append(f"  ... and {len(items) - limit} more")
    return "\n".join(lines)
