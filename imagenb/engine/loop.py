"""One private event loop in a daemon thread, so imagenb's async engine runs the same from a
script, a terminal IPython and inside a Jupyter cell whose kernel loop is already running
(no `asyncio.run()` inside a running loop, no nest_asyncio).

Blocking callers wait on a thread-safe future in short slices, so Ctrl-C or the kernel's
interrupt button (SIGINT to the main thread) lands within a fraction of a second; the run is
then cancelled on its own loop, and whatever finished is already in the store.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def get_loop() -> asyncio.AbstractEventLoop:
    """The engine's loop, started on first use and kept for the life of the process."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="imagenb-engine", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule `coro` on the engine loop; the returned future may be waited on from any thread."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


def in_engine_thread() -> bool:
    try:
        return asyncio.get_running_loop() is _loop
    except RuntimeError:
        return False


def wait(
    future: concurrent.futures.Future[T],
    *,
    tick: Callable[[], None] | None = None,
    settled: threading.Event | None = None,
    interval: float = 0.1,
    cancel_grace: float = 1.0,
) -> T:
    """Block until `future` is done, calling `tick()` every `interval` (progress display).

    On KeyboardInterrupt the run is cancelled, given `cancel_grace` seconds to unwind (until
    `settled` is set, when given), and the interrupt is re-raised.
    """
    try:
        while True:
            try:
                return future.result(timeout=interval)
            except concurrent.futures.TimeoutError:
                if tick:
                    tick()
    except KeyboardInterrupt:
        future.cancel()
        if settled is not None:
            settled.wait(cancel_grace)
        raise
    finally:
        if tick:
            tick()
