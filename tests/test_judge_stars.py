"""Star buttons on a panel card, driven through the widgets' Python API: a click rates the
image in the store, a second click on the lit star clears it."""

from __future__ import annotations

import imagenb as ig
from imagenb.core import config
from imagenb.engine import session
from imagenb.panels.stars import StarRow


def test_star_buttons_rate_the_image_and_survive_a_restart():
    config.configure(backend="preview")
    image = ig.generate("a lighthouse", quality="low", size="square")[0]
    row = StarRow(image)
    assert row.stars is None and [b.description for b in row.buttons] == ["☆"] * 5
    row.buttons[3].click()
    assert row.stars == 4 and [b.description for b in row.buttons] == ["★"] * 4 + ["☆"]
    session.reset()  # a kernel restart forgets the process, not the store
    assert ig.ratings()["stars"].tolist() == [4]
    again = StarRow(image)  # a new card shows the stored rating
    assert again.stars == 4
    again.buttons[3].click()  # the lit star again: cleared
    assert again.stars is None and ig.ratings().empty


def test_the_panel_card_carries_the_stars():
    from imagenb.panels.gallery import Card

    config.configure(backend="preview")
    image = ig.generate("a harbour", quality="low", size="square")[0]
    ig.rate(image, 2)
    card = Card(image, b"", "png", (0, 0), lambda _c: None, lambda _c: None)
    stars = [w for w in card.box.children if "imagenb-stars" in w._dom_classes]
    assert len(stars) == 1
    assert [b.description for b in stars[0].children] == ["★", "★", "☆", "☆", "☆"]
