"""`ig.grid(..., judge=RUBRIC)` and `imagenb grid ... --judge RUBRIC` against the fake."""

from __future__ import annotations

import re

import pytest

import imagenb as ig
from imagenb.cli import main as cli
from imagenb.errors import InvalidRequest
from imagenb.testing.judge import JudgeDesk

RUBRIC = "a calm seaside postcard"


def frame():
    return ig.prompt_matrix("a {place} postcard, {light}", place=["Nice", "Porto"],
                            light=["dawn", "noon"])  # fmt: skip


def test_a_judged_grid_has_score_columns_and_a_badge_on_each_cell(fake):
    g = ig.grid(frame(), rows="place", cols="light", quality="low", size="square", judge=RUBRIC)
    out = g.frame
    assert {"judge_score", "judge_passed", "score_fidelity", "score_text", "score_craft",
            "judge_error"} <= set(out.columns)  # fmt: skip
    assert out["judge_score"].between(0, 5).all() and out["judge_error"].isna().all()
    assert fake.judge.requests == 4
    html = g._repr_mimebundle_()["text/html"]
    assert len(re.findall(r"★ \d\.\d/5", html)) == 4
    again = ig.grid(frame(), rows="place", cols="light", quality="low", size="square",
                    judge=RUBRIC)  # fmt: skip
    assert again.frame["judge_score"].tolist() == out["judge_score"].tolist()
    assert fake.judge.requests == 4  # stored verdicts: nothing judged twice


def test_a_bad_rubric_is_refused_before_any_image_is_made(fake):
    with pytest.raises(InvalidRequest, match="rubric"):
        ig.grid(frame(), quality="low", size="square", judge="  ")
    assert fake.stats.image_requests == 0


def test_a_refused_verdict_shows_on_its_cell_and_the_images_stay(fake):
    fake.judge = JudgeDesk(refuse_words=("postcard",))
    g = ig.grid(frame(), quality="low", size="square", judge=RUBRIC)
    assert (g.frame["status"] == "ok").all()
    assert g.frame["judge_error"].str.contains("refused").all()
    assert g._repr_mimebundle_()["text/html"].count("judge: error") == 4


def test_a_hostile_rubric_and_reasons_are_escaped_in_the_badges(fake, monkeypatch):
    from imagenb.testing import judge as fake_judge

    evil = "<script>alert('x')</script>"
    real_fill = fake_judge._fill

    def hostile(schema, path, ctx):
        value = real_fill(schema, path, ctx)
        return evil if path.endswith("/reason") else value

    monkeypatch.setattr(fake_judge, "_fill", hostile)
    g = ig.grid(["a <b>bold</b> postcard"], quality="low", size="square", judge=evil)
    html = g._repr_mimebundle_()["text/html"]
    assert "<script" not in html and "&lt;script&gt;" in html and "<b>bold" not in html


def test_the_cli_judges_a_grid(fake, tmp_path, capsys):
    csv = tmp_path / "prompts.csv"
    csv.write_text("prompt\na lighthouse postcard\na harbour postcard\n", encoding="utf-8")
    out = tmp_path / "sheet.html"
    code = cli.main(["grid", str(csv), "-q", "low", "-s", "square", "--judge", RUBRIC,
                     "-o", str(out)])  # fmt: skip
    assert code == 0 and fake.judge.requests == 2
    printed = capsys.readouterr().out
    assert "judge_score" in printed and "lighthouse" in printed
    assert out.read_text(encoding="utf-8").count("/5</span>") == 2
