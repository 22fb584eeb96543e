"""What users get back: `GeneratedImage` (one stored image with its provenance and cost) and
`ImageSet` (a sequence of them). Both display as thumbnails, never as full-resolution data.

The full file lives in the store; `.image` opens it lazily, so holding thousands of results
costs a few hundred bytes each.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from PIL import Image

    from imagenb.store.index import StoredImage
    from imagenb.text.match import TextCheck


@dataclass(frozen=True, eq=False)
class GeneratedImage:
    """One image, as stored. `cached` tells whether this call got it from the store for free;
    `text_check` is how its text read, when it was checked."""

    key: str
    path: Path
    prompt: str
    model: str
    backend: str
    params: dict[str, Any]
    width: int
    height: int
    variant: int = 0
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    cost_is_estimate: bool = True
    cached: bool = False
    latency_s: float | None = None
    created: float = 0.0
    thumbnail_px: int = field(default=256, repr=False)
    text_check: TextCheck | None = None  # set by check_text scoring (generate(best_of=k))
    # A masked edit that kept the outside (imagenb.masks.keep): how much of the outside the
    # model had changed, and its answer as it came (stored too).
    changed_outside: float | None = None
    raw: GeneratedImage | None = field(default=None, repr=False)

    @classmethod
    def from_stored(
        cls, row: StoredImage, *, cached: bool, thumbnail_px: int = 256
    ) -> GeneratedImage:
        return cls(
            key=row.key,
            path=row.path,
            prompt=row.prompt,
            model=row.model,
            backend=row.backend,
            params=dict(row.params),
            width=row.width,
            height=row.height,
            variant=row.variant,
            usage=row.usage,
            cost_usd=row.cost_usd,
            cost_is_estimate=row.cost_is_estimate,
            cached=cached,
            latency_s=row.latency_s,
            created=row.created,
            thumbnail_px=thumbnail_px,
            changed_outside=row.params.get("changed_outside"),
        )

    @property
    def image(self) -> Image.Image:
        """The full-resolution image (read from the store on each access)."""
        from PIL import Image

        with Image.open(self.path) as im:
            im.load()
            return im

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()

    @property
    def format(self) -> str:
        return str(self.params.get("output_format", self.path.suffix.lstrip(".")))

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Copy the full-resolution file to `path` (a file, or a folder to put it in)."""
        target = Path(path)
        if target.is_dir():
            target = target / f"{self.key[:16]}{self.path.suffix}"
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path, target)
        return target

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from imagenb.render import html as display

        return {
            "text/html": display.image_html(self, self.thumbnail_px),
            "text/plain": display.image_text(self),
        }

    def __repr__(self) -> str:
        from imagenb.render.html import image_text

        return image_text(self)


class ImageSet(Sequence[GeneratedImage]):
    """The images of one call, in request order."""

    def __init__(self, images: Sequence[GeneratedImage], *, title: str | None = None) -> None:
        self._images = list(images)
        self.title = title

    @overload
    def __getitem__(self, index: int) -> GeneratedImage: ...
    @overload
    def __getitem__(self, index: slice) -> ImageSet: ...
    def __getitem__(self, index: int | slice) -> GeneratedImage | ImageSet:
        if isinstance(index, slice):
            return ImageSet(self._images[index], title=self.title)
        return self._images[index]

    def __len__(self) -> int:
        return len(self._images)

    def __iter__(self) -> Iterator[GeneratedImage]:
        return iter(self._images)

    @property
    def cost_usd(self) -> float:
        """What this call cost: images served from the store cost nothing."""
        return sum(i.cost_usd or 0.0 for i in self._images if not i.cached)

    @property
    def cached(self) -> int:
        return sum(1 for i in self._images if i.cached)

    def save(
        self, folder: str | Path, *, pattern: str = "{i}.{ext}", overwrite: bool = False
    ) -> list[Path]:
        """Write every full-resolution file into `folder`, named by `pattern` ({i} {key} {ext})."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, img in enumerate(self._images):
            name = pattern.format(i=i, key=img.key[:16], ext=img.path.suffix.lstrip("."))
            target = (out / name).resolve()
            if out.resolve() not in target.parents:
                raise ValueError(f"{name!r} would leave the folder {str(out)!r}")
            paths.append(img.save(target, overwrite=overwrite))
        return paths

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from imagenb.render import html as display

        px = self._images[0].thumbnail_px if self._images else 256
        return {
            "text/html": display.images_html(self._images, px, title=self.title),
            "text/plain": display.images_text(self._images),
        }

    def __repr__(self) -> str:
        from imagenb.render.html import images_text

        return images_text(self._images)
