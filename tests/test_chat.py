"""Conversations against the fake with the real SDK: the acceptance points of issue 20."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest
from conftest import TEST_KEY

import imagenb as ig
from imagenb.engine import session
from imagenb.errors import BudgetExceeded, InvalidRequest, NotInStore
from imagenb.testing import FakeImagesServer, Faults

OPTIONS: dict[str, Any] = {"size": "1024x1024", "quality": "low"}


def sent(fake: FakeImagesServer) -> list[dict[str, Any]]:
    return fake.responses.requests


def conversation() -> ig.Chat:
    """Three turns and a branch from turn 1, as notebook cells would make them."""
    c = ig.chat(**OPTIONS)
    first = c.say('a poster that says "OPEN"')
    c.say("make the title bigger")
    c.say("now in blue")
    first.say("as a woodcut")
    return c


def test_three_turns_chain_force_the_tool_and_a_branch_sends_its_parent(
    fake: FakeImagesServer,
) -> None:
    c = conversation()
    requests = sent(fake)
    assert len(requests) == 4
    one, two = c.turns[:2]
    assert "previous_response_id" not in requests[0] and "tool_choice" not in requests[0]
    assert requests[1]["previous_response_id"] == one.response_id
    assert requests[2]["previous_response_id"] == two.response_id
    assert requests[3]["previous_response_id"] == one.response_id
    for r in requests[1:]:
        assert r["tool_choice"] == {"type": "image_generation"}
        assert r["tools"][0] == {"type": "image_generation", "model": "gpt-image-2", **OPTIONS}
        assert r["model"] == "gpt-6.2-sol" and r["input_images"] == 0
        assert "partial_images" not in r["tools"][0] and not r.get("stream")
    assert [t.parent for t in c.turns] == [None, one, two, one]
    assert all(t.status == "ok" and t.image is not None for t in c.turns)
    assert c.frame["parent"].tolist()[1:] == [0, 1, 0] and c.frame["parent"].isna()[0]


def test_every_turn_costs_what_the_fake_billed(fake: FakeImagesServer) -> None:
    c = ig.chat(thinking="high", web_search=True, **OPTIONS)
    estimates = [c.estimate("a lighthouse at dusk")]
    c.say("a lighthouse at dusk")
    estimates.append(c.estimate("add gulls", stream=True))
    c.say("add gulls", stream=True)
    estimates.append(c.estimate("warmer light"))
    c.say("warmer light")  # by now the chain is long enough for cached input
    for estimate, turn in zip(estimates, c.turns, strict=True):
        assert estimate.usd >= turn.cost_usd  # the estimate guards the budget: it errs high
    assert sent(fake)[2]["previous_response_id"] == c.turns[1].response_id
    assert sent(fake)[1]["stream"] and sent(fake)[1]["tools"][0]["partial_images"] == 2
    assert sum(b.usage["input_tokens_details"]["cached_tokens"] for b in fake.responses.bills)
    for turn in c.turns:
        billed = fake.responses.billed_usd(turn.response_id)
        assert billed > 0
        assert turn.cost_usd == pytest.approx(billed, rel=0.01)
        assert not turn.cost_is_estimate
    spend = ig.spent()
    assert spend.usd == pytest.approx(fake.responses.billed_usd(), rel=0.01)
    assert set(spend.by_model) == {"gpt-image-2", "gpt-6.2-sol"}
    assert spend.all_time_by_model["gpt-6.2-sol"] > 0
    # all time counts real money only: the test server's images are not (store sources)
    assert "gpt-image-2" not in spend.all_time_by_model
    assert spend.all_time_usd == pytest.approx(sum(spend.all_time_by_model.values()), rel=1e-6)


def test_rerunning_the_cells_sends_nothing_and_shows_the_same_images(
    fake: FakeImagesServer,
) -> None:
    first = conversation()
    again = conversation()
    assert len(sent(fake)) == 4
    assert all(t.cached for t in again.turns)
    assert [t.image.path for t in again.turns if t.image] == [
        t.image.path for t in first.turns if t.image
    ]
    assert [t.response_id for t in again.turns] == [t.response_id for t in first.turns]
    assert again.cost_usd == 0.0
    assert len(fake.responses.bills) == 4


def test_a_forgotten_parent_is_sent_as_an_image_with_one_line(
    fake: FakeImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    c = ig.chat(**OPTIONS)
    c.say("a paper boat")
    fake.responses.forget()
    turn = c.say("on a stormy sea")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "sent again as an input image" in out[0]
    retry = sent(fake)[-1]
    assert "previous_response_id" not in retry and retry["input_images"] == 1
    assert turn.status == "ok" and turn.notice
    assert turn.cost_usd == pytest.approx(fake.responses.billed_usd(turn.response_id), rel=0.01)
    assert fake.responses.billed_usd() == pytest.approx(ig.spent().usd, rel=0.01)


def test_thinking_high_sends_the_effort_and_shows_the_summary(fake: FakeImagesServer) -> None:
    turn = ig.chat(thinking="high", **OPTIONS).say("a <b>bold</b> fox")
    assert sent(fake)[0]["reasoning"] == {"effort": "high", "summary": "auto"}
    assert turn.reasoning and "Planning the image" in turn.reasoning
    html = turn._repr_html_()
    assert "<details" in html and "Planning the image" in html
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_web_search_shows_its_sources(fake: FakeImagesServer) -> None:
    turn = ig.chat(web_search=True, **OPTIONS).say("the Eiffel tower in 1889")
    request = sent(fake)[0]
    assert {"type": "web_search"} in request["tools"]
    assert request["include"] == ["web_search_call.action.sources"]
    assert turn.sources and all(url.startswith("https://example.org/") for _, url in turn.sources)
    assert "Reference 1: the Eiffel tower in 1889" in turn._repr_html_()


def test_hostile_service_text_is_escaped_everywhere(fake: FakeImagesServer) -> None:
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    c = ig.chat(thinking="low", web_search=True, **OPTIONS)
    c.say(hostile)
    fake.responses.text_only_words = ("describe",)
    c.say(f"describe {hostile}")
    for html in (c.tree().html, c._repr_html_(), *(t._repr_html_() for t in c.turns)):
        assert "<script" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html
        assert "<style" not in html


def test_a_text_only_answer_is_no_image_with_its_text(fake: FakeImagesServer) -> None:
    fake.responses.text_only_words = ("explain",)
    c = ig.chat(**OPTIONS)
    c.say("a kite")
    turn = c.say("explain what you changed")
    assert turn.status == "no image" and turn.image is None
    assert "explain what you changed" in turn.text and turn.text in turn._repr_html_()
    assert turn.cost_usd == pytest.approx(fake.responses.billed_usd(turn.response_id), rel=0.01)


def test_moderation_gives_the_turn_an_error_with_its_categories(fake: FakeImagesServer) -> None:
    fake.faults = Faults(moderation_words=("gore",))
    turn = ig.chat(**OPTIONS).say("gore")
    assert turn.status == "blocked" and turn.image is None
    assert turn.error and "ModerationBlocked" in turn.error and "violence" in turn.error


def test_budget_is_checked_before_sending(fake: FakeImagesServer) -> None:
    ig.configure(budget_usd=0.001)
    with pytest.raises(BudgetExceeded):
        ig.chat(**OPTIONS).say("a fox")
    assert sent(fake) == []


def test_a_turn_reserves_against_runs_under_way_and_releases_the_rest(
    fake: FakeImagesServer,
) -> None:
    """A turn is a run like any other: money another run holds is not there for it, and what
    it reserved beyond its cost is given back when it ends."""
    ig.configure(budget_usd=0.5)
    other = session.ledger.reserve(0.5 - 0.001, 0.5)
    with pytest.raises(BudgetExceeded):
        ig.chat(**OPTIONS).say("a fox")
    assert sent(fake) == []
    other.close()
    ig.chat(**OPTIONS).say("a fox")
    assert session.ledger.reserved_usd == pytest.approx(0.0, abs=1e-12)
    assert session.ledger.usd == pytest.approx(fake.responses.billed_usd(), rel=0.01)


def test_an_answer_lost_after_the_work_counts_as_uncertain_spend() -> None:
    """The service answered, billed, and the connection broke mid-body: nothing is stored, and
    what may have been billed is counted (billed == usd + uncertain_usd, within the estimate)."""
    with FakeImagesServer(faults=Faults(lost_rate=1.0)) as server:
        ig.configure(backend="openai", api_key=TEST_KEY, base_url=server.base_url,
                     ambiguous_retries=0)  # fmt: skip
        with pytest.raises(ig.errors.AnswerLost):
            ig.chat(**OPTIONS).say("a fox")
        billed = server.responses.billed_usd()
        spend = ig.spent()
        assert billed > 0 and spend.usd == 0
        assert billed <= spend.uncertain_usd  # counted at its estimate, which errs high
        assert session.ledger.reserved_usd == pytest.approx(0.0, abs=1e-12)


def test_bad_input_sends_nothing(fake: FakeImagesServer) -> None:
    with pytest.raises(InvalidRequest, match="no image option"):
        ig.chat(n=2)
    with pytest.raises(InvalidRequest, match="shut down"):
        ig.chat(mainline="gpt-4.1-nano")
    with pytest.raises(InvalidRequest, match="image model"):
        ig.chat(mainline="gpt-image-2")
    with pytest.raises(InvalidRequest, match="thinking"):
        ig.chat(thinking="none")
    with pytest.raises(InvalidRequest):
        ig.chat(size="999x999")
    with pytest.raises(InvalidRequest, match="non-empty"):
        ig.chat().say("   ")
    assert sent(fake) == []


def test_rate_limits_are_retried(fake: FakeImagesServer) -> None:
    fake.faults = Faults(burst_every=2, burst_length=1, burst_retry_after_ms=10)
    turn = ig.chat(**OPTIONS).say("a fox")
    assert turn.status == "ok" and len(fake.responses.bills) == 1
    assert fake.stats.rate_limited == 1


def test_replay_serves_stored_turns_and_refuses_new_ones(fake: FakeImagesServer) -> None:
    conversation()
    ig.configure(backend="replay")
    again = conversation()
    assert all(t.cached for t in again.turns) and len(sent(fake)) == 4
    with pytest.raises(NotInStore):
        again.say("something new")


def test_variations_are_concurrent_branches_of_one_parent(fake: FakeImagesServer) -> None:
    c = ig.chat(**OPTIONS)
    root = c.say("a logo for a bakery")
    best = c.say("three takes on the lettering", variations=3)
    assert len(best.variations) == 3 and len(c.turns) == 4
    assert {t.parent for t in best.variations} == {root}
    assert len({t.key for t in best.variations}) == 3
    assert [r["previous_response_id"] for r in sent(fake)[1:]] == [root.response_id] * 3


def test_an_interrupt_mid_turn_leaves_no_half_turn(fake: FakeImagesServer) -> None:
    fake.latency = 1.5
    c = ig.chat(**OPTIONS)
    timer = threading.Timer(0.4, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        c.say("a slow fox")
    timer.join()
    store = session.store_for(ig.configure())
    assert store._query("SELECT count(*) FROM turns")[0][0] == 0
    assert c.turns == []
    fake.latency = 0.0
    turn = ig.chat(**OPTIONS).say("a slow fox")
    again = ig.chat(**OPTIONS).say("a slow fox")
    assert turn.status == "ok" and again.cached
    assert store._query("SELECT count(*) FROM turns")[0][0] == 1


def test_no_key_in_the_store_or_outputs(fake: FakeImagesServer, isolated: Any) -> None:
    from conftest import TEST_KEY, assert_no_key

    c = conversation()
    assert assert_no_key(isolated) > 0
    assert TEST_KEY not in c.tree().html + repr(c) + c.frame.to_string()


def test_tool_usage_is_read_from_the_raw_response_when_the_sdk_lacks_the_field() -> None:
    """An older SDK's `Response` has no `tool_usage` field: the value arrives as an extra,
    and `to_dict()` (what `openai_responses` reads) still carries it."""
    from openai._models import BaseModel

    from imagenb.backends.openai_backend import error_from
    from imagenb.backends.openai_responses import reply_from
    from imagenb.conversations import money
    from imagenb.conversations.settings import settings

    class OldResponse(BaseModel):  # the SDK before `tool_usage`
        id: str
        output: list[dict[str, Any]]
        usage: dict[str, Any]

    image_gen = {"input_tokens": 0, "output_tokens": 196, "total_tokens": 196,
                 "input_tokens_details": {"image_tokens": 0, "text_tokens": 0}}  # fmt: skip
    raw = {"id": "resp_1", "output": [{"type": "image_generation_call", "id": "ig_1",
           "status": "completed", "result": "iVBORw0KGgo=", "revised_prompt": "r"}],
           "usage": {"input_tokens": 10, "output_tokens": 5},
           "tool_usage": {"image_gen": image_gen}}  # fmt: skip
    old = OldResponse.construct(**raw)
    assert "tool_usage" not in OldResponse.model_fields
    reply = reply_from(old.to_dict(), error_from)
    assert reply.tool_usage == {"image_gen": image_gen}
    cost = money.actual(settings(), reply.usage, reply.tool_usage)
    assert cost.image_usd == pytest.approx(196 * 30 / 1e6)


def test_the_self_check_asks_for_fixes_up_to_a_bound(fake: FakeImagesServer) -> None:
    c = ig.chat(**OPTIONS)
    last = c.say('a shop sign that says "OPEN"', check_text="OPEN", fixes=2)
    assert len(last.attempts) == 3 and len(sent(fake)) == 3  # the fake draws no letters
    assert all(not t.text_check.passed for t in last.attempts)
    fix = sent(fake)[1]
    assert 'must read exactly "OPEN"' in fix["input"][0]["content"][0]["text"]
    assert fix["previous_response_id"] == last.attempts[0].response_id
    for attempt in last.attempts:
        billed = fake.responses.billed_usd(attempt.response_id)
        assert attempt.cost_usd == pytest.approx(billed, rel=0.01)
    html = last._repr_html_()
    assert html.count("attempt ") == 3 and "text CER" in html


def test_history_lists_turn_images_with_their_parent(fake: FakeImagesServer) -> None:
    c = conversation()
    frame = ig.history()
    turns = frame[frame["kind"] == "chat"]
    assert len(turns) == 4
    by_key = {t.image.key: t for t in c.turns if t.image}
    for key, parents in zip(turns["key"], turns["input_keys"], strict=True):
        parent = by_key[key].parent
        assert parents == ((parent.image.key,) if parent and parent.image else ())
