"""Which backend names exist: the `imagenb.backends` entry-point group over the built-ins.

Pure metadata, so that settings can validate a name without importing any backend (the
registry, which loads them, sits above the settings that configure it)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

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
