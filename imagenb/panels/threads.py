"""How work done on other threads reaches a panel's widgets.

Images arrive on the engine thread; thumbnails are made on one worker thread (`render`), so
decoding never stalls the kernel; the widget updates they lead to are posted to a `Mailbox`,
which applies them on the kernel's own event loop (`call_soon_threadsafe` on the loop that
was running when the panel was made). Widgets thus change only on the kernel thread, between
cells, like any comm message. Outside a kernel (scripts, tests) there is no running loop and
updates are applied at once, under the mailbox's lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import queue
import threading
from collections.abc import Callable
from typing import Any

_worker: concurrent.futures.ThreadPoolExecutor | None = None
_worker_lock = threading.Lock()


def render(fn: Callable[[], None]) -> concurrent.futures.Future[None]:
    """Run `fn` on the one panel worker: work runs in submission order (thumbnails in
    arrival order, then a run's end), so a finished run never overtakes its images."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="imagenb-panel")
        return _worker.submit(fn)


class Mailbox:
    """Widget updates from any thread, applied one at a time on the kernel thread."""

    def __init__(self, on_error: Callable[[Exception], None]) -> None:
        self.lock = threading.RLock()
        self._inbox: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._on_error = on_error
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    def locked(self, fn: Callable[..., None]) -> Callable[..., None]:
        """`fn` holding the lock: widget callbacks never interleave with posted updates."""

        @functools.wraps(fn)
        def run(*args: Any) -> None:
            with self.lock:
                fn(*args)

        return run

    def post(self, fn: Callable[[], None]) -> None:
        """Apply `fn` on the kernel thread (from any thread)."""
        self._inbox.put(fn)
        if not self.soon(self.drain):
            self.drain()

    def soon(self, fn: Callable[..., None], *args: Any) -> bool:
        """Schedule `fn(*args)` on the kernel loop; False when there is none running."""
        loop = self.loop
        if loop is None or not loop.is_running():
            return False
        loop.call_soon_threadsafe(fn, *args)
        return True

    def drain(self) -> None:
        """Apply everything posted so far; a failing update is reported, not raised (a
        display problem must not stop the panel)."""
        with self.lock:
            while True:
                try:
                    fn = self._inbox.get_nowait()
                except queue.Empty:
                    return
                try:
                    fn()
                except Exception as exc:
                    self._on_error(exc)
