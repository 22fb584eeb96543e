"""Shared benchmark plumbing: a FakeImagesServer in its own process (so the client's CPU and
memory are measured alone), an isolated imagenb configuration, and table printing."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

TEST_KEY = "sk-test-benchmark-000000000000000000000000"

_SERVER = """
import json, sys
from imagenb.testing import FakeImagesServer
options = json.loads(sys.argv[1])
warm = options.pop("warm", [])
srv = FakeImagesServer(**options)
for size, fmt in warm:
    srv.warm(size, fmt)       # pre-encode, so the server's first-time work is not timed
srv.start()
print(srv.base_url, flush=True)
sys.stdin.read()          # runs until the parent closes our stdin
print(json.dumps(srv.stats.snapshot(), default=str), flush=True)
srv.stop()
"""


class RemoteServer:
    """A fake server in a child process; `stats()` ends it and returns its counters."""

    def __init__(self, **options: Any) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            raise RuntimeError("the fake server did not start")

    def stats(self) -> dict[str, Any]:
        out, _ = self.proc.communicate("", timeout=60)
        stats: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return stats

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.communicate("", timeout=60)


@contextlib.contextmanager
def remote_server(**options: Any) -> Iterator[RemoteServer]:
    server = RemoteServer(**options)
    try:
        yield server
    finally:
        server.close()


@contextlib.contextmanager
def imagenb_against(base_url: str, **settings: Any) -> Iterator[Path]:
    """imagenb configured for `base_url` with a fresh temporary store."""
    import imagenb as ig
    from imagenb.core import config
    from imagenb.engine import session

    with tempfile.TemporaryDirectory(prefix="imagenb-bench-") as tmp:
        session.reset()
        config.reset()
        ig.configure(backend="openai", api_key=TEST_KEY, base_url=base_url, store=tmp, **settings)
        try:
            yield Path(tmp)
        finally:
            session.reset()
            config.reset()


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table, ready for the README."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |"

    out = [f"### {title}", "", line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
