"""The request options shared by the CLI and every magic, defined once.

Each entry is `(flags, argparse keyword arguments)`; `add_to(parser)` applies them to an
argparse parser, and the magics apply the same entries through IPython's `magic_arguments`.
"""

from __future__ import annotations

import argparse
from typing import Any

REQUEST_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("-m", "--model"), {"help": "model id (default: the configured model, gpt-image-2)"}),
    (
        ("-s", "--size"),
        {"help": "WxH, auto, square, landscape, portrait, 2k, 4k or a ratio like 16:9"},
    ),
    (("-q", "--quality"), {"help": "low, medium, high or auto (xhigh/max on 2.5 models)"}),
    (("-n", "--n"), {"type": int, "help": "how many variants, 1 to 10"}),
    (("-f", "--format"), {"dest": "output_format", "help": "png, webp or jpeg"}),
    (
        ("--compression",),
        {"dest": "output_compression", "type": int, "help": "0-100, webp/jpeg only"},
    ),
    (("--background",), {"help": "auto, opaque or transparent (png/webp)"}),
    (("--moderation",), {"help": "auto or low"}),
    (("--complexity",), {"help": "low, medium or high (2.6 models)"}),
    (("--fresh",), {"action": "store_true", "help": "ignore the store and pay for new images"}),
    (("--stream",), {"action": "store_true", "help": "show partial images as they arrive"}),
    (("--estimate",), {"action": "store_true", "help": "print the estimated cost; send nothing"}),
    (("--backend",), {"help": "auto, openai, preview, replay or a plugin's name"}),
]

PARAMETER_DESTS = (
    "model",
    "size",
    "quality",
    "n",
    "output_format",
    "output_compression",
    "background",
    "moderation",
    "complexity",
)


def add_to(parser: argparse.ArgumentParser | Any) -> None:
    for flags, kwargs in REQUEST_OPTIONS:
        parser.add_argument(*flags, **kwargs)


def request_params(ns: argparse.Namespace) -> dict[str, Any]:
    """The request parameters a parsed namespace sets (unset ones left out)."""
    return {k: getattr(ns, k) for k in PARAMETER_DESTS if getattr(ns, k, None) is not None}
