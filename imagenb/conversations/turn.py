"""`Turn`: one step of a conversation, what it made and what it cost; `Turn.say` branches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imagenb.store.images import GeneratedImage
from imagenb.store.turns import TurnRecord

if TYPE_CHECKING:
    from imagenb.conversations.conversation import Chat
    from imagenb.store.index import Store


@dataclass(eq=False)
class Turn:
    """`.image` (or None), `.text` (the model's words), `.revised_prompt`, `.reasoning` (the
    summary), `.sources` ((title, url) pairs), `.parent`, `.response_id`, `.status` (`ok`,
    `no image`, `blocked`), `.cost_usd`, `.usage` (both usages). All text from the service is
    untrusted and escaped wherever it is shown."""

    chat: Chat = field(repr=False)
    record: TurnRecord = field(repr=False)
    parent: Turn | None = field(repr=False)
    image: GeneratedImage | None
    cached: bool = False
    variations: list[Turn] = field(default_factory=list, repr=False)
    text_check: Any = field(default=None, repr=False)  # a TextCheck, when the text was checked
    attempts: list[Turn] = field(default_factory=list, repr=False)  # the self-check loop

    @classmethod
    def from_record(
        cls,
        chat: Chat,
        record: TurnRecord,
        parent: Turn | None,
        store: Store,
        *,
        cached: bool,
        thumbnail_px: int,
    ) -> Turn:
        row = store.get(record.image_key) if record.image_key else None
        image = (
            GeneratedImage.from_stored(row, cached=cached, thumbnail_px=thumbnail_px)
            if row
            else None
        )
        return cls(chat, record, parent, image, cached)

    def say(self, text: str, **kwargs: Any) -> Turn:
        """A new branch of the conversation from this turn."""
        return self.chat.say_from(self, text, **kwargs)

    @property
    def images(self) -> list[GeneratedImage]:
        return [self.image] if self.image is not None else []

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def chat_key(self) -> str:
        return self.record.chat

    @property
    def origin(self) -> str:
        return self.record.origin

    @property
    def prompt(self) -> str:
        """What was said in this turn."""
        return self.record.text

    @property
    def text(self) -> str:
        return self.record.model_text

    @property
    def revised_prompt(self) -> str | None:
        return self.record.revised_prompt

    @property
    def reasoning(self) -> str | None:
        return self.record.reasoning

    @property
    def sources(self) -> list[tuple[str, str]]:
        return [(str(t), str(u)) for t, u in self.record.sources]

    @property
    def response_id(self) -> str | None:
        return self.record.response_id

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def error(self) -> str | None:
        return self.record.error

    @property
    def notice(self) -> str | None:
        return self.record.notice

    @property
    def cost_usd(self) -> float:
        """What the turn cost when it was made (mainline plus image)."""
        return self.record.cost_usd

    @property
    def cost_is_estimate(self) -> bool:
        return self.record.cost_is_estimate

    @property
    def latency_s(self) -> float | None:
        return self.record.latency_s

    @property
    def usage(self) -> dict[str, Any]:
        return {"mainline": self.record.usage, "tool_usage": self.record.tool_usage}

    def _repr_html_(self) -> str:
        from imagenb.conversations.render import turn_html

        return turn_html(self)

    def __repr__(self) -> str:
        cost = "cached" if self.cached else f"${self.cost_usd:.4f}"
        return f"Turn({self.prompt[:50]!r}, {self.status}, {cost})"
