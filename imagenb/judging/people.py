"""People's side: star ratings stored with the images (`rate`, `ratings`), and how far the
judge agrees with them (`agreement`), with the OCR check beside the judge's text verdicts.

The judge's verdict on an image is the mean of its criterion scores (0-5), put on the
stars' scale as `1 + 4 * mean / 5`; judge and person agree when that is within one star.
Rank correlation is Spearman's (ranks with ties averaged, then Pearson), computed here so
that pandas needs no SciPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagenb.checks import text as textcheck
from imagenb.core import config as config_mod
from imagenb.engine import session
from imagenb.errors import ImagenbError, InvalidRequest
from imagenb.judging import records, subjects
from imagenb.render.html import clip, esc
from imagenb.store.index import ANY_SOURCE
from imagenb.text import match as textmatch

if TYPE_CHECKING:
    import pandas as pd

STARS = (1, 2, 3, 4, 5)
AGREE_WITHIN = 1.0  # stars


def rate(image: Any, stars: int | None) -> None:
    """Give `image` (a `GeneratedImage`, path, bytes or PIL image) 1 to 5 stars; `None` or 0
    clears its rating. Stored in the store beside the image: it outlives the kernel."""
    if stars is not None and (isinstance(stars, bool) or stars not in (0, *STARS)):
        raise InvalidRequest(
            f"stars must be a whole number 1 to 5 (0 or None clears); got {stars!r}"
        )
    subject = subjects.one(image)
    store = session.store_for(config_mod.current())
    if stars in (None, 0):
        records.unrate(store, subject.key)
    else:
        assert stars is not None
        records.rate(store, subject.key, subject.sha256, int(stars))


def ratings() -> pd.DataFrame:
    """Every rating, newest first: `key`, `stars`, `prompt` and `path` (for stored images),
    `rated` (when)."""
    import pandas as pd

    store = session.store_for(config_mod.current())
    rows = records.ratings(store)
    # a rating is of one stored image, whoever made it: its prompt and file are facts of that
    # image, so they are looked up among every source (the config's view serves only its own)
    stored = store.serving(ANY_SOURCE).get_many(key for key, *_ in rows)
    out = pd.DataFrame(
        [
            {
                "key": key,
                "stars": stars,
                "prompt": stored[key].prompt if key in stored else None,
                "path": stored[key].path if key in stored else None,
                "rated": when,
            }
            for key, _, stars, when in rows
        ],
        columns=["key", "stars", "prompt", "path", "rated"],
    )
    out["rated"] = pd.to_datetime(out["rated"], unit="s", utc=True)
    return out


@dataclass(frozen=True)
class Agreement:
    """How far judge and people agree: `n` images both rated, `spearman` (rank correlation,
    NaN when either side gives all the same), `agreement` (share within one star),
    `pass_agreement` (judge passes every gate exactly when people give 3+ stars), `frame`
    (one row per image) and `disagreements` (rows more than a star apart, worst first)."""

    n: int
    spearman: float
    agreement: float
    pass_agreement: float
    text_agreement: float | None
    frame: pd.DataFrame

    @property
    def disagreements(self) -> pd.DataFrame:
        apart = (self.frame["judge_stars"] - self.frame["stars"]).abs()
        return (
            self.frame[apart > AGREE_WITHIN]
            .assign(apart=apart)
            .sort_values("apart", ascending=False)
        )

    def __str__(self) -> str:
        text = "" if self.text_agreement is None else (
            f", judge and OCR agree on the text of {self.text_agreement:.0%}"
        )  # fmt: skip
        return (
            f"judge vs people on {self.n} image(s): Spearman {self.spearman:.2f}, within a star "
            f"{self.agreement:.0%}, pass/fail {self.pass_agreement:.0%}{text}; "
            f"{len(self.disagreements)} disagreement(s)"
        )

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = "".join(
            "<tr>"
            + "".join(
                f'<td style="padding:2px 6px">{esc(clip(str(v), 80))}</td>'
                for v in (r.key[:10], r.prompt or "", r.stars, f"{r.judge_stars:.1f}", r.reason)
            )
            + "</tr>"
            for r in self.disagreements.itertuples()
        )
        head = "".join(
            f'<th style="padding:2px 6px;text-align:left">{h}</th>'
            for h in ("image", "prompt", "stars", "judge", "judge's reason")
        )
        table = f'<table style="border-collapse:collapse">{head}{rows}</table>' if rows else ""
        return f'<div style="font-family:sans-serif;font-size:13px">{esc(self)}{table}</div>'


def _spearman(x: pd.Series, y: pd.Series) -> float:
    import numpy as np

    rx, ry = x.rank().to_numpy(float), y.rank().to_numpy(float)
    if len(rx) < 2 or np.std(rx) == 0 or np.std(ry) == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def agreement(judged: pd.DataFrame) -> Agreement:
    """Compare `ig.judge`'s verdicts (`judged`) with the stars people gave the same images."""
    import pandas as pd

    ok = judged[judged["error"].isna()] if "error" in judged else judged
    per_image = ok.groupby("key", sort=False).agg(
        judge_score=("score", "mean"),
        judge_passed=("passed", "all"),
        reason=("reason", lambda s: " / ".join(map(str, s))),
        judge_text=("judge_text", "first") if "judge_text" in ok else ("reason", "size"),
    )
    if "text" in set(ok["criterion"]):
        text_rows = ok[ok["criterion"] == "text"].set_index("key")["passed"]
        per_image["judge_text_pass"] = text_rows.astype(object)
    people = ratings().drop_duplicates("key").set_index("key")[["stars", "prompt", "path"]]
    both = per_image.join(people, how="inner")
    if len(both) < 2:
        raise InvalidRequest(
            f"{len(both)} judged image(s) have stars; rate at least two with ig.rate(image, "
            "stars) to compare judge and people"
        )
    both["judge_score"] = both["judge_score"].astype(float)
    both["judge_stars"] = 1 + 4 * both["judge_score"] / 5
    both["agree"] = (both["judge_stars"] - both["stars"]).abs() <= AGREE_WITHIN
    text_agreement = _ocr_beside(both)
    frame = both.reset_index()
    people_pass = frame["stars"] >= 3
    return Agreement(
        n=len(frame),
        spearman=_spearman(frame["judge_score"], frame["stars"].astype(float)),
        agreement=float(frame["agree"].mean()),
        pass_agreement=float((frame["judge_passed"].astype(bool) == people_pass).mean()),
        text_agreement=text_agreement,
        frame=pd.DataFrame(frame),
    )


def _ocr_beside(both: pd.DataFrame) -> float | None:
    """Add `expected_text`, `ocr_text` and `ocr_pass` where the prompt quotes text and OCR
    can read it; the share of those where OCR and the judge's text gate agree."""
    expected = [
        "\n".join(textmatch.quoted(p)) or None if isinstance(p, str) else None
        for p in both["prompt"]
    ]
    both["expected_text"] = expected
    both["ocr_text"], both["ocr_pass"] = None, None
    if "judge_text_pass" not in both or not any(expected):
        return None
    agree = []
    for key, text in zip(both.index, expected, strict=True):
        path = both.at[key, "path"]
        if text is None or path is None:
            continue
        try:
            check = textcheck.check_image(path, text)
        except ImagenbError:  # OCR not installed, or no language for this text
            return None
        both.at[key, "ocr_text"], both.at[key, "ocr_pass"] = check.text, check.passed
        agree.append(check.passed == bool(both.at[key, "judge_text_pass"]))
    return sum(agree) / len(agree) if agree else None
