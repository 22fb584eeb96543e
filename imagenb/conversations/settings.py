"""A chat's settings, validated before anything is sent, and the key of a turn.

The image tool's options go through `request.build` (the same rules as `ig.generate`); the
mainline through `catalog.lookup_mainline` (shutdown dates included); `thinking` must be an
effort that mainline accepts. A turn's key covers its parent's key, its text, its input images
and every setting, so equal cells give equal keys and a re-run replays from the store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from imagenb.core import catalog, request
from imagenb.errors import InvalidRequest

KEY_VERSION = 1
IMAGE_OPTIONS = (
    "size",
    "quality",
    "output_format",
    "output_compression",
    "background",
    "moderation",
)


@dataclass(frozen=True)
class ChatSettings:
    """What every turn of a chat is sent with (a turn may override the image options)."""

    model: str = catalog.DEFAULT_MODEL
    mainline: str = catalog.DEFAULT_MAINLINE
    thinking: str | None = None
    web_search: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # image tool options the user set

    @property
    def mainline_spec(self) -> catalog.MainlineSpec:
        return catalog.lookup_mainline(self.mainline)

    @property
    def image_spec(self) -> catalog.ModelSpec:
        return catalog.lookup(self.model)

    def image_request(self, prompt: str, images: tuple[Any, ...] = ()) -> request.ImageRequest:
        """The equivalent Images API request (for estimates and previews)."""
        return request.build(prompt, model=self.model, images=images or None, **self.options)

    def canonical(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "mainline": self.mainline,
            "thinking": self.thinking,
            "web_search": self.web_search,
            "options": self.options,
        }

    def with_params(self, **params: Any) -> ChatSettings:
        """These settings with some image options changed for one turn (validated)."""
        if not params:
            return self
        return settings(
            model=self.model,
            mainline=self.mainline,
            thinking=self.thinking,
            web_search=self.web_search,
            **{**self.options, **params},
        )


def settings(
    *,
    model: str | None = None,
    mainline: str | None = None,
    thinking: str | None = None,
    web_search: bool = False,
    **params: Any,
) -> ChatSettings:
    """Validate `ig.chat(...)` arguments into `ChatSettings`; `InvalidRequest` names what is
    allowed."""
    unknown = sorted(set(params) - set(IMAGE_OPTIONS))
    if unknown:
        raise InvalidRequest(
            f"chat() has no image option {unknown}; the image tool takes: "
            f"{', '.join(IMAGE_OPTIONS)} (it makes one image a turn: no n)"
        )
    given = {k: v for k, v in params.items() if v is not None}
    built = request.build("x", model=model or catalog.DEFAULT_MODEL, **given)
    options = {k: getattr(built, k) for k in IMAGE_OPTIONS if k in given}
    spec = catalog.lookup_mainline(mainline or catalog.DEFAULT_MAINLINE)
    if thinking is not None:
        if not spec.efforts:
            raise InvalidRequest(
                f"{spec.name} does not reason: use thinking=None or a "
                f"reasoning mainline such as {catalog.DEFAULT_MAINLINE!r}"
            )
        if thinking not in spec.efforts:
            raise InvalidRequest(
                f"thinking={thinking!r} is not available on {spec.name}; "
                f"choose one of: {', '.join(spec.efforts)} (or None)"
            )
    if not isinstance(web_search, bool):
        raise InvalidRequest(f"web_search={web_search!r}; use True or False")
    return ChatSettings(built.model, spec.name, thinking, web_search, options)


def check_text(text: Any) -> str:
    """The turn's message: a non-empty string within the prompt limit."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest(
            "say() needs a non-empty message, e.g. chat.say('make the title bigger')"
        )
    if len(text) > request.MAX_PROMPT_CHARS:
        raise InvalidRequest(
            f"the message has {len(text):,} characters; the limit is {request.MAX_PROMPT_CHARS:,}"
        )
    return text.strip()


def turn_key(
    parent_key: str | None, text: str, inputs: tuple[str, ...], s: ChatSettings, variant: int = 0
) -> str:
    """The store key of a turn: its parent's key, text, input hashes, settings, variant."""
    blob = json.dumps(
        {
            "v": KEY_VERSION,
            "parent": parent_key,
            "text": text,
            "inputs": list(inputs),
            "settings": s.canonical(),
            "variant": variant,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()
