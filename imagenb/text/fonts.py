"""System fonts for text drawn into images (previews, contact sheets), per writing system.

One font rarely covers everything a prompt may hold, so text is split into runs by script
(Latin, CJK, Devanagari, Bengali) and each run gets a font that has its glyphs. Fonts are
found by file name in the usual font folders (plus `$IMAGENB_FONT_PATH`), checked for actual
glyph coverage, and cached. With no fonts at all, Pillow's built-in font is used: Latin only,
but nothing crashes. On Debian, `fonts-noto-cjk fonts-noto-core fonts-dejavu-core` cover
every script imagenb promises (Latin, Japanese, Korean, Chinese, Hindi, Bengali).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from PIL import ImageDraw, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Ink = float | str | tuple[int, ...]
SCRIPTS = ("latin", "cjk", "devanagari", "bengali")
SYSTEM_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "/System/Library/Fonts/Supplemental",
    os.path.join(os.environ.get("WINDIR", "C:\\Windows"), "Fonts"),
)
# Preferred files per (script, bold), best first. Coverage is checked, names only find them.
_CANDIDATES: dict[tuple[str, bool], tuple[str, ...]] = {
    ("latin", False): (
        "NotoSans-Regular.ttf",
        "DejaVuSans.ttf",
        "LiberationSans-Regular.ttf",
        "Arial.ttf",
        "arial.ttf",
        "Helvetica.ttc",
    ),
    ("latin", True): (
        "NotoSans-Bold.ttf",
        "DejaVuSans-Bold.ttf",
        "LiberationSans-Bold.ttf",
        "Arial Bold.ttf",
        "arialbd.ttf",
    ),
    ("cjk", False): (
        "NotoSansCJK-Regular.ttc",
        "NotoSansCJKsc-Regular.otf",
        "NotoSansCJKjp-Regular.otf",
        "DroidSansFallbackFull.ttf",
        "wqy-microhei.ttc",
        "wqy-zenhei.ttc",
        "PingFang.ttc",
        "msyh.ttc",
    ),
    ("cjk", True): ("NotoSansCJK-Bold.ttc", "NotoSansCJKsc-Bold.otf", "msyhbd.ttc"),
    ("devanagari", False): (
        "NotoSansDevanagari-Regular.ttf",
        "Lohit-Devanagari.ttf",
        "Nirmala.ttf",
        "Kohinoor.ttc",
    ),
    ("devanagari", True): ("NotoSansDevanagari-Bold.ttf", "NirmalaB.ttf"),
    ("bengali", False): ("NotoSansBengali-Regular.ttf", "Lohit-Bengali.ttf", "Nirmala.ttf"),
    ("bengali", True): ("NotoSansBengali-Bold.ttf", "NirmalaB.ttf"),
}
_SAMPLE = {"latin": "Ag", "cjk": "中あ한", "devanagari": "क", "bengali": "ক"}
_CJK_FACE = {"ja": "JP", "ko": "KR", "zh": "SC"}  # face-name suffixes inside Noto's .ttc
_CJK_RANGES = (
    (0x1100, 0x11FF), (0x2E80, 0x2FDF), (0x3000, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
    (0xA960, 0xA97F), (0xAC00, 0xD7AF), (0xF900, 0xFAFF), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF),
    (0x20000, 0x3FFFF),
)  # fmt: skip
_LOCK = threading.RLock()  # FreeType faces are not safe to use from two threads at once


def script_of(ch: str) -> str | None:
    """The script `ch` needs a font for, or None for ASCII spaces, digits and punctuation
    (and zero-width joiners), which any font can draw."""
    code = ord(ch)
    if (code < 0x80 and not ch.isalpha()) or 0x200B <= code <= 0x200D:
        return None
    if 0x0900 <= code <= 0x097F or 0xA8E0 <= code <= 0xA8FF:
        return "devanagari"
    if 0x0980 <= code <= 0x09FF:
        return "bengali"
    if any(lo <= code <= hi for lo, hi in _CJK_RANGES):
        return "cjk"
    return "latin"


def runs(text: str) -> list[tuple[str, str]]:
    """Split `text` into `(script, piece)` runs. Neutral characters stay with a Latin or CJK
    run (those fonts have them) and form Latin runs between Indic words."""
    out: list[tuple[str, str]] = []
    for ch in text:
        script = script_of(ch)
        if script is None:
            script = out[-1][0] if out and out[-1][0] in ("latin", "cjk") else "latin"
            if ch in "\u200c\u200d" and out:
                script = out[-1][0]  # joiners shape the cluster they sit in
        if out and out[-1][0] == script:
            out[-1] = (script, out[-1][1] + ch)
        else:
            out.append((script, ch))
    return out


def available() -> dict[str, str]:
    """The font file found for each script (`path` or `path#face`); missing scripts left out."""
    found: dict[str, str] = {}
    for script in SCRIPTS:
        face = _face(script, False, "zh" if script == "cjk" else None)
        if face is not None:
            found[script] = face[0] if face[1] == 0 else f"{face[0]}#{face[1]}"
    return found


def font_for(text: str, size: int, *, bold: bool = False) -> Font:
    """The single font that draws most of `text` (for one-font callers). Mixed-script text is
    drawn best with `draw_text`, which switches fonts per run."""
    counts: dict[str, int] = {}
    for script, piece in runs(text):
        counts[script] = counts.get(script, 0) + len(piece)
    if counts.get("cjk") and not counts.get("devanagari") and not counts.get("bengali"):
        return _font("cjk", size, bold, _cjk_language(text))  # CJK fonts include Latin too
    best = max(counts, key=lambda s: counts[s]) if counts else "latin"
    return _font(best, size, bold, None)


def text_width(text: str, size: int, *, bold: bool = False) -> float:
    """Advance width of `text` as `draw_text` would draw it."""
    lang = _cjk_language(text)
    with _LOCK:
        return sum(_font(s, size, bold, lang).getlength(p) for s, p in runs(text))


def draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: int,
    fill: Ink,
    *,
    bold: bool = False,
) -> float:
    """Draw one line with its top-left corner at `xy`, switching fonts per script run; return
    its width. All runs share one baseline at `size` below the top."""
    x, y = xy
    baseline = y + round(size * 1.05)
    lang = _cjk_language(text)
    with _LOCK:
        for script, piece in runs(text):
            font = _font(script, size, bold, lang)
            if isinstance(font, ImageFont.FreeTypeFont):
                draw.text((x, baseline), piece, font=font, fill=fill, anchor="ls")
            else:  # bitmap fallback font: no anchors
                draw.text((x, baseline - size), piece, font=font, fill=fill)
            x += font.getlength(piece)
    return x - xy[0]


def wrap(
    text: str, size: int, max_width: float, max_lines: int, *, bold: bool = False
) -> list[str]:
    """Greedy line breaking at spaces and between CJK characters; at most `max_lines` lines,
    the last ending in an ellipsis when text was cut."""
    text = " ".join(text.split())
    limit = int(max_lines * max_width / max(1.0, size * 0.25)) + 1  # more can never fit
    lang = _cjk_language(text)
    lines: list[str] = []
    line, used = "", 0.0
    with _LOCK:
        for unit, width in _pieces(text[:limit], size, max_width, bold, lang):
            if used + width > max_width and line.strip():
                lines.append(line.rstrip())
                line, used = "", 0.0
                if len(lines) == max_lines:
                    break
            line, used = line + unit, used + width
        else:
            if line.strip():
                lines.append(line.rstrip())
            if limit >= len(text):
                return lines
        if lines:
            lines[-1] = _ellipsize(lines[-1], size, max_width, bold)
    return lines


def _pieces(
    text: str, size: int, max_width: float, bold: bool, lang: str
) -> Iterator[tuple[str, float]]:
    """Units with their widths; a word wider than a whole line comes out letter by letter."""
    for unit in _units(text):
        width = _width(unit, size, bold, lang)
        if width <= max_width:
            yield unit, width
        else:
            for ch in unit:
                yield ch, _width(ch, size, bold, lang)


def _units(text: str) -> Iterator[str]:
    """Unbreakable pieces: words with their trailing space, and single CJK characters."""
    word = ""
    for ch in text:
        if script_of(ch) == "cjk":
            if word:
                yield word
            word = ""
            yield ch
        elif ch == " ":
            yield word + ch
            word = ""
        else:
            word += ch
    if word:
        yield word


def _width(text: str, size: int, bold: bool, lang: str) -> float:
    return sum(_font(s, size, bold, lang).getlength(p) for s, p in runs(text))


def _ellipsize(line: str, size: int, max_width: float, bold: bool) -> str:
    while line and text_width(line + "…", size, bold=bold) > max_width:
        line = line[:-1]
    return line.rstrip() + "…"


def _cjk_language(text: str) -> str:
    """Pick Japanese or Korean glyph forms when kana or hangul say so; Chinese otherwise."""
    for ch in text:
        code = ord(ch)
        if 0x3040 <= code <= 0x30FF:
            return "ja"
        if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF:
            return "ko"
    return "zh"


def _font(script: str, size: int, bold: bool, lang: str | None) -> Font:
    face = _face(script, bold, lang if script == "cjk" else None)
    if face is None and bold:
        face = _face(script, False, lang if script == "cjk" else None)
    if face is None and script != "latin":
        return _font("latin", size, bold, None)  # tofu boxes rather than a crash
    return _load(face, size)


@functools.lru_cache(maxsize=256)
def _load(face: tuple[str, int] | None, size: int) -> Font:
    if face is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(face[0], size, index=face[1])


@functools.lru_cache(maxsize=64)
def _face(script: str, bold: bool, lang: str | None) -> tuple[str, int] | None:
    """The first candidate file that really has glyphs for `script` (and, for a CJK
    collection, the face whose name says `lang`)."""
    files = _files(tuple(font_dirs()))
    for name in _CANDIDATES[(script, bold)]:
        path = files.get(name.lower())
        if path is None:
            continue
        try:
            index = _collection_index(path, lang) if path.endswith(".ttc") else 0
            font = ImageFont.truetype(path, 24, index=index)
        except OSError:
            continue
        if all(_covers(font, ch) for ch in _SAMPLE[script]):
            return (path, index)
    return None


def _collection_index(path: str, lang: str | None) -> int:
    want = _CJK_FACE.get(lang or "", "")
    for index in range(16):
        try:
            family = ImageFont.truetype(path, 12, index=index).getname()[0] or ""
        except OSError:
            break
        if want and family.endswith(f" {want}") and "Mono" not in family:
            return index
    return 0


def _covers(font: ImageFont.FreeTypeFont, ch: str) -> bool:
    """True unless `ch` renders exactly like a code point no font has (the .notdef glyph)."""
    glyph, missing = font.getmask(ch), font.getmask("\U0010fffd")
    return glyph.size != missing.size or bytes(glyph) != bytes(missing)


def font_dirs() -> list[str]:
    """Folders searched: `$IMAGENB_FONT_PATH` (os.pathsep-separated) first, then the system's."""
    extra = [p for p in os.environ.get("IMAGENB_FONT_PATH", "").split(os.pathsep) if p]
    return [os.path.expanduser(p) for p in (*extra, *SYSTEM_DIRS)]


@functools.lru_cache(maxsize=8)
def _files(dirs: tuple[str, ...]) -> dict[str, str]:
    """Font file name (lower case) -> first path with that name, in folder order."""
    found: dict[str, str] = {}
    for root in dirs:
        if not os.path.isdir(root):
            continue
        for folder, _, names in os.walk(root):
            for name in names:
                if name.lower().endswith((".ttf", ".otf", ".ttc")):
                    found.setdefault(name.lower(), str(Path(folder) / name))
    return found


def clear_cache() -> None:
    """Forget discovered and loaded fonts (after installing fonts, or in tests)."""
    _files.cache_clear()
    _face.cache_clear()
    _load.cache_clear()
