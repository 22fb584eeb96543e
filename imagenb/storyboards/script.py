"""The script of a comic: what a storyboard asks the model for, before anything is sent.

Panels come as text (one per line), a list, or a frame with a `panel` column; characters as a
description (a reference image gets generated) or as images. From these, `Script` works out
who is in which panel, writes every prompt, and builds and validates every request: the
references first, then each panel as an edit of the references of the characters it shows
(and, chained, of the panel before). Requests whose inputs do not exist yet are validated with
stand-ins, so a mistake in panel 7 surfaces before the references and panels 1-6 are paid for.
"""

from __future__ import annotations

import functools
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from imagenb.api import calls as api
from imagenb.core import config, frames, inputs, request, sizes
from imagenb.errors import InvalidRequest
from imagenb.store.images import GeneratedImage

REFERENCE_SIZE = "portrait"  # a full-body figure
MAX_PANELS_PER_PAGE = 64
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_MARKER = re.compile(r"^(?:\d+[.)]|[-*•])\s+")  # "1. ", "2) ", "- " before a panel line
_SPEAKER = re.compile(r"^([^:\uff1a]{1,40}?)\s*[:\uff1a]\s*(\S.*)$", re.DOTALL)
ONE_PER_PANEL = (
    "n={n}: a storyboard makes one image per panel; for variants of a panel use ig.edit or "
    "ig.grid, or run the storyboard again with fresh=True"
)


@dataclass(frozen=True)
class Character:
    """A name with either a `description` (a reference gets generated) or `given` images."""

    name: str
    description: str | None = None
    given: tuple[inputs.ImageInput, ...] = ()
    sources: tuple[Any, ...] = ()  # the given images as the caller passed them


# --- input ---------------------------------------------------------------------------------------


def parse_panels(text: str) -> list[dict[str, Any]]:
    """Panels from text, one per line (blank lines and `#` lines skipped, a leading `1.` or
    `-` dropped): `description | caption: narration | Mira: words | Tom: words`."""
    rows = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        description, *extras = (part.strip() for part in _MARKER.sub("", line, count=1).split("|"))
        caption, spoken = None, []
        for extra in extras:
            head, sep, rest = extra.partition(":")
            if sep and head.strip().lower() == "caption":
                caption = rest.strip()
            elif extra:
                spoken.append(extra)
        rows.append({"panel": description, "caption": caption, "dialogue": "\n".join(spoken)})
    return rows


def panels_table(panels: Any) -> frames.Table:
    if isinstance(panels, str):
        panels = parse_panels(panels)
    elif isinstance(panels, Sequence) and all(isinstance(p, str) for p in panels):
        panels = [{"panel": p} for p in panels]
    tab = frames.table(panels)
    if not tab.rows:
        raise InvalidRequest("the storyboard has no panels; give at least one description")
    if "panel" not in tab.columns:
        raise InvalidRequest(
            f"there is no 'panel' column; columns: {', '.join(tab.columns)}. A storyboard "
            "frame needs 'panel' (optional: 'caption', 'dialogue', 'characters')"
        )
    for i, row in enumerate(tab.rows):
        if not isinstance(row["panel"], str):
            raise InvalidRequest(f"panel {i + 1} has no description; describe what it shows")
        if row.get("n") not in (None, 1):
            raise InvalidRequest(f"panel {i + 1}: " + ONE_PER_PANEL.format(n=row["n"]))
    return tab


def cast_of(characters: Mapping[str, Any] | None) -> tuple[Character, ...]:
    if characters is None:
        return ()
    if not isinstance(characters, Mapping):
        raise InvalidRequest(
            "characters must be a dict of name -> description or reference image(s), such "
            "as {'Mira': 'a girl in a red scarf', 'Tom': 'tom.png'}"
        )
    out: list[Character] = []
    for name, value in characters.items():
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequest(f"character names must be non-empty text; got {name!r}")
        label = " ".join(name.split())
        if label.casefold() in {c.name.casefold() for c in out}:
            raise InvalidRequest(f"the character {label!r} is given twice")
        if isinstance(value, str) and not _names_a_file(value):
            if not value.strip():
                raise InvalidRequest(f"character {label!r} has an empty description")
            out.append(Character(label, description=" ".join(value.split())))
            continue
        sources = _sources(value)
        if not sources:
            raise InvalidRequest(f"character {label!r} has no reference images")
        given = tuple(
            inputs.load(s, role=f"reference {k + 1} of {label}") for k, s in enumerate(sources)
        )
        out.append(Character(label, given=given, sources=tuple(sources)))
    return tuple(out)


def _names_a_file(text: str) -> bool:
    """A description can be anything; a path to an image reads like one."""
    return "\n" not in text and (
        Path(text).suffix.lower() in _IMAGE_SUFFIXES or os.path.isfile(text)
    )


def _sources(value: Any) -> list[Any]:
    if isinstance(value, (str, bytes, bytearray, os.PathLike)) or hasattr(value, "getpixel"):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    return [value]


def layout_of(value: str | tuple[int, int]) -> tuple[int, int]:
    if isinstance(value, tuple) and len(value) == 2:
        rows, cols = value
    else:
        match = re.fullmatch(r"\s*(\d+)\s*[xX\u00d7]\s*(\d+)\s*", str(value))
        rows, cols = (int(match[1]), int(match[2])) if match else (0, 0)
    if not (isinstance(rows, int) and isinstance(cols, int) and rows > 0 and cols > 0) or (
        rows * cols > MAX_PANELS_PER_PAGE
    ):
        raise InvalidRequest(
            f"layout={value!r}: give ROWSxCOLS panels per page, such as '2x2' (four on a "
            f"page), '1x3' (a strip) or '3x2'; at most {MAX_PANELS_PER_PAGE} per page"
        )
    return rows, cols


def dialogue(value: Any) -> tuple[tuple[str | None, str], ...]:
    """`(speaker, words)` per line; "Mira: Hello!" has a speaker, "Hello!" does not."""
    if value is None:
        return ()
    lines = value.splitlines() if isinstance(value, str) else [str(v) for v in value]
    out: list[tuple[str | None, str]] = []
    for line in (" ".join(raw.split()) for raw in lines):
        match = _SPEAKER.match(line)
        if match and _is_name(match[1]):
            out.append((match[1], match[2]))
        elif line:
            out.append((None, line))
    return tuple(out)


def _is_name(text: str) -> bool:
    """ "Mira", "Old Tom", "ミラ": up to three words, none starting in lower case (so "A
    long sentence: with a colon" is words, not a speaker)."""
    words = text.split()
    return 0 < len(words) <= 3 and not any(w[0].islower() for w in words[1:] + words[:1])


def who(i: int, row: Mapping[str, Any], cast: Sequence[Character]) -> tuple[Character, ...]:
    """The characters panel `i` shows: its `characters` column ("Mira, Tom", "none") if set,
    else those named in its text or as its speakers, else all of them."""
    listed = row.get("characters")
    if listed is not None:
        names = _sources(listed) if not isinstance(listed, str) else listed.split(",")
        wanted = [" ".join(str(n).split()).casefold() for n in names if str(n).strip()]
        if wanted == ["none"]:
            return ()
        strangers = [n for n in wanted if n not in {c.name.casefold() for c in cast}]
        if strangers:
            raise InvalidRequest(
                f"panel {i + 1} lists {', '.join(strangers)}, not among the characters "
                f"({', '.join(c.name for c in cast) or 'none given'})"
            )
        return tuple(c for c in cast if c.name.casefold() in wanted)
    speakers = " ".join(s or "" for s, _ in dialogue(row.get("dialogue")))
    text = f"{row['panel']} {speakers}"
    return tuple(c for c in cast if _mentions(text, c.name)) or tuple(cast)


def _mentions(text: str, name: str) -> bool:
    if name.isascii():  # whole words only: "Al" is not in "Also"
        return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE) is not None
    return name.casefold() in text.casefold()  # CJK names sit inside words


# --- prompts ------------------------------------------------------------------------------------


def reference_prompt(character: Character, style: str | None) -> str:
    lines = [
        f"Character reference for a comic: {character.name}, {character.description}.",
        "One full-body figure, front view, neutral pose, on a plain light background; no text.",
    ]
    if style:
        lines.append(f"Style: {style}.")
    return "\n".join(lines)


def panel_prompt(
    text: str,
    style: str | None,
    references: Sequence[tuple[str, int]],
    *,
    chained: bool,
    lettered: bool,
) -> str:
    """Style, the panel, which input image is whom (`references`: name and image count, in
    input order), the previous panel (last input) when chained, and no lettering when
    imagenb letters the panel. Nothing about the panel's position: that would change every
    panel's prompt, and so its store key, whenever a panel is added."""
    lines = [f"Style: {style}."] if style else []
    lines.append(text)
    parts, first = [], 1
    for name, count in references:
        last = first + count - 1
        parts.append(
            f"image {first} is {name}" if count == 1 else f"images {first}-{last} are {name}"
        )
        first = last + 1
    if parts:
        lines.append(
            f"Reference images: {', '.join(parts)}; keep their appearance (face, hair, "
            "clothes, colours) exactly the same."
        )
    if chained:
        lines.append(
            f"Image {first} is the previous panel: continue the scene from it (same place, "
            "light and clothes)."
        )
    if lettered:
        lines.append(
            "Draw no text, captions or speech bubbles (they are added later); leave some calm "
            "space near the top."
        )
    return "\n".join(lines)


# --- the script ---------------------------------------------------------------------------------


class Script:
    """Every request of a storyboard. `references[k]` makes `drawn[k]`'s reference image;
    `drafts[i]` is panel `i`'s request as validated up front (with stand-ins for inputs not
    made yet: its prompt and parameters are final, its input hashes not)."""

    def __init__(
        self,
        table: frames.Table,
        cast: Sequence[Character],
        *,
        style: str | None,
        chain: bool,
        params: Mapping[str, Any],
        cfg: config.Config,
    ) -> None:
        self.table = table
        self.cast = tuple(cast)
        self.style = style
        self.chain = chain
        self.config = cfg
        self.params = dict(params)
        self.drawn = [c for c in self.cast if c.description is not None]
        reference_params = {**self.params, "size": REFERENCE_SIZE}
        self.references = [
            api.build(reference_prompt(c, style), cfg, **reference_params) for c in self.drawn
        ]
        self.shown = [who(i, row, self.cast) for i, row in enumerate(table.rows)]
        self.drafts: list[request.ImageRequest] = []
        for i in range(len(table)):
            self.drafts.append(self.panel(i, self.inputs(i)[0]))

    def ref_slot(self, character: Character) -> int:
        return self.drawn.index(character)

    def inputs(
        self, i: int, refs: Sequence[GeneratedImage | None] = (), previous: Any = None
    ) -> tuple[list[Any], list[tuple[int, int]], bool]:
        """Panel `i`'s input images in order (`refs[k]`: the reference of `drawn[k]`, if
        made), their sizes, and whether all of them exist (the others are stand-ins)."""
        sources: list[Any] = []
        dims: list[tuple[int, int]] = []
        ready = True
        for c in self.shown[i]:
            if c.description is None:
                sources += [g.data for g in c.given]
                dims += [(g.width, g.height) for g in c.given]
                continue
            slot = self.ref_slot(c)
            made = refs[slot] if slot < len(refs) else None
            ready &= made is not None
            sources.append(made if made is not None else _stand_in_png())
            dims.append((made.width, made.height) if made else dims_of(self.references[slot].size))
        if self.chain and i > 0:
            ready &= previous is not None
            sources.append(previous if previous is not None else _stand_in_png())
            dims.append(
                (previous.width, previous.height)
                if previous is not None
                else dims_of(self.drafts[i - 1].size)
            )
        return sources, dims, ready

    def panel(self, i: int, sources: list[Any]) -> request.ImageRequest:
        """Panel `i`'s request with these input images; `InvalidRequest` names the panel."""
        row = self.table.rows[i]
        prompt = panel_prompt(
            row["panel"],
            self.style,
            [(c.name, len(c.given) or 1) for c in self.shown[i]],
            chained=self.chain and i > 0,
            lettered=bool(row.get("caption") or row.get("dialogue")),
        )
        try:
            return api.build(
                prompt, self.config, images=sources or None, **frames.parameters(row, self.params)
            )
        except InvalidRequest as exc:
            hint = ""
            if "input images given" in str(exc):
                hint = (
                    " (the references of the characters it shows, plus the previous panel "
                    "with chain=True); name fewer characters in a 'characters' column or give "
                    "fewer reference images"
                )
            raise InvalidRequest(f"panel {i + 1}: {exc}{hint}") from exc

    def stand_in(self, i: int, dims: Sequence[tuple[int, int]]) -> request.ImageRequest:
        """Panel `i`'s draft with inputs of these sizes, for estimates (cost reads sizes)."""
        fakes = (
            inputs.ImageInput("stand-in", "PNG", w, h, False, "stand-in", b"") for w, h in dims
        )
        return replace(self.drafts[i], images=tuple(fakes))


def dims_of(size: str) -> tuple[int, int]:
    """Pixel size of a request's `size` (`auto` counts as 1024x1024)."""
    return sizes.dimensions(size) or (1024, 1024)


@functools.cache
def _stand_in_png() -> bytes:
    """A tiny PNG in place of an input not made yet, for validation only."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "white").save(buf, "PNG")
    return buf.getvalue()


__all__ = ["Character", "Script", "panel_prompt", "parse_panels", "reference_prompt"]
