"""Pure-core validation: every invalid request is refused, naming what is allowed."""

import pytest

from imagenb.core import catalog, request, sizes
from imagenb.errors import InvalidRequest


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"size": "1000x1000"}, ["divisible by 16", "992x992"]),
        ({"size": "1920x1080"}, ["divisible by 16", "1920x1088"]),
        ({"size": "4000x2000"}, ["long edge", "3840"]),
        ({"size": "3072x768"}, ["1:3 to 3:1"]),
        ({"size": "640x640"}, ["pixels", "655,360"]),
        ({"size": "big"}, ["16:9", "square", "4k"]),
        ({"quality": "ultra"}, ["low, medium, high, auto"]),
        ({"quality": "xhigh"}, ["low, medium, high, auto"]),
        ({"model": "dall-e-3"}, ["retired on 2026-05-12", "gpt-image-2"]),
        ({"model": "gpt-image-1"}, ["retired on 2026-10-23"]),
        ({"model": "gpt-image-9"}, ["gpt-image-2", "gpt-image-1-mini"]),
        ({"output_compression": 50}, ["'webp' or 'jpeg'"]),
        ({"output_format": "jpeg", "output_compression": 101}, ["0 to 100"]),
        ({"background": "transparent", "output_format": "jpeg"}, ["'png' or 'webp'"]),
        ({"n": 0}, ["1 to 10"]),
        ({"n": 11}, ["1 to 10"]),
        ({"output_format": "gif"}, ["png, webp, jpeg"]),
        ({"complexity": "high"}, ["gpt-image-2.6-sunburst"]),
        ({"model": "gpt-image-1.5", "size": "2048x1152"}, ["1024x1024, 1536x1024"]),
        ({"input_fidelity": "high"}, ["only to edits"]),
    ],
)
def test_invalid_parameters_are_refused_with_the_allowed_values(params, names):
    with pytest.raises(InvalidRequest) as info:
        request.build("a red fox", **params)
    assert isinstance(info.value, ValueError)
    for name in names:
        assert name in str(info.value)


@pytest.mark.parametrize("prompt", ["", "   \n", None, float("nan"), 42, "x" * 32_001])
def test_bad_prompts_are_refused(prompt):
    with pytest.raises(InvalidRequest, match="prompt"):
        request.build(prompt)


def test_32000_character_prompt_is_allowed():
    assert len(request.build("x" * 32_000).prompt) == 32_000


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("16:9", "1536x864"),
        ("9:16", "864x1536"),
        ("1:1", "1536x1536"),
        ("4:3", "1536x1152"),
        ("3:1", "1536x512"),
        ("landscape", "1536x1024"),
        ("portrait", "1024x1536"),
        ("square", "1024x1024"),
        ("2k", "2560x1440"),
        ("4k", "3840x2160"),
        ("2160X3840", "2160x3840"),
        (None, "auto"),
        ("AUTO", "auto"),
    ],
)
def test_sizes_presets_and_ratios(size, expected):
    assert request.build("x", size=size).size == expected


def test_ratio_on_a_standard_size_model_picks_the_nearest_standard_size():
    assert request.build("x", model="gpt-image-1.5", size="16:9").size == "1536x1024"
    assert request.build("x", model="gpt-image-1-mini", size="2:3").size == "1024x1536"


def test_every_suggested_size_is_valid():
    for w in range(300, 4200, 97):
        for h in range(300, 4200, 131):
            hint = sizes.suggest(w, h)
            if hint:
                assert sizes.flexible_problem(*sizes.dimensions(hint)) is None, (w, h, hint)


def test_catalog_covers_the_models_with_prices_and_sources():
    names = set(catalog.MODELS)
    assert {
        "gpt-image-2",
        "gpt-image-2-2026-04-21",
        "gpt-image-2.5-sunburst",
        "gpt-image-2.5-flare",
        "gpt-image-2.5-sunburst-2026-09-08",
        "gpt-image-2.5-flare-2026-09-08",
        "gpt-image-2.6-sunburst",
        "gpt-image-2.6-flare",
        "gpt-image-1.5",
        "gpt-image-1-mini",
        "chatgpt-image-latest",
    } <= names
    for spec in catalog.MODELS.values():
        assert spec.sources and spec.prices.image_out > 0
    assert catalog.lookup("gpt-image-2").prices.image_out == 30.0
    assert "xhigh" in catalog.lookup("gpt-image-2.5-flare").qualities


def test_equal_requests_share_keys_and_variants_differ():
    a = request.build("  a red fox ", size="16:9", n=2)
    b = request.build("a red fox", size="1536x864", quality="auto", n=1)
    assert a.key(0) == b.key(0)
    assert a.key(0) != a.key(1)
    assert request.build("a red fox", quality="low").key(0) != b.key(0)


def test_output_format_jpg_is_jpeg_and_params_are_as_sent():
    r = request.build("x", output_format="jpg", output_compression=80)
    assert r.params() == {
        "model": "gpt-image-2",
        "size": "auto",
        "quality": "auto",
        "n": 1,
        "output_format": "jpeg",
        "background": "auto",
        "moderation": "auto",
        "output_compression": 80,
    }
