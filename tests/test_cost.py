"""Estimates reproduce the published figures; actual cost follows `usage`, kind by kind."""

import pytest

from imagenb.core import catalog, cost, request


@pytest.mark.parametrize(
    ("quality", "size", "tokens"),
    [
        ("low", "1024x1024", 196),
        ("medium", "1024x1024", 1756),
        ("high", "1024x1024", 7024),
        ("low", "1536x1024", 158),
        ("medium", "1536x1024", 1372),
        ("high", "1536x1024", 5488),
        ("high", "3584x2048", 12329),
        ("high", "1792x1024", 5063),
        ("low", "960x720", 130),
        ("low", "976x704", 129),
        ("high", "3840x2160", 13342),
    ],
)
def test_gpt_image_2_formula_reproduces_every_published_point(quality, size, tokens):
    w, h = map(int, size.split("x"))
    assert cost.gpt_image_2_output_tokens(quality, w, h) == tokens


def _prompt_cost(prompt: str) -> float:
    return cost.text_tokens(prompt) * 5.0 / 1e6


def test_estimate_matches_the_documented_prices_within_2_percent():
    e = cost.estimate(request.build("x", size="1024x1024", quality="high"))
    assert e.usd == pytest.approx(0.211 + _prompt_cost("x"), rel=0.02)
    e = cost.estimate(request.build("x", size="3840x2160", quality="high"))
    assert e.usd == pytest.approx(0.400 + _prompt_cost("x"), rel=0.02)
    e = cost.estimate(request.build("x", size="1536x1024", quality="medium"))
    assert e.usd == pytest.approx(0.041, rel=0.02)


def test_partials_n_and_batch():
    r = request.build("x", size="1024x1024", quality="low", n=3)
    plain = cost.estimate(r)
    assert plain.images == 3 and plain.output_tokens == 3 * 196
    assert cost.estimate(r, partials=2).output_tokens == 3 * (196 + 200)
    assert cost.estimate(r, batch=True).usd == pytest.approx(plain.usd / 2)


def test_auto_is_estimated_at_its_priciest_choice():
    assert cost.estimate(request.build("x")).output_tokens == 7024


def test_older_models_use_the_token_table():
    r = request.build("x", model="gpt-image-1.5", size="1024x1024", quality="high")
    assert cost.estimate(r).output_tokens == 4160
    assert cost.estimate(r).usd == pytest.approx(0.133, rel=0.02)


def test_usage_cost_prices_each_kind_at_its_own_rate():
    spec = catalog.lookup("gpt-image-2")
    usage = {
        "input_tokens": 1050,
        "input_tokens_details": {"text_tokens": 50, "image_tokens": 1000},
        "output_tokens": 7124,
        "output_tokens_details": {"image_tokens": 7024, "text_tokens": 100},
    }
    expected = (50 * 5 + 1000 * 8 + 7024 * 30 + 100 * 10) / 1e6
    assert cost.usage_cost(spec, usage) == pytest.approx(expected)
    assert cost.usage_cost(spec, usage, batch=True) == pytest.approx(expected / 2)


def test_stream_usage_without_output_details_counts_image_tokens():
    spec = catalog.lookup("gpt-image-2")
    usage = {
        "input_tokens": 10,
        "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
        "output_tokens": 196,
    }
    assert cost.usage_cost(spec, usage) == pytest.approx((10 * 5 + 196 * 30) / 1e6)


def test_cjk_prompts_count_more_tokens_than_their_length_over_four():
    assert cost.text_tokens("東京の夜景") >= 5 + cost.PROMPT_OVERHEAD_TOKENS
