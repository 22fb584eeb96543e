"""The judge's one door to the budget and the spend ledger, so that budget reservations can
replace the check here without touching the judging code."""

from __future__ import annotations

from .. import api, cost, session
from ..config import Config


def guard(usd: float, questions: int, cfg: Config) -> None:
    """Raise `BudgetExceeded`, before anything is sent, if `usd` is more than what is left."""
    api.check_budget(cost.Estimate(usd, questions, questions, 0), cfg)


def record(model: str, usd: float, cfg: Config) -> None:
    """Count what one answer cost in this process's spend (which the budget is checked against).
    A judgment is not an image, so the ledger's image count stays as it is."""
    ledger = session.ledger
    with ledger.lock:
        if session.backend_name(cfg) in ("preview", "replay"):
            ledger.preview_usd += usd
        else:
            ledger.usd += usd
            ledger.by_model[model] += usd
