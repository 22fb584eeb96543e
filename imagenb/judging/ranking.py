"""`ig.rank`: which value of a grid column (a style, a prompt, a quality) makes the better
images, by pairwise judging aggregated with Bradley-Terry.

Pairs join images of different values of the column: every such pair when there are at most
`ALL_PAIRS_MAX`, otherwise `rounds` rounds (default `DEFAULT_ROUNDS`) in which each image
meets one opponent drawn at random (seeded, so a re-run asks the stored questions). Each pair
is judged in both orders, and counts as one comparison: a win when both orders agree, else a
tie. The frame's `attrs` hold `flip_rate` (how often the two orders disagreed: a measure of
the judge's position bias), `pairs`, `errors` and `cost_usd`.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from imagenb.api.progress import in_notebook
from imagenb.core import config as config_mod
from imagenb.errors import ImagenbError, InvalidRequest
from imagenb.judging import asking, bradley_terry, chart, comparisons, rubrics, subjects

if TYPE_CHECKING:
    import pandas as pd

ALL_PAIRS_MAX = 64
DEFAULT_ROUNDS = 6
COLUMNS = ("rating", "ci_low", "ci_high", "wins", "losses", "ties", "comparisons")


def pairs_of(groups: list[Any], rounds: int | None, seed: int = 0) -> list[tuple[int, int]]:
    """Index pairs (i < j) of items whose groups differ."""
    every = [
        (i, j)
        for i in range(len(groups))
        for j in range(i + 1, len(groups))
        if groups[i] != groups[j]
    ]
    if rounds is None and len(every) <= ALL_PAIRS_MAX:
        return every
    if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int)
                               or rounds < 1):  # fmt: skip
        raise InvalidRequest(f"rounds must be a whole number of rounds, 1 or more; got {rounds!r}")
    rng = random.Random(seed)
    chosen: set[tuple[int, int]] = set()
    for _ in range(rounds or DEFAULT_ROUNDS):
        for i in range(len(groups)):
            rivals = [j for j in range(len(groups)) if groups[j] != groups[i]]
            j = rng.choice(rivals)
            chosen.add((min(i, j), max(i, j)))
    return sorted(chosen)


def _entries(grid: Any, by: str) -> list[tuple[Any, Any]]:
    if hasattr(grid, "wait"):
        grid.wait()
    frame = grid.frame if hasattr(grid, "frame") else grid
    columns = list(getattr(frame, "columns", []))
    if "image" not in columns:
        raise InvalidRequest(
            "rank needs a Grid, a Storyboard or a DataFrame with an 'image' column"
        )
    if by not in columns:
        raise InvalidRequest(
            f"by={by!r} is not a column; choose one of: {', '.join(map(str, columns))}"
        )
    return [(row[by], row["image"]) for _, row in frame.iterrows() if row["image"] is not None]


def rank(
    grid: Any,
    by: str,
    rubric: str,
    *,
    rounds: int | None = None,
    criteria: Any = None,
    model: str | None = None,
    thinking: str | None = None,
    fresh: bool = False,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per value of column `by`, best first: `rating` (Bradley-Terry, 400-point
    scale, mean 1000), `ci_low`, `ci_high` (bootstrap 95%), `wins`, `losses`, `ties`,
    `comparisons`. Every pair is judged in both orders; the cost of all of them is checked
    against the budget before anything is sent; stored answers are free. In a notebook the
    chart is shown too (`ig.rank_chart(frame)` makes it again)."""
    cfg = config_mod.current()
    rub = rubrics.build(rubric, criteria)
    spec = asking.judge_model(model)
    effort = asking.effort_for(spec, thinking)
    entries = _entries(grid, by)
    groups = list(dict.fromkeys(value for value, _ in entries))
    if len(groups) < 2:
        raise InvalidRequest(f"column {by!r} has {len(groups)} value(s) among finished images; "
                             "ranking needs at least two")  # fmt: skip
    found = [subjects.one(image, f"image {i + 1}") for i, (_, image) in enumerate(entries)]
    of_item = [groups.index(value) for value, _ in entries]
    pairs = pairs_of(of_item, rounds, seed)
    questions = [
        q for i, j in pairs for q in comparisons.questions(found[i], found[j], rub, spec, effort)
    ]
    outcomes = asking.ask(questions, cfg, fresh=fresh)
    out = _frame(groups, by, pairs, of_item, outcomes)
    if in_notebook():
        from IPython.display import display

        display(chart.RankChart(out))  # type: ignore[no-untyped-call]
    return out


def _frame(
    groups: list[Any],
    by: str,
    pairs: list[tuple[int, int]],
    of_item: list[int],
    outcomes: list[asking.Outcome],
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    a, b, score = [], [], []
    flips = 0
    paid = 0.0
    failures: list[ImagenbError] = []
    for k, (i, j) in enumerate(pairs):
        try:
            result = comparisons.settle(outcomes[2 * k], outcomes[2 * k + 1])
        except ImagenbError as exc:
            failures.append(exc)
            continue
        paid += result.cost_usd
        flips += not result.consistent
        a.append(of_item[i])
        b.append(of_item[j])
        score.append({"a": 1.0, "b": 0.0, "tie": 0.5}[result.winner])
    if failures and len(failures) == len(pairs):
        raise failures[0]  # not one pair judged: nothing to rank (replay, a refusing judge)
    errors = len(failures)
    ga, gb = np.array(a, dtype=np.int64), np.array(b, dtype=np.int64)
    s = np.array(score, dtype=np.float64)
    fitted = bradley_terry.rate(len(groups), ga, gb, s)
    rows = []
    for g in range(len(groups)):
        won = int(np.sum((ga == g) & (s == 1.0)) + np.sum((gb == g) & (s == 0.0)))
        lost = int(np.sum((ga == g) & (s == 0.0)) + np.sum((gb == g) & (s == 1.0)))
        tied = int(np.sum(((ga == g) | (gb == g)) & (s == 0.5)))
        rows.append([fitted.rating[g], fitted.ci_low[g], fitted.ci_high[g], won, lost, tied,
                     won + lost + tied])  # fmt: skip
    out = pd.DataFrame(rows, columns=list(COLUMNS), index=pd.Index(groups, name=by))
    out = out.sort_values("rating", ascending=False)
    settled = len(pairs) - errors
    out.attrs.update(pairs=len(pairs), errors=errors, cost_usd=paid,
                     flip_rate=flips / settled if settled else float("nan"))  # fmt: skip
    return out
