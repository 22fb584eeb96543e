"""Which process owns something in a shared store, and whether it still runs.

Kernels sharing a store leave traces of work in progress: tmp files, journalled rows, claims
on requests being paid for, batch parts being submitted. Each carries the host and PID of its
writer, so another process can tell a live writer (leave it alone, wait for it) from a killed
one (take over at once, no timeout needed). On another host a PID means nothing: callers fall
back to age.
"""

from __future__ import annotations

import os
import socket
import uuid

HOST = socket.gethostname()
# Host names may contain "-"; file names use "-" between fields, so theirs use "_".
FILE_HOST = HOST.replace("-", "_")


def owner_id(*, unique: bool = False) -> str:
    """`host:pid` of this process; with `unique`, plus a token of its own (`host:pid:token`),
    for one piece of work among several of the same process."""
    base = f"{HOST}:{os.getpid()}"
    return f"{base}:{uuid.uuid4().hex[:12]}" if unique else base


def file_prefix() -> str:
    """`host-pid`, the start of a tmp file name the store sweeps once this process is gone."""
    return f"{FILE_HOST}-{os.getpid()}"


def running(pid: int) -> bool:
    """Whether process `pid` of this host exists (one we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def alive(owner: str) -> bool | None:
    """Whether the process of an `owner_id` runs: None when it is on another host (unknown)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != HOST or not pid.isdigit():
        return None
    return running(int(pid))


def file_writer_gone(name: str) -> bool:
    """True for a file named by `file_prefix()` whose process is gone (killed mid-write)."""
    host, _, rest = name.partition("-")
    pid = rest.partition("-")[0]
    return host == FILE_HOST and pid.isdigit() and not running(int(pid))
