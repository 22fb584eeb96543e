"""imagenb: image-generation models in Jupyter.

Import is cheap on purpose: the public names below resolve on first use (PEP 562), so
`import imagenb` and `%load_ext imagenb` load neither openai, pandas, PIL nor ipywidgets.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "configure": "imagenb.core.config",
    "Config": "imagenb.core.config",
    "generate": "imagenb.api.calls",
    "edit": "imagenb.api.calls",
    "estimate": "imagenb.api.calls",
    "history": "imagenb.api.calls",
    "spent": "imagenb.api.calls",
    "current_store": "imagenb.api.calls",
    "start": "imagenb.api.calls",
    "Spend": "imagenb.api.calls",
    "grid": "imagenb.grids.grid",
    "Grid": "imagenb.grids.grid",
    "prompt_matrix": "imagenb.core.frames",
    "check_text": "imagenb.checks.text",
    "TextCheck": "imagenb.text.match",
    "storyboard": "imagenb.storyboards.board",
    "Storyboard": "imagenb.storyboards.board",
    "panel": "imagenb.panels.widget",
    "mask": "imagenb.masks",
    "masks": "imagenb.masks",
    "Estimate": "imagenb.core.cost",
    "GeneratedImage": "imagenb.store.images",
    "ImageSet": "imagenb.store.images",
    "judge": "imagenb.judging.verdicts",
    "compare": "imagenb.judging.comparisons",
    "Comparison": "imagenb.judging.comparisons",
    "rank": "imagenb.judging.ranking",
    "rank_chart": "imagenb.judging.chart",
    "rate": "imagenb.judging.people",
    "ratings": "imagenb.judging.people",
    "agreement": "imagenb.judging.people",
    "errors": "imagenb.errors",
    "catalog": "imagenb.core.catalog",
    "chat": "imagenb.conversations.conversation",
    "Chat": "imagenb.conversations.conversation",
}

if TYPE_CHECKING:
    from imagenb import errors, masks
    from imagenb.api.calls import (
        Spend,
        current_store,
        edit,
        estimate,
        generate,
        history,
        spent,
        start,
    )
    from imagenb.checks.text import check_text
    from imagenb.conversations.conversation import Chat, chat
    from imagenb.core import catalog
    from imagenb.core.config import Config, configure
    from imagenb.core.cost import Estimate
    from imagenb.core.frames import prompt_matrix
    from imagenb.grids.grid import Grid, grid
    from imagenb.judging.chart import rank_chart
    from imagenb.judging.comparisons import Comparison, compare
    from imagenb.judging.people import agreement, rate, ratings
    from imagenb.judging.ranking import rank
    from imagenb.judging.verdicts import judge
    from imagenb.masks import mask
    from imagenb.panels.widget import panel
    from imagenb.store.images import GeneratedImage, ImageSet
    from imagenb.storyboards.board import Storyboard, storyboard
    from imagenb.text.match import TextCheck


_MODULES = {"errors", "catalog", "masks"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'imagenb' has no attribute {name!r}")
    found = import_module(module)
    # a name that is a module of its own (`ig.errors`, `ig.catalog`, `ig.masks`) is that module;
    # any other is an attribute of its module, even where the module is named alike
    # (`ig.grid` is the function in `imagenb.grids.grid`)
    value = found if name in _MODULES else getattr(found, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext imagenb`: register the magics (imported only now)."""
    from imagenb.magics.cells import register

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
