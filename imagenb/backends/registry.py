"""Find backends through the `imagenb.backends` entry-point group (built-ins included) and
resolve `auto`: `openai` when a key is configured, else `preview`."""

from __future__ import annotations

from importlib import import_module

from imagenb.backends.base import Backend
from imagenb.core.backend_names import available
from imagenb.core.config import Config
from imagenb.errors import InvalidRequest


def load_class(name: str) -> type[Backend]:
    targets = available()
    if name not in targets:
        raise InvalidRequest(f"backend {name!r} is unknown; available: {', '.join(targets)}")
    module, _, attr = targets[name].partition(":")
    cls: type[Backend] = getattr(import_module(module), attr)
    return cls


def create(config: Config) -> Backend:
    return load_class(config.live_backend())(config)
