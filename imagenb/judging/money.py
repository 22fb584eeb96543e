"""The judge's door to the budget: a judging call reserves its estimate before anything is
sent (atomically with every other run of the process, `session.reserve`), each question holds
its own estimate while it is out, and its answer turns the hold into what it cost."""

from __future__ import annotations

from imagenb.core.ledger import Reservation


def paid(reservation: Reservation, held: float, usd: float, model: str) -> None:
    """An answer arrived: its hold becomes what it cost (a judgment is not an image)."""
    reservation.spend(held, usd, model, images=0)


def failed(reservation: Reservation, held: float, lost: bool) -> None:
    """No verdict came: an answer lost after the question may have been billed is uncertain
    spend; a question the service refused before doing any work gives its hold back."""
    if lost:
        reservation.uncertain(held)
    else:
        reservation.give_back(held)
