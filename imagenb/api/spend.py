"""`ig.spent()`: money spent on paid backends, by this process (with what may have been
spent: answers lost after their request may have been billed) and by everyone using the store."""

from __future__ import annotations

from dataclasses import dataclass

from imagenb.core import config as config_mod
from imagenb.engine import session


@dataclass(frozen=True)
class Spend:
    """Money spent on paid backends: by this process, and by everyone using this store."""

    usd: float
    images: int
    by_model: dict[str, float]
    all_time_usd: float
    all_time_images: int
    all_time_by_model: dict[str, float]
    preview_usd: float = 0.0
    uncertain_usd: float = 0.0  # answers lost after their request may have been billed
    uncertain_requests: int = 0
    reserved_usd: float = 0.0  # held by runs under way

    def __str__(self) -> str:
        preview = f" (previews: ≈ ${self.preview_usd:.4f} if real)" if self.preview_usd else ""
        uncertain = (
            f" + up to ${self.uncertain_usd:.4f} for {self.uncertain_requests} lost answer(s)"
            if self.uncertain_usd
            else ""
        )
        return (
            f"this session ${self.usd:.4f} for {self.images} image(s){uncertain}{preview}; "
            f"all time ${self.all_time_usd:.4f} for {self.all_time_images} image(s)"
        )

    __repr__ = __str__


def spent() -> Spend:
    """What was spent: `usd` for answers received, `uncertain_usd` (at their estimates) for
    answers lost after the request may have been billed; both count against the budget."""
    from imagenb.store.turns import mainline_spent

    store = session.store_for(config_mod.current())
    store_totals = store.spent()  # real money only: no previews, test servers, untrusted imports
    by_model = dict(store_totals.get("paid_by_model", {}))
    for model, usd in (mainline := mainline_spent(store)).items():
        by_model[model] = by_model.get(model, 0.0) + usd
    led = session.ledger
    with led.lock:
        return Spend(
            usd=led.usd,
            images=led.images,
            by_model=dict(led.by_model),
            all_time_usd=store_totals["usd"] + sum(mainline.values()),
            all_time_images=store_totals["images"],
            all_time_by_model=by_model,
            preview_usd=led.preview_usd,
            uncertain_usd=led.uncertain_usd,
            uncertain_requests=led.uncertain_requests,
            reserved_usd=led.reserved_usd,
        )
