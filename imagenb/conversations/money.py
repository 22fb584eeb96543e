"""A turn's money: the estimate before sending, the budget check, the actual cost after.

The mainline re-reads the whole conversation every turn (earlier images included: "all
previous input tokens for responses in the chain are billed as input tokens"), so the estimate
grows with the context; the image is estimated by size and quality like an Images request, plus
the partial images of a stream and the web search fee. The estimate errs high (no cache
discount, generous reasoning). The actual cost prices every token kind of both usages, the
mainline's `usage` and the tool's `tool_usage.image_gen`, at its own rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from imagenb.conversations.settings import ChatSettings
from imagenb.core import catalog, cost
from imagenb.core.ledger import Reservation
from imagenb.errors import AnswerLost, ImagenbError

TOOL_TOKENS = 200  # a tool definition in the mainline's context (errs high)
OVERHEAD_OUTPUT = 300  # the tool call's arguments and a short message
REASONING_ESTIMATE = {
    "none": 0,
    "minimal": 64,
    "low": 256,
    "medium": 1024,
    "high": 4096,
    "xhigh": 8192,
    "max": 16384,
}
DEFAULT_EFFORT = "medium"  # what a reasoning model spends without `thinking`
WEB_SEARCH_USD = 10.0 / 1000  # $10 per 1K calls (pricing page via reference §2.3)


@dataclass(frozen=True)
class TurnCost:
    mainline_usd: float
    image_usd: float
    is_estimate: bool

    @property
    def usd(self) -> float:
        return self.mainline_usd + self.image_usd

    def __str__(self) -> str:
        kind = "~" if self.is_estimate else ""
        return (f"{kind}${self.usd:.4f} (mainline {kind}${self.mainline_usd:.4f}, image "
                f"{kind}${self.image_usd:.4f})")  # fmt: skip


def context_tokens(texts: list[str], images: list[tuple[int, int]]) -> int:
    """Tokens of earlier turns that the mainline re-reads: their texts and their images."""
    return sum(cost.text_tokens(t) for t in texts) + sum(
        cost.input_image_tokens(w, h) for w, h in images
    )


def estimate(
    s: ChatSettings,
    text: str,
    *,
    context: int,
    pictures: list[tuple[int, int]],
    partials: int = 0,
) -> TurnCost:
    """What one turn should cost at most, before sending."""
    main = s.mainline_spec
    tools = 1 + int(s.web_search)
    fresh_in = cost.text_tokens(text) + sum(cost.input_image_tokens(w, h) for w, h in pictures)
    input_tokens = context + fresh_in + tools * TOOL_TOKENS
    effort = s.thinking or (DEFAULT_EFFORT if main.efforts else "none")
    output = REASONING_ESTIMATE[effort] + OVERHEAD_OUTPUT
    mainline = (input_tokens * main.text_in + output * main.text_out) / 1e6
    image = cost.estimate(s.image_request(text), partials=partials).usd
    image += (
        sum(cost.input_image_tokens(w, h) for w, h in pictures[-1:])
        * s.image_spec.prices.image_in
        / 1e6
    )
    return TurnCost(mainline + WEB_SEARCH_USD * s.web_search, image, True)


def actual(
    s: ChatSettings, usage: Mapping[str, Any] | None, tool_usage: Mapping[str, Any] | None
) -> TurnCost:
    """The cost of a finished turn from both usages; None usages fall back to the estimate
    (flagged), as the API docs advise when `tool_usage` is absent."""
    main = s.mainline_spec
    mainline = mainline_usd(main, usage) if usage else 0.0
    image_gen = (tool_usage or {}).get("image_gen")
    image = cost.usage_cost(s.image_spec, _image_usage(image_gen)) if image_gen else 0.0
    searches = int(((tool_usage or {}).get("web_search") or {}).get("num_requests") or 0)
    return TurnCost(mainline + searches * WEB_SEARCH_USD, image, usage is None)


def mainline_usd(main: catalog.MainlineSpec, usage: Mapping[str, Any]) -> float:
    """Uncached input, cached input and output (reasoning included) at the mainline's rates."""
    details = usage.get("input_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    fresh = int(usage.get("input_tokens") or 0) - cached
    output = int(usage.get("output_tokens") or 0)
    return (fresh * main.text_in + cached * main.text_in_cached + output * main.text_out) / 1e6


def _image_usage(image_gen: Mapping[str, Any]) -> dict[str, Any]:
    """`tool_usage.image_gen` in the shape `cost.usage_cost` reads (cached counts moved into
    the input details)."""
    details = dict(image_gen.get("input_tokens_details") or {})
    details.update(image_gen.get("cached_tokens_details") or {})
    return {**image_gen, "input_tokens_details": details}


def paid(reservation: Reservation, held: float, turn: TurnCost, s: ChatSettings) -> None:
    """A turn's answer arrived: its hold becomes what it cost, the image by its model and the
    mainline by its own (a preview's cost is counted as would-be spend, never paid)."""
    reservation.spend(held, turn.image_usd, s.model, images=1 if turn.image_usd else 0)
    reservation.spend(0.0, turn.mainline_usd, s.mainline, images=0)


def failed(reservation: Reservation, held: float, error: ImagenbError) -> None:
    """A turn got no answer: one lost after it was sent may have been billed (uncertain
    spend); one refused before any work gives its hold back."""
    if isinstance(error, AnswerLost):
        reservation.uncertain(held)
    else:
        reservation.give_back(held)
