"""The active configuration: explicit `configure()` values over environment variables over
defaults. The API key is held in a `Secret` whose repr never shows it, so printing a config,
logging it or storing widget state cannot leak the key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

from imagenb import redaction
from imagenb.core import catalog
from imagenb.errors import InvalidRequest

BACKENDS = ("auto", "openai", "preview", "replay")


class Secret:
    """A string that shows as `'<set>'` in every repr and str."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'<set>'"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("an API key is not pickled")


@dataclass(frozen=True)
class Config:
    """Everything that shapes how requests are made. `budget_usd=None` means no cap;
    `images_per_minute=None` means no client-side pacing (429s are still honoured)."""

    backend: str = "auto"
    model: str = catalog.DEFAULT_MODEL
    store: str | None = None
    concurrency: int = 8
    budget_usd: float | None = None
    api_key: Secret | None = None
    base_url: str | None = None
    thumbnail_px: int = 256
    images_per_minute: float | None = None
    timeout_s: float = 600.0  # the SDK's own; an answer after it is paid for but lost
    max_attempts: int = 6
    ambiguous_retries: int = 1  # asks again after an answer lost once it may have been billed

    def live_backend(self) -> str:
        """The backend these settings select: `auto` is `openai` when a key is set, else
        `preview`."""
        if self.backend == "auto":
            return "openai" if self.api_key else "preview"
        return self.backend

    def __repr__(self) -> str:
        """One setting a line (no mid-word wrapping in a notebook), the key as `<set>`, and
        which backend `auto` means right now."""
        lines = [f"    {name}={value!r}," for name, value in self.public().items()]
        live = self.live_backend()
        if live:
            note = "the live backend" if live == self.backend else f"{self.backend}: {live} now"
            lines[0] += f"  # {note}"
        return "Config(\n" + "\n".join(lines) + "\n)"

    def public(self) -> dict[str, Any]:
        """The settings as plain values, the key reduced to whether it is set."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["api_key"] = "<set>" if self.api_key else None
        return out


_ENV = {
    "backend": "IMAGENB_BACKEND",
    "model": "IMAGENB_MODEL",
    "store": "IMAGENB_STORE",
    "concurrency": "IMAGENB_CONCURRENCY",
    "budget_usd": "IMAGENB_BUDGET_USD",
    "api_key": "OPENAI_API_KEY",
    "base_url": "OPENAI_BASE_URL",
    "thumbnail_px": "IMAGENB_THUMBNAIL_PX",
    "images_per_minute": "IMAGENB_IMAGES_PER_MINUTE",
    "timeout_s": "IMAGENB_TIMEOUT_S",
    "ambiguous_retries": "IMAGENB_AMBIGUOUS_RETRIES",
}

_explicit: dict[str, Any] = {}


def current() -> Config:
    """The configuration in force now (environment read on every call, explicit values win)."""
    values: dict[str, Any] = {}
    for name, var in _ENV.items():
        raw = os.environ.get(var)
        if raw not in (None, ""):
            values[name] = raw
    values.update(_explicit)
    return _validated(replace(Config(), **{k: _coerce(k, v) for k, v in values.items()}))


def configure(**changes: Any) -> Config:
    """Set some fields for this process (None resets a field to env/default); return the result."""
    unknown = set(changes) - {f.name for f in fields(Config)}
    if unknown:
        names = ", ".join(f.name for f in fields(Config))
        raise InvalidRequest(f"configure() has no setting {sorted(unknown)}; settings: {names}")
    staged = dict(_explicit)
    for name, value in changes.items():
        if value is None:
            staged.pop(name, None)
        else:
            staged[name] = _coerce(name, value)
    _validated(replace(Config(), **staged))
    _explicit.clear()
    _explicit.update(staged)
    secret = staged.get("api_key")
    redaction.remember(secret.reveal() if isinstance(secret, Secret) else None)
    return current()


def reset() -> None:
    """Forget every explicit setting (tests use this)."""
    _explicit.clear()
    redaction.remember(None)


def _coerce(name: str, value: Any) -> Any:
    try:
        if name == "api_key":
            return value if isinstance(value, Secret) else Secret(str(value).strip())
        if name in ("concurrency", "thumbnail_px", "max_attempts", "ambiguous_retries"):
            return int(value)
        if name in ("budget_usd", "images_per_minute", "timeout_s"):
            return float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name}={value!r} is not a number") from None
    return str(value) if name != "store" else os.fspath(value)


def _validated(cfg: Config) -> Config:
    if cfg.backend not in BACKENDS and not _is_plugin(cfg.backend):
        raise InvalidRequest(f"backend={cfg.backend!r} is unknown; choose one of: {BACKENDS}")
    catalog.lookup(cfg.model)
    if not 1 <= cfg.concurrency <= 256:
        raise InvalidRequest(f"concurrency={cfg.concurrency} must be between 1 and 256")
    if cfg.budget_usd is not None and cfg.budget_usd < 0:
        raise InvalidRequest("budget_usd must be zero or more")
    if not 32 <= cfg.thumbnail_px <= 1024:
        raise InvalidRequest("thumbnail_px must be between 32 and 1024")
    if cfg.images_per_minute is not None and cfg.images_per_minute <= 0:
        raise InvalidRequest("images_per_minute must be positive")
    if not 0 <= cfg.ambiguous_retries <= 5:
        raise InvalidRequest(
            f"ambiguous_retries={cfg.ambiguous_retries}: 0 (never ask again after an answer "
            "that may have been billed was lost) to 5"
        )
    if not cfg.timeout_s > 0:
        raise InvalidRequest("timeout_s must be a positive number of seconds")
    return cfg


def _is_plugin(name: str) -> bool:
    from imagenb.core.backend_names import available

    return name in available()


redact = redaction.redact  # the one redaction, where callers of the settings look for it
REDACTED = redaction.REDACTED
