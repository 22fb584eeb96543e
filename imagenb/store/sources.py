"""Where an image came from, and which stored images may answer a request.

Every stored row records its *source*: the kind of service that made it. A request is served
only images of the sources its backend accepts, so a request to a real model never gets a
preview placeholder, a test server's gradient or an image someone else's archive claims:

    openai              the OpenAI API (no base_url, or api.openai.com)
    openai@HOST/PATH    another OpenAI-compatible service (Azure, a proxy), one per base URL
    test                a loopback server (`imagenb.testing.FakeImagesServer`, a local mock)
    preview             the offline preview backend
    imported:SOURCE     rows of an archive that was not marked trusted (`store import`)
    NAME                a plugin backend

`replay` answers from any source (it is the classroom's store), best first. Only real
services count as money spent: previews, test servers and untrusted imports never do.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from imagenb.core.config import Config

OPENAI = "openai"
PREVIEW = "preview"
TEST = "test"
REPLAY = "replay"
IMPORTED = "imported:"
OPENAI_HOSTS = frozenset({"api.openai.com"})
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
# The fake server splices this into every image it makes (`testing.fake_render`): a store
# written before sources were recorded tells its test-server images apart by it.
FAKE_IMAGE_MARK = b"prompt_sha256="


@dataclass(frozen=True)
class Policy:
    """What a backend writes (`writes`) and which sources may answer it: `accepts` None
    means any, ranked by `rank` (replay)."""

    writes: str
    accepts: frozenset[str] | None

    def allows(self, source: str) -> bool:
        return self.accepts is None or source in self.accepts


def openai_source(base_url: str | None) -> str:
    """The source of an OpenAI-compatible service at `base_url` (None: OpenAI itself)."""
    if not base_url:
        return OPENAI
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    if is_loopback(host):
        return TEST
    if host in OPENAI_HOSTS:
        return OPENAI
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a number: keep what was written
        port = f":{parts.netloc.rpartition(':')[2]}"
    return f"{OPENAI}@{host}{port}{parts.path.rstrip('/')}"


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def of_service(backend: str, base_url: str | None) -> str:
    """The source of what `backend` at `base_url` makes (a batch job's record)."""
    return openai_source(base_url) if backend == OPENAI else backend


def policy_for(config: Config, backend: str) -> Policy:
    """The serving policy of `backend` (already resolved from `auto`) under `config`."""
    if backend == REPLAY:
        return Policy(REPLAY, None)
    source = of_service(backend, config.base_url)
    return Policy(source, frozenset({source}))


def is_money(source: str) -> bool:
    """Whether images of `source` were paid for with real money by this store's user."""
    return source not in (PREVIEW, REPLAY, TEST) and not source.startswith(IMPORTED)


def rank(source: str) -> int:
    """Replay's preference among sources for one key: real first, previews last."""
    if is_money(source):
        return 0
    if source.startswith(IMPORTED):
        return 1
    return 2 if source == TEST else 3


def from_backend(backend: str) -> str:
    """The source of a row written before sources were recorded (old exports, a bare
    store): its backend name. The migration and repair also look inside OpenAI rows' files
    for the fake server's mark (`FAKE_IMAGE_MARK`)."""
    return backend if backend != "auto" else PREVIEW


def describe(source: str) -> str:
    """How a plan line names images of `source`: `preview`, `test-server`, `imported`..."""
    if source.startswith(IMPORTED):
        return "imported (untrusted)"
    return {TEST: "test-server", PREVIEW: "preview"}.get(source, source)
