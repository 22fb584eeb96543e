"""Reading the text in an image with Tesseract, tuned for what image models draw: a few
words at any size, dark or light, on a busy background.

Tesseract's page layout analysis expects a scanned page. On a picture it often finds no text
at all: the edge of a sign reads as a frame, a dark wall as a photo. So each image is first
turned into *views* that look like a page: the strokes thinner than ~3% of the image that are
darker (or, in a second view, lighter) than what surrounds them (a morphological black-hat or
top-hat), drawn black on white. The views run in rounds (both polarities at about 1280 px,
then at half that, then the plain greyscale image at half size), on worker threads, and
Tesseract is a subprocess, so a round's views run in parallel. The caller says when a
reading is good enough and later rounds are skipped.

Tesseract is Debian's `tesseract-ocr` with the language packs `tesseract-ocr-jpn`, `-kor`,
`-chi-sim`, `-hin` and `-ben` (models ship in the packages: nothing is downloaded at run
time). It is called directly rather than through pytesseract, which can neither pass the
image on stdin nor set `OMP_THREAD_LIMIT=1` for the child alone (with OpenMP's own threads,
two Tesseracts on two cores run ~40% slower).
"""

from __future__ import annotations

import concurrent.futures
import functools
import io
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagenb.errors import ImagenbError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from PIL import Image

    Pixels = npt.NDArray[np.uint8]

WORK_EDGE = 1280  # long edge the views are made at: big enough for small text, quick to read
STROKE_FRACTION = 0.03  # strokes up to this share of the long edge count as text
INK_CONTRAST = 40  # grey levels a stroke must differ from its surroundings by
TIMEOUT_S = 60.0
PACKAGES = {
    "eng": "tesseract-ocr-eng",
    "jpn": "tesseract-ocr-jpn",
    "kor": "tesseract-ocr-kor",
    "chi_sim": "tesseract-ocr-chi-sim",
    "hin": "tesseract-ocr-hin",
    "ben": "tesseract-ocr-ben",
}
INSTALL = "sudo apt-get install tesseract-ocr " + " ".join(
    p for k, p in PACKAGES.items() if k != "eng"
)


class OCRUnavailable(ImagenbError):
    """Tesseract, or the language data a check needs, is not installed."""


@dataclass(frozen=True)
class View:
    """One way of showing an image to Tesseract: `scale` of the working size, which strokes
    count as ink (`dark`, `light`, or `plain`: the greyscale image as is), and the page
    segmentation mode (6: one block of text; 11: sparse text anywhere)."""

    scale: float
    ink: str
    psm: int = 6

    def __str__(self) -> str:
        return f"{self.ink}@{self.scale:g}/psm{self.psm}"


ROUNDS: tuple[tuple[View, ...], ...] = (
    (View(1.0, "dark"), View(1.0, "light")),
    (View(0.5, "dark"), View(0.5, "light")),
    (View(0.5, "plain"), View(0.5, "plain", psm=11)),  # at full size noise costs seconds
)


# --- Tesseract --------------------------------------------------------------------------------


def tesseract_path() -> str:
    """The `tesseract` executable (`$IMAGENB_TESSERACT`, else the one on PATH)."""
    path = os.environ.get("IMAGENB_TESSERACT") or shutil.which("tesseract")
    if not path:
        raise OCRUnavailable(
            "check_text needs the Tesseract OCR engine, which was not found on PATH. On "
            f"Debian/Ubuntu: `{INSTALL}` (or `make system-deps`); on macOS: `brew install "
            "tesseract tesseract-lang`. Or point IMAGENB_TESSERACT at the executable."
        )
    return path


@functools.lru_cache(maxsize=4)
def _languages(path: str) -> frozenset[str]:
    try:
        done = subprocess.run(
            [path, "--list-langs"], capture_output=True, timeout=TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OCRUnavailable(f"could not run Tesseract ({path}): {exc}") from exc
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    return frozenset(line.strip() for line in lines[1:] if line.strip())


def require(langs: Iterable[str]) -> None:
    """Raise `OCRUnavailable`, naming what to install, unless Tesseract can read every one of
    `langs` (codes such as `jpn` or `jpn+eng`). Cheap after the first call."""
    path = tesseract_path()
    wanted = {part for lang in langs for part in lang.split("+")}
    missing = wanted - _languages(path)
    if missing:
        _languages.cache_clear()  # installed since we last looked?
        missing = wanted - _languages(path)
    if missing:
        names = sorted(missing)
        packages = " ".join(PACKAGES.get(m, f"tesseract-ocr-{m.replace('_', '-')}") for m in names)
        raise OCRUnavailable(
            f"Tesseract has no language data for {', '.join(names)}; install it with "
            f"`sudo apt-get install {packages}` (`make system-deps` installs every language "
            "imagenb checks)."
        )


def _environment() -> dict[str, str]:
    """The child's environment: one OpenMP thread (parallelism comes from our threads), and
    no secrets it has no use for."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["OMP_THREAD_LIMIT"] = "1"
    return env


def tesseract(image: Image.Image, lang: str, psm: int = 6) -> str:
    """Tesseract's reading of a greyscale `image` (passed on stdin, as PGM)."""
    buffer = io.BytesIO()
    image.save(buffer, "PPM")  # PGM for mode L: no compression work on either side
    command = [tesseract_path(), "stdin", "stdout", "-l", lang, "--psm", str(psm)]
    try:
        done = subprocess.run(
            command,
            input=buffer.getvalue(),
            capture_output=True,
            timeout=TIMEOUT_S,
            env=_environment(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OCRUnavailable(f"Tesseract failed to run: {exc}") from exc
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OCRUnavailable(
            f"Tesseract failed (exit {done.returncode}): {detail[-1] if detail else 'no message'}"
        )
    return done.stdout.decode("utf-8", "replace")


# --- views ------------------------------------------------------------------------------------


def greyscale(image: Image.Image, edge: int = WORK_EDGE) -> Image.Image:
    """`image` as 8-bit grey with its long edge at most `edge`. Transparency is laid on
    mid-grey, so dark and light text both stay visible."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        flat.alpha_composite(rgba)
        image = flat
    grey = image.convert("L")
    scale = edge / max(grey.size)
    if scale < 1:
        size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        grey = grey.resize(size, Image.Resampling.BOX, reducing_gap=2.0)
    return grey


def render_view(grey: Image.Image, view: View) -> Image.Image:
    """What Tesseract sees for `view` of the working image `grey`."""
    import numpy as np
    from PIL import Image

    scaled = grey
    if view.scale != 1:
        size = (max(1, round(grey.width * view.scale)), max(1, round(grey.height * view.scale)))
        method = Image.Resampling.BOX if view.scale < 1 else Image.Resampling.BICUBIC
        scaled = grey.resize(size, method)
    if view.ink == "plain":
        return scaled
    pixels: Pixels = np.asarray(scaled, dtype=np.uint8)
    k = max(3, round(max(scaled.size) * STROKE_FRACTION)) | 1  # odd: a centred square
    if view.ink == "dark":  # black-hat: how much darker than the closing
        strokes = _erode(_dilate(pixels, k), k) - pixels
    else:  # top-hat: how much lighter than the opening
        strokes = pixels - _dilate(_erode(pixels, k), k)
    page = np.where(strokes > INK_CONTRAST, 0, 255).astype(np.uint8)
    return Image.fromarray(page)


def _slide(pixels: Pixels, k: int, op: np.ufunc, fill: int) -> Pixels:
    """`op` (maximum or minimum) over a centred window of odd width `k` along the last axis,
    by doubling the window: log2(k) whole-array operations instead of k."""
    import numpy as np

    half = k // 2
    pad = [(0, 0)] * (pixels.ndim - 1) + [(half, half)]
    out: Pixels = np.pad(pixels, pad, constant_values=fill)
    width = 1
    while 2 * width <= k:
        out = op(out[..., :-width], out[..., width:])
        width *= 2
    n = pixels.shape[-1]
    result: Pixels = op(out[..., :n], out[..., k - width : k - width + n])
    return result


def _dilate(pixels: Pixels, k: int) -> Pixels:
    import numpy as np

    return _slide(_slide(pixels, k, np.maximum, 0).T, k, np.maximum, 0).T


def _erode(pixels: Pixels, k: int) -> Pixels:
    import numpy as np

    return _slide(_slide(pixels, k, np.minimum, 255).T, k, np.minimum, 255).T


# --- reading ----------------------------------------------------------------------------------

_pool_lock = threading.Lock()
_pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}


def pool(name: str) -> concurrent.futures.ThreadPoolExecutor:
    """One lazily made thread pool per `name`, a thread per core. Separate pools, so work
    waiting on OCR (`textcheck`) never holds the threads that run Tesseract (`ocr`)."""
    with _pool_lock:
        if name not in _pools:
            _pools[name] = concurrent.futures.ThreadPoolExecutor(
                max_workers=os.cpu_count() or 2, thread_name_prefix=f"imagenb-{name}"
            )
        return _pools[name]


def readings(
    image: Image.Image, lang: str, *, enough: Callable[[str], bool] = lambda _: False
) -> Iterator[tuple[View, str]]:
    """Tesseract's readings of `image` in `lang`, view by view, round by round; no further
    round is started once a reading of the last one was `enough`. Views of a round run in
    parallel. Consume the iterator on any thread (not on a worker of this module's pool)."""
    grey = greyscale(image)
    for views in ROUNDS:
        futures = [pool("ocr").submit(_read, grey, view, lang) for view in views]
        done = [(view, future.result()) for view, future in zip(views, futures, strict=True)]
        yield from done
        if any(enough(text) for _, text in done):
            return


def _read(grey: Image.Image, view: View, lang: str) -> str:
    return tesseract(render_view(grey, view), lang, view.psm)
