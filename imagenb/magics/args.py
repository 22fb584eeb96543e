"""What the magics read from a cell: shell-style arguments parsed by IPython's
`magic_arguments` into a frozen `MagicArgs`, and `{name}` fields filled from the user namespace.

The option tables live in `imagenb.core.options`, shared with the CLI; this module only applies
them as `magic_arguments` decorators, so every magic offers the same group of options.
"""

from __future__ import annotations

import filecmp
import glob
import keyword
import shlex
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, argument_group

from imagenb.core import options
from imagenb.errors import InvalidRequest

F = TypeVar("F", bound=Callable[..., Any])
Table = list[tuple[tuple[str, ...], dict[str, Any]]]


def _group(title: str, table: Table) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        # `magic_arguments` builds the parser from the last-applied decorator to the first,
        # so the rows go on in reverse and the group (which the rows join) goes on last.
        for flags, kwargs in reversed(table):
            func = argument(*flags, **kwargs)(func)  # type: ignore[no-untyped-call]
        decorated: F = argument_group(title)(func)  # type: ignore[no-untyped-call]
        return decorated

    return decorate


request_options = _group(
    "options (every imagenb magic)", [*options.REQUEST_OPTIONS, *options.MAGIC_OPTIONS]
)
edit_options = _group("edit inputs", options.EDIT_OPTIONS)
storyboard_options = _group("storyboard", options.STORYBOARD_OPTIONS)

PARAMETERS = options.PARAMETER_DESTS


@dataclass(frozen=True)
class MagicArgs:
    """One magic call, parsed: the prompt as written (before `{name}` filling), the request
    parameters (defaults applied), and what to do with the result."""

    prompt: str
    model: str | None = None
    size: str | None = None
    quality: str | None = None
    n: int | None = None
    output_format: str | None = None
    output_compression: int | None = None
    background: str | None = None
    moderation: str | None = None
    complexity: str | None = None
    input_fidelity: str | None = None
    images: tuple[str, ...] = ()
    mask: str | None = None
    out: str | None = None
    save: str | None = None
    fresh: bool = False
    stream: bool = False
    estimate: bool = False
    backend: str | None = None
    characters: tuple[str, ...] = ()
    cast: str | None = None
    style: str | None = None
    layout: str | None = None
    chain: bool = False

    def params(self) -> dict[str, Any]:
        """The request parameters that are set, as `imagenb.api.calls` takes them."""
        return {k: getattr(self, k) for k in PARAMETERS if getattr(self, k) is not None}


def split(line: str) -> list[str]:
    """Shell-style words: quotes group and backslashes escape, so
    `-s 16:9 "a cat, \\"quoted\\""` is two options and one prompt. A line whose quotes do not
    pair up (`a cat's hat`) is split at spaces with every character kept."""
    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def parse(
    parser: Any, line: str, cell: str | None = None, defaults: Mapping[str, Any] | None = None
) -> MagicArgs:
    """Parse a magic's line (and cell body, which is the prompt) into `MagicArgs`.

    `defaults` fill parameters the line leaves out. Raises `UsageError` (IPython shows it as
    one line) for bad options.
    """
    ns = parser.parse_args(split(line))
    words = " ".join(getattr(ns, "prompt", None) or ())
    if cell is not None and cell.strip():
        if words:
            raise UsageError(
                f"unexpected {words!r} on the magic line: in a cell, the cell body is the prompt"
            )
        prompt = cell
    else:
        prompt = words
    values = {f.name: getattr(ns, f.name) for f in fields(MagicArgs) if hasattr(ns, f.name)}
    for name, value in (defaults or {}).items():
        if values.get(name) is None and value is not None and value != "":
            values[name] = value
    values["images"] = tuple(values.get("images") or ())
    values["characters"] = tuple(values.get("characters") or ())
    out = values.get("out")
    if out is not None and (not out.isidentifier() or keyword.iskeyword(out)):
        raise UsageError(f"-o {out!r}: give a variable name, such as -o images")
    values["prompt"] = prompt
    return MagicArgs(**values)


def help_text(parser: Any, defaults: Mapping[str, Any]) -> str:
    """The parser's help with each option's current default, for `%imagegen?`."""
    saved = [(action, action.help) for action in parser._actions]
    try:
        for action, text in saved:
            if not text or not action.option_strings:
                continue
            if action.nargs == 0:  # a flag
                action.help = f"{text} (default: off)"
            else:
                shown = defaults.get(action.dest)
                if shown is None or shown == "":
                    shown = options.DEFAULTS.get(action.dest, "none")
                action.help = f"{text} (default: {shown})"
        return str(parser.format_help())
    finally:
        for action, text in saved:
            action.help = text


def parse_settings(line: str, settable: Iterable[str]) -> dict[str, str | None]:
    """`KEY=VALUE ...` from `%imagenb` as changes for `configure` (`KEY=none` resets one).

    The API key is refused: typed into a cell, it would be saved with the notebook.
    """
    allowed = list(settable)
    changes: dict[str, str | None] = {}
    for word in split(line):
        key, sep, value = word.partition("=")
        key = key.strip()
        if key.lower() in ("api_key", "openai_api_key"):
            raise InvalidRequest(
                "the API key does not go in a cell (it would be saved in the notebook); set "
                "OPENAI_API_KEY in the environment Jupyter starts from, or run "
                "ig.configure(api_key=getpass.getpass())"
            )
        if not sep:
            raise InvalidRequest(f"expected KEY=VALUE, such as budget_usd=5; got {word!r}")
        if key not in allowed:
            raise InvalidRequest(f"no setting {key!r}; settings: {', '.join(allowed)}")
        changes[key] = None if value.strip().lower() in ("", "none", "default") else value
    return changes


# --- {name} interpolation ---------------------------------------------------------------------

UNPAIRED = "the whole prompt (it has an unpaired { or })"


def interpolate(template: str, namespace: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """Fill `{name}`, `{name:spec}`, `{name!r}`, `{obj.attr}` and `{seq[0]}` from `namespace`.

    A field that cannot be filled (an undefined name, a spec its value rejects) stays as
    written and is returned in the second item; `{{` and `}}` are literal braces. A template
    whose braces do not pair up is returned unchanged, with `UNPAIRED` as the unfilled field.
    """
    formatter = string.Formatter()
    try:
        parsed = list(formatter.parse(template))
    except ValueError:
        return template, (UNPAIRED,)
    out: list[str] = []
    unfilled: list[str] = []
    for literal, name, spec, conversion in parsed:
        out.append(literal)
        if name is None:
            continue
        written = (
            "{"
            + name
            + (f"!{conversion}" if conversion else "")
            + (f":{spec}" if spec else "")
            + "}"
        )
        try:
            filled_spec, spec_unfilled = interpolate(spec, namespace) if spec else ("", ())
            if spec_unfilled:
                raise LookupError(spec_unfilled[0])
            value, _ = formatter.get_field(name, (), namespace)
            value = formatter.convert_field(value, conversion)
            out.append(formatter.format_field(value, filled_spec))
        except (LookupError, AttributeError, TypeError, ValueError):
            out.append(written)
            unfilled.append(written)
    return "".join(out), tuple(unfilled)


def unfilled_error(unfilled: Iterable[str]) -> InvalidRequest:
    """The error for fields a cell could not fill: sending `{name}` as written would pay for
    a prompt nobody meant."""
    names = ", ".join(dict.fromkeys(unfilled))
    return InvalidRequest(
        f"cannot fill {names} from your variables (not defined or not formattable); nothing "
        "was sent. Define it, or write {{ and }} for literal braces, as in {{name}}"
    )


# --- what -i and --save name ------------------------------------------------------------------

_GLOB_CHARS = frozenset("*?[")
_SUFFIX_FORMATS = {".png": "png", ".webp": "webp", ".jpg": "jpeg", ".jpeg": "jpeg"}
FOLDER_PATTERN = "{i}-{key}.{ext}"


def resolve_image(spec: str, namespace: Mapping[str, Any], *, role: str = "image") -> list[Any]:
    """The images `-i SPEC` names: a variable (an `ImageSet` or list gives all its items), an
    item or attribute of one (`imgs[0]`, `run.images`), a file, or a glob (sorted matches)."""
    if spec.isidentifier() and spec in namespace:
        return _items(namespace[spec])
    path = Path(spec).expanduser()
    if path.exists():
        return [str(path)]
    if _GLOB_CHARS & set(spec):
        matches = sorted(glob.glob(str(path)))
        if matches:
            return matches
    root = spec.split(".", 1)[0].split("[", 1)[0]
    if root != spec and root.isidentifier() and root in namespace:
        try:
            return _items(string.Formatter().get_field(spec, (), namespace)[0])
        except (LookupError, AttributeError, TypeError, ValueError) as exc:
            raise InvalidRequest(f"{role} {spec!r}: {type(exc).__name__}: {exc}") from None
    raise InvalidRequest(
        f"{role} {spec!r} is neither a variable nor a file (looked in {Path.cwd()}); "
        "give a variable name, a path or a glob such as photos/*.png"
    )


def _items(value: Any) -> list[Any]:
    if isinstance(value, (str, bytes, bytearray, memoryview)) or hasattr(value, "getpixel"):
        return [value]
    if hasattr(value, "read"):  # an open file: one image, not its lines
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    return [value]


def characters(
    specs: Iterable[str], cast: str | None, namespace: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The `characters` dict of a storyboard from `--cast VAR` and `-c NAME=WHO` options.

    WHO is a variable (its value as is: a description, an image, a list of images), an
    existing path or glob (images), or else the description itself.
    """
    found: dict[str, Any] = {}
    if cast is not None:
        value = namespace.get(cast)
        if not isinstance(value, Mapping):
            raise InvalidRequest(
                f"--cast {cast!r} must name a variable holding a dict of name -> description "
                "or images"
            )
        found.update(value)
    for spec in specs:
        name, sep, who = spec.partition("=")
        if not sep or not name.strip() or not who.strip():
            raise InvalidRequest(
                f'-c {spec!r}: write NAME=WHO, such as -c Mira="a girl in a red scarf" or '
                "-c Tom=tom.png"
            )
        who = who.strip()
        if who.isidentifier() and who in namespace:
            found[name.strip()] = namespace[who]
        elif Path(who).expanduser().exists() or (_GLOB_CHARS & set(who) and glob.glob(who)):
            found[name.strip()] = resolve_image(who, namespace)
        else:
            found[name.strip()] = who
    return found or None


def save_plan(target: str, count: int, output_format: str) -> tuple[Path, str]:
    """`(folder, pattern)` for `--save TARGET`, checked before anything is sent.

    TARGET is a pattern (`out/{i}.png`: fields `{i}`, `{key}`, `{ext}`), a file name
    (`fox.png`; `fox-{i}.png` for several images) or a folder (files named
    `FOLDER_PATTERN`).
    """
    parts = Path(target).expanduser().parts
    split_at = next((i for i, p in enumerate(parts) if "{" in p), None)
    if split_at is not None:
        folder = Path(*parts[:split_at]) if split_at else Path(".")
        pattern = "/".join(parts[split_at:])
    elif Path(target).suffix.lower() in _SUFFIX_FORMATS:
        path = Path(target).expanduser()
        folder = path.parent
        pattern = path.name if count == 1 else f"{path.stem}-{{i}}{path.suffix}"
    else:
        folder, pattern = Path(target).expanduser(), FOLDER_PATTERN
    try:
        first = pattern.format(i=0, key="0" * 16, ext="ext")
    except (LookupError, ValueError, IndexError):
        raise InvalidRequest(
            f"--save {target!r}: a pattern may use {{i}}, {{key}} and {{ext}} only"
        ) from None
    # keys that differ only at the end: a pattern that cuts the key short ({key:.1}) collides
    names = {pattern.format(i=i, key=f"{i:016x}", ext="ext") for i in range(count)}
    if len(names) < count:
        raise InvalidRequest(
            f"--save {target!r} gives {count} images only {len(names)} file name(s); put {{i}} "
            "in it"
        )
    if folder.resolve() not in (folder / first).resolve().parents:
        raise InvalidRequest(f"--save {target!r} would write outside {str(folder)!r}")
    wanted = _SUFFIX_FORMATS.get(Path(first).suffix.lower())
    if wanted and wanted != output_format:
        raise InvalidRequest(
            f"--save {target!r} names {wanted} files but the images are {output_format}; "
            f"rename it or add -f {wanted}"
        )
    return folder, pattern


def save(images: Any, folder: Path, pattern: str) -> list[Path]:
    """Write `images` (an `ImageSet`) as planned; a file already there with the same bytes is
    this image saved before, anything else there is refused rather than replaced."""
    for i, img in enumerate(images):
        path = folder / pattern.format(i=i, key=img.key[:16], ext=img.path.suffix.lstrip("."))
        if path.exists() and not (path.is_file() and filecmp.cmp(path, img.path, shallow=False)):
            raise InvalidRequest(
                f"--save: {str(path)!r} already exists and holds something else; choose another "
                "path or move that file (the new images are in the store either way)"
            )
    try:
        saved: list[Path] = images.save(folder, pattern=pattern, overwrite=True)
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"--save: {exc} (the new images are in the store)") from None
    return saved
