"""Does the text in an image read right? Each image is read with OCR (`ocr`: several views,
stopping once one matches exactly) and the best reading is scored against the expected text
(`textmatch`: normalisation, character error rate), passing at `max_cer`. Checks run on
worker threads, many images at once, and are cached per stored image.

Public: `check_text` (a DataFrame, `ig.check_text`), `check_image` (one `TextCheck`), `rank`
(`generate(best_of=k)`), `Checker` (a grid's cells as they arrive).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import io
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imagenb.checks import ocr
from imagenb.errors import InvalidRequest
from imagenb.text.match import (
    DEFAULT_MAX_CER,
    MATCHES,
    TextCheck,
    expected_lines,
    resolve_lang,
    score,
)

if TYPE_CHECKING:
    import pandas as pd
    from PIL import Image

    from imagenb.store.images import GeneratedImage

COLUMNS = ("path", "expected", "lang", "ocr_text", "cer", "pass", "ocr_full")
_CACHE_SIZE = 4096


# --- checking ---------------------------------------------------------------------------------


def check_image(
    image: Any,
    expected: str,
    lang: str | None = None,
    *,
    max_cer: float = DEFAULT_MAX_CER,
    match: str = "contains",
) -> TextCheck:
    """Check one image (a `GeneratedImage`, path, bytes or PIL image); cached per stored
    image, so redrawing a grid does not read it again."""
    code = resolve_lang(lang, expected)
    memo = _identity(image)
    key = (memo, expected, code, max_cer, match) if memo is not None else None
    if key is not None and (hit := _cache.get(key)) is not None:
        return hit
    lines = expected_lines(expected, code, match)
    started = time.perf_counter()
    scored: dict[str, tuple[float, str]] = {}

    def rate(reading: str) -> tuple[float, str]:
        if reading not in scored:
            scored[reading] = score(lines, reading, code, match)
        return scored[reading]

    best: tuple[float, str, str, str] = (math.inf, "", "", "")
    with _opened(image) as im:
        for view, reading in ocr.readings(im, code, enough=lambda r: rate(r)[0] == 0):
            error_rate, span = rate(reading)
            if error_rate < best[0]:
                best = (error_rate, span, " ".join(reading.split()), str(view))
    cer = best[0] if math.isfinite(best[0]) else 1.0
    check = TextCheck(
        expected=expected,
        lang=code,
        text=best[1],
        cer=cer,
        passed=cer <= max_cer,
        max_cer=max_cer,
        full_text=best[2],
        view=best[3],
        seconds=time.perf_counter() - started,
    )
    if key is not None:
        _cache.put(key, check)
    return check


def check_text(
    images: Any,
    expected: str | Sequence[str],
    lang: str | None = None,
    *,
    max_cer: float = DEFAULT_MAX_CER,
    match: str = "contains",
) -> pd.DataFrame:
    """OCR each image and compare it with `expected` (one text for all, or one per image;
    each line of it is looked for). Returns a DataFrame with one row per image: `path`,
    `expected`, `lang` (detected from the expected text unless given), `ocr_text` (what was
    read there), `cer`, `pass` (`cer <= max_cer`) and `ocr_full` (everything read).

    `images`: a `GeneratedImage`, an `ImageSet`, paths, bytes, PIL images, or a list of them.
    """
    import pandas as pd

    items = _as_list(images)
    texts = _expected_list(expected, len(items))
    _check_options(max_cer, match)
    codes = [resolve_lang(lang, text) for text in texts]
    for text, code in zip(texts, codes, strict=True):
        expected_lines(text, code, match)  # refuse an empty text before any OCR
    ocr.require(set(codes))
    jobs = [j for j in zip(items, texts, codes, strict=True) if j[0] is not None]

    def run(job: tuple[Any, str, str]) -> TextCheck:
        return check_image(job[0], job[1], job[2], max_cer=max_cer, match=match)

    done = iter([run(jobs[0])] if len(jobs) == 1 else list(ocr.pool("textcheck").map(run, jobs)))
    rows = []
    for item, text, code in zip(items, texts, codes, strict=True):
        check = next(done) if item is not None else _missing(text, code, max_cer)
        rows.append(
            {
                "path": _path_of(item),
                "expected": check.expected,
                "lang": check.lang,
                "ocr_text": check.text if check.error is None else None,
                "cer": check.cer,
                "pass": check.passed,
                "ocr_full": check.full_text if check.error is None else None,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _missing(expected: str, lang: str, max_cer: float) -> TextCheck:
    return TextCheck(expected, lang, "", math.nan, False, max_cer, error="no image")


def add_columns(frame: pd.DataFrame, checks: Sequence[TextCheck | None]) -> None:
    """Add `ocr_text`, `cer` and `pass` to a grid's results `frame`, one check per row (None:
    not checked, or not yet)."""
    import pandas as pd

    done = [c if c is not None and c.error is None else None for c in checks]
    frame["ocr_text"] = [c.text if c is not None else None for c in done]
    frame["cer"] = [c.cer if c is not None else math.nan for c in done]
    frame["cer"] = frame["cer"].astype("float64")
    frame["pass"] = pd.array([c.passed if c is not None else None for c in done], dtype="boolean")


def rank(
    images: Sequence[GeneratedImage],
    expected: str,
    lang: str | None = None,
    *,
    max_cer: float = DEFAULT_MAX_CER,
) -> list[GeneratedImage]:
    """`images` with their `text_check` filled in, best (lowest CER) first; ties keep their
    order. Used by `generate(..., best_of=k)`."""
    code = resolve_lang(lang, expected)

    def run(image: GeneratedImage) -> TextCheck:
        return check_image(image, expected, code, max_cer=max_cer)

    checks = list(ocr.pool("textcheck").map(run, images))
    checked = [replace(image, text_check=c) for image, c in zip(images, checks, strict=True)]
    return sorted(checked, key=lambda image: _order(image.text_check))


def _order(check: TextCheck | None) -> float:
    if check is None or check.error is not None or math.isnan(check.cer):
        return math.inf
    return check.cer


def prepare(expected: Iterable[str | None], lang: str | None = None) -> list[str | None]:
    """Tesseract codes for each expected text (None stays None), after making sure Tesseract
    can read them all: call before paying for images that are to be checked."""
    codes = [None if text is None else resolve_lang(lang, text) for text in expected]
    for text, code in zip(expected, codes, strict=False):
        if text is not None and code is not None:
            expected_lines(text, code, "contains")
    ocr.require({c for c in codes if c is not None})
    return codes


class Checker:
    """Text checks that run on worker threads as images arrive (a grid's cells). `submit` is
    cheap and may be called on any thread; `get` returns None until a check is done."""

    def __init__(
        self, *, max_cer: float = DEFAULT_MAX_CER, on_done: Callable[[], None] | None = None
    ) -> None:
        self.max_cer = max_cer
        self.on_done = on_done
        self._lock = threading.Lock()
        self._futures: dict[tuple[str, str], concurrent.futures.Future[TextCheck]] = {}
        self._done = 0

    def submit(self, image: GeneratedImage, expected: str, lang: str) -> None:
        key = (image.key, expected)
        with self._lock:
            if key in self._futures:
                return
            future = ocr.pool("textcheck").submit(
                check_image, image, expected, lang, max_cer=self.max_cer
            )
            self._futures[key] = future
        future.add_done_callback(self._finished)

    def _finished(self, _: concurrent.futures.Future[TextCheck]) -> None:
        with self._lock:
            self._done += 1
        if self.on_done is not None:
            self.on_done()

    def get(self, image: GeneratedImage, expected: str) -> TextCheck | None:
        with self._lock:
            future = self._futures.get((image.key, expected))
        if future is None or not future.done():
            return None
        error = future.exception()
        if error is None:
            return future.result()
        return TextCheck(expected, "", "", math.nan, False, self.max_cer, error=str(error))

    @property
    def done(self) -> int:
        with self._lock:
            return self._done

    @property
    def settled(self) -> bool:
        with self._lock:
            return self._done == len(self._futures)

    def wait(self, *, tick: Callable[[], None] | None = None, interval: float = 0.1) -> None:
        """Block until every submitted check is done, calling `tick()` every `interval`."""
        while True:
            with self._lock:
                futures = list(self._futures.values())
            _, pending = concurrent.futures.wait(futures, timeout=interval)
            if tick is not None:
                tick()
            if not pending and self.settled:
                return


# --- plumbing ---------------------------------------------------------------------------------


def _check_options(max_cer: float, match: str) -> None:
    if isinstance(max_cer, bool) or not isinstance(max_cer, int | float) or not max_cer >= 0:
        raise InvalidRequest(
            f"max_cer must be a number >= 0 (0.1 allows 1 error in 10); got {max_cer!r}"
        )
    if match not in MATCHES:
        raise InvalidRequest(f"match={match!r}; choose one of: {', '.join(MATCHES)}")


def _as_list(images: Any) -> list[Any]:
    from PIL import Image

    if isinstance(images, str | bytes | Path | Image.Image) or hasattr(images, "key"):
        return [images]
    items = list(images)
    if not items:
        raise InvalidRequest("check_text got no images")
    return items


def _expected_list(expected: str | Sequence[str], count: int) -> list[str]:
    if isinstance(expected, str):
        return [expected] * count
    texts = list(expected)
    if len(texts) != count or not all(isinstance(t, str) for t in texts):
        raise InvalidRequest(
            f"expected must be one str, or one str per image ({count}); got {len(texts)} items"
        )
    return texts


def _identity(image: Any) -> tuple[Any, ...] | None:
    """What makes a cached check reusable: a stored image's key, or a file's path and mtime."""
    key = getattr(image, "key", None)
    if isinstance(key, str):
        return ("key", key)
    if isinstance(image, str | Path):
        with contextlib.suppress(OSError):
            stat = os.stat(image)
            return ("file", str(Path(image).resolve()), stat.st_mtime_ns, stat.st_size)
    return None


def _path_of(image: Any) -> Path | None:
    if isinstance(image, str | Path):
        return Path(image)
    path = getattr(image, "path", None)
    return path if isinstance(path, Path) else None


@contextlib.contextmanager
def _opened(image: Any) -> Iterator[Image.Image]:
    """A PIL image for any accepted input; files are opened (and closed) here, JPEGs decoded
    at reduced size straight away."""
    from PIL import Image

    if image is None:
        raise InvalidRequest("there is no image to check (the cell failed or is not made yet)")
    if isinstance(image, Image.Image):
        yield image
        return
    path = getattr(image, "path", image)
    source = io.BytesIO(path) if isinstance(path, bytes) else path
    try:
        im = Image.open(source)
        if im.format == "JPEG":
            im.draft("L", (ocr.WORK_EDGE, ocr.WORK_EDGE))
        im.load()
    except (OSError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"cannot read an image from {str(path)[:80]!r}: {exc}") from exc
    with im:
        yield im


class _Cache:
    """A small thread-safe LRU of finished checks."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: collections.OrderedDict[Any, TextCheck] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> TextCheck | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: Any, value: TextCheck) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_cache = _Cache(_CACHE_SIZE)


def clear_cache() -> None:
    """Forget finished checks (after installing other language data, or to time OCR)."""
    with _cache._lock:
        _cache._items.clear()
