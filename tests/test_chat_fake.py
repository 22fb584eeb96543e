"""The fake's `/v1/responses`, read through the real SDK: validation as strict as the real
service's, output items, both usages, the event sequence, stored chains and their loss,
`store=false`, moderation, text-only answers, and one bill per response."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from imagenb.testing import FakeImagesServer, Faults

IMAGE_TOOL = {"type": "image_generation", "model": "gpt-image-2", "size": "1024x1024",
              "quality": "low"}  # fmt: skip


@pytest.fixture
def server() -> Iterator[FakeImagesServer]:
    with FakeImagesServer() as srv:
        yield srv


@pytest.fixture
def client(server: FakeImagesServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as sdk:
        yield sdk


def create(client: openai.OpenAI, **kwargs: Any) -> Any:
    body: dict[str, Any] = {"model": "gpt-6.2-sol", "input": "a red fox", "tools": [IMAGE_TOOL]}
    return client.responses.create(**{**body, **kwargs})


@pytest.mark.parametrize(
    ("change", "status", "fragment"),
    [
        ({"model": "gpt-image-2"}, 400, "not supported with the Responses API"),
        ({"model": "gpt-4.1-nano"}, 404, "shut down on 2026-10-23"),
        ({"tools": [{**IMAGE_TOOL, "n": 2}]}, 400, "Unknown parameter: 'tools[0].n'"),
        ({"tools": [{**IMAGE_TOOL, "size": "1000x1000"}]}, 400, "divisible by 16"),
        ({"tool_choice": {"type": "web_search"}}, 400, "not found in 'tools'"),
        ({"reasoning": {"effort": "none"}}, 400, "does not support 'none'"),
        ({"previous_response_id": "resp_unknown"}, 400, "not found"),
        ({"tools": [{**IMAGE_TOOL, "partial_images": 2}]}, 400, "only supported when stream"),
        ({"extra_body": {"n": 2}}, 400, "Unknown parameter: 'n'"),
    ],
)
def test_invalid_requests_are_refused_and_not_billed(
    server: FakeImagesServer, client: openai.OpenAI, change: dict[str, Any], status: int,
    fragment: str,
) -> None:  # fmt: skip
    with pytest.raises(openai.APIStatusError) as caught:
        create(client, **change)
    assert caught.value.status_code == status
    assert fragment in caught.value.message
    assert server.responses.bills == []


def test_output_items_and_both_usages(server: FakeImagesServer, client: openai.OpenAI) -> None:
    response = create(
        client,
        tools=[IMAGE_TOOL, {"type": "web_search"}],
        reasoning={"effort": "high", "summary": "auto"},
        include=["web_search_call.action.sources"],
    )
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "web_search_call", "image_generation_call", "message"]
    reasoning, search, image, message = response.output
    assert "a red fox" in reasoning.summary[0].text
    assert search.action.sources and search.action.sources[0].url.startswith("https://")
    assert image.status == "completed" and image.revised_prompt.startswith("a red fox")
    assert base64.b64decode(image.result)[:8] == b"\x89PNG\r\n\x1a\n"
    assert message.content[0].annotations[0].title.endswith("a red fox")
    assert response.usage.output_tokens_details.reasoning_tokens == 512
    assert response.tool_usage.image_gen.output_tokens > 0
    assert response.tool_usage.web_search.num_requests == 1
    bill = server.responses.bills[0]
    assert bill.response_id == response.id and bill.usd > 0


def test_chain_re_reads_context_and_forgetting_breaks_it(
    server: FakeImagesServer, client: openai.OpenAI
) -> None:
    first = create(client)
    second = create(client, input="bigger", previous_response_id=first.id,
                    tool_choice={"type": "image_generation"})  # fmt: skip
    assert second.usage.input_tokens > first.usage.input_tokens + 1000  # the image re-read
    assert second.usage.input_tokens_details.cached_tokens >= 1024
    assert second.output[-2].action == "edit"
    server.responses.forget()
    with pytest.raises(openai.BadRequestError, match="not found"):
        create(client, input="again", previous_response_id=second.id)


def test_store_false_responses_cannot_be_continued(client: openai.OpenAI) -> None:
    first = create(client, store=False)
    with pytest.raises(openai.BadRequestError, match="not found"):
        create(client, input="more", previous_response_id=first.id)


def test_streaming_event_sequence(server: FakeImagesServer, client: openai.OpenAI) -> None:
    stream = create(client, stream=True, tools=[{**IMAGE_TOOL, "partial_images": 2}],
                    reasoning={"effort": "low", "summary": "auto"})  # fmt: skip
    with stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.image_generation_call.partial_image") == 2
    assert "response.reasoning_summary_text.delta" in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    image_at = kinds.index("response.image_generation_call.completed")
    done = events[image_at + 1]
    assert done.type == "response.output_item.done" and done.item.result
    final = events[-1].response
    partials = 2 * 100
    assert final.tool_usage.image_gen.output_tokens == 196 + partials  # 1024² low + partials
    assert server.responses.billed_usd(final.id) > 0


def test_text_only_answer_and_moderation(server: FakeImagesServer, client: openai.OpenAI) -> None:
    server.responses.text_only_words = ("describe",)
    answer = create(client, input="describe a fox", tool_choice={"type": "image_generation"})
    assert [i.type for i in answer.output] == ["reasoning", "message"]
    assert answer.tool_usage.image_gen.output_tokens == 0
    server.faults = Faults(moderation_words=("gore",))
    blocked = create(client, input="gore everywhere")
    call = next(i for i in blocked.output if i.type == "image_generation_call")
    assert call.status == "failed" and call.error.code == "moderation_blocked"
    assert call.error.moderation_details.categories == ["violence"]


def test_faults_apply_to_responses(server: FakeImagesServer, client: openai.OpenAI) -> None:
    server.faults = Faults(error_rate=1.0)
    with pytest.raises(openai.InternalServerError):
        create(client)
    assert server.responses.bills == []


def test_every_request_is_logged_even_the_refused(
    server: FakeImagesServer, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError):
        create(client, model="gpt-image-2")
    assert [r["model"] for r in server.responses.requests] == ["gpt-image-2"]


def test_slow_answers_are_injected_too(server: FakeImagesServer, client: openai.OpenAI) -> None:
    server.faults = Faults(slow_rate=1.0, slow_seconds=0.2)
    create(client)
    assert server.log[-1]["fault"] == "slow"
