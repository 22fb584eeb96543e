"""Find backends through the `imagenb.backends` entry-point group (built-ins included) and
resolve `auto`: `openai` when a key is configured, else `preview`."""

from __future__ import annotations

from importlib import import_module

from ..backend_names import available
from ..config import Config
from ..errors import InvalidRequest
from .base import Backend


def resolve_name(config: Config) -> str:
    """The backend `config` selects, with `auto` decided by whether a key is set."""
    if config.backend == "auto":
        return "openai" if config.api_key else "preview"
    return config.backend


def load_class(name: str) -> type[Backend]:
    targets = available()
    if name not in targets:
        raise InvalidRequest(f"backend {name!r} is unknown; available: {', '.join(targets)}")
    module, _, attr = targets[name].partition(":")
    cls: type[Backend] = getattr(import_module(module), attr)
    return cls


def create(config: Config) -> Backend:
    return load_class(resolve_name(config))(config)
