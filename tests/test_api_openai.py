"""Issue 2 acceptance, end to end: the public API, the real `openai` SDK, loopback HTTP,
the fake server, a fresh store."""

from __future__ import annotations

import io
import json

import pytest
from conftest import TEST_KEY, assert_no_key
from PIL import Image

import imagenb as ig
from imagenb.core import config
from imagenb.errors import BudgetExceeded, InvalidRequest, ModerationBlocked
from imagenb.testing import Faults


def test_generate_caches_and_fresh_pays_again(fake, isolated):
    images = ig.generate("a red fox", size="1536x864", quality="low", n=2, output_format="webp")
    assert len(images) == 2 and fake.stats.image_requests == 1
    for img in images:
        with Image.open(img.path) as im:
            assert (im.format, im.size) == ("WEBP", (1536, 864))
        assert img.usage and img.cost_usd and not img.cost_is_estimate and not img.cached
        assert img.backend == "openai" and img.path.is_relative_to(isolated)
    assert images.cost_usd == pytest.approx(sum(i.cost_usd for i in images))
    # the fake bills 120 image tokens an image at 1536x864 low, plus the prompt's text
    assert images[0].cost_usd == pytest.approx(120 * 30e-6, rel=0.2)

    again = ig.generate("a red fox", size="1536x864", quality="low", n=2, output_format="webp")
    assert fake.stats.image_requests == 1
    assert [i.cached for i in again] == [True, True] and again.cost_usd == 0
    assert [i.data for i in again] == [i.data for i in images]

    fresh = ig.generate(
        "a red fox", size="1536x864", quality="low", n=2, output_format="webp", fresh=True
    )
    assert fake.stats.image_requests == 2 and not any(i.cached for i in fresh)


@pytest.mark.parametrize(
    "params",
    [
        {"size": "1000x1000"},
        {"size": "1920x1080"},
        {"quality": "ultra"},
        {"model": "dall-e-3"},
        {"output_compression": 50, "output_format": "png"},
        {"background": "transparent", "output_format": "jpeg"},
        {"prompt": ""},
    ],
)
def test_invalid_requests_send_nothing(fake, params):
    prompt = params.pop("prompt", "a red fox")
    with pytest.raises(InvalidRequest):
        ig.generate(prompt, **params)
    assert fake.stats.requests == 0


def test_no_key_means_preview_offline_and_marked():
    assert config.current().api_key is None
    images = ig.generate("a lighthouse", size="16:9", quality="low")
    assert images[0].backend == "preview" and images[0].cost_is_estimate
    bundle = images._repr_mimebundle_()
    assert "PREVIEW" in bundle["text/html"].upper() and "preview" in bundle["text/plain"].lower()
    assert "PREVIEW" in images[0]._repr_mimebundle_()["text/html"].upper()


def test_moderation_block_is_a_clear_error(fake):
    fake.faults = Faults(moderation_words=("forbidden",))
    with pytest.raises(ModerationBlocked) as info:
        ig.generate("a forbidden thing", quality="low", size="square")
    assert info.value.categories == ("violence",)
    assert fake.stats.image_requests == 1  # never retried


def test_budget_is_a_hard_cap_checked_before_sending(fake):
    ig.configure(budget_usd=0.10)
    with pytest.raises(BudgetExceeded, match="budget"):
        ig.generate("a castle", size="4k", quality="high")
    assert fake.stats.requests == 0
    ig.generate("a castle", size="square", quality="low")
    assert ig.spent().usd > 0 and fake.stats.image_requests == 1


def test_edit_with_several_images_and_a_mask(fake, tmp_path):
    first = ig.generate("a red fox", size="square", quality="low")[0]
    other = Image.new("RGB", (1024, 1024), "navy")
    mask = Image.new("RGBA", (1024, 1024), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (256, 256, 768, 768))
    mask_path = tmp_path / "mask.png"
    mask.save(mask_path)
    edited = ig.edit("give the fox a hat", [first, other], mask=mask_path, quality="low")
    assert len(edited) == 1 and fake.stats.image_requests == 2
    entry = fake.log[-1]
    assert entry["path"].endswith("/images/edits") and entry["image_count"] == 2
    assert edited[0].params["model"] == "gpt-image-2"


def test_stream_delivers_partials_then_the_image(fake):
    from imagenb.api.calls import build, start

    partials = []
    req = build("a comet", config.current(), size="square", quality="low")
    job = start([req], stream=True, on_partial=lambda i, p: partials.append((i, p.index)))
    run = job.wait(progress=False)
    assert run.done == 1 and [p[1] for p in partials] == [0, 1]
    assert fake.stats.streams == 1


def test_the_key_is_nowhere_in_the_store(fake, isolated):
    ig.generate("a secret garden", size="square", quality="low", n=2)
    assert TEST_KEY not in repr(config.current()) and "<set>" in repr(config.current())
    assert assert_no_key(isolated) >= 3  # the index and both images, at least
    for entry in fake.log:
        assert TEST_KEY not in json.dumps(entry, default=str)


def test_provenance_is_inside_the_file(fake):
    from imagenb.store import provenance

    img = ig.generate("a tidy desk", size="square", quality="low", output_format="jpeg")[0]
    meta = provenance.read(img.path)
    assert meta["prompt"] == "a tidy desk" and meta["key"] == img.key
    with Image.open(io.BytesIO(img.data)) as im:
        assert im.format == "JPEG"


def test_generate_with_stream_true_really_streams(fake):
    images = ig.generate("a comet over the sea", size="square", quality="low", stream=True)
    assert len(images) == 1 and fake.stats.streams == 1
    assert fake.log[-1]["stream"] is True
