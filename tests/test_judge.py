"""`ig.judge` end to end: the real SDK over real HTTP against the fake's structured-output
judge, with what the fake billed checked against what imagenb accounted."""

from __future__ import annotations

import pytest

import imagenb as ig
from imagenb.core import config
from imagenb.engine import session
from imagenb.errors import BudgetExceeded, InvalidRequest
from imagenb.judging import asking, pricing, rubrics
from imagenb.testing.judge import JudgeDesk

RUBRIC = 'a travel poster that reads "VISIT" in bold letters'


def judge_requests(server: object) -> list[dict[str, object]]:
    return [e for e in server.log if e["path"] == "/v1/responses"]


@pytest.fixture
def grid2x2(fake):
    frame = ig.prompt_matrix("a {place} poster, {style}", place=["Lisbon", "Kyoto"],
                             style=["flat", "photo"])  # fmt: skip
    return ig.grid(frame, rows="place", cols="style", quality="low", size="square")


def test_a_2x2_grid_gets_one_verdict_per_image_and_criterion(fake, grid2x2):
    judged = ig.judge(grid2x2, RUBRIC)
    assert list(judged.columns[:7]) == [
        "key", "criterion", "score", "passed", "reason", "judge_model", "cost_usd",
    ]  # fmt: skip
    assert len(judged) == 4 * 3 and judged["error"].isna().all()
    assert (
        judged.groupby("key")["criterion"].apply(list).tolist()
        == [["fidelity", "text", "craft"]] * 4
    )
    assert set(judged["key"]) == {img.key for img in grid2x2.frame["image"]}
    assert judged["score"].between(0, 5).all() and (judged["judge_model"] == "gpt-6-luna").all()
    sent = judge_requests(fake)
    assert len(sent) == 4 and fake.judge.requests == 4
    for entry in sent:  # one image each, at an explicit detail, the lowest effort, strict schema
        assert entry["params"]["details"] == ["high"] and entry["params"]["effort"] == "none"
        assert entry["params"]["schema"] == "image_verdict" and entry["status"] == 200
    # what imagenb accounted equals what the fake billed (within 1%)
    assert judged["cost_usd"].sum() == pytest.approx(fake.judge.billed_usd, rel=0.01)


def test_judging_again_sends_nothing_and_costs_nothing(fake, grid2x2):
    first = ig.judge(grid2x2, RUBRIC)
    spent = session.ledger.usd
    again = ig.judge(grid2x2, RUBRIC)
    assert len(judge_requests(fake)) == 4 and fake.judge.requests == 4
    assert again["cached"].all() and again["cost_usd"].sum() == 0
    assert again[["key", "criterion", "score", "reason"]].equals(
        first[["key", "criterion", "score", "reason"]]
    )
    assert session.ledger.usd == spent
    ig.judge(grid2x2, RUBRIC, fresh=True)  # fresh asks again
    assert fake.judge.requests == 8


def test_other_rubric_criteria_or_model_is_a_new_question(fake, grid2x2):
    ig.judge(grid2x2, RUBRIC)
    ig.judge(grid2x2, RUBRIC, criteria=["legibility"])
    ig.judge(grid2x2, RUBRIC, model="gpt-5.6-luna")
    ig.judge(grid2x2, RUBRIC, thinking="low")
    assert fake.judge.requests == 16
    assert [e["params"]["effort"] for e in judge_requests(fake)][-1] == "low"


def test_judge_spend_counts_against_the_budget_and_the_ledger(fake, grid2x2):
    before = session.ledger.usd
    judged = ig.judge(grid2x2, RUBRIC)
    assert session.ledger.usd - before == pytest.approx(judged["cost_usd"].sum())
    assert session.ledger.by_model["gpt-6-luna"] == pytest.approx(fake.judge.billed_usd, rel=0.01)


def test_a_budget_too_small_refuses_before_sending(fake, grid2x2):
    config.configure(budget_usd=session.ledger.usd + 0.00001)
    with pytest.raises(BudgetExceeded, match="budget"):
        ig.judge(grid2x2, RUBRIC)
    assert judge_requests(fake) == [] and fake.judge.requests == 0


def test_judging_reserves_against_runs_already_under_way_and_releases_what_it_did_not_use(
    fake, grid2x2
):
    """A judging call is a run like any other: the budget another run holds is not there for
    it, and what it reserved and did not spend is given back when it ends."""
    spent_before = session.ledger.usd
    config.configure(budget_usd=spent_before + 0.05)
    other = session.ledger.reserve(0.05 - 0.00001, config.current().budget_usd)
    with pytest.raises(BudgetExceeded, match="budget"):
        ig.judge(grid2x2, RUBRIC)
    assert fake.judge.requests == 0
    other.close()
    ig.judge(grid2x2, RUBRIC)
    assert session.ledger.reserved_usd == pytest.approx(0.0, abs=1e-12)
    assert session.ledger.usd - spent_before == pytest.approx(fake.judge.billed_usd, rel=0.01)


def test_the_estimate_is_an_upper_bound_of_the_bill(fake, grid2x2):
    rub = rubrics.build(RUBRIC)
    spec = asking.judge_model(None)
    found = [asking.question("verdict", [s], rub, spec, "none")
             for s in ig.judge.__globals__["subjects"].many(grid2x2)]  # fmt: skip
    estimate = asking.estimate_usd(found)
    ig.judge(grid2x2, RUBRIC)
    assert fake.judge.billed_usd <= estimate < 3 * fake.judge.billed_usd


def test_a_refusal_or_malformed_verdict_is_that_images_error_and_still_paid(fake, grid2x2):
    fake.judge = JudgeDesk(refuse_words=("forbidden",), malformed_words=("garbled",))
    refused = ig.judge(grid2x2, "a forbidden poster")
    assert len(refused) == 4 and refused["error"].str.contains("refused").all()
    assert refused["score"].isna().all()
    broken = ig.judge(grid2x2, "a garbled poster")
    assert broken["error"].str.contains("not a JSON object").all()
    # both were billed, and both are counted; neither is stored, so asking again asks again
    assert session.ledger.by_model["gpt-6-luna"] == pytest.approx(fake.judge.billed_usd, rel=0.01)
    ig.judge(grid2x2, "a forbidden poster")
    assert fake.judge.requests == 12


def test_an_answer_cut_off_by_max_output_tokens_is_an_error(fake, grid2x2, monkeypatch):
    monkeypatch.setitem(asking.REASONING_TOKENS, "high", 10)  # less than the fake spends
    cut = ig.judge(grid2x2, RUBRIC, thinking="high")
    assert cut["error"].str.contains("incomplete").all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "gpt-4o"}, "no prices for judge model"),
        ({"model": "gpt-6.2-sol", "thinking": "none"}, "not an effort gpt-6.2-sol accepts"),
        ({"criteria": ["a b c!"]}, "criterion name"),
        ({"criteria": ["x", "x"]}, "repeat"),
        ({"criteria": [f"c{i}" for i in range(11)]}, "1 to 10 criteria"),
    ],
)
def test_bad_input_is_refused_before_sending(fake, grid2x2, kwargs, match):
    with pytest.raises(InvalidRequest, match=match):
        ig.judge(grid2x2, RUBRIC, **kwargs)
    assert fake.judge.requests == 0


def test_empty_rubric_and_non_images_are_refused(fake):
    with pytest.raises(InvalidRequest, match="non-empty"):
        ig.judge(b"x", "  ")
    with pytest.raises(InvalidRequest, match="not a readable"):
        ig.judge(b"not an image", RUBRIC)
    with pytest.raises(InvalidRequest, match="no finished images"):
        ig.judge([], RUBRIC)


def test_preview_judges_offline_deterministically_and_is_never_served_to_a_real_judge(fake):
    config.configure(backend="preview")
    images = ig.generate("a fox poster", quality="low", size="square", n=2)
    first = ig.judge(images, RUBRIC)
    second = ig.judge(images, RUBRIC, fresh=True)
    assert first["score"].tolist() == second["score"].tolist()
    assert first["reason"].str.startswith("preview").all()
    config.configure(backend="openai")
    real = ig.judge(images, RUBRIC)
    assert not real["cached"].any() and fake.judge.requests == 2


def test_replay_serves_stored_verdicts_and_names_missing_ones(fake, grid2x2):
    ig.judge(grid2x2, RUBRIC)
    config.configure(backend="replay")
    served = ig.judge(grid2x2, RUBRIC)
    assert served["cached"].all()
    missing = ig.judge(grid2x2, "another rubric")
    assert missing["error"].str.contains("replay: no stored").all()
    assert fake.judge.requests == 4


def test_image_tokens_follow_the_documented_patch_rule() -> None:
    luna = ig.catalog.lookup_mainline("gpt-6-luna")
    assert pricing.image_tokens(luna, 1024, 1024) == 1229  # measured: 1,229
    assert pricing.image_tokens(luna, 1920, 1080) == 2448  # measured: 2,448
    assert pricing.image_patches(1800, 2400, 1536) == 1452  # the guide's worked example
    assert pricing.image_patches(3840, 2160, 2500) <= 2500


def test_rate_limits_and_server_errors_are_retried_and_the_bill_still_matches(fake, grid2x2):
    from imagenb.testing import Faults

    fake.faults = Faults(burst_every=2, burst_length=1, burst_retry_after_ms=10)
    judged = ig.judge(grid2x2, RUBRIC)
    assert judged["error"].isna().all() and fake.judge.requests == 4
    statuses = [e["status"] for e in judge_requests(fake)]
    assert statuses.count(429) >= 2 and statuses.count(200) == 4
    assert judged["cost_usd"].sum() == pytest.approx(fake.judge.billed_usd, rel=0.01)


def test_a_wrong_key_is_that_images_error_and_nothing_is_billed(fake, grid2x2):
    fake.api_key = "sk-the-right-one"
    judged = ig.judge(grid2x2, RUBRIC)
    assert judged["error"].str.contains("not authorised").all()
    assert fake.judge.requests == 0 and session.ledger.by_model.get("gpt-6-luna", 0) == 0


def test_the_cost_is_shown_before_anything_is_sent(fake, grid2x2, capsys):
    capsys.readouterr()
    ig.judge(grid2x2, RUBRIC)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("judge gpt-6-luna: 4 to ask · at most $") and "no budget set" in line
    ig.judge(grid2x2, RUBRIC)
    assert capsys.readouterr().out == ""  # all stored: nothing to ask, nothing printed


def test_the_same_image_twice_is_asked_and_paid_for_once(fake, grid2x2):
    image = grid2x2.frame["image"][0]
    judged = ig.judge([image, image], RUBRIC)
    assert fake.judge.requests == 1 and len(judged) == 6
    assert judged["cost_usd"].sum() == pytest.approx(fake.judge.billed_usd, rel=0.01)
