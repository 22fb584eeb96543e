"""The judge's one door to the budget: a judging call reserves its estimate before anything is
sent (atomically with every other run of the process), each question holds its own estimate
while it is out, and its answer turns the hold into what it cost."""

from __future__ import annotations

from .. import session
from ..config import Config
from ..ledger import Reservation


def reserve(holds: list[float], cfg: Config) -> Reservation:
    """Reserve the sum of `holds` and set each aside for its question; raises
    `BudgetExceeded` before anything is sent when the budget left cannot cover it."""
    paid = session.backend_name(cfg) not in ("preview", "replay")
    reservation = session.ledger.reserve(sum(holds), session.budget_cap(cfg), paid=paid)
    for usd in holds:
        reservation.take(usd)  # always covered: the pool was reserved just now
    return reservation


def paid(reservation: Reservation, held: float, usd: float, model: str) -> None:
    """An answer arrived: its hold becomes what it cost (a judgment is not an image)."""
    reservation.spend(held, usd, model, images=0)


def lost(reservation: Reservation, held: float) -> None:
    """The answer was lost after the question may have been billed: uncertain spend."""
    reservation.uncertain(held)


def unsent(reservation: Reservation, held: float) -> None:
    """The question was never answered by the service (refused before work): no cost."""
    reservation.give_back(held)
