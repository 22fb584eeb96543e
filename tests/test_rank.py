"""`ig.compare` and `ig.rank` against the fake judge (both orders in the request log), and the
Bradley-Terry fit and chart on their own."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

import imagenb as ig
from imagenb.errors import InvalidRequest
from imagenb.judging import bradley_terry, chart, ranking
from imagenb.testing import judge as fake_judge

RUBRIC = "a poster for a jazz night, bold and legible"
STYLES = ["flat vector", "woodcut", "neon photo", "watercolour"]


def judge_log(server):
    return [e for e in server.log if e["path"] == "/v1/responses"]


@pytest.fixture
def styles(fake):
    frame = ig.prompt_matrix("a jazz night poster, {style}, take {take}", style=STYLES, take=[1, 2])
    return ig.grid(frame, rows="take", cols="style", quality="low", size="square")


def test_compare_asks_in_both_orders_and_names_the_winner_with_its_reason(fake, styles):
    a, b = styles.frame["image"][0], styles.frame["image"][1]
    result = ig.compare(a, b, RUBRIC)
    sent = judge_log(fake)
    assert len(sent) == 2
    assert sent[0]["image_sha256s"] == list(reversed(sent[1]["image_sha256s"]))
    assert all(e["params"]["schema"] == "image_comparison" for e in sent)
    assert result.winner in ("a", "b", "tie") and result.reason
    assert result.cost_usd == pytest.approx(fake.judge.billed_usd, rel=0.01)
    assert str(result).startswith(("a is better", "b is better", "tie"))
    again = ig.compare(a, b, RUBRIC)
    assert again.cached and again.cost_usd == 0 and len(judge_log(fake)) == 2


def test_when_the_two_orders_disagree_it_is_a_tie(fake, styles):
    images = list(styles.frame["image"])
    merits = {img.key: fake_judge._merit(img.path.read_bytes()) for img in images}
    a, b = min(
        ((x, y) for x in images for y in images if x.key < y.key),
        key=lambda p: abs(merits[p[0].key] - merits[p[1].key]),
    )
    assert abs(merits[a.key] - merits[b.key]) < fake_judge.CLOSE_MERITS  # the judge says "first"
    result = ig.compare(a, b, RUBRIC)
    assert result.orders[0][0] == "a" and result.orders[1][0] == "b"
    assert result.winner == "tie" and not result.consistent
    assert "a first:" in result.reason and "b first:" in result.reason


def test_rank_four_styles_judges_every_pair_in_both_orders(fake, styles):
    ranked = ig.rank(styles, by="style", rubric=RUBRIC)
    assert list(ranked.columns) == [
        "rating", "ci_low", "ci_high", "wins", "losses", "ties", "comparisons",
    ]  # fmt: skip
    assert sorted(ranked.index) == sorted(STYLES) and ranked.index.name == "style"
    # 8 images in 4 styles: 28 pairs, of which 4 share a style -> 24 pairs, 48 requests
    sent = judge_log(fake)
    assert len(sent) == 48 and ranked.attrs["pairs"] == 24
    orders = {tuple(e["image_sha256s"]) for e in sent}
    assert all((y, x) in orders for x, y in orders)  # every pair in both orders
    assert (ranked["ci_low"] <= ranked["rating"]).all()
    assert (ranked["rating"] <= ranked["ci_high"]).all()
    assert ranked["rating"].is_monotonic_decreasing
    assert ranked["comparisons"].sum() == 2 * 24  # each pair counts for both its styles
    assert (ranked["wins"] + ranked["losses"] + ranked["ties"] == ranked["comparisons"]).all()
    assert ranked["wins"].sum() == ranked["losses"].sum()
    assert 0 <= ranked.attrs["flip_rate"] <= 1
    assert ranked.attrs["cost_usd"] == pytest.approx(fake.judge.billed_usd, rel=0.01)
    again = ig.rank(styles, by="style", rubric=RUBRIC)
    assert len(judge_log(fake)) == 48 and again["rating"].equals(ranked["rating"])


def test_rank_refuses_bad_columns_and_single_values(fake, styles):
    with pytest.raises(InvalidRequest, match="not a column"):
        ig.rank(styles, by="colour", rubric=RUBRIC)
    one = ig.grid(["a poster"], quality="low", size="square")
    with pytest.raises(InvalidRequest, match="at least two"):
        ig.rank(one, by="prompt", rubric=RUBRIC)
    with pytest.raises(InvalidRequest, match="rounds"):
        ig.rank(styles, by="style", rubric=RUBRIC, rounds=0)
    assert judge_log(fake) == []


def test_large_grids_draw_rounds_of_random_opponents_from_other_groups():
    groups = [g for g in range(8) for _ in range(4)]  # 32 images: 448 cross pairs
    pairs = ranking.pairs_of(groups, None)
    assert len(pairs) <= ranking.DEFAULT_ROUNDS * 32 and len(pairs) < 448
    assert all(groups[i] != groups[j] and i < j for i, j in pairs)
    assert {g for p in pairs for g in (groups[p[0]], groups[p[1]])} == set(range(8))
    assert ranking.pairs_of(groups, None) == pairs  # seeded: a re-run asks the same questions
    assert len(ranking.pairs_of([0, 1, 1], None)) == 2  # small: all cross pairs


def test_bradley_terry_matches_the_closed_form_and_keeps_unbeaten_items_finite():
    # two items, 3 wins to 1: log-odds ln(3) without regularisation
    a, b = np.array([0, 0, 0, 1]), np.array([1, 1, 1, 0])
    theta = bradley_terry.fit(2, a, b, np.ones(4), alpha=0.0)
    assert theta[0] - theta[1] == pytest.approx(np.log(3), abs=1e-8)
    # an item that never lost is finite with regularisation, and rated first
    a, b = np.array([0, 0, 1]), np.array([1, 2, 2])
    ratings = bradley_terry.rate(3, a, b, np.ones(3), rounds=200)
    assert np.all(np.isfinite(ratings.rating)) and ratings.rating.argmax() == 0
    assert ratings.rating.mean() == pytest.approx(1000)
    assert np.all(ratings.ci_low <= ratings.rating) and np.all(ratings.rating <= ratings.ci_high)
    # ties count half: all ties -> equal ratings
    even = bradley_terry.fit(2, np.array([0, 1]), np.array([1, 0]), np.array([0.5, 0.5]))
    assert even[0] == pytest.approx(even[1])


def test_the_chart_is_static_svg_with_escaped_labels():
    frame = pd.DataFrame(
        {"rating": [1100.0, 900.0], "ci_low": [1000.0, 800.0], "ci_high": [1200.0, 1000.0]},
        index=pd.Index(["<script>alert(1)</script>", "a & b"], name="style<b>"),
    )
    bundle = ig.rank_chart(frame)._repr_mimebundle_()
    svg = bundle["image/svg+xml"]
    ET.fromstring(svg)  # well-formed XML
    assert "<script" not in svg and "&lt;script&gt;" in svg and "a &amp; b" in svg
    assert "<style" not in svg and "style<b>" not in svg
    html = bundle["text/html"]
    assert html.startswith('<img src="data:image/svg+xml;base64,')
    assert base64.b64decode(html.split(",", 1)[1].split('"')[0]).decode() == svg
    assert chart.svg(frame).count("<circle") == 2


def test_a_comparison_escapes_hostile_reasons_in_html():
    from imagenb.judging.comparisons import Comparison

    evil = "<script>alert('x')</script>"
    shown = Comparison("tie", (("a", evil), ("b", evil)), 0.0, False, "k1", "k2")._repr_html_()
    assert "<script" not in shown and shown.count("&lt;script&gt;") == 2


def test_rank_on_replay_with_nothing_stored_says_so(fake, styles):
    from imagenb.core import config
    from imagenb.errors import NotInStore

    config.configure(backend="replay")
    with pytest.raises(NotInStore, match="replay"):
        ig.rank(styles, by="style", rubric=RUBRIC)
