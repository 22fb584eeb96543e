"""Test helpers for code that calls OpenAI's image models.

`FakeImagesServer` is a loopback HTTP server speaking the Images, Files and Batches API, for
this project's tests and for users' own CI. Names resolve lazily, so importing
`imagenb.testing` costs nothing until the server is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "FakeImagesServer": "imagenb.testing.server",
    "main": "imagenb.testing.server",
    "Faults": "imagenb.testing.state",
    "Stats": "imagenb.testing.state",
}

__all__ = ["FakeImagesServer", "Faults", "Stats", "main"]

if TYPE_CHECKING:
    from imagenb.testing.server import FakeImagesServer, main
    from imagenb.testing.state import Faults, Stats


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'imagenb.testing' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
