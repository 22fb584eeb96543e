"""Property-based checks of validation and store keys: a valid request is never refused, an
invalid one is never built, equal requests always share a key."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from imagenb.core import catalog, request, sizes
from imagenb.errors import InvalidRequest

MULTIPLES = st.integers(min_value=1, max_value=3840 // 16).map(lambda k: k * 16)


@settings(max_examples=400, deadline=None)
@given(w=MULTIPLES, h=MULTIPLES)
def test_size_rule_accepts_exactly_the_valid_sizes(w, h):
    valid = max(w, h) <= 3840 and max(w, h) / min(w, h) <= 3 and 655_360 <= w * h <= 8_294_400
    try:
        r = request.build("x", size=f"{w}x{h}")
    except InvalidRequest:
        assert not valid
    else:
        assert valid and r.size == f"{w}x{h}"


@settings(max_examples=300, deadline=None)
@given(w=st.integers(1, 5000), h=st.integers(1, 5000))
def test_any_size_is_either_built_valid_or_refused(w, h):
    try:
        r = request.build("x", size=f"{w}x{h}")
    except InvalidRequest as err:
        assert "size" in str(err)
    else:
        assert sizes.flexible_problem(*sizes.dimensions(r.size)) is None


PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from([*catalog.MODELS, "dall-e-3", "nope"]),
        "quality": st.sampled_from(["low", "medium", "high", "auto", "xhigh", "ultra"]),
        "n": st.integers(-1, 12),
        "output_format": st.sampled_from(["png", "webp", "jpeg", "jpg", "gif"]),
        "output_compression": st.integers(-5, 105),
        "background": st.sampled_from(["auto", "opaque", "transparent", "blue"]),
        "moderation": st.sampled_from(["auto", "low", "off"]),
        "size": st.sampled_from(["auto", "square", "16:9", "1024x1024", "1920x1080", "4k"]),
    },
)


def _allowed(p: dict) -> bool:
    model = catalog.MODELS.get(p.get("model", "gpt-image-2"))
    if model is None:
        return False
    fmt = {"jpg": "jpeg"}.get(p.get("output_format", "png"), p.get("output_format", "png"))
    size = p.get("size", "auto")
    if model.size_rule == "standard" and size not in ("auto", "square", "16:9", "1024x1024"):
        return False
    return (
        p.get("quality", "auto") in model.qualities
        and 1 <= p.get("n", 1) <= 10
        and fmt in ("png", "webp", "jpeg")
        and (
            "output_compression" not in p or (fmt != "png" and 0 <= p["output_compression"] <= 100)
        )
        and p.get("background", "auto") in ("auto", "opaque", "transparent")
        and not (p.get("background") == "transparent" and fmt == "jpeg")
        and p.get("moderation", "auto") in ("auto", "low")
        and size != "1920x1080"
    )


def visible(prompt: str) -> bool:
    """A prompt that draws something: not only controls, format characters and spaces."""
    return any(unicodedata.category(c) not in ("Cc", "Cf", "Zs", "Zl", "Zp") for c in prompt)


@settings(max_examples=500, deadline=None)
@given(params=PARAMS, prompt=st.text(min_size=0, max_size=50))
def test_validation_matches_the_rules(params, prompt):
    ok = _allowed(params) and visible(prompt)
    try:
        r = request.build(prompt, **params)
    except InvalidRequest:
        assert not ok, params
    else:
        assert ok, params
        assert r.key(0) == request.build(prompt, **params).key(0)


@settings(max_examples=200, deadline=None)
@given(prompt=st.text(min_size=1, max_size=80).filter(visible), n=st.integers(1, 10))
def test_equal_requests_share_keys_and_keys_never_collide_across_variants(prompt, n):
    a = request.build(prompt, n=n, size="square")
    b = request.build(f"  {prompt}  ", n=n, size="1024x1024", quality="auto")
    assert a.variant_keys() == b.variant_keys()
    assert len(set(a.variant_keys())) == n
