"""Take every piece of the API key out of a text before it is shown, logged or saved.

The bottom of the house: errors render through it, so it imports nothing of imagenb. The
settings tell it the key set in code (`remember`); the environment's it reads itself.
"""

from __future__ import annotations

import os
import re

_KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}")
REDACTED = "<OPENAI_API_KEY>"
MIN_PIECE = 8  # a run of this many characters of the key is treated as the key
# ... if it looks random: a window such as "00000000" (a test key's padding) would otherwise
# redact every run of zeros in every message
MIN_DISTINCT = 4
_KEY_PREFIXES = ("sk-proj-", "sk-svcacct-", "sk-admin-", "sk-")
_PREFIX_LEFT = re.compile(r"(?i)\bsk-(?:proj-|svcacct-|admin-)?" + re.escape(REDACTED))
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def redact(text: str) -> str:
    """`text` with every piece of the configured API key replaced, and anything shaped like
    an OpenAI key. Error texts come from servers and proxies, and some echo what they were
    sent in part: a prefix, a suffix, the key without `sk-`, upper-cased. So any run of
    `MIN_PIECE` or more characters of the key's secret part, in any case, goes."""
    pieces = _pieces(_configured_keys())
    if pieces and len(text) >= MIN_PIECE:
        text = _PREFIX_LEFT.sub(REDACTED, _replace_pieces(text, pieces))
    return _KEY_LIKE.sub(REDACTED, text)


_explicit_key: list[str] = []  # the key given to `configure(api_key=...)`, if any


def remember(key: str | None) -> None:
    """The key set in code (`ig.configure(api_key=...)`), redacted like the environment's."""
    _explicit_key[:] = [key] if key else []


def _configured_keys() -> list[str]:
    keys = [os.environ.get("OPENAI_API_KEY", "").strip(), *_explicit_key]
    return [k for k in keys if k]


def _pieces(keys: list[str]) -> frozenset[str]:
    """Every `MIN_PIECE`-character window of each key's secret part (prefix removed),
    lower-cased; a secret part shorter than a window is one piece."""
    out: set[str] = set()
    for key in keys:
        body = key.translate(_ASCII_LOWER)
        for prefix in _KEY_PREFIXES:
            if body.startswith(prefix) and len(body) > len(prefix):
                body = body[len(prefix) :]
                break
        if len(body) < MIN_PIECE:
            if len(body) >= 6:
                out.add(body)
            continue
        out.update(body[i : i + MIN_PIECE] for i in range(len(body) - MIN_PIECE + 1))
    return frozenset(out)


def _replace_pieces(text: str, pieces: frozenset[str]) -> str:
    """Replace each maximal run of `text` covered by windows found in `pieces`, if the run
    holds a window that looks random (`MIN_DISTINCT` different characters): a run such as
    "00000000" alone stays, but a key's zero padding next to the rest of it goes too. The
    ASCII lower-casing keeps positions (no character changes length)."""
    lowered = text.translate(_ASCII_LOWER)
    covered = bytearray(len(text))  # 1: in a window of the key; 2: also in a random-looking one
    for size in {len(p) for p in pieces}:
        for i in range(len(text) - size + 1):
            window = lowered[i : i + size]
            if window in pieces:
                mark = 2 if len(set(window)) >= min(MIN_DISTINCT, size) else 1
                for j in range(i, i + size):
                    covered[j] = max(covered[j], mark)
    if not any(covered):
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if not covered[i]:
            out.append(text[i])
            i += 1
            continue
        start = i
        while i < len(text) and covered[i]:
            i += 1
        out.append(REDACTED if 2 in covered[start:i] else text[start:i])
    return "".join(out)
