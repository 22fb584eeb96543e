"""What text an image should show, and how close a reading of it is: the quoted passages of
a prompt, the script (and so the OCR language) of a text, Unicode normalisation, the
Levenshtein distance and the character error rate (CER).

Both sides are compared after NFKC normalisation, with invisible joiners dropped, typographic
quotes and dashes made plain, case folded, and whitespace collapsed (removed entirely for
Japanese, Chinese and Korean, whose OCR spacing means nothing). With `match="contains"` each
line of the expected text is looked for *anywhere* in the reading (a picture holds other
text, and a preview its prompt): the CER is the distance to the best-matching span, summed
over lines, divided by the expected length. `match="exact"` compares the whole reading.
"""

from __future__ import annotations

import collections
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from imagenb.errors import InvalidRequest

MATCHES = ("contains", "exact")
DEFAULT_MAX_CER = 0.1
_ALIASES = {
    "en": "eng", "english": "eng", "latin": "eng",
    "ja": "jpn", "japanese": "jpn",
    "ko": "kor", "korean": "kor",
    "zh": "chi_sim", "zh-cn": "chi_sim", "chinese": "chi_sim",
    "hi": "hin", "hindi": "hin", "devanagari": "hin",
    "bn": "ben", "bengali": "ben", "bangla": "ben",
}  # fmt: skip
_SPACELESS = {"jpn", "jpn_vert", "chi_sim", "chi_sim_vert", "chi_tra", "chi_tra_vert", "kor"}
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
# typographic quotes and dashes -> ASCII (OCR reads either for either)
_PLAIN = str.maketrans(
    "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2010\u2011\u2013\u2014\u2212",
    "''''\"\"\"\"-----",
)
_QUOTES = re.compile(  # "...", “...”, „...“, «...», 「...」, 『...』, fullwidth "..."
    r'"([^"]+)"|“([^”]+)”|„([^“”]+)[“”]|«([^»]+)»|「([^」]+)」|『([^』]+)』'
    "|\uff02([^\uff02]+)\uff02"
)


# --- what to expect -------------------------------------------------------------------------


def quoted(prompt: str) -> list[str]:
    """The quoted passages of `prompt`, the text a model is asked to draw:
    `a sign that says "OPEN"` -> `["OPEN"]`. Straight and curly quotes, «», 「」 and 『』."""
    found = (next(g for g in m.groups() if g is not None) for m in _QUOTES.finditer(prompt))
    return [" ".join(text.split()) for text in found if text.strip()]


def expected_from(prompt: str, check_text: str | bool | None) -> str | None:
    """The text to check for a prompt: `check_text` itself, or with `True` the prompt's
    quoted passages, one per line; None when nothing is to be checked."""
    if check_text is None or check_text is False:
        return None
    if check_text is True:
        lines = quoted(prompt)
        if not lines:
            raise InvalidRequest(
                "there is no quoted text in the prompt to check; put the words the image "
                'should show in quotes (a sign that says "OPEN"), or pass check_text="OPEN"'
            )
        return "\n".join(lines)
    if not isinstance(check_text, str) or not check_text.strip():
        raise InvalidRequest(
            f"check_text must be the text the image should show (a non-empty str) or True "
            f"for the quoted text of the prompt; got {check_text!r}"
        )
    return check_text


def _script(ch: str) -> str | None:
    code = ord(ch)
    if 0x3040 <= code <= 0x30FF or 0x31F0 <= code <= 0x31FF or 0xFF66 <= code <= 0xFF9F:
        return "kana"
    if 0xAC00 <= code <= 0xD7FF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
        return "hangul"
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF:
        return "han"
    if 0x20000 <= code <= 0x3FFFF:
        return "han"
    if 0x0900 <= code <= 0x097F or 0xA8E0 <= code <= 0xA8FF:
        return "devanagari"
    if 0x0980 <= code <= 0x09FF:
        return "bengali"
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    return "latin" if name.startswith("LATIN") else (name.split(" ")[0].title() or "unknown")


def detect_lang(text: str) -> str:
    """The Tesseract language for `text`, from its letters: kana -> `jpn`, hangul -> `kor`,
    other CJK ideographs -> `chi_sim`, Devanagari -> `hin`, Bengali -> `ben`, Latin (or no
    letters) -> `eng`; `+eng` is added when Latin letters come with another script."""
    counts = collections.Counter(s for s in map(_script, text) if s is not None)
    other = sorted(
        s for s in counts if s not in ("latin", "kana", "hangul", "han", "devanagari", "bengali")
    )
    if other:
        raise InvalidRequest(
            f"the expected text {text[:40]!r} is in {other[0]} script, which check_text does "
            f"not detect (it knows Latin, Japanese, Korean, Chinese, Hindi and Bengali); pass "
            f"lang= with a Tesseract language code and install its language data"
        )
    if counts["hangul"]:
        main = "kor"
    elif counts["kana"]:
        main = "jpn"
    elif counts["han"]:
        main = "chi_sim"
    elif counts["devanagari"] or counts["bengali"]:
        main = "hin" if counts["devanagari"] >= counts["bengali"] else "ben"
    else:
        return "eng"
    return f"{main}+eng" if counts["latin"] else main


def resolve_lang(lang: str | None, expected: str) -> str:
    """`lang` as Tesseract codes (`ja` -> `jpn`, `jpn+en` -> `jpn+eng`), or detected."""
    if lang is None:
        return detect_lang(expected)
    if not isinstance(lang, str) or not lang.strip():
        raise InvalidRequest(f"lang must be a language such as 'jpn' or 'ja'; got {lang!r}")
    parts = [_ALIASES.get(p.strip().lower(), p.strip()) for p in lang.split("+")]
    return "+".join(dict.fromkeys(p for p in parts if p))


# --- comparing ------------------------------------------------------------------------------


def normalize(text: str, lang: str = "eng") -> str:
    """`text` as compared: NFKC, no invisible joiners, plain quotes and dashes, case folded,
    whitespace collapsed (removed for Japanese, Chinese and Korean)."""
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).translate(_PLAIN).casefold()
    if _SPACELESS.intersection(lang.split("+")):
        return "".join(text.split())
    return " ".join(text.split())


def align(pattern: str, text: str, *, anywhere: bool = False) -> tuple[int, int, int]:
    """`(edits, start, end)`: the Levenshtein distance from `pattern` to `text[start:end]`,
    which is the whole of `text`, or with `anywhere` whichever span of it is closest."""
    m = len(pattern)
    column = list(range(m + 1))  # distances from pattern[:i] to the text read so far
    starts = [0] * (m + 1)  # where the span of each of those distances begins
    best = (m, 0, 0)
    for j, ch in enumerate(text, 1):
        before, before_starts = column[:], starts[:]
        column[0], starts[0] = (0, j) if anywhere else (j, 0)
        for i in range(1, m + 1):
            column[i], starts[i] = min(
                (before[i - 1] + (pattern[i - 1] != ch), before_starts[i - 1]),  # (mis)match
                (column[i - 1] + 1, starts[i - 1]),  # a pattern character missing
                (before[i] + 1, before_starts[i]),  # an extra character read
            )
        if anywhere and column[m] < best[0]:
            best = (column[m], starts[m], j)
    return best if anywhere else (column[m], 0, len(text))


def levenshtein(a: str, b: str) -> int:
    """Edits (insertions, deletions, substitutions) that turn `a` into `b`."""
    return align(a, b)[0]


def cer(
    expected: str, recognised: str, lang: str | None = None, *, match: str = "contains"
) -> float:
    """Character error rate of `recognised` against `expected`, both normalised."""
    code = resolve_lang(lang, expected)
    return score(expected_lines(expected, code, match), recognised, code, match)[0]


def expected_lines(expected: str, lang: str, match: str) -> list[str]:
    """The normalised lines to look for (one line, all of it, for `match="exact"`); an empty
    text is refused."""
    lines = [normalize(line, lang) for line in expected.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise InvalidRequest("the expected text is empty; give the words the image should show")
    if match == "exact":
        return ["".join(lines) if _SPACELESS.intersection(lang.split("+")) else " ".join(lines)]
    return lines


def score(lines: Sequence[str], reading: str, lang: str, match: str) -> tuple[float, str]:
    """`(cer, the text read where each line matched)` of one reading."""
    text = normalize(reading, lang)
    edits, spans = 0, []
    for line in lines:
        distance, start, end = align(line, text, anywhere=match == "contains")
        edits += distance
        spans.append(text[start:end])
    return edits / sum(len(line) for line in lines), "\n".join(spans)


@dataclass(frozen=True)
class TextCheck:
    """How the text of one image read: `text` is what was read where the expected text
    should be, `full_text` everything read (in the best view), `cer` the character error
    rate and `passed` whether it is at most `max_cer`. `error` says why no reading was made."""

    expected: str
    lang: str
    text: str
    cer: float
    passed: bool
    max_cer: float = DEFAULT_MAX_CER
    full_text: str = ""
    view: str = ""
    seconds: float = 0.0
    error: str | None = None

    def badge(self, *, symbols: bool = True) -> str:
        """`✓ text CER 0.00`, `✗ text CER 0.45` (without `symbols`, for fonts that lack
        them: `text ok, CER 0.00`, `text wrong, CER 0.45`), or `text check failed`."""
        if self.error is not None:
            return "text check failed"
        if symbols:
            return f"{'✓' if self.passed else '✗'} text CER {self.cer:.2f}"
        return f"text {'ok' if self.passed else 'wrong'}, CER {self.cer:.2f}"

    def describe(self) -> str:
        """One line for tooltips and text displays."""
        if self.error is not None:
            return f"text check failed: {self.error}"
        verdict = "pass" if self.passed else "fail"
        return (
            f"{verdict} (CER {self.cer:.2f}, limit {self.max_cer:.2f}, {self.lang}): expected "
            f"{self.expected!r}, read {self.text!r}"
        )
