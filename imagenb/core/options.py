"""The request options shared by the CLI and every magic, defined once.

Each entry is `(flags, argparse keyword arguments)`; `add_to(parser)` applies them to an
argparse parser, and the magics apply the same entries through IPython's `magic_arguments`.
`MAGIC_OPTIONS` (every magic), `EDIT_OPTIONS` (`%%imageedit`) and `STORYBOARD_OPTIONS`
(`%%storyboard`) exist only in the magics.
"""

from __future__ import annotations

import argparse
from typing import Any

from imagenb.core.request import PARAMETERS

REQUEST_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("-m", "--model"), {"help": "model id, such as gpt-image-2"}),
    (
        ("-s", "--size"),
        {"help": "WxH, auto, square, landscape, portrait, 2k, 4k or a ratio like 16:9"},
    ),
    (
        ("-q", "--quality"),
        {
            "help": "low, medium, high or auto (xhigh/max on 2.5 models); auto lets the service "
            "pick, so estimates price it as high, the dearest (--estimate shows both)"
        },
    ),
    (("-n", "--n"), {"type": int, "help": "how many variants, 1 to 10"}),
    (
        ("-f", "--format"),
        {"dest": "output_format", "metavar": "FORMAT", "help": "png, webp or jpeg"},
    ),
    (
        ("--compression",),
        {
            "dest": "output_compression",
            "metavar": "N",
            "type": int,
            "help": "0-100, webp/jpeg only",
        },
    ),
    (("--background",), {"metavar": "B", "help": "auto, opaque or transparent (png/webp)"}),
    (("--moderation",), {"metavar": "M", "help": "auto or low"}),
    (("--complexity",), {"metavar": "C", "help": "low, medium or high (2.6 models)"}),
    (("--fresh",), {"action": "store_true", "help": "ignore the store and pay for new images"}),
    (("--stream",), {"action": "store_true", "help": "show partial images as they arrive"}),
    (("--estimate",), {"action": "store_true", "help": "print the estimated cost; send nothing"}),
    (
        ("--backend",),
        {"metavar": "NAME", "help": "auto, openai, preview, replay or a plugin's name"},
    ),
]

MAGIC_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("-o", "--out"), {"metavar": "VAR", "help": "store the ImageSet in this variable"}),
    (
        ("--save",),
        {
            "metavar": "PATH",
            "help": "also write the files: a folder, a file name or a pattern such as "
            "out/{i}.png (fields {i} {key} {ext}); never replaces a different file",
        },
    ),
]

EDIT_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("-i", "--image"),
        {
            "dest": "images",
            "action": "append",
            "metavar": "IMAGE",
            "help": "an image to edit: a variable holding an ImageSet, GeneratedImage, PIL "
            "image or bytes, or a path or glob; repeat for more",
        },
    ),
    (
        ("--mask",),
        {
            "metavar": "MASK",
            "help": "PNG (variable or path) whose transparent pixels mark where to edit; "
            "the size of the first image",
        },
    ),
    (("--input-fidelity",), {"help": "high or low, on models that let you choose"}),
]

STORYBOARD_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("-c", "--character"),
        {
            "dest": "characters",
            "action": "append",
            "metavar": "NAME=WHO",
            "help": 'a recurring character: NAME="a description" (a reference image is '
            "made first) or NAME=IMAGE (a variable, a path or a glob); repeat for more",
        },
    ),
    (
        ("--cast",),
        {"metavar": "VAR", "help": "a variable holding a dict of name -> description or images"},
    ),
    (("--style",), {"help": "the look of every panel, such as 'ink and watercolour'"}),
    (("--layout",), {"metavar": "RxC", "help": "panels per page, rows x columns, such as 2x2"}),
    (
        ("--chain",),
        {
            "action": "store_true",
            "help": "give each panel the one before it too (later panels then depend on "
            "earlier ones and run one by one)",
        },
    ),
]

# What an option means when it is not given (help texts of the CLI and the magics).
DEFAULTS = {
    "model": "the configured model",
    "size": "auto",
    "quality": "auto",
    "n": "1",
    "output_format": "png",
    "output_compression": "the service's",
    "background": "auto",
    "moderation": "auto",
    "complexity": "the model's",
    "backend": "the configured backend",
    "input_fidelity": "the model's",
    "layout": "2x2",
}

PARAMETER_DESTS = PARAMETERS  # options are named after the request parameters they set


def dest_of(flags: tuple[str, ...], kwargs: dict[str, Any]) -> str:
    """The namespace attribute an option sets (as argparse derives it)."""
    return str(kwargs.get("dest") or flags[-1].lstrip("-").replace("-", "_"))


def add_to(parser: argparse.ArgumentParser | Any) -> None:
    for flags, kwargs in REQUEST_OPTIONS:
        default = DEFAULTS.get(dest_of(flags, kwargs))
        help_text = f"{kwargs['help']} (default: {default})" if default else kwargs["help"]
        parser.add_argument(*flags, **{**kwargs, "help": help_text})


def request_params(ns: argparse.Namespace) -> dict[str, Any]:
    """The request parameters a parsed namespace sets (unset ones left out)."""
    return {k: getattr(ns, k) for k in PARAMETER_DESTS if getattr(ns, k, None) is not None}
