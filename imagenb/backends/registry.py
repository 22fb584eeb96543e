"""Find backends through the `imagenb.backends` entry-point group (built-ins included) and
resolve `auto`: `openai` when a key is configured, else `preview`."""

from __future__ import annotations

from functools import cache
from importlib import import_module
from importlib.metadata import entry_points

from ..config import Config
from ..errors import InvalidRequest
from .base import Backend

GROUP = "imagenb.backends"
# The same targets as pyproject's entry points, for a source tree that is not installed.
_BUILTIN = {
    "openai": "imagenb.backends.openai_backend:OpenAIBackend",
    "preview": "imagenb.backends.preview:PreviewBackend",
    "replay": "imagenb.backends.replay:ReplayBackend",
}


@cache
def available() -> dict[str, str]:
    """Backend name -> `module:Class`, from installed entry points over the built-ins."""
    found = dict(_BUILTIN)
    found.update({ep.name: ep.value for ep in entry_points(group=GROUP)})
    return found


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
