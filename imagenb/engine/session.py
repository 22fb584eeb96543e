"""Process-wide state behind the public API: one store per root, one backend and limiter per
service (shared by every run, so two grids at once still respect one account's limits), and
the ledger of what this process has spent and reserved, which the budget is checked against.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imagenb.backends import registry
from imagenb.backends.base import Backend
from imagenb.core.config import Config
from imagenb.core.cost import Estimate
from imagenb.core.ledger import Ledger, Reservation
from imagenb.core.request import ImageRequest
from imagenb.engine.limiter import AdaptiveLimiter
from imagenb.engine.retry import RetryPolicy
from imagenb.engine.runner import Engine
from imagenb.store import sources
from imagenb.store.index import Store, default_root

_lock = threading.Lock()
_stores: dict[Path, Store] = {}
_backends: dict[tuple[Any, ...], Backend] = {}
_limiters: dict[tuple[Any, ...], AdaptiveLimiter] = {}


def store_for(config: Config) -> Store:
    """The store `config` uses, as a view that serves only what its backend may be answered
    with (`sources`). A loopback test server with no store configured gets a temporary store
    of its own: test images and fake money never land in the user's store."""
    policy = sources.policy_for(config, backend_name(config))
    if config.store:
        root = Path(config.store).expanduser()
    elif policy.writes == sources.TEST:
        root = _test_root()
    else:
        root = default_root()
    with _lock:
        if root not in _stores:
            _stores[root] = Store(root)
        return _stores[root].serving(policy)


def _test_root() -> Path:
    """One temporary store per process for test servers, removed when the process exits."""
    global _test_dir
    with _lock:
        if _test_dir is None:
            _test_dir = Path(tempfile.mkdtemp(prefix="imagenb-test-store-"))
            atexit.register(shutil.rmtree, _test_dir, ignore_errors=True)
        return _test_dir


_test_dir: Path | None = None


def backend_name(config: Config) -> str:
    return config.live_backend()


def engine_for(config: Config) -> Engine:
    """The engine for `config`. Call on the engine loop: backends hold loop-bound clients."""
    name = backend_name(config)
    service = (name, config.base_url, config.api_key, config.timeout_s)
    with _lock:
        backend = _backends.get(service)
        if backend is None:
            backend = _backends[service] = registry.load_class(name)(config)
        limiter = _limiters.get(service[:2])
        if limiter is None:
            limiter = _limiters[service[:2]] = AdaptiveLimiter(
                config.concurrency, images_per_minute=config.images_per_minute
            )
        else:
            limiter.configure(config.concurrency, config.images_per_minute)
    return Engine(
        backend,
        store_for(config),
        limiter,
        RetryPolicy(max_attempts=config.max_attempts),
        ambiguous_retries=config.ambiguous_retries,
        thumbnail_px=config.thumbnail_px,
    )


ledger = Ledger()


def budget_left(config: Config) -> float | None:
    """Dollars the budget still allows this process, or None without a budget."""
    return ledger.left(budget_cap(config))


def budget_cap(config: Config) -> float | None:
    """The cap runs reserve against: none on the replay backend (it never pays)."""
    return None if backend_name(config) == "replay" else config.budget_usd


def reuse_note(requests: Sequence[ImageRequest], config: Config, *, fresh: bool = False) -> str:
    """` · 6 preview images in the store were not reused`: what a plan line adds when the
    store holds images of these requests that this backend may not be answered with, or
    files that no longer match their hash (empty when there are none)."""
    if fresh:
        return ""
    note = store_for(config).lookup(k for r in requests for k in r.variant_keys()).note()
    return f" · {note}" if note else ""


def reserve(holds: list[float], config: Config) -> Reservation:
    """Reserve a call's estimate before anything is sent, one hold per request set aside at
    once (for calls that send all their requests together: judging, conversation turns);
    raises `BudgetExceeded` when what the budget has left cannot cover it."""
    paid = backend_name(config) not in ("preview", "replay")
    reservation = ledger.reserve(sum(holds), budget_cap(config), paid=paid)
    for usd in holds:
        reservation.take(usd)  # always covered: the pool was reserved just now
    return reservation


def plan_tail(plan: Estimate, config: Config) -> str:
    """`5 to make ~$0.1500 est. · budget left $4.2000`: how a grid's or a storyboard's plan
    line ends (what is left to pay for, and what the budget allows)."""
    note = " if real (preview backend)" if backend_name(config) == "preview" else " est."
    note += " at the batch price" if plan.batch else ""
    left = budget_left(config)
    budget = "no budget set" if left is None else f"budget left ${left:.4f}"
    return f"{plan.images} to make ~${plan.usd:.4f}{note} · {budget}"


def reset() -> None:
    """Forget stores, backends, limiters and spend (tests; a new configuration's world)."""
    from imagenb.engine import loop

    with _lock:
        stores, backends = list(_stores.values()), list(_backends.values())
        _stores.clear()
        _backends.clear()
        _limiters.clear()
    for backend in backends:
        loop.submit(backend.aclose()).result(timeout=10)
    for store in stores:
        store.close()
    global ledger
    ledger = Ledger()
