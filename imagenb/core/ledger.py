"""Money of this process: what was spent, what may have been spent, and what runs under way
have reserved, so a budget is a hard cap however many runs overlap.

Every run reserves its estimate (`Ledger.reserve`, atomic under one lock) before sending.
Each request then sets aside its own estimate from the run's reservation (`Reservation.take`,
topping it up from the budget if needed) while it is out; its answer replaces the hold with
the actual cost (`spend`), an answer lost after the request may have been billed turns the
hold into uncertain spend (`uncertain`), and a request that was never out gives it back
(`give_back`). `close()` returns what the run did not use. The budget allows a new hold only
while `usd + uncertain_usd + reserved_usd` stays within it.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from imagenb.errors import BudgetExceeded

_EPS = 1e-12


@dataclass
class Ledger:
    """Money this process has spent (paid backends) or would have (preview), by model."""

    usd: float = 0.0
    images: int = 0
    preview_usd: float = 0.0
    uncertain_usd: float = 0.0
    uncertain_requests: int = 0
    reserved_usd: float = 0.0
    batch_reserved_usd: float = 0.0  # submitted batches, until their results are collected
    by_model: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, model: str, usd: float, *, paid: bool) -> None:
        """Record an image paid for outside any run (batch results collected): it replaces
        as much of what submitted batches hold."""
        with self.lock:
            if paid:
                self.batch_reserved_usd = max(0.0, self.batch_reserved_usd - usd)
            self._add(model, usd, paid=paid, images=1)

    def _add(self, model: str, usd: float, *, paid: bool, images: int) -> None:
        if paid:
            self.usd += usd
            self.images += images
            self.by_model[model] += usd
        else:
            self.preview_usd += usd

    @property
    def committed(self) -> float:
        """What the budget counts: spent, possibly spent, and reserved by runs under way."""
        return self.usd + self.uncertain_usd + self.reserved_usd + self.batch_reserved_usd

    def left(self, cap: float | None) -> float | None:
        """Dollars a new reservation may still take under `cap` (None: no cap)."""
        if cap is None:
            return None
        with self.lock:
            return max(0.0, cap - self.committed)

    def reserve(self, usd: float, cap: float | None, *, paid: bool = True) -> Reservation:
        """Reserve `usd` for a run, or raise `BudgetExceeded` (nothing reserved)."""
        with self.lock:
            if cap is not None and self.committed + usd > cap + _EPS:
                raise _exceeded(usd, max(0.0, cap - self.committed), cap)
            self.reserved_usd += usd
        return Reservation(self, usd, cap, paid)


class Reservation:
    """A run's share of the budget; see the module docstring for its life."""

    def __init__(self, ledger: Ledger, pool: float, cap: float | None, paid: bool) -> None:
        self.ledger = ledger
        self.pool = pool  # reserved, not set aside for a request
        self.cap = cap
        self.paid = paid
        self.closed = False

    def take(self, usd: float) -> bool:
        """Set `usd` aside for one request; False if the reservation and the budget left
        cannot cover it (then the request must not be sent)."""
        ledger = self.ledger
        with ledger.lock:
            need = max(0.0, usd - self.pool)
            if need and self.cap is not None and ledger.committed + need > self.cap + _EPS:
                return False
            ledger.reserved_usd += need
            self.pool = max(0.0, self.pool - usd)
            return True

    def give_back(self, held: float) -> None:
        """The request was never out: its hold returns to the run."""
        with self.ledger.lock:
            self.pool += held

    def spend(self, held: float, actual: float, model: str, images: int) -> None:
        """The answer arrived: the hold becomes what it actually cost."""
        ledger = self.ledger
        with ledger.lock:
            ledger.reserved_usd = max(0.0, ledger.reserved_usd - held)
            ledger._add(model, actual, paid=self.paid, images=images)

    def uncertain(self, held: float) -> None:
        """The answer was lost after the request may have been billed: count it at its
        estimate as uncertain spend (against the budget too)."""
        ledger = self.ledger
        with ledger.lock:
            ledger.reserved_usd = max(0.0, ledger.reserved_usd - held)
            if self.paid:
                ledger.uncertain_usd += held
                ledger.uncertain_requests += 1

    def keep_for_batch(self) -> None:
        """The reservation paid for a submitted batch: hold it until its results come in
        (`Ledger.add`), not just until this call ends."""
        ledger = self.ledger
        with ledger.lock:
            if not self.closed and self.paid:
                ledger.reserved_usd = max(0.0, ledger.reserved_usd - self.pool)
                ledger.batch_reserved_usd += self.pool
                self.pool = 0.0
        self.close()

    def close(self) -> None:
        """The run ended: release what it reserved and did not use."""
        with self.ledger.lock:
            if not self.closed:
                self.ledger.reserved_usd = max(0.0, self.ledger.reserved_usd - self.pool)
                self.pool = 0.0
                self.closed = True


def _exceeded(usd: float, left: float, cap: float) -> BudgetExceeded:
    return BudgetExceeded(
        f"this would cost about ${usd:.4f} but only ${left:.4f} of the ${cap:.2f} budget is "
        "left (runs under way hold their estimate); lower the quality, size or count, wait for "
        "the other runs, or raise it with ig.configure(budget_usd=...)",
        estimate_usd=usd,
        left_usd=left,
    )
