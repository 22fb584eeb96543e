"""`ig.grid(..., judge=RUBRIC)`: the grid's finished images judged once it is done, score
columns in `Grid.frame` and a score badge on each cell.

The rubric is checked when the grid is set up, before anything is sent. Judging runs after
the images are in (it needs them) and is estimated and budgeted then; if it cannot run (the
budget, a backend that cannot judge), the grid keeps its images and says why in
`judge_error`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from imagenb.errors import ImagenbError
from imagenb.judging import asking, rubrics, verdicts
from imagenb.render.html import clip, esc

if TYPE_CHECKING:
    import pandas as pd

BADGE_STYLE = (
    "display:inline-block;margin:2px 4px 0 0;padding:0 6px;border-radius:8px;"
    "font:12px sans-serif;color:#fff;background:{colour}"
)


class GridJudge:
    """The judge of one grid: its rubric, and the verdicts once they are in."""

    def __init__(self, rubric_text: str, criteria: Any = None, model: str | None = None) -> None:
        self.rubric = rubrics.build(rubric_text, criteria)  # InvalidRequest before any image
        self.criteria = criteria
        self.model = asking.judge_model(model).name
        self.outcomes: dict[str, asking.Outcome] = {}
        self.error: str | None = None

    def run(self, images: list[Any]) -> None:
        """Judge `images` (stored ones are free); a failure is kept, not raised."""
        if not images:
            return
        try:
            found = verdicts.run(images, self.rubric.text, criteria=self.criteria,
                                 model=self.model)  # fmt: skip
        except ImagenbError as exc:
            self.error = str(exc)
            print(f"imagenb: the grid's images are kept, but were not judged: {exc}")
            return
        self.outcomes = {o.question.subjects[0].key: o for o in found}

    def scores(self, key: str) -> dict[str, Any]:
        """The columns of one image: `judge_score` (mean of its criteria), `judge_passed`
        (every gate), `score_<criterion>` each, `judge_error`."""
        names = self.rubric.names
        empty: dict[str, Any] = {"judge_score": None, "judge_passed": None,
                                 **{f"score_{n}": None for n in names}}  # fmt: skip
        outcome = self.outcomes.get(key)
        if outcome is None:
            return {**empty, "judge_error": self.error}
        if outcome.record is None:
            return {**empty, "judge_error": str(outcome.error)}
        payload = outcome.record.payload
        each = {f"score_{n}": int(payload["scores"][n]["score"]) for n in names}
        return {
            "judge_score": sum(each.values()) / len(each),
            "judge_passed": all(bool(payload["gates"][n]) for n in names),
            **each,
            "judge_error": None,
        }

    def add_columns(self, frame: pd.DataFrame) -> None:
        keys = [getattr(img, "key", None) for img in frame["image"]]
        rows = [self.scores(k) if k is not None else self.scores("") for k in keys]
        for column in rows[0] if rows else ():
            frame[column] = [r[column] for r in rows]
        if rows:
            frame["judge_score"] = frame["judge_score"].astype("float64")
            frame["judge_passed"] = frame["judge_passed"].astype("boolean")

    def badge(self, key: str) -> str:
        """`★ 3.7/5` under a judged image (green when every gate passed), the reasons in its
        tooltip; a grey `judge: error` when it could not be judged; nothing until then."""
        outcome = self.outcomes.get(key)
        if outcome is None:
            return ""
        if outcome.record is None:
            tip = esc(clip(str(outcome.error), 300))
            style = BADGE_STYLE.format(colour="#6b7280")
            return f'<span style="{style}" title="{tip}">judge: error</span>'
        found = self.scores(key)
        payload = outcome.record.payload
        reasons = "; ".join(
            f"{n} {payload['scores'][n]['score']}: {payload['scores'][n]['reason']}"
            for n in self.rubric.names
        )
        colour = "#15803d" if found["judge_passed"] else "#b45309"
        style = BADGE_STYLE.format(colour=colour)
        return (
            f'<span style="{style}" title="{esc(clip(reasons, 600))}">'
            f"★ {found['judge_score']:.1f}/5</span>"
        )
