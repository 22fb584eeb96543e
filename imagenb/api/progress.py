"""Live progress of a run: an updating HTML line in notebooks (a display with an id, so it
needs no widget manager and the last state stays readable in the saved notebook), and a
one-line bar on a terminal's stderr. Both read the `Run`; neither touches the engine.
"""

from __future__ import annotations

import concurrent.futures
import html
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from imagenb.backends.base import Partial
from imagenb.engine import loop
from imagenb.engine.runner import Run
from imagenb.render.html import NO_MATH

if TYPE_CHECKING:
    from imagenb.store.images import ImageSet

_BAR = 24


def summary(run: Run) -> str:
    """`12/64 done · 3 cached · 1 failed · $0.4210 · ETA 14s` (and a remote executor's note)"""
    parts = [f"{run.done + run.cached}/{run.total} done"]
    if run.cached:
        parts.append(f"{run.cached} cached")
    if run.failed:
        parts.append(f"{run.failed} failed")
    if run.stopped:
        parts.append(f"{run.stopped} not sent (stopped)")
    parts.append(f"${run.usd:.4f}")
    if run.uncertain_usd:
        parts.append(f"+${run.uncertain_usd:.4f} possibly billed (answers lost)")
    eta = run.eta_s()
    if run.finished is not None:
        parts.append(f"{run.finished - run.started:.1f}s")
    elif eta is not None:
        parts.append(f"ETA {eta:.0f}s")
    if run.note:
        parts.append(run.note)
    return " · ".join(parts)


def _fraction(run: Run) -> float:
    if not run.total:
        return 1.0
    settled = max(run.done + run.failed, run.remote_settled)  # a batch reports before delivery
    return (settled + run.cached) / run.total


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where rich display reaches a front end)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    ip = shell.get_ipython()
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


class Progress:
    """Shows `run` while it goes on; call `tick()` often and `close()` once."""

    def __init__(self, run: Run, *, label: str = "imagenb", enabled: bool = True) -> None:
        self.run = run
        self.label = label
        self._handle: Any = None
        self._last = 0.0
        self._terminal = False
        if not enabled or run.total - run.cached <= 0:
            return
        if in_notebook():
            from IPython.display import display

            self._handle = display(self._bundle(), raw=True, display_id=True)
        elif sys.stderr.isatty():
            self._terminal = True

    def tick(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.25:
            return
        self._last = now
        if self._handle is not None:
            self._handle.update(self._bundle(), raw=True)
        elif self._terminal:
            filled = int(_fraction(self.run) * _BAR)
            bar = "█" * filled + "░" * (_BAR - filled)
            sys.stderr.write(f"\r{self.label} {bar} {summary(self.run)}   ")
            sys.stderr.flush()

    def close(self) -> None:
        self.tick(force=True)
        if self._terminal:
            sys.stderr.write("\n")

    def _bundle(self) -> dict[str, str]:
        return {"text/html": self._html(), "text/plain": f"{self.label}: {summary(self.run)}"}

    def _html(self) -> str:
        pct = int(_fraction(self.run) * 100)
        return (
            f'<div class="imagenb-progress {NO_MATH}" '
            'style="font:12px var(--jp-ui-font-family,sans-serif);'
            'display:flex;gap:8px;align-items:center">'
            f"<progress value='{pct}' max='100' style='width:160px'></progress>"
            f"<span>{html.escape(self.label)}: {html.escape(summary(self.run))}</span></div>"
        )


def wait_showing(
    run: Run,
    future: concurrent.futures.Future[Run],
    *,
    label: str,
    progress: bool,
    tick: Callable[[], None] | None = None,
) -> Run:
    """Block on `future` (Ctrl-C cancels it) while a `Progress` of `run` ticks, calling
    `tick()` too; the progress view closes however the wait ends."""
    view = Progress(run, label=label, enabled=progress)

    def on_tick() -> None:
        view.tick()
        if tick:
            tick()

    try:
        return loop.wait(future, tick=on_tick, settled=run.settled)
    finally:
        view.close()


class PartialPreview:
    """The newest partial image of a streaming run, shown small in one display that is
    updated in place and finally replaced by the result.

    Partials arrive on the engine thread; they are only remembered there and drawn from the
    waiting (main) thread, where display messages reach the right cell.
    """

    def __init__(self, px: int) -> None:
        self._px = min(px, 256)
        self._latest: Partial | None = None  # one reference swap: safe across threads
        self._shown: Partial | None = None
        self._handle: Any = None

    def offer(self, index: int, partial: Partial) -> None:
        self._latest = partial

    def show_latest(self) -> None:
        latest = self._latest
        if latest is None or latest is self._shown:
            return
        self._shown = latest
        bundle = _partial_bundle(latest, self._px)
        if self._handle is None:
            from IPython.display import display

            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)

    def clear(self) -> None:
        """Remove the partial preview (the caller displays the final images itself)."""
        if self._handle is not None:
            self._handle.update({"text/plain": ""}, raw=True)

    def replace_with(self, result: ImageSet) -> bool:
        """Show `result` where the partials were; False if no partial was ever shown."""
        if self._handle is None:
            return False
        self._handle.update(result)
        return True


def _partial_bundle(partial: Partial, px: int) -> dict[str, str]:
    import base64

    from imagenb.render.html import thumbnail

    data, mime = thumbnail(partial.data, px)
    label = f"image {partial.slot + 1}: partial {partial.index + 1} (streaming…)"
    return {
        "text/html": (
            f'<figure style="margin:0"><img src="data:{mime};base64,'
            f'{base64.b64encode(data).decode("ascii")}" alt="{label}" style="max-width:{px}px">'
            f"<figcaption style='font-size:11px;opacity:.75'>{label}</figcaption></figure>"
        ),
        "text/plain": label,
    }
