"""A ranking as a picture: one row per item, its rating as a dot and its 95% interval as a
bar, best first. Static SVG with presentation attributes only (no `<style>`, no script),
shown as an `<img>` data URL, so it renders in a saved notebook without a kernel, in
untrusted notebooks and on GitHub. Every label is escaped."""

from __future__ import annotations

import base64
import math
from typing import TYPE_CHECKING, Any

from imagenb.render.html import clip, esc

if TYPE_CHECKING:
    import pandas as pd

ROW = 26
LABEL_W = 170
PLOT_W = 300
VALUE_W = 70
TOP = 34
FONT = 'font-family="sans-serif" font-size="12"'


def svg(frame: pd.DataFrame, title: str | None = None) -> str:
    """The SVG of a `rank` frame (index: the items; rating, ci_low, ci_high)."""
    rows = list(frame.itertuples())
    low = min([r.ci_low for r in rows] + [1000.0])
    high = max([r.ci_high for r in rows] + [1000.0])
    pad = max(10.0, (high - low) * 0.08)
    low, high = low - pad, high + pad
    width, height = LABEL_W + PLOT_W + VALUE_W, TOP + ROW * len(rows) + 28

    def x(value: float) -> float:
        return float(LABEL_W + (value - low) / (high - low) * PLOT_W)

    heading = title or f"Bradley-Terry rating by {frame.index.name or 'item'} (95% interval)"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="8" y="18" {FONT} font-weight="bold" fill="#222">{esc(clip(heading, 70))}</text>',
        f'<line x1="{x(1000):.1f}" y1="{TOP - 6}" x2="{x(1000):.1f}" '
        f'y2="{TOP + ROW * len(rows)}" stroke="#bbb" stroke-dasharray="3,3"/>',
    ]
    for i, row in enumerate(rows):
        y = TOP + ROW * i + ROW / 2
        parts += [
            f'<text x="8" y="{y + 4:.1f}" {FONT} fill="#222">{esc(clip(str(row.Index), 26))}'
            "</text>",
            f'<line x1="{x(row.ci_low):.1f}" y1="{y:.1f}" x2="{x(row.ci_high):.1f}" '
            f'y2="{y:.1f}" stroke="#7a9cc6" stroke-width="6" stroke-linecap="round"/>',
            f'<circle cx="{x(row.rating):.1f}" cy="{y:.1f}" r="5" fill="#1f4e8c"/>',
            f'<text x="{LABEL_W + PLOT_W + 8}" y="{y + 4:.1f}" {FONT} fill="#222">'
            f"{row.rating:.0f}</text>",
        ]
    axis_y = TOP + ROW * len(rows) + 18
    for tick in _ticks(low, high):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{axis_y}" {FONT} fill="#666" '
            f'text-anchor="middle">{tick:.0f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _ticks(low: float, high: float) -> list[float]:
    step = 10 ** math.floor(math.log10(max(1.0, (high - low) / 4)))
    step *= next(m for m in (1, 2, 5, 10) if (high - low) / (step * m) <= 5)
    first = math.ceil(low / step) * step
    return [first + k * step for k in range(int((high - first) // step) + 1)]


class RankChart:
    """Displays as the chart; `.svg` is its source."""

    def __init__(self, frame: pd.DataFrame, title: str | None = None) -> None:
        self.svg = svg(frame, title)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        data = base64.b64encode(self.svg.encode()).decode("ascii")
        html = f'<img src="data:image/svg+xml;base64,{data}" alt="ranking chart"/>'
        return {"text/html": html, "image/svg+xml": self.svg, "text/plain": "RankChart"}


def rank_chart(frame: pd.DataFrame, title: str | None = None) -> RankChart:
    """The chart of an `ig.rank` frame, to show or save (`.svg`)."""
    return RankChart(frame, title)
