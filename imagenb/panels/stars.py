"""Star buttons under a panel card: one click rates the image (`ig.rate`), a click on the
lit star clears it. The rating lives in the store beside the image, so it outlives the kernel
and shows in `ig.ratings()`."""

from __future__ import annotations

import ipywidgets as widgets

from imagenb.core import config
from imagenb.engine import session
from imagenb.judging import people, records
from imagenb.store.images import GeneratedImage

STAR_W = "26px"


class StarRow:
    """Five star buttons for one image; `.box` is the widget."""

    def __init__(self, image: GeneratedImage) -> None:
        self.image = image
        self.buttons = [
            widgets.Button(
                description="☆",
                tooltip=f"{n} star{'s' if n > 1 else ''}",
                layout=widgets.Layout(width=STAR_W, padding="0"),
            )
            for n in people.STARS
        ]
        for n, button in zip(people.STARS, self.buttons, strict=True):
            button.add_class("imagenb-star")
            button.on_click(lambda _button, n=n: self.click(n))
        self.box = widgets.HBox(self.buttons)
        self.box.add_class("imagenb-stars")
        store = session.store_for(config.current())
        self.show(records.stars_of(store, image.key))

    @property
    def stars(self) -> int | None:
        lit = sum(1 for b in self.buttons if b.description == "★")
        return lit or None

    def click(self, stars: int) -> None:
        chosen = None if stars == self.stars else stars
        people.rate(self.image, chosen)
        self.show(chosen)

    def show(self, stars: int | None) -> None:
        for n, button in zip(people.STARS, self.buttons, strict=True):
            button.description = "★" if stars is not None and n <= stars else "☆"


def star_row(image: GeneratedImage) -> widgets.HBox:
    """The star buttons of `image` (the panel's card hook)."""
    return StarRow(image).box
