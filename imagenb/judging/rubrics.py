"""What a judge is asked and the shape its answer must take: criteria, the instructions (the
OpenAI cookbook's rubric design: gates first, then 0-5 scores with anchors, "if uncertain,
choose the lower"), and the strict JSON schemas of a verdict and of a comparison.

Pure: no network, no store. The schemas follow the structured-outputs subset that `strict`
mode accepts (every property required, `additionalProperties: false`, enums for scores).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagenb.errors import InvalidRequest

SCHEMA_VERSION = 1
SCORES = (0, 1, 2, 3, 4, 5)
MAX_CRITERIA = 10
MAX_RUBRIC_CHARS = 4000
WINNERS = ("first", "second", "tie")
DEFAULT_CRITERIA: dict[str, str] = {
    "fidelity": "shows everything the rubric asks for and nothing it rules out",
    "text": "any text the rubric asks for is present, spelled exactly and legible "
    "(with no text asked for: no garbled pseudo-text)",
    "craft": "clean rendering: no artifacts, warped anatomy, melted objects or smeared detail",
}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

ANCHORS = (
    "Scores, per criterion: 5 = fully meets it, no visible flaw; 4 = meets it, a minor flaw; "
    "3 = mostly meets it, one clear flaw; 2 = partly, several flaws; 1 = barely; 0 = not at "
    "all. If uncertain between two scores, choose the lower one."
)


@dataclass(frozen=True)
class Rubric:
    """A rubric text and its criteria (name -> what it means), validated and canonical."""

    text: str
    criteria: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.criteria]

    def canonical(self) -> dict[str, Any]:
        return {"rubric": self.text, "criteria": [list(c) for c in self.criteria]}


def build(text: Any, criteria: Any = None) -> Rubric:
    """A `Rubric` from user input, or `InvalidRequest` saying what is allowed."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest(
            "rubric must be a non-empty text saying what a good image shows, e.g. "
            "'a poster that reads \"OPEN\" in red'"
        )
    if len(text) > MAX_RUBRIC_CHARS:
        raise InvalidRequest(f"rubric is {len(text)} characters; keep it under {MAX_RUBRIC_CHARS}")
    return Rubric(text.strip(), tuple(_criteria(criteria)))


def _criteria(criteria: Any) -> list[tuple[str, str]]:
    if criteria is None:
        return list(DEFAULT_CRITERIA.items())
    if isinstance(criteria, str):
        criteria = [criteria]
    if isinstance(criteria, Mapping):
        pairs = [(str(k), str(v)) for k, v in criteria.items()]
    elif isinstance(criteria, Sequence):
        pairs = [(str(c), DEFAULT_CRITERIA.get(_name(str(c)), str(c))) for c in criteria]
    else:
        raise InvalidRequest(
            f"criteria must be names, or a dict of name -> meaning; got {type(criteria).__name__}"
        )
    if not 1 <= len(pairs) <= MAX_CRITERIA:
        raise InvalidRequest(f"give 1 to {MAX_CRITERIA} criteria; got {len(pairs)}")
    out = [(_name(name), meaning.strip() or name) for name, meaning in pairs]
    names = [name for name, _ in out]
    if len(set(names)) != len(names):
        raise InvalidRequest(f"criteria names repeat: {', '.join(names)}")
    return out


def _name(raw: str) -> str:
    name = "_".join(raw.strip().lower().split())
    if not _NAME.match(name):
        raise InvalidRequest(
            f"criterion name {raw!r}: use a short name of letters, digits and _ (e.g. "
            "'legibility'), and put its meaning in a dict: {'legibility': 'text reads easily'}"
        )
    return name


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def verdict_schema(rubric: Rubric) -> dict[str, Any]:
    """Gates first (pass/fail per criterion), then what text the image shows, then a 0-5 score
    and a short reason per criterion: the order the model writes its answer in."""
    score = _object(
        {"score": {"type": "integer", "enum": list(SCORES)}, "reason": {"type": "string"}}
    )
    return _object(
        {
            "gates": _object({name: {"type": "boolean"} for name in rubric.names}),
            "text_in_image": {"type": "string"},
            "scores": _object({name: score for name in rubric.names}),
        }
    )


def comparison_schema() -> dict[str, Any]:
    return _object(
        {"reason": {"type": "string"}, "winner": {"type": "string", "enum": list(WINNERS)}}
    )


def _criteria_lines(rubric: Rubric) -> str:
    return "\n".join(f"- {name}: {meaning}" for name, meaning in rubric.criteria)


def verdict_instructions(rubric: Rubric) -> str:
    return (
        "You judge one generated image against a rubric. Judge only what you see.\n\n"
        f"Rubric (what the image should be):\n<<<\n{rubric.text}\n>>>\n\n"
        f"Criteria:\n{_criteria_lines(rubric)}\n\n"
        "First decide each gate: true only if the image meets that criterion's minimum bar. "
        "Then write every piece of text visible in the image, exactly as written, one line "
        "each (empty if there is none). Then score each criterion on its own; do not average "
        f"scores into one another.\n{ANCHORS}\n"
        "Each reason: one short sentence about what you see."
    )


def comparison_instructions(rubric: Rubric) -> str:
    return (
        "Two generated images follow: the first, then the second. Which one better meets the "
        "rubric? Judge only what you see; the order they come in means nothing.\n\n"
        f"Rubric:\n<<<\n{rubric.text}\n>>>\n\nCriteria:\n{_criteria_lines(rubric)}\n\n"
        "Give a reason of one or two short sentences, then the winner: first, second, or tie "
        "when neither is clearly better."
    )


def check_verdict(rubric: Rubric, payload: Mapping[str, Any]) -> str | None:
    """What is wrong with a verdict `payload` (None: nothing). A schema-following service makes
    this moot; a compatible server or a broken answer may not follow it."""
    gates, scores = payload.get("gates"), payload.get("scores")
    if not isinstance(gates, Mapping) or not isinstance(scores, Mapping):
        return "the verdict has no gates or no scores"
    for name in rubric.names:
        entry = scores.get(name)
        if not isinstance(gates.get(name), bool):
            return f"no pass/fail for {name!r}"
        if not isinstance(entry, Mapping) or entry.get("score") not in SCORES:
            return f"no 0-5 score for {name!r}"
        if isinstance(entry.get("score"), bool) or not isinstance(entry.get("reason"), str):
            return f"no reason for {name!r}"
    return None


def check_comparison(payload: Mapping[str, Any]) -> str | None:
    if payload.get("winner") not in WINNERS or not isinstance(payload.get("reason"), str):
        return "the comparison names no winner (first, second or tie) or no reason"
    return None
