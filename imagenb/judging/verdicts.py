"""`ig.judge`: one structured verdict per image against a rubric, as a DataFrame with one row
per image and criterion.

`cost_usd` is what this call paid for the verdict, shared out over its criteria (so the
column sums to the call's cost; 0 for verdicts served from the store).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagenb.core import config as config_mod
from imagenb.judging import asking, rubrics, subjects

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = (
    "key", "criterion", "score", "passed", "reason", "judge_model", "cost_usd", "judge_text",
    "cached", "error",
)  # fmt: skip


def judge(
    images: Any,
    rubric: str,
    *,
    criteria: Any = None,
    model: str | None = None,
    thinking: str | None = None,
    fresh: bool = False,
) -> pd.DataFrame:
    """Ask a vision model to judge each image against `rubric`: per criterion a pass/fail
    gate, a 0-5 score and a short reason. Verdicts are stored (nothing is judged twice unless
    `fresh`), estimated and checked against the budget before anything is sent.

    `images`: an `ImageSet`, `GeneratedImage`s, a `Grid` or `Storyboard`, paths, bytes or PIL
    images. `criteria`: names, or a dict of name -> meaning (default: fidelity, text, craft).
    `model`: a judge model from `ig.catalog.MAINLINE_MODELS`. `thinking`: a reasoning effort
    (default: the model's lowest). A refused or malformed verdict is that image's `error`.
    """
    outcomes = run(images, rubric, criteria=criteria, model=model, thinking=thinking,
                   fresh=fresh)  # fmt: skip
    return frame(outcomes)


def run(
    images: Any,
    rubric: str,
    *,
    criteria: Any = None,
    model: str | None = None,
    thinking: str | None = None,
    fresh: bool = False,
) -> list[asking.Outcome]:
    """The verdicts, as outcomes (for callers that lay them out their own way: grids)."""
    cfg = config_mod.current()
    rub = rubrics.build(rubric, criteria)
    spec = asking.judge_model(model)
    effort = asking.effort_for(spec, thinking)
    found = subjects.many(images)
    questions = [asking.question("verdict", [s], rub, spec, effort) for s in found]
    return asking.ask(questions, cfg, fresh=fresh)


def rows(outcome: asking.Outcome) -> list[dict[str, Any]]:
    """The frame rows of one image's verdict: one per criterion, or one naming its error."""
    q = outcome.question
    key, model = q.subjects[0].key, q.request.model
    record = outcome.record
    if record is None:
        error = str(outcome.error) if outcome.error else "no verdict"
        return [_row(key, None, None, None, None, model, 0.0, None, False, error)]
    names = q.rubric.names
    paid = 0.0 if outcome.cached else record.cost_usd / len(names)
    payload = record.payload
    text = payload.get("text_in_image")
    return [
        _row(
            key,
            name,
            int(payload["scores"][name]["score"]),
            bool(payload["gates"][name]),
            str(payload["scores"][name]["reason"]),
            model,
            paid,
            text,
            outcome.cached,
            None,
        )
        for name in names
    ]


def _row(*values: Any) -> dict[str, Any]:
    return dict(zip(COLUMNS, values, strict=True))


def frame(outcomes: list[asking.Outcome]) -> pd.DataFrame:
    import pandas as pd

    out = pd.DataFrame([r for o in outcomes for r in rows(o)], columns=list(COLUMNS))
    out["score"] = out["score"].astype("Int64")
    out["passed"] = out["passed"].astype("boolean")
    out["cost_usd"] = out["cost_usd"].astype("float64")
    return out
