"""A grid's (or a storyboard's) results as a DataFrame: the input columns, then one row per
image with what happened to it. Built on request, so pandas loads only when a frame is asked for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from imagenb.core.frames import RESULT_COLUMNS, Table

if TYPE_CHECKING:
    import pandas as pd

    from imagenb.grids.grid import Item


def results_frame(tab: Table, items: Sequence[Sequence[Item]]) -> pd.DataFrame:
    """The input columns plus `RESULT_COLUMNS`, one row per image (`items[i]`: the images of
    input row `i`), indexed like the input frame. `cost_usd` is what this run paid (0 for
    cached images); `latency_s` is left empty for them too."""
    import pandas as pd

    records: list[dict[str, Any]] = []
    positions: list[int] = []
    for i, row in enumerate(tab.rows):
        for item in items[i]:
            image = item.image
            records.append(
                {
                    **row,
                    "variant": item.variant,
                    "image": image,
                    "path": item.path,
                    "status": item.status,
                    "error": item.error,
                    "cost_usd": (0.0 if image.cached else image.cost_usd) if image else None,
                    "latency_s": image.latency_s if image and not image.cached else None,
                }
            )
            positions.append(i)
    columns = [*tab.columns, *RESULT_COLUMNS]
    index = tab.index.take(positions) if tab.index is not None else None  # name, MultiIndex kept
    out = pd.DataFrame(records, columns=columns, index=index)
    out["cost_usd"] = out["cost_usd"].astype("float64")
    out["latency_s"] = out["latency_s"].astype("float64")
    return out
