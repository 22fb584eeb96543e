"""Masked edits that keep the outside, against the loopback fake (whose answers ignore the mask,
as a model that "may not follow its exact shape" can): outside the mask the result is the
input to the bit but in the feather band, `changed_outside` says how much the model had
changed, the raw answer is stored and reachable, and a re-run costs nothing."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

import imagenb as ig
from imagenb.errors import InvalidRequest
from imagenb.masks import keep
from imagenb.store import index as store_mod

BOX = (300, 260, 700, 640)  # the painted (transparent) area of the mask


def _photo(width: int = 1024, height: int = 1024) -> Image.Image:
    """A busy picture (noise on a gradient): any change to it shows."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, width, dtype=np.uint8)[None, :, None]
    return Image.fromarray(noise // 2 + ramp // 2, "RGB")


def _mask(size: tuple[int, int], box: tuple[int, int, int, int] = BOX) -> Image.Image:
    mask = Image.new("RGBA", size, (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), box)
    return mask


def _areas(mask: Image.Image, feather: int) -> tuple[np.ndarray, np.ndarray]:
    """(far outside, far inside): pixels farther than `feather` from the edge of the area."""
    area = keep.edit_area(mask)
    grown = np.asarray(area.filter(ImageFilter.MaxFilter(2 * feather + 1))) > 0
    shrunk = np.asarray(area.filter(ImageFilter.MinFilter(2 * feather + 1))) > 0
    return ~grown, shrunk


def _pixels(image: Any) -> np.ndarray:
    with Image.open(image.path) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def test_feather_is_sized_to_the_image() -> None:
    assert keep.feather_px(1024, 1024) == 4
    assert keep.feather_px(3840, 2160) == 8
    assert keep.feather_px(256, 256) == 2
    assert keep.KIND in store_mod.DERIVED_KINDS


def test_masked_edit_keeps_the_outside_and_reports_what_changed(fake: Any, isolated: Path) -> None:
    photo, mask = _photo(), _mask((1024, 1024))
    result = ig.edit("a red hat on the table", photo, mask=mask, quality="low")
    (kept,) = result
    raw = kept.raw
    assert raw is not None and raw.key != kept.key and (kept.width, kept.height) == (1024, 1024)

    # one request, with the mask as sent and the input's own size (no resampling needed)
    assert fake.stats.image_requests == 1 and fake.stats.images_completed == 1
    entry = fake.log[-1]
    assert entry["path"].endswith("/images/edits") and entry["params"]["size"] == "1024x1024"
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    assert entry["mask_sha256"] == hashlib.sha256(buf.getvalue()).hexdigest()

    # outside the mask: the input to the bit, but in the feather band; inside: the answer
    before, answer, after = np.asarray(photo).astype(np.int16), _pixels(raw), _pixels(kept)
    far_out, far_in = _areas(mask, keep.feather_px(1024, 1024))
    assert far_out.sum() > 0.7 * far_out.size and far_in.sum() > 0.1 * far_in.size
    assert np.array_equal(after[far_out], before[far_out])
    assert np.array_equal(after[far_in], answer[far_in])
    assert not np.array_equal(answer[far_out], before[far_out])  # the fake ignored the mask

    # changed_outside: what the answer changed outside the mask, before compositing
    outside = np.asarray(keep.edit_area(mask)) == 0
    moved = np.abs(answer - before).max(axis=2) > keep.CHANGE_TOLERANCE
    assert kept.changed_outside == pytest.approx(moved[outside].mean(), abs=1e-5)
    assert 0.5 < kept.changed_outside <= 1.0 and raw.changed_outside is None

    # both in the store; the money is the answer's, counted once
    store = ig.current_store()
    assert store.get(raw.key) is not None and store.get(kept.key) is not None
    assert store.get(kept.key).params["raw_key"] == raw.key  # type: ignore[union-attr]
    assert kept.cost_usd == raw.cost_usd and raw.cost_usd and raw.cost_usd > 0
    assert result.cost_usd == pytest.approx(raw.cost_usd)
    spent = ig.spent()
    assert spent.usd == pytest.approx(raw.cost_usd) and spent.images == 1
    # all time is real money only: a test server's images are not (store sources)
    assert spent.all_time_usd == 0 and spent.all_time_images == 0
    history = ig.history()
    assert sorted(history["kind"]) == ["composite", "edit"]
    assert set(history["key"]) == {raw.key, kept.key}


def test_a_rerun_is_served_from_the_store_at_no_cost(fake: Any) -> None:
    photo, mask = _photo(), _mask((1024, 1024))
    first = ig.edit("a red hat on the table", photo, mask=mask, quality="low")[0]
    again = ig.ImageSet(ig.edit("a red hat on the table", photo, mask=mask, quality="low"))
    (second,) = again
    assert fake.stats.image_requests == 1
    assert second.cached and again.cost_usd == 0.0
    assert second.key == first.key and second.path == first.path
    assert second.changed_outside == first.changed_outside
    assert second.raw is not None and second.raw.key == first.raw.key  # type: ignore[union-attr]
    assert ig.spent().images == 1 and len(ig.history()) == 2


def test_keep_outside_false_returns_the_raw_answer(fake: Any) -> None:
    photo, mask = _photo(), _mask((1024, 1024))
    kept = ig.edit("a red hat", photo, mask=mask, quality="low", size="1024x1024")[0]
    raw = ig.edit(
        "a red hat", photo, mask=mask, quality="low", size="1024x1024", keep_outside=False
    )
    assert fake.stats.image_requests == 1  # the same request: its answer comes from the store
    assert kept.raw is not None and raw[0].key == kept.raw.key
    assert raw[0].path.read_bytes() == kept.raw.path.read_bytes()
    assert raw[0].changed_outside is None and raw[0].raw is None


def test_without_a_mask_nothing_is_composited(fake: Any) -> None:
    plain = ig.edit("a red hat", _photo(), quality="low")[0]
    assert plain.raw is None and plain.changed_outside is None
    with pytest.raises(InvalidRequest, match="needs a mask"):
        ig.edit("a red hat", _photo(), quality="low", keep_outside=True)
    assert fake.stats.image_requests == 1


def test_a_size_of_another_shape_is_refused_before_sending(fake: Any) -> None:
    with pytest.raises(InvalidRequest, match="another shape"):
        ig.edit("a hat", _photo(), mask=_mask((1024, 1024)), size="1536x1024", quality="low")
    assert fake.stats.requests == 0


def test_an_answer_of_another_size_is_fitted_to_the_input(fake: Any) -> None:
    """1000x700 is no size gpt-image-2 makes (not a multiple of 16): the model picks one (the
    fake: 1024x1024) and the answer is resampled to the input, whose outside stays exact."""
    photo, mask = _photo(1000, 700), _mask((1000, 700), (200, 150, 500, 450))
    kept = ig.edit("a hat", photo, mask=mask, quality="low")[0]
    assert fake.log[-1]["params"].get("size", "auto") == "auto"
    assert kept.raw is not None and (kept.raw.width, kept.raw.height) == (1024, 1024)
    assert (kept.width, kept.height) == (1000, 700)
    far_out, _ = _areas(mask, keep.feather_px(1000, 700))
    assert np.array_equal(_pixels(kept)[far_out], np.asarray(photo).astype(np.int16)[far_out])


def test_jpeg_answers_stay_jpeg(fake: Any) -> None:
    kept = ig.edit(
        "a hat", _photo(), mask=_mask((1024, 1024)), quality="low", output_format="jpeg"
    )[0]
    with Image.open(kept.path) as im:
        assert im.format == "JPEG" and im.size == (1024, 1024)
    assert kept.changed_outside is not None


def test_before_after_shows_input_answer_and_result(fake: Any) -> None:
    photo = _photo()
    kept = ig.edit("a hat", photo, mask=_mask((1024, 1024)), quality="low")[0]
    view = ig.masks.before_after(photo, kept)
    captions = [caption for _, _, caption in view.panels()]
    assert captions[0] == "before" and "changed" in captions[1] and "kept" in captions[2]
    bundle = view._repr_mimebundle_()
    assert bundle["text/html"].count("<img") == 3 and len(bundle["text/html"]) < 3 * 40_000
    plain = ig.masks.before_after(photo, kept.raw)._repr_mimebundle_()  # no raw: two images
    assert plain["text/html"].count("<img") == 2


def test_history_names_the_sources_of_an_edit(fake: Any) -> None:
    room = ig.generate("a reading room", size="1024x1024", quality="low")[0]
    kept = ig.edit("a cat in the chair", room, mask=_mask((1024, 1024)), quality="low")[0]
    history = ig.history().set_index("key")
    assert history.loc[kept.key, "sources"] == [room.key]
    assert history.loc[kept.raw.key, "sources"] == [room.key]  # type: ignore[union-attr]
    assert history.loc[room.key, "sources"] == []
    assert history.loc[kept.key, "changed_outside"] == pytest.approx(kept.changed_outside)
    assert np.isnan(history.loc[room.key, "changed_outside"])  # not a masked edit


def test_every_variant_is_kept_and_counted_once(fake: Any) -> None:
    photo, mask = _photo(), _mask((1024, 1024))
    made = ig.edit("a hat", photo, mask=mask, quality="low", n=2)
    assert len(made) == 2 and fake.stats.images_completed == 2
    assert len({m.key for m in made}) == 2 and all(m.raw is not None for m in made)
    far_out, _ = _areas(mask, keep.feather_px(1024, 1024))
    for kept in made:
        assert np.array_equal(_pixels(kept)[far_out], np.asarray(photo).astype(np.int16)[far_out])
    assert ig.spent().images == 2 and ig.current_store().spent()["by_source"]["test"]["images"] == 2
    assert len(ig.history()) == 4  # two answers, two composites
