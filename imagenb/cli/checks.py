"""What the CLI checks before it pays: output names, patterns and formats, files that already
exist, folders it cannot write, and input CSVs it cannot read. A mistake found here costs
nothing; found after the images were bought, it costs the images."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

from imagenb.errors import InvalidRequest

# The image file suffixes `imagenb generate -o` takes, and the format each one asks for.
IMAGE_SUFFIXES = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}
SHEET_SUFFIXES = (".png", ".jpg", ".jpeg", ".html", ".htm", ".pdf")
CSV_SNIFF_BYTES = 8192


def image_targets(
    pattern: str, n: int, *, output_format: str | None, overwrite: bool
) -> tuple[list[Path], str]:
    """The files `generate -o PATTERN` will write for `n` images, and the format their suffix
    asks for; refuses a pattern, suffix, clash or place that would fail after paying."""
    fields = _fields(pattern, allowed=("i",))
    if n > 1 and "i" not in fields:
        path = Path(pattern)
        pattern = str(path.with_name(f"{path.stem}-{{i}}{path.suffix}"))
    try:
        targets = [Path(pattern.format(i=i)) for i in range(n)]
    except (ValueError, IndexError) as exc:  # a bad format spec such as {i:.1}
        raise InvalidRequest(f"-o {pattern!r}: {exc}; try {{i}} or {{i:03d}}") from None
    if len(set(targets)) < len(targets):
        raise InvalidRequest(f"-o {pattern!r} names the same file twice; put {{i}} in the name")
    suffix = targets[0].suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InvalidRequest(
            f"-o {pattern!r}: the file suffix decides the format; end the name with "
            f"{', '.join(IMAGE_SUFFIXES)}"
        )
    fmt = IMAGE_SUFFIXES[suffix]
    asked = (output_format or "").strip().lower().replace("jpg", "jpeg")
    if asked and asked != fmt:
        raise InvalidRequest(
            f"-o {pattern!r} is a {fmt} file name but -f says {output_format!r}; "
            "make them agree (or leave -f out: the suffix decides)"
        )
    for target in targets:
        check_new_file(target, overwrite=overwrite)
    return targets, fmt


def sheet_target(path: str, *, overwrite: bool) -> Path:
    """The contact sheet `grid -o` will write, checked like an image target."""
    target = Path(path)
    if target.suffix.lower() not in SHEET_SUFFIXES:
        raise InvalidRequest(f"-o {path!r}: use a .png, .jpg, .html or .pdf file name")
    check_new_file(target, overwrite=overwrite)
    return target


def check_new_file(target: Path, *, overwrite: bool) -> None:
    """Refuse a target that is a folder, exists (unless `overwrite`), or cannot be written."""
    if target.is_dir():
        raise InvalidRequest(f"{str(target)!r} is a folder; give a file name")
    if target.exists() and not overwrite:
        raise InvalidRequest(f"{str(target)!r} exists; pass --overwrite to replace it")
    check_writable(target.parent)


def check_writable(folder: Path) -> None:
    """Write and remove a probe file in `folder` (or the nearest folder above it that exists,
    where it would be created): the one test that also catches /proc, read-only mounts and
    files standing where a folder should be."""
    place = folder if str(folder) else Path(".")
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise InvalidRequest(f"cannot write into {str(folder)!r}: {str(place)!r} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=place, prefix=".imagenb-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InvalidRequest(f"cannot write into {str(folder)!r}: {reason}") from None


def readable_csv(path: str) -> Path:
    """A CSV that exists, is a file, and is text (a binary file fails here, not in pandas)."""
    source = Path(path)
    if not source.exists():
        raise InvalidRequest(f"no such file {path!r}; give the path of a CSV file")
    if not source.is_file():
        raise InvalidRequest(f"{path!r} is not a file; give the path of a CSV file")
    try:
        with open(source, "rb") as fh:
            head = fh.read(CSV_SNIFF_BYTES)
    except OSError as exc:
        raise InvalidRequest(f"cannot read {path!r}: {exc.strerror}") from None
    if b"\0" in head:
        raise InvalidRequest(f"{path!r} is a binary file, not a CSV; save the table as CSV")
    return source


def _fields(pattern: str, *, allowed: tuple[str, ...]) -> set[str]:
    """The `{field}` names of a pattern, refusing unknown ones and broken braces."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as exc:
        raise InvalidRequest(
            f"-o {pattern!r}: {exc}; write {{{{ and }}}} for literal braces"
        ) from None
    unknown = sorted(names - set(allowed))
    if unknown:
        fill = ", ".join("{" + a + "}" for a in allowed)
        raise InvalidRequest(
            f"-o {pattern!r}: {{{unknown[0]}}} is not a field here; only {fill} is filled "
            "(write {{ and }} for literal braces)"
        )
    return names
