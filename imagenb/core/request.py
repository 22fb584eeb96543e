"""The request model: one frozen, validated description of what to ask a model for.

`build()` is the only way user input becomes an `ImageRequest`, and it refuses anything the API
would refuse, naming what is allowed, so an invalid request never costs a network call. The
canonical form defines identity: equal canonical forms give equal store keys.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from imagenb.core import catalog, sizes
from imagenb.core.inputs import ImageInput, load, load_many
from imagenb.errors import InvalidRequest

KEY_VERSION = 1
MAX_PROMPT_CHARS = 32_000
BACKGROUNDS = ("auto", "opaque", "transparent")
MODERATIONS = ("auto", "low")
COMPLEXITIES = ("low", "medium", "high")
MAX_PARTIAL_IMAGES = 3
# What the service applies to a parameter left out (API reference): such values are not sent,
# so a request carries only what was asked. `model` always goes: the API's own default is a
# retired model.
API_DEFAULTS: dict[str, Any] = {
    "size": "auto",
    "quality": "auto",
    "n": 1,
    "output_format": "png",
    "background": "auto",
    "moderation": "auto",
}

# Parameters a grid frame column or a magic option may set, in display order.
PARAMETERS = (
    "model",
    "size",
    "quality",
    "n",
    "output_format",
    "output_compression",
    "background",
    "moderation",
    "complexity",
    "input_fidelity",
)


_UNSET = object()
# Unicode categories that draw nothing: controls, format characters (zero-width space, joiners,
# BOM) and separators. Unassigned and private-use code points may draw; they are allowed.
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


@dataclass(frozen=True)
class ImageRequest:
    """A validated request. `n` is how many variants; it is not part of an image's identity,
    the variant index is (see `key`)."""

    prompt: str
    model: str = catalog.DEFAULT_MODEL
    size: str = "auto"
    quality: str = "auto"
    n: int = 1
    output_format: str = "png"
    output_compression: int | None = None
    background: str = "auto"
    moderation: str = "auto"
    complexity: str | None = None
    input_fidelity: str | None = None
    images: tuple[ImageInput, ...] = ()
    mask: ImageInput | None = None

    @property
    def kind(self) -> str:
        return "edit" if self.images else "generate"

    @property
    def spec(self) -> catalog.ModelSpec:
        return catalog.lookup(self.model)

    def params(self) -> dict[str, Any]:
        """The API parameters other than prompt and files, as sent (unset ones left out)."""
        out: dict[str, Any] = {
            "model": self.model,
            "size": self.size,
            "quality": self.quality,
            "n": self.n,
            "output_format": self.output_format,
            "background": self.background,
            "moderation": self.moderation,
        }
        for name in ("output_compression", "complexity", "input_fidelity"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def wire_params(self) -> dict[str, Any]:
        """`params()` without the values the service would apply anyway: what goes on the wire.
        The store key still covers the full `params()`, so leaving a default out changes no
        key."""
        return {k: v for k, v in self.params().items() if API_DEFAULTS.get(k, _UNSET) != v}

    def canonical(self) -> dict[str, Any]:
        """What defines the image: every parameter but `n`, plus input hashes."""
        form = {"kind": self.kind, "prompt": self.prompt, **self.params()}
        del form["n"]
        form["images"] = [i.sha256 for i in self.images]
        form["mask"] = self.mask.sha256 if self.mask else None
        return form

    def key(self, variant: int = 0) -> str:
        """Store key of variant `variant`: a hash of the canonical form and the key version."""
        return key_of(self.canonical(), variant)

    def variant_keys(self) -> list[str]:
        return [self.key(i) for i in range(self.n)]

    def with_n(self, n: int) -> ImageRequest:
        return replace(self, n=n)


def key_of(canonical: dict[str, Any], variant: int) -> str:
    """The store key of a canonical form (`ImageRequest.canonical`) and variant index."""
    blob = json.dumps(
        {"v": KEY_VERSION, "request": canonical, "variant": variant},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def canonical_of_row(
    kind: str, prompt: str, params: dict[str, Any], input_keys: Sequence[str]
) -> dict[str, Any]:
    """The canonical form a stored row's request had, from what the row records (its params
    as sent, which add `n` and the server's `resolved_*` choices). A masked edit's mask is
    not recorded, so its key cannot be re-derived this way."""
    form = {k: v for k, v in params.items() if k != "n" and not k.startswith("resolved_")}
    return {**form, "kind": kind, "prompt": prompt, "images": list(input_keys), "mask": None}


def build(
    prompt: Any,
    *,
    model: str | None = None,
    size: str | None = None,
    quality: str | None = None,
    n: int | None = None,
    output_format: str | None = None,
    output_compression: int | None = None,
    background: str | None = None,
    moderation: str | None = None,
    complexity: str | None = None,
    input_fidelity: str | None = None,
    images: Any = None,
    mask: Any = None,
) -> ImageRequest:
    """Validate user input into an `ImageRequest`; `InvalidRequest` names what is allowed."""
    _no_blanks(model=model, size=size, quality=quality, output_format=output_format,
               background=background, moderation=moderation, complexity=complexity,
               input_fidelity=input_fidelity)  # fmt: skip
    spec = catalog.lookup(model or catalog.DEFAULT_MODEL)
    fmt = _choice("output_format", _format(output_format), spec.formats)
    bg = _choice("background", background or "auto", BACKGROUNDS)
    if bg == "transparent" and fmt not in ("png", "webp"):
        raise InvalidRequest(
            f"background='transparent' needs output_format 'png' or 'webp', not {fmt!r}"
        )
    if bg == "transparent" and not spec.transparent:
        raise InvalidRequest(f"{spec.name} does not support background='transparent'")
    inputs = load_many(images, limit=spec.max_input_images) if images is not None else ()
    return ImageRequest(
        prompt=_prompt(prompt),
        model=spec.name,
        size=sizes.resolve(size, spec),
        quality=_choice("quality", quality or "auto", spec.qualities, spec.name),
        n=_n(n, spec),
        output_format=fmt,
        output_compression=_compression(output_compression, fmt),
        background=bg,
        moderation=_choice("moderation", moderation or "auto", MODERATIONS),
        complexity=_complexity(complexity, spec),
        input_fidelity=_fidelity(input_fidelity, spec, bool(inputs)),
        images=inputs,
        mask=_mask(mask, inputs),
    )


def _no_blanks(**params: Any) -> None:
    """An empty string is not "the default": `quality=""` silently priced as `auto` once
    bought a $0.21 image nobody asked for."""
    for name, value in params.items():
        if isinstance(value, str) and not value.strip():
            raise InvalidRequest(
                f"{name}={value!r} is empty; leave {name} out (or None) for the default"
            )


def _prompt(prompt: Any) -> str:
    if not isinstance(prompt, str):
        kind = "missing (NaN/None)" if prompt is None or prompt != prompt else type(prompt).__name__
        raise InvalidRequest(f"the prompt must be a non-empty string; got {kind}")
    text = prompt.strip()
    if not text:
        raise InvalidRequest("the prompt is empty; describe the image you want")
    check_text(text, "the prompt")
    if all(unicodedata.category(c) in _INVISIBLE for c in text):
        raise InvalidRequest(
            "the prompt has no visible characters (only spaces, zero-width or control "
            "characters); describe the image you want"
        )
    if len(text) > MAX_PROMPT_CHARS:
        raise InvalidRequest(
            f"the prompt has {len(text):,} characters; the limit is {MAX_PROMPT_CHARS:,}"
        )
    return text


def check_text(text: str, what: str) -> None:
    """Refuse text that cannot be sent or saved as UTF-8 (a lone surrogate, usually from a
    broken decode), naming where it is."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(
            f"{what} has a lone surrogate {text[exc.start]!r} at character {exc.start + 1}, "
            "which cannot be sent or saved as UTF-8 (it usually comes from a broken decode); "
            "fix or remove it"
        ) from None


def _choice(name: str, value: Any, allowed: tuple[str, ...], model: str | None = None) -> str:
    text = str(value).strip().lower()
    if text not in allowed:
        where = f" on {model}" if model else ""
        raise InvalidRequest(
            f"{name}={value!r} is not available{where}; choose one of: {', '.join(allowed)}"
        )
    return text


def _format(value: str | None) -> str:
    text = (value or "png").strip().lower()
    return "jpeg" if text == "jpg" else text


def _n(n: int | None, spec: catalog.ModelSpec) -> int:
    value = 1 if n is None else n
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= spec.n_max:
        raise InvalidRequest(f"n={n!r} is not allowed; n is a whole number from 1 to {spec.n_max}")
    return value


def _compression(value: int | None, fmt: str) -> int | None:
    if value is None:
        return None
    if fmt not in ("webp", "jpeg"):
        raise InvalidRequest(
            f"output_compression works only with output_format 'webp' or 'jpeg', not {fmt!r}; "
            "drop it or change the format"
        )
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise InvalidRequest(f"output_compression={value!r}; use a whole number from 0 to 100")
    return value


def _complexity(value: str | None, spec: catalog.ModelSpec) -> str | None:
    if value is None:
        return None
    if not spec.complexity:
        takers = [m.name for m in catalog.MODELS.values() if m.complexity]
        raise InvalidRequest(
            f"complexity is not supported on {spec.name}; it is on: {', '.join(takers)}"
        )
    return _choice("complexity", value, COMPLEXITIES)


def _fidelity(value: str | None, spec: catalog.ModelSpec, is_edit: bool) -> str | None:
    if value is None:
        return None
    if not is_edit:
        raise InvalidRequest("input_fidelity applies only to edits (ig.edit)")
    if not spec.input_fidelity:
        raise InvalidRequest(
            f"{spec.name} always reads inputs at high fidelity; omit input_fidelity"
        )
    return _choice("input_fidelity", value, spec.input_fidelity, spec.name)


def _mask(mask: Any, inputs: tuple[ImageInput, ...]) -> ImageInput | None:
    if mask is None:
        return None
    if not inputs:
        raise InvalidRequest("a mask applies only to edits; pass the images to edit too")
    m = load(mask, role="mask")
    first = inputs[0]
    if m.format != "PNG" or not m.has_alpha:
        raise InvalidRequest(
            "the mask must be a PNG with an alpha channel (transparent pixels mark the area "
            "to edit)"
        )
    if (m.width, m.height) != (first.width, first.height):
        raise InvalidRequest(
            f"the mask is {m.width}x{m.height} but the first image is "
            f"{first.width}x{first.height}; they must be the same size"
        )
    return m
