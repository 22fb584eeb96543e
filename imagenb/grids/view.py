"""A grid's thumbnails and its notebook view: `Thumbnails` encodes each image once (on disk
in the store and in memory), `LiveView` redraws a running grid in place, throttled, and
`NotebookView` is the `display_id` output it draws into. The HTML itself is `grid_html`'s."""

from __future__ import annotations

import base64
import concurrent.futures
import os
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from imagenb.engine import loop
from imagenb.grids.html import GridLike, render
from imagenb.render import html as display

if TYPE_CHECKING:
    from imagenb.api.calls import Job
    from imagenb.store.images import GeneratedImage
    from imagenb.store.index import Store


# --- thumbnails -------------------------------------------------------------------------------


class Thumbnails:
    """Data URIs of store thumbnails (`display.thumbnail`, cached on disk by the store), kept
    in memory too, so a redraw re-encodes nothing."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._memo: dict[str, tuple[str, int, int]] = {}

    def get(self, image: GeneratedImage, px: int) -> tuple[str, int, int]:
        """`(data URI, width, height)` of `image`'s thumbnail with its long edge at most `px`."""
        memo = f"{image.path}-{px}"
        if memo not in self._memo:
            cache = self._store.thumb_path(image.path, px, display.thumbnail_format())
            data, mime = display.thumbnail(image.path, px, cache)
            scale = min(1.0, px / max(image.width, image.height, 1))
            uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
            self._memo[memo] = (uri, round(image.width * scale), round(image.height * scale))
        return self._memo[memo]

    def prefetch(self, images: Sequence[GeneratedImage], px: int) -> None:
        """Make missing thumbnails on a few threads (Pillow decodes without the GIL): the
        first view of 64 new 2560x1440 images is CPU-bound."""
        todo = [i for i in images if f"{i.path}-{px}" not in self._memo]
        if len(todo) < 2:
            return
        workers = min(8, os.cpu_count() or 2, len(todo))
        with concurrent.futures.ThreadPoolExecutor(workers, "imagenb-thumbs") as pool:
            for _ in pool.map(lambda image: self.get(image, px), todo):
                pass


# --- notebook glue ----------------------------------------------------------------------------


class LiveView:
    """Keeps a notebook view of a running grid current. Redraws happen only when the grid
    changed, at most every 0.25 s, and slower for big grids so the front end gets at most
    ~400 KB/s (Jupyter drops IOPub output above 1 MB/s); the last redraw is always sent."""

    MIN_INTERVAL = 0.25
    BYTES_PER_S = 400_000

    def __init__(self, grid: GridLike, view: NotebookView) -> None:
        self.grid = grid
        self.view = view
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last: tuple[float, float, tuple[int, ...]] = (0.0, -1.0, ())  # when, gap, version
        view.show(render(grid, live=True), repr(grid))

    def refresh(self, *, force: bool = False) -> None:
        with self._lock:
            when, gap, seen = self._last
            version = self.grid.version()
            if not force and (version == seen or time.monotonic() - when < gap):
                return
            text = render(self.grid, live=not self.grid.finished)
            self.view.update(text, repr(self.grid))
            self._last = (
                time.monotonic(),
                max(self.MIN_INTERVAL, len(text) / self.BYTES_PER_S),
                version,
            )

    def follow(self, job: Job) -> None:
        """Redraw from a background thread (`wait=False`). Started from the running cell, so
        the kernel attributes its output to that cell."""

        def run() -> None:
            try:
                loop.wait(job.future, tick=self.refresh)
            except BaseException:  # a failed or cancelled run shows in its cells
                pass
            finally:
                self.refresh(force=True)

        self._thread = threading.Thread(target=run, name="imagenb-grid-view", daemon=True)
        self._thread.start()

    def wait(self, job: Job) -> None:
        """Block until `job` is done (interruptibly), redrawing unless a thread already does."""
        if self._thread is not None:
            loop.wait(job.future, settled=job.run.settled)
            self._thread.join()
            return
        try:
            loop.wait(job.future, tick=self.refresh, settled=job.run.settled)
        finally:
            self.refresh(force=True)


class NotebookView:
    """An HTML output updated in place by `display_id`; what stays in the notebook is the last
    update, plain HTML."""

    def __init__(self) -> None:
        self._handle: Any = None
        self._count: int | None = None

    def show(self, html: str, plain: str) -> None:
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        self._count = getattr(shell, "execution_count", None)
        self._handle = display({"text/html": html, "text/plain": plain}, raw=True, display_id=True)

    def update(self, html: str, plain: str) -> None:
        if self._handle is not None:
            self._handle.update({"text/html": html, "text/plain": plain}, raw=True)

    def in_current_cell(self) -> bool:
        """True while the cell that showed this view is still the one running."""
        from IPython import get_ipython

        shell = get_ipython()
        return shell is not None and getattr(shell, "execution_count", None) == self._count
