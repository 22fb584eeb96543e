"""FakeImagesServer behaves like the real service, as seen through the real `openai` SDK."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from conftest import wait_for
from openai.types import ImagesResponse
from PIL import Image

from imagenb.testing import FakeImagesServer, Faults

KEY = "sk-test-fake-server-0123456789abcdef"
PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@pytest.fixture
def srv() -> Iterator[FakeImagesServer]:
    with FakeImagesServer() as server:
        yield server


@pytest.fixture
def client(srv: FakeImagesServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=srv.base_url, api_key=KEY, max_retries=0) as sdk:
        yield sdk


def png(size: tuple[int, int], mode: str = "RGB", fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (10, 20, 30, 0) if "A" in mode else (10, 20, 30)).save(buffer, fmt)
    return buffer.getvalue()


def decode(b64: str | None) -> Image.Image:
    assert b64 is not None
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


# --- generations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "quality", "fmt", "background", "tokens"),
    [
        ("1024x1024", "high", "png", "opaque", 7024),
        ("3840x2160", "high", "jpeg", "opaque", 13342),
        ("1536x1024", "low", "webp", "transparent", 158),
        ("1024x1536", "medium", "png", "transparent", 1372),
    ],
)
def test_generation_returns_exact_images_and_documented_usage(
    srv: FakeImagesServer,
    client: openai.OpenAI,
    size: str,
    quality: Any,
    fmt: Any,
    background: Any,
    tokens: int,
) -> None:
    prompt = "a lighthouse at dusk"
    resp = client.images.generate(
        model="gpt-image-2",
        prompt=prompt,
        size=size,
        quality=quality,
        n=2,
        output_format=fmt,
        background=background,
    )
    assert resp.size == size and resp.quality == quality and resp.output_format == fmt
    assert resp.background == background
    assert resp._request_id and resp._request_id.startswith("req_")
    assert resp.data is not None and len(resp.data) == 2
    images = [decode(d.b64_json) for d in resp.data]
    for image in images:
        assert f"{image.width}x{image.height}" == size
        assert image.format == PIL_FORMAT[fmt]
        assert ("A" in image.mode) == (background == "transparent")
    assert resp.data[0].b64_json != resp.data[1].b64_json  # every variant's bytes differ
    usage = resp.usage
    assert usage is not None and usage.output_tokens_details is not None
    assert usage.output_tokens == 2 * tokens == usage.output_tokens_details.image_tokens
    assert usage.input_tokens_details.text_tokens == -(-len(prompt) // 4) + 6
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert srv.stats.completed == 1 and srv.stats.images_completed == 2
    assert srv.stats.completions_by_prompt[prompt] == 2


def test_auto_resolves_and_output_is_deterministic(client: openai.OpenAI) -> None:
    first = client.images.generate(model="gpt-image-2", prompt="same prompt")
    again = client.images.generate(model="gpt-image-2", prompt="same prompt")
    other = client.images.generate(model="gpt-image-2", prompt="other prompt")
    assert (first.size, first.quality, first.background) == ("1024x1024", "medium", "opaque")
    assert first.usage is not None and first.usage.output_tokens == 1756
    assert first.data and again.data and other.data
    assert first.data[0].b64_json == again.data[0].b64_json
    assert first.data[0].b64_json != other.data[0].b64_json


def test_model_specific_options_are_accepted_where_supported(client: openai.OpenAI) -> None:
    resp = client.images.generate(model="gpt-image-2.5-flare", prompt="x", quality="xhigh")
    assert resp.quality == "xhigh"
    assert resp.usage is not None and resp.usage.output_tokens == 7024  # billed like high
    client.images.generate(model="gpt-image-2.6-sunburst", prompt="x", complexity="low")
    resp = client.images.generate(
        model="gpt-image-2",
        prompt="x",
        output_format="jpeg",
        output_compression=40,
        size="2048x1152",
        safety_identifier="user-1",
    )
    assert resp.safety_identifier == "user-1" and resp.size == "2048x1152"


INVALID = [
    ({"size": "1666x2514"}, "invalid_value", "size", "divisible by 16"),
    ({"size": "1920x1080"}, "invalid_value", "size", "divisible by 16"),
    ({"size": "9:16"}, "invalid_value", "size", "Expected WIDTHxHEIGHT"),
    ({"size": "688x496"}, "invalid_value", "size", "between 655360 and 8294400"),
    ({"size": "3072x768"}, "invalid_value", "size", "1:3 and 3:1"),
    ({"size": "4096x1024"}, "invalid_value", "size", "at most 3840"),
    ({"size": "2048x2048", "model": "gpt-image-1.5"}, "invalid_value", "size", "Supported sizes"),
    ({"quality": "xhigh"}, "invalid_value", "quality", "Supported values"),
    ({"quality": "hd"}, "invalid_value", "quality", "Supported values"),
    ({"n": 11}, "integer_above_max_value", "n", "<= 10"),
    ({"n": 0}, "integer_below_min_value", "n", ">= 1"),
    ({"output_format": "gif"}, "invalid_value", "output_format", "preview access"),
    ({"output_compression": 50}, "invalid_value", "output_compression", "'webp' or 'jpeg'"),
    (
        {"output_format": "jpeg", "output_compression": 101},
        "integer_above_max_value",
        "output_compression",
        "<= 100",
    ),
    (
        {"background": "transparent", "output_format": "jpeg"},
        "invalid_value",
        "background",
        "Transparent",
    ),
    ({"moderation": "off"}, "invalid_value", "moderation", "Supported values"),
    ({"complexity": "low"}, "unsupported_parameter", "complexity", "gpt-image-2.6"),
    ({"partial_images": 2}, "invalid_value", "partial_images", "only supported when stream"),
    ({"prompt": ""}, "empty_string", "prompt", "empty string"),
    ({"prompt": "x" * 32_001}, "string_above_max_length", "prompt", "32000"),
    ({"response_format": "b64_json"}, "unknown_parameter", "response_format", "Unknown parameter"),
    (
        {"extra_body": {"colour": "red"}},
        "unknown_parameter",
        "colour",
        "Unrecognized request argument supplied: colour",
    ),
    ({"extra_body": {"n": "2"}}, "invalid_type", "n", "expected an integer"),
]


@pytest.mark.parametrize(("changes", "code", "param", "text"), INVALID)
def test_invalid_requests_are_rejected_and_cost_nothing(
    srv: FakeImagesServer,
    client: openai.OpenAI,
    changes: dict[str, Any],
    code: str,
    param: str,
    text: str,
) -> None:
    kwargs: dict[str, Any] = {"model": "gpt-image-2", "prompt": "a cat"} | changes
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(**kwargs)
    error = caught.value
    assert (error.status_code, error.code, error.param) == (400, code, param)
    assert text in error.message
    assert error.request_id and error.request_id.startswith("req_")
    if param == "size":
        assert error.type == "image_generation_user_error"
    assert srv.stats.completed == 0 and srv.stats.invalid == 1
    assert [entry["status"] for entry in srv.log] == [400]


@pytest.mark.parametrize("model", ["dall-e-3", "gpt-image-1", "gpt-imagine", None])
def test_retired_unknown_or_missing_models_are_not_found(
    client: openai.OpenAI, model: str | None
) -> None:
    kwargs: dict[str, Any] = {"prompt": "a cat"} | ({"model": model} if model else {})
    with pytest.raises(openai.NotFoundError) as caught:
        client.images.generate(**kwargs)
    assert caught.value.code == "model_not_found"
    assert f"`{model or 'dall-e-2'}`" in caught.value.message


def test_missing_or_wrong_api_key_is_401(srv: FakeImagesServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(srv.base_url.split(":")[2][:-3]))
    try:
        body = json.dumps({"model": "gpt-image-2", "prompt": "x"})
        connection.request(
            "POST", "/v1/images/generations", body, {"Content-Type": "application/json"}
        )
        response = connection.getresponse()
        payload = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 401 and payload["error"]["code"] == "invalid_api_key"
    assert response.getheader("x-request-id")
    with (
        FakeImagesServer(api_key="sk-right") as strict,
        openai.OpenAI(base_url=strict.base_url, api_key="sk-wrong", max_retries=0) as sdk,
    ):
        with pytest.raises(openai.AuthenticationError):
            sdk.images.generate(model="gpt-image-2", prompt="x")
        assert "sk-wrong" not in repr(strict.log)


# --- streaming -----------------------------------------------------------------------------


def test_streaming_yields_partials_then_completed_with_usage(
    srv: FakeImagesServer, client: openai.OpenAI
) -> None:
    events = list(
        client.images.generate(
            model="gpt-image-2", prompt="fox", stream=True, partial_images=2, quality="high"
        )
    )
    assert [e.type for e in events] == ["image_generation.partial_image"] * 2 + [
        "image_generation.completed"
    ]
    partials, final = events[:2], events[2]
    assert [getattr(e, "partial_image_index", None) for e in partials] == [0, 1]
    assert decode(partials[0].b64_json).size == (1024, 1024)
    assert final.type == "image_generation.completed"
    assert final.usage.output_tokens == 7024 + 2 * 100
    assert decode(final.b64_json).size == (1024, 1024)
    assert srv.stats.completed == 1 and srv.stats.streams == 1
    assert srv.log[-1]["stream"] is True


def test_streaming_n2_usages_sum_to_the_request_and_async_works(srv: FakeImagesServer) -> None:
    async def main() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=srv.base_url, api_key=KEY, max_retries=0) as sdk:
            stream = await sdk.images.generate(
                model="gpt-image-2", prompt="owl", stream=True, partial_images=1, n=2
            )
            return [event async for event in stream]

    events = asyncio.run(main())
    assert [e.type.split(".")[1] for e in events] == ["partial_image", "completed"] * 2
    completed = [e for e in events if e.type == "image_generation.completed"]
    assert sum(e.usage.output_tokens for e in completed) == 2 * (1756 + 100)
    assert completed[0].usage.input_tokens > 0 and completed[1].usage.input_tokens == 0
    assert srv.stats.images_completed == 2


def test_mid_stream_error_raises_api_error(srv: FakeImagesServer, client: openai.OpenAI) -> None:
    srv.faults = Faults(stream_error_rate=1.0)
    with pytest.raises(openai.APIError) as caught:
        list(client.images.generate(model="gpt-image-2", prompt="x", stream=True, partial_images=2))
    assert not isinstance(caught.value, openai.APIStatusError)
    assert srv.stats.completed == 0 and srv.stats.stream_errors == 1


# --- edits ---------------------------------------------------------------------------------


def test_multipart_edit_with_two_images_and_mask(
    srv: FakeImagesServer, client: openai.OpenAI
) -> None:
    first, second = png((1024, 1024)), png((512, 768), fmt="JPEG")
    resp = client.images.edit(
        model="gpt-image-2",
        image=[("a.png", first, "image/png"), ("b.jpg", second, "image/jpeg")],
        mask=("mask.png", png((1024, 1024), "RGBA"), "image/png"),
        prompt="put them together",
        n=2,
        size="1536x1024",
    )
    assert resp.data and [decode(d.b64_json).size for d in resp.data] == [(1536, 1024)] * 2
    assert resp.usage is not None
    assert resp.usage.input_tokens_details.image_tokens == 1024 + 32 * 22
    entry = srv.log[-1]
    assert entry["path"] == "/v1/images/edits" and entry["image_count"] == 2
    expected = [hashlib.sha256(first).hexdigest(), hashlib.sha256(second).hexdigest()]
    assert entry["image_sha256s"] == expected
    assert "image" not in entry["params"] and entry["params"]["n"] == 2


@pytest.mark.parametrize(
    ("kwargs", "code", "param"),
    [
        ({"input_fidelity": "high"}, "unsupported_parameter", "input_fidelity"),
        ({"mask": ("m.png", png((64, 64), "RGBA"), "image/png")}, "invalid_value", "mask"),
        ({"mask": ("m.png", png((256, 256)), "image/png")}, "invalid_value", "mask"),
        (
            {"image": ("a.gif", png((256, 256), fmt="GIF"), "image/gif")},
            "invalid_image_format",
            "image[0]",
        ),
        ({"image": [("a.png", png((8, 8)), "image/png")] * 17}, "array_above_max_length", "image"),
        (
            {"model": "gpt-image-1-mini", "input_fidelity": "high"},
            "invalid_value",
            "input_fidelity",
        ),
    ],
)
def test_invalid_edits(
    srv: FakeImagesServer, client: openai.OpenAI, kwargs: dict[str, Any], code: str, param: str
) -> None:
    args: dict[str, Any] = {
        "model": "gpt-image-2",
        "prompt": "edit",
        "image": ("a.png", png((256, 256)), "image/png"),
    }
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.edit(**(args | kwargs))
    assert (caught.value.code, caught.value.param) == (code, param)
    assert srv.stats.completed == 0


def test_input_fidelity_is_accepted_on_gpt_image_1_5(client: openai.OpenAI) -> None:
    image = ("a.png", png((256, 256)), "image/png")
    resp = client.images.edit(model="gpt-image-1.5", image=image, prompt="x", input_fidelity="high")
    assert resp.size == "1024x1024"


def test_json_edit_with_data_url_and_file_id(srv: FakeImagesServer, client: openai.OpenAI) -> None:
    uploaded = client.files.create(file=("ref.png", png((600, 400)), "image/png"), purpose="vision")
    data_url = "data:image/png;base64," + base64.b64encode(png((300, 300))).decode()
    body = {
        "model": "gpt-image-2",
        "prompt": "combine",
        "images": [{"image_url": data_url}, {"file_id": uploaded.id}],
        "output_format": "webp",
    }
    resp = client.post("/images/edits", body=body, cast_to=ImagesResponse)
    assert resp.data and decode(resp.data[0].b64_json).format == "WEBP"
    assert resp.usage is not None and resp.usage.input_tokens_details.image_tokens == 1024 + 704
    assert srv.log[-1]["image_count"] == 2
    with pytest.raises(openai.BadRequestError) as caught:
        client.post(
            "/images/edits",
            body=body | {"images": [{"file_id": "file-nope"}]},
            cast_to=ImagesResponse,
        )
    assert caught.value.param == "images[0].file_id"


# --- faults and limits ---------------------------------------------------------------------


def test_moderation_block(srv: FakeImagesServer, client: openai.OpenAI) -> None:
    srv.faults = Faults(moderation_words=("Battle",))
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(model="gpt-image-2", prompt="an epic battle scene")
    error = caught.value
    assert error.code == "moderation_blocked" and error.type == "image_generation_user_error"
    assert isinstance(error.body, dict)
    assert error.body["moderation_details"] == {
        "moderation_stage": "input",
        "categories": ["violence"],
    }
    assert "safety_violations=[violence]" in error.message
    assert srv.stats.completed == 0 and srv.stats.moderation_blocked == 1


def test_quota_exhausted(srv: FakeImagesServer, client: openai.OpenAI) -> None:
    srv.faults = Faults(quota_exhausted=True)
    with pytest.raises(openai.RateLimitError) as caught:
        client.images.generate(model="gpt-image-2", prompt="x")
    assert caught.value.type == "insufficient_quota"
    assert caught.value.code == "credit_balance_exhausted"
    assert srv.stats.completed == 0


def test_injected_server_errors(srv: FakeImagesServer, client: openai.OpenAI) -> None:
    srv.faults = Faults(error_rate=1.0)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError) as caught:
            client.images.generate(model="gpt-image-2", prompt="x")
        assert caught.value.status_code in (500, 502, 503)
    assert srv.stats.errors_injected == 3 and srv.stats.completed == 0


def test_dropped_connections(srv: FakeImagesServer, client: openai.OpenAI) -> None:
    srv.faults = Faults(drop_rate=1.0)
    with pytest.raises(openai.APIConnectionError):
        client.images.generate(model="gpt-image-2", prompt="x")
    assert srv.stats.dropped == 1 and srv.stats.completed == 0
    assert srv.log[-1]["status"] is None and srv.log[-1]["fault"] == "drop"


def test_slow_request_times_out_but_is_still_billed(srv: FakeImagesServer) -> None:
    srv.faults = Faults(slow_rate=1.0, slow_seconds=0.4)
    with (
        openai.OpenAI(base_url=srv.base_url, api_key=KEY, max_retries=0, timeout=0.1) as sdk,
        pytest.raises(openai.APITimeoutError),
    ):
        sdk.images.generate(model="gpt-image-2", prompt="slow")
    wait_for(lambda: srv.stats.in_flight == 0)
    assert srv.stats.completed == 1 and srv.stats.undelivered == 1


def test_faults_are_reproducible_from_the_seed() -> None:
    def outcomes(seed: int) -> list[int]:
        faults = Faults(error_rate=0.5)
        with (
            FakeImagesServer(seed=seed, faults=faults) as server,
            openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as sdk,
        ):
            for _ in range(12):
                with contextlib.suppress(openai.InternalServerError):
                    sdk.images.generate(model="gpt-image-2", prompt="x", quality="low")
            return [entry["status"] for entry in server.log]

    assert outcomes(7) == outcomes(7)
    assert outcomes(7) != outcomes(8)
    assert {200, 500, 502, 503} >= set(outcomes(7)) > {200}


def test_count_based_429_bursts_are_retried_by_the_sdk(srv: FakeImagesServer) -> None:
    srv.faults = Faults(burst_every=2, burst_length=1, burst_retry_after_ms=20)
    with openai.OpenAI(base_url=srv.base_url, api_key=KEY, max_retries=2) as sdk:
        for _ in range(3):
            sdk.images.generate(model="gpt-image-2", prompt="x", quality="low")
    assert [e["status"] for e in srv.log] == [429, 200] * 3
    assert srv.stats.rate_limited == 3 and srv.stats.completed == 3


def test_timed_429_burst_window(srv: FakeImagesServer, client: openai.OpenAI) -> None:
    srv.faults = Faults(rate_limit_bursts=((0.0, 30.0),))
    with pytest.raises(openai.RateLimitError) as caught:
        client.images.generate(model="gpt-image-2", prompt="x")
    assert caught.value.code == "rate_limit_exceeded"
    assert 25_000 < int(caught.value.response.headers["retry-after-ms"]) <= 30_000


def test_rate_limit_bucket_gives_429_with_retry_headers() -> None:
    with (
        FakeImagesServer(rate_per_minute=60, burst=2) as server,
        openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as sdk,
    ):
        raw = sdk.images.with_raw_response.generate(model="gpt-image-2", prompt="x", n=1)
        assert raw.headers["x-ratelimit-limit-requests"] == "60"
        assert raw.headers["x-ratelimit-remaining-requests"] == "1"
        assert raw.headers["x-ratelimit-reset-requests"].endswith("ms")
        sdk.images.generate(model="gpt-image-2", prompt="x")
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.images.generate(model="gpt-image-2", prompt="x")
        headers = caught.value.response.headers
        assert 800 <= int(headers["retry-after-ms"]) <= 1000
        assert headers["retry-after"] == "1"
        assert server.stats.rate_limited == 1 and server.stats.completed == 2


def test_max_concurrency_is_respected_under_20_concurrent_requests() -> None:
    async def main(server: FakeImagesServer) -> list[BaseException | None]:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as sdk:

            async def one(i: int) -> BaseException | None:
                try:
                    await sdk.images.generate(model="gpt-image-2", prompt=f"p{i}", quality="low")
                except openai.RateLimitError as error:
                    return error
                return None

            return await asyncio.gather(*(one(i) for i in range(20)))

    with FakeImagesServer(max_concurrency=4, latency=0.3) as server:
        results = asyncio.run(main(server))
        limited = [r for r in results if isinstance(r, openai.RateLimitError)]
        assert server.stats.max_in_flight <= 4
        assert len(limited) == 20 - server.stats.completed and limited
        for error in limited:
            assert 100 <= int(error.response.headers["retry-after-ms"]) <= 250
        assert server.stats.rate_limited == len(limited)


def test_latency_runs_concurrently() -> None:
    async def main(server: FakeImagesServer) -> float:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as sdk:
            started = time.monotonic()
            calls = (sdk.images.generate(model="gpt-image-2", prompt=f"p{i}") for i in range(16))
            await asyncio.gather(*calls)
            return time.monotonic() - started

    with FakeImagesServer(latency=0.3, jitter=0.2) as server:
        elapsed = asyncio.run(main(server))
        assert 0.24 <= elapsed < 3.0  # one after another: at least 16 x 0.24 = 3.84 s
        assert server.stats.max_in_flight > 1 and server.stats.completed == 16


# --- files and batches ---------------------------------------------------------------------


def batch_file(lines: list[dict[str, Any]]) -> tuple[str, bytes, str]:
    content = "\n".join(json.dumps(line) for line in lines).encode()
    return ("input.jsonl", content, "application/jsonl")


def generation_line(i: int, **body: Any) -> dict[str, Any]:
    body = {"model": "gpt-image-2", "prompt": f"row {i}", "quality": "low"} | body
    return {
        "custom_id": f"row-{i}",
        "method": "POST",
        "url": "/v1/images/generations",
        "body": body,
    }


def read_jsonl(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_batch_runs_to_completion_with_outputs_and_errors(client: openai.OpenAI) -> None:
    lines = [generation_line(i) for i in range(4)] + [generation_line(9, size="1920x1080")]
    uploaded = client.files.create(file=batch_file(lines), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes > 0
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/images/generations",
        completion_window="24h",
        metadata={"job": "test"},
    )
    assert batch.status == "validating" and batch.metadata == {"job": "test"}
    wait_for(lambda: client.batches.retrieve(batch.id).status == "completed")
    done = client.batches.retrieve(batch.id)
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (5, 4)
    assert done.request_counts.failed == 1 and done.model == "gpt-image-2"
    assert done.usage is not None and done.usage.output_tokens == 4 * 196
    outputs = read_jsonl(client, done.output_file_id)
    assert sorted(o["custom_id"] for o in outputs) == [f"row-{i}" for i in range(4)]
    for output in outputs:
        assert output["response"]["status_code"] == 200 and output["error"] is None
        assert decode(output["response"]["body"]["data"][0]["b64_json"]).size == (1024, 1024)
    errors = read_jsonl(client, done.error_file_id)
    assert [e["custom_id"] for e in errors] == ["row-9"]
    assert errors[0]["response"]["status_code"] == 400
    assert errors[0]["response"]["body"]["error"]["code"] == "invalid_value"


def test_batch_progress_is_observable_and_cancel_keeps_partial_results() -> None:
    with (
        FakeImagesServer(batch_delay=2.0) as server,
        openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as sdk,
    ):
        uploaded = sdk.files.create(
            file=batch_file([generation_line(i) for i in range(40)]), purpose="batch"
        )
        batch = sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/images/generations", completion_window="24h"
        )

        def some_done() -> bool:
            counts = sdk.batches.retrieve(batch.id).request_counts
            return counts is not None and counts.completed >= 2

        wait_for(some_done)
        assert sdk.batches.retrieve(batch.id).status == "in_progress"
        assert sdk.batches.cancel(batch.id).status == "cancelling"
        wait_for(lambda: sdk.batches.retrieve(batch.id).status == "cancelled")
        final = sdk.batches.retrieve(batch.id)
        assert final.cancelled_at and final.request_counts is not None
        assert 2 <= final.request_counts.completed < 40
        assert len(read_jsonl(sdk, final.output_file_id)) == final.request_counts.completed
        assert sdk.batches.cancel(batch.id).status == "cancelled"  # cancelling again: no-op
        with pytest.raises(openai.BadRequestError):
            sdk.batches.cancel(_completed_batch(sdk))


def _completed_batch(sdk: openai.OpenAI) -> str:
    uploaded = sdk.files.create(file=batch_file([generation_line(0)]), purpose="batch")
    batch = sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/images/generations", completion_window="24h"
    )
    wait_for(lambda: sdk.batches.retrieve(batch.id).status == "completed", timeout=15)
    return batch.id


def test_batch_expiry_keeps_completed_work(srv: FakeImagesServer, client: openai.OpenAI) -> None:
    srv.faults = Faults(batch_expire_after=2)
    uploaded = client.files.create(
        file=batch_file([generation_line(i) for i in range(5)]), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/images/generations", completion_window="24h"
    )
    wait_for(lambda: client.batches.retrieve(batch.id).status == "expired")
    final = client.batches.retrieve(batch.id)
    assert final.expired_at and final.request_counts and final.request_counts.completed == 2
    assert len(read_jsonl(client, final.output_file_id)) == 2
    expired = read_jsonl(client, final.error_file_id)
    assert len(expired) == 3 and {e["error"]["code"] for e in expired} == {"batch_expired"}
    assert srv.stats.batch_requests_completed == 2 and srv.stats.completed == 0


def test_invalid_batch_input_fails_validation(client: openai.OpenAI) -> None:
    lines = [
        generation_line(1),
        generation_line(1),
        generation_line(2) | {"url": "/v1/images/edits"},
    ]
    uploaded = client.files.create(file=batch_file(lines), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/images/generations", completion_window="24h"
    )
    wait_for(lambda: client.batches.retrieve(batch.id).status == "failed")
    errors = client.batches.retrieve(batch.id).errors
    assert errors is not None and errors.data is not None
    assert [(e.code, e.line) for e in errors.data] == [
        ("duplicate_custom_id", 2),
        ("mismatched_url", 3),
    ]
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    with pytest.raises(openai.NotFoundError):
        client.batches.create(
            input_file_id="file-missing", endpoint="/v1/images/edits", completion_window="24h"
        )


def test_edit_batch_with_file_ids(client: openai.OpenAI) -> None:
    image = client.files.create(file=("ref.png", png((512, 512)), "image/png"), purpose="vision")
    line = {
        "custom_id": "edit-0",
        "method": "POST",
        "url": "/v1/images/edits",
        "body": {"model": "gpt-image-2", "prompt": "restyle", "images": [{"file_id": image.id}]},
    }
    uploaded = client.files.create(file=batch_file([line]), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/images/edits", completion_window="24h"
    )
    wait_for(lambda: client.batches.retrieve(batch.id).status == "completed")
    (output,) = read_jsonl(client, client.batches.retrieve(batch.id).output_file_id)
    assert output["response"]["body"]["usage"]["input_tokens_details"]["image_tokens"] == 1024


def test_files_and_batches_list_paginate(srv: FakeImagesServer, client: openai.OpenAI) -> None:
    uploaded = client.files.create(file=batch_file([generation_line(0)]), purpose="batch")
    ids = [
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/images/generations", completion_window="24h"
        ).id
        for _ in range(3)
    ]
    page = client.batches.list(limit=2)
    assert len(page.data) == 2 and page.has_more
    assert [b.id for b in client.batches.list(limit=2)] == ids[::-1]  # auto-paging, newest first
    assert client.files.retrieve(uploaded.id).filename == "input.jsonl"
    assert uploaded.id in [f.id for f in client.files.list(purpose="batch")]
    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    assert srv.stats.batches_created == 3 and srv.stats.files_created == 1
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("notes.txt", b"{}", "text/plain"), purpose="batch")


# --- stats and log -------------------------------------------------------------------------


def test_log_and_stats_never_hold_the_key_and_reset_clears_them(
    srv: FakeImagesServer, client: openai.OpenAI
) -> None:
    client.images.generate(model="gpt-image-2", prompt="x", quality="low")
    with pytest.raises(openai.BadRequestError):
        client.images.generate(model="gpt-image-2", prompt="x", size="1x1")
    assert KEY not in repr(srv.log) and KEY not in repr(srv.stats.snapshot())
    entry = srv.log[0]
    assert {
        "t",
        "method",
        "path",
        "status",
        "model",
        "prompt",
        "n",
        "params",
        "image_count",
        "image_sha256s",
        "stream",
    } <= entry.keys()
    assert (entry["model"], entry["prompt"], entry["n"]) == ("gpt-image-2", "x", 1)
    snap = srv.stats.snapshot()
    assert snap["by_path"] == {"/v1/images/generations": 2}
    assert snap["by_status"] == {200: 1, 400: 1}
    srv.reset()
    assert srv.log == [] and srv.stats.requests == 0 and srv.stats.snapshot()["by_status"] == {}


def test_unknown_route_is_an_openai_shaped_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.get("/images/nowhere", cast_to=ImagesResponse)
    assert "Invalid URL (GET /v1/images/nowhere)" in caught.value.message


def test_stop_is_clean_with_idle_keepalive_connections() -> None:
    server = FakeImagesServer().start()
    sdk = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
    sdk.images.generate(model="gpt-image-2", prompt="x", quality="low")
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    sdk.close()
    with pytest.raises(RuntimeError):
        _ = server.base_url


def test_warm_prepares_every_colour_bucket() -> None:
    with FakeImagesServer(colour_buckets=2) as server:
        server.warm("1536x1024", "jpeg", output_compression=80)
        assert len(server.renderer._cache) == 2
        assert server.stats.requests == 0


def test_main_serves_until_interrupted() -> None:
    code = "from imagenb.testing import main; main(port=0)"
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().split()[-1]
        with openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0) as sdk:
            assert sdk.images.generate(model="gpt-image-2", prompt="x", quality="low").data
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
