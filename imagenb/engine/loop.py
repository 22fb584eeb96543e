"""One private event loop in a daemon thread, so imagenb's async engine runs the same from a
script, a terminal IPython and inside a Jupyter cell whose kernel loop is already running
(no `asyncio.run()` inside a running loop, no nest_asyncio).

Blocking callers wait on a thread-safe future in short slices, so Ctrl-C or the kernel's
interrupt button (SIGINT to the main thread) lands within a fraction of a second. The first
interrupt stops a run gracefully when it registered how (`on_interrupt`): nothing new is
sent, what is in flight is still collected into the store, and a line says so; the second
interrupt cancels the run on its own loop, abandoning what is in flight.

Blocking from the engine thread itself (an `on_image` callback calling `ig.generate`) would
wait for the loop it is blocking: `refuse_blocking` and `wait` raise a clear error instead.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from imagenb.errors import ImagenbError

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
# future -> how to stop its run gracefully (returns the line to show)
_graceful: weakref.WeakKeyDictionary[concurrent.futures.Future[Any], Callable[[], str]] = (
    weakref.WeakKeyDictionary()
)


def get_loop() -> asyncio.AbstractEventLoop:
    """The engine's loop, started on first use and kept for the life of the process."""
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="imagenb-engine", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
        return _loop


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule `coro` on the engine loop; the returned future may be waited on from any thread."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


def in_engine_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def refuse_blocking(what: str, instead: str) -> None:
    """Raise if called on the engine thread, where blocking would deadlock the engine."""
    if in_engine_thread():
        raise ImagenbError(
            f"{what} blocks until its images are made, but this code runs on imagenb's engine "
            f"thread (an on_image callback), which would then wait for itself; use {instead}, "
            "which returns at once, or hand the work to another thread"
        )


def on_interrupt(future: concurrent.futures.Future[Any], stop: Callable[[], str]) -> None:
    """Make the first interrupt of a wait on `future` call `stop()` (a graceful stop that
    returns the line to show) instead of cancelling."""
    _graceful[future] = stop


def wait(
    future: concurrent.futures.Future[T],
    *,
    tick: Callable[[], None] | None = None,
    settled: threading.Event | None = None,
    interval: float = 0.1,
    cancel_grace: float = 1.0,
) -> T:
    """Block until `future` is done, calling `tick()` every `interval` (progress display).

    On a first KeyboardInterrupt, a run registered with `on_interrupt` stops gracefully and
    the wait goes on until what was in flight is stored, then the interrupt is re-raised. On
    a (second) interrupt the run is cancelled, given `cancel_grace` seconds to unwind (until
    `settled` is set, when given), and the interrupt is re-raised.
    """
    refuse_blocking("waiting for a run", "ig.start(...) and Job.finished")
    stop = _graceful.get(future)
    try:
        try:
            return _wait(future, tick, interval)
        except KeyboardInterrupt:
            if stop is None or future.done():
                raise
            print(f"imagenb: {stop()}", file=sys.stderr, flush=True)
            _wait(future, tick, interval)
            raise
    except KeyboardInterrupt:
        future.cancel()
        if settled is not None:
            settled.wait(cancel_grace)
        raise
    finally:
        if tick:
            tick()


def _wait(
    future: concurrent.futures.Future[T], tick: Callable[[], None] | None, interval: float
) -> T:
    while True:
        try:
            return future.result(timeout=interval)
        except concurrent.futures.TimeoutError:
            if tick:
                tick()
