"""Process-wide state behind the public API: one store per root, one backend and limiter per
service (shared by every run, so two grids at once still respect one account's limits), and
the ledger of what this process has spent and reserved, which the budget is checked against.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .backends import registry
from .backends.base import Backend
from .config import Config
from .cost import Estimate
from .engine.limiter import AdaptiveLimiter
from .engine.retry import RetryPolicy
from .engine.runner import Engine
from .ledger import Ledger, Reservation
from .store import Store, default_root

_lock = threading.Lock()
_stores: dict[Path, Store] = {}
_backends: dict[tuple[Any, ...], Backend] = {}
_limiters: dict[tuple[Any, ...], AdaptiveLimiter] = {}


def store_for(config: Config) -> Store:
    root = Path(config.store).expanduser() if config.store else default_root()
    with _lock:
        if root not in _stores:
            _stores[root] = Store(root)
        return _stores[root]


def backend_name(config: Config) -> str:
    return registry.resolve_name(config)


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
    from .engine import loop

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
