"""imagenb: image-generation models in Jupyter.

Import is cheap on purpose: the public names below resolve on first use (PEP 562), so
`import imagenb` and `%load_ext imagenb` load neither openai, pandas, PIL nor ipywidgets.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "configure": "imagenb.config",
    "Config": "imagenb.config",
    "generate": "imagenb.api",
    "edit": "imagenb.api",
    "estimate": "imagenb.api",
    "history": "imagenb.api",
    "spent": "imagenb.api",
    "current_store": "imagenb.api",
    "start": "imagenb.api",
    "Spend": "imagenb.api",
    "grid": "imagenb.grids",
    "Grid": "imagenb.grids",
    "prompt_matrix": "imagenb.frames",
    "check_text": "imagenb.textcheck",
    "TextCheck": "imagenb.textmatch",
    "storyboard": "imagenb.storyboards",
    "Storyboard": "imagenb.storyboards",
    "panel": "imagenb.panels",
    "mask": "imagenb.masks",
    "masks": "imagenb.masks",
    "Estimate": "imagenb.cost",
    "GeneratedImage": "imagenb.results",
    "ImageSet": "imagenb.results",
    "judge": "imagenb.judging.verdicts",
    "compare": "imagenb.judging.comparisons",
    "Comparison": "imagenb.judging.comparisons",
    "rank": "imagenb.judging.ranking",
    "rank_chart": "imagenb.judging.chart",
    "rate": "imagenb.judging.people",
    "ratings": "imagenb.judging.people",
    "agreement": "imagenb.judging.people",
    "errors": "imagenb.errors",
    "catalog": "imagenb.catalog",
    "chat": "imagenb.chat.conversation",
    "Chat": "imagenb.chat.conversation",
}

if TYPE_CHECKING:
    from . import catalog, errors, masks
    from .api import Spend, current_store, edit, estimate, generate, history, spent, start
    from .chat.conversation import Chat, chat
    from .config import Config, configure
    from .cost import Estimate
    from .frames import prompt_matrix
    from .grids import Grid, grid
    from .judging.chart import rank_chart
    from .judging.comparisons import Comparison, compare
    from .judging.people import agreement, rate, ratings
    from .judging.ranking import rank
    from .judging.verdicts import judge
    from .masks import mask
    from .panels import panel
    from .results import GeneratedImage, ImageSet
    from .storyboards import Storyboard, storyboard
    from .textcheck import check_text
    from .textmatch import TextCheck


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'imagenb' has no attribute {name!r}")
    value = import_module(module) if module.endswith(name) else getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext imagenb`: register the magics (imported only now)."""
    from .magics import register

    register(ipython)


__all__ = [
    "Chat",
    "Comparison",
    "Config",
    "Estimate",
    "GeneratedImage",
    "Grid",
    "ImageSet",
    "Spend",
    "Storyboard",
    "TextCheck",
    "agreement",
    "catalog",
    "chat",
    "check_text",
    "compare",
    "configure",
    "current_store",
    "edit",
    "errors",
    "estimate",
    "generate",
    "grid",
    "history",
    "judge",
    "mask",
    "masks",
    "panel",
    "prompt_matrix",
    "rank",
    "rank_chart",
    "rate",
    "ratings",
    "spent",
    "start",
    "storyboard",
]
