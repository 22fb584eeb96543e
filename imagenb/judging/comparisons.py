"""`ig.compare`: which of two images better meets a rubric, asked in both orders. A judge
often prefers whichever image comes first; a winner counts only when both orders agree, and
any disagreement is a tie (the swap rule of MT-Bench's pairwise judge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from imagenb.core import config as config_mod
from imagenb.errors import ImagenbError
from imagenb.judging import asking, rubrics, subjects
from imagenb.render.html import esc


@dataclass(frozen=True)
class Comparison:
    """The result: `winner` is "a", "b" or "tie"; `orders` what the judge said in each order
    ((winner, reason) with a and b named as such); `consistent`: both orders agreed."""

    winner: str
    orders: tuple[tuple[str, str], tuple[str, str]]
    cost_usd: float
    cached: bool
    key_a: str
    key_b: str

    @property
    def consistent(self) -> bool:
        return self.orders[0][0] == self.orders[1][0]

    @property
    def reason(self) -> str:
        first, second = self.orders
        if self.consistent:
            return first[1]
        return f"a first: {first[1]} | b first: {second[1]}"

    def __str__(self) -> str:
        head = "tie" if self.winner == "tie" else f"{self.winner} is better"
        note = "" if self.consistent else " (the two orders disagreed)"
        return f"{head}{note}: {self.reason} · ${self.cost_usd:.5f}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "tie" if self.winner == "tie" else f"<b>{esc(self.winner)}</b> is better"
        rows = "".join(
            f"<li>{esc(label)}: {esc(winner)} — {esc(reason)}</li>"
            for label, (winner, reason) in zip(("a first", "b first"), self.orders, strict=True)
        )
        return (
            f'<div style="font-family:sans-serif;font-size:13px">{head}'
            f'<ul style="margin:4px 0">{rows}</ul>'
            f'<span style="color:#666">${self.cost_usd:.5f}</span></div>'
        )


def questions(a: subjects.Subject, b: subjects.Subject, rub: rubrics.Rubric, spec: Any,
              effort: str) -> list[asking.Question]:  # fmt: skip
    """The two questions that compare `a` and `b`: a shown first, then b shown first."""
    return [asking.question("comparison", pair, rub, spec, effort) for pair in ((a, b), (b, a))]


def settle(first: asking.Outcome, second: asking.Outcome) -> Comparison:
    """The comparison from the a-first and b-first answers (`ImagenbError` if one failed)."""
    for outcome in (first, second):
        if outcome.record is None:
            raise outcome.error or ImagenbError("the comparison got no answer")
    assert first.record is not None and second.record is not None
    said_a_first = _named(first.record.payload["winner"], ("a", "b"))
    said_b_first = _named(second.record.payload["winner"], ("b", "a"))
    winner = said_a_first if said_a_first == said_b_first else "tie"
    paid = sum(o.record.cost_usd for o in (first, second) if o.record and not o.cached)
    return Comparison(
        winner,
        (
            (said_a_first, str(first.record.payload["reason"])),
            (said_b_first, str(second.record.payload["reason"])),
        ),
        paid,
        first.cached and second.cached,
        first.question.subjects[0].key,
        first.question.subjects[1].key,
    )


def _named(said: str, names: tuple[str, str]) -> str:
    return {"first": names[0], "second": names[1]}.get(said, "tie")


def compare(
    a: Any,
    b: Any,
    rubric: str,
    *,
    criteria: Any = None,
    model: str | None = None,
    thinking: str | None = None,
    fresh: bool = False,
) -> Comparison:
    """Which of images `a` and `b` better meets `rubric`, and why: judged twice, once in
    each order; when the orders disagree, a tie. Stored, estimated and budgeted like `judge`."""
    cfg = config_mod.current()
    rub = rubrics.build(rubric, criteria)
    spec = asking.judge_model(model)
    effort = asking.effort_for(spec, thinking)
    pair = questions(subjects.one(a, "image a"), subjects.one(b, "image b"), rub, spec, effort)
    first, second = asking.ask(pair, cfg, fresh=fresh)
    return settle(first, second)
