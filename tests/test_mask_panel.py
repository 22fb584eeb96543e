"""The panel's "Paint mask", driven through the panel's Python side against the fake: paint on
the selected image, and the next Edit sends the mask and shows a result that kept the
outside; without paint, or on another image, no mask goes out."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np

import imagenb as ig
from imagenb.masks import MaskPainter
from imagenb.masks.keep import feather_px


def _panel_with_one_image() -> Any:
    p = ig.panel(quality="low", size="1024x1024")
    p.prompt.value = "a harbour at dawn"
    p.generate_button.click()
    p.wait(timeout=60)
    return p


def _mask_sha(painter: MaskPainter) -> str:
    buf = io.BytesIO()
    painter.mask.save(buf, "PNG")
    return hashlib.sha256(buf.getvalue()).hexdigest()


def test_paint_mask_then_edit_sends_the_mask_and_keeps_the_outside(fake: Any) -> None:
    p = _panel_with_one_image()
    tool = p.mask_tool
    toolbar = next(c for c in p.children if p.edit_button in getattr(c, "children", ()))
    assert tool.button in toolbar.children
    tool.button.click()
    assert tool.painter is None and "Select one image" in p.message.value
    (card,) = p.cards
    card.select.value = True
    tool.button.click()
    painter = tool.painter
    assert isinstance(painter, MaskPainter) and tool.box.layout.display == "flex"
    assert painter in tool.box.children and p.generate_button.description == "Edit 1 image"
    painter.rectangle((256, 256, 767, 767))
    p.prompt.value = "a lighthouse on the pier"
    p.generate_button.click()
    p.wait(timeout=60)
    sent = fake.log[-1]
    assert sent["path"].endswith("/images/edits") and sent["mask_sha256"] == _mask_sha(painter)
    edited = p.cards[0].image
    assert edited.prompt == "a lighthouse on the pier" and edited.raw is not None
    assert edited.changed_outside is not None and edited.changed_outside > 0.5
    before = np.asarray(card.image.image.convert("RGB"))
    after = np.asarray(edited.image.convert("RGB"))
    margin = 256 - feather_px(1024, 1024) - 1
    assert np.array_equal(after[:margin], before[:margin])  # above the mask: kept
    assert not np.array_equal(after[400:600, 400:600], before[400:600, 400:600])


def test_no_paint_or_another_image_sends_no_mask(fake: Any) -> None:
    p = _panel_with_one_image()
    p.cards[0].select.value = True
    p.mask_tool.button.click()
    p.prompt.value = "the same harbour at noon"
    p.generate_button.click()  # nothing painted yet
    p.wait(timeout=60)
    assert fake.log[-1]["mask_sha256"] is None and p.cards[0].image.raw is None
    p.mask_tool.painter.stroke([(100, 100)], size=80)  # type: ignore[union-attr]
    p.cards[0].select.value = True  # the noon picture, not the painted one
    p.edit_button.click()
    p.prompt.value = "the same harbour at night"
    p.generate_button.click()
    p.wait(timeout=60)
    assert fake.log[-1]["mask_sha256"] is None
    p.mask_tool.off_button.click()
    assert p.mask_tool.painter is None and p.mask_tool.box.layout.display == "none"


def test_edited_cards_name_their_source(fake: Any) -> None:
    p = _panel_with_one_image()
    source = p.cards[0].image
    p.cards[0].select.value = True
    p.mask_tool.button.click()
    p.mask_tool.painter.rectangle((0, 0, 511, 1023))  # type: ignore[union-attr]
    p.prompt.value = "a sailing boat"
    p.generate_button.click()
    p.wait(timeout=60)
    caption = p.cards[0].caption.value
    assert "edit of “a harbour at dawn”" in caption and source.key[:8] in caption
    assert "outside kept (the model had changed" in caption
    assert "edit of" not in p.cards[1].caption.value  # the generated one


def test_shortcuts_generate_and_close_the_enlarged_view(fake: Any) -> None:
    p = _panel_with_one_image()
    keys = p.mask_tool.keys
    assert keys in p.children and keys.layout.display == "none"
    p.prompt.value = "a second harbour"
    keys._on_key(keys, {"key": "generate"}, [])
    p.wait(timeout=60)
    assert len(p.cards) == 2 and fake.stats.image_requests == 2
    p.cards[0].enlarge_button.click()
    assert p.gallery.viewer.box.layout.display == "flex"
    keys._on_key(keys, {"key": "escape"}, [])
    assert p.gallery.viewer.box.layout.display == "none"
    p.prompt.value = ""  # Generate is disabled: the shortcut does nothing
    keys._on_key(keys, {"key": "generate"}, [])
    assert fake.stats.image_requests == 2


def test_compare_two_selected_images(fake: Any) -> None:
    from imagenb.masks.compare_view import CompareView

    p = ig.panel(quality="low", size="1024x1024", n=2)
    p.prompt.value = "two harbours"
    p.generate_button.click()
    p.wait(timeout=60)
    tool = p.mask_tool
    p.cards[0].select.value = True
    tool.compare_button.click()
    assert "Select two images" in p.message.value and tool.compare_box.layout.display == "none"
    p.cards[1].select.value = True
    tool.compare_button.click()
    (view, _close) = tool.compare_box.children
    assert isinstance(view, CompareView) and tool.compare_box.layout.display == "flex"
    assert view.left_label == "two harbours" and not view.side_by_side
    for data in (view._left, view._right):
        assert len(data) <= 40_000
    tool.compare_close.click()
    assert tool.compare_box.layout.display == "none" and tool.compare_box.children == (_close,)
