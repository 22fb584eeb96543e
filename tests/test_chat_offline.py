"""Conversations without a key: the mainline catalog, preview turns, the tree, `%%imagechat`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import imagenb as ig
from imagenb.conversations import money
from imagenb.conversations.settings import settings
from imagenb.core import catalog
from imagenb.errors import InvalidRequest
from imagenb.magics.chat import forget_chats
from imagenb.testing import FakeImagesServer


def test_the_catalog_holds_mainlines_with_prices_efforts_and_shutdowns() -> None:
    default = catalog.lookup_mainline(catalog.DEFAULT_MAINLINE)
    assert default.shutdown is None and "high" in default.efforts and default.text_in > 0
    for spec in catalog.MAINLINE_MODELS.values():
        assert spec.sources and spec.text_out >= spec.text_in >= spec.text_in_cached
        assert (spec.shutdown is None) == (spec.use_instead is None)
        if spec.use_instead:
            assert spec.use_instead in catalog.MAINLINE_MODELS
    with pytest.raises(InvalidRequest, match=r"shut down on 2026-12-11.*'gpt-6\.1-sol'"):
        catalog.lookup_mainline("gpt-5", today="2026-12-11")
    assert catalog.lookup_mainline("gpt-5", today="2026-12-10").name == "gpt-5"
    with pytest.raises(InvalidRequest, match="image model"):
        catalog.lookup_mainline("gpt-image-1")  # a retired image model is still no mainline


def test_estimate_grows_with_the_context_it_re_reads() -> None:
    s = settings(size="1024x1024", quality="low")
    first = money.estimate(s, "a fox", context=0, pictures=[])
    later = money.estimate(s, "a fox", context=money.context_tokens(["a fox"], [(1024, 1024)]),
                           pictures=[(1024, 1024)])  # fmt: skip
    assert later.mainline_usd > first.mainline_usd and later.image_usd > first.image_usd
    thinking = money.estimate(settings(thinking="high"), "a fox", context=0, pictures=[])
    assert (
        thinking.mainline_usd
        > money.estimate(settings(), "a fox", context=0, pictures=[]).mainline_usd
    )


def test_preview_turns_carry_the_text_and_replay(capsys: pytest.CaptureFixture[str]) -> None:
    c = ig.chat(thinking="low", web_search=True, size="1024x1024", quality="low")
    first = c.say('a sign that says "OPEN"')
    second = c.say("make it red")
    assert first.image is not None and second.image is not None
    assert first.image.backend == "preview" and second.revised_prompt.startswith("make it red")
    assert second.reasoning and first.sources
    assert ig.spent().usd == 0 and ig.spent().preview_usd > 0
    html = c.tree().html
    assert "PREVIEW" in html and "<style" not in html and "<script" not in html
    again = ig.chat(thinking="low", web_search=True, size="1024x1024", quality="low")
    replay = again.say('a sign that says "OPEN"')
    assert replay.cached and replay.image.path == first.image.path


def test_a_preview_turn_is_never_served_to_a_service() -> None:
    ig.chat(size="1024x1024", quality="low").say("a fox")
    with FakeImagesServer() as server:
        ig.configure(backend="openai", api_key="sk-test-chat-000000", base_url=server.base_url)
        turn = ig.chat(size="1024x1024", quality="low").say("a fox")
        assert not turn.cached and len(server.responses.requests) == 1


def test_the_tree_puts_branches_side_by_side() -> None:
    c = ig.chat(size="1024x1024", quality="low")
    root = c.say("a house")
    root.say("with a red door")
    root.say("with a blue door")
    html = c.tree().html
    assert html.count("turn ") == 3 and "display:flex" in html
    frame = c.frame
    assert list(frame.columns[:8]) == ["turn", "parent", "text", "revised_prompt", "path",
                                       "status", "cost_usd", "latency_s"]  # fmt: skip
    assert frame["parent"].tolist()[1:] == [0, 0]


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    from traitlets.config import Config

    # history in memory: the first shell of the process must not keep a file in a tmp HOME
    ip = InteractiveShell.instance(config=Config(HistoryManager={"hist_file": ":memory:"}))
    ip.extension_manager.load_extension("imagenb")
    forget_chats()
    yield ip
    forget_chats()
    for name in ("poster", "t"):
        ip.user_ns.pop(name, None)


def test_the_imagechat_magic_continues_and_branches(shell: InteractiveShell) -> None:
    cells = [
        "%%imagechat -c poster -s 1024x1024 -q low\na poster for {place}",
        "%%imagechat -c poster\nbigger title",
        "%%imagechat -c poster --from 0 --thinking high -o t\nas a woodcut",
    ]
    shell.user_ns["place"] = "Kyoto"
    for cell in cells:
        with capture_output():
            assert shell.run_cell(cell, store_history=False).success
    chat = shell.user_ns["poster"]
    assert [t.prompt for t in chat.turns] == ["a poster for Kyoto", "bigger title", "as a woodcut"]
    assert chat.turns[2].parent is chat.turns[0] and shell.user_ns["t"] is chat.turns[2]
    assert chat.turns[2].reasoning


def test_imagechat_user_errors_are_one_line(shell: InteractiveShell) -> None:
    with capture_output() as cap:
        shell.run_cell("%%imagechat --thinking loud\nhello", store_history=False)
    lines = [line for line in cap.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("imagenb: thinking='loud'")
    with capture_output() as cap:
        shell.run_cell("%%imagechat --from 5\nhello", store_history=False)
    assert "Traceback" not in cap.stdout + cap.stderr


def test_a_japanese_sign_passes_its_self_check_offline() -> None:
    c = ig.chat(size="1024x1024", quality="low")
    turn = c.say('a shop sign that says "いらっしゃいませ"', check_text="いらっしゃいませ")
    assert turn.text_check is not None and turn.text_check.passed
    assert turn.attempts == [turn]


def test_a_chat_estimates_its_next_turn_and_later_turns_cost_more() -> None:
    c = ig.chat(size="1024x1024", quality="low", thinking="high")
    first = c.estimate("a fox")
    turn = c.say("a fox")
    assert turn.cost_usd == pytest.approx(first.usd)  # preview bills its estimate
    later = c.estimate("a fox in the snow")
    assert later.usd > first.usd and later.is_estimate and "mainline" in str(later)


def test_imagechat_estimate_sends_nothing(shell: InteractiveShell) -> None:
    with capture_output() as cap:
        assert shell.run_cell(
            "%%imagechat -c poster --estimate\na fox", store_history=False
        ).success
    assert cap.stdout.startswith("next turn of 'poster': ~$")
    assert shell.user_ns["poster"].turns == []
