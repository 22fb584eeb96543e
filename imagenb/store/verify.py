"""Is a stored file still the image its row recorded? Checked before every serve.

A file is hashed once per process; afterwards a file whose identity is unchanged (inode,
size, modification and change times) is taken as verified. Any write to it, a copy over it
(even one that keeps the modification time: the change time cannot be set back) or a rename
onto it changes that identity, so the next serve hashes it again. A 64-image cached re-run in
a warm process costs one `stat` per image.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

_verified: dict[Path, tuple[int, int, int, int]] = {}
_lock = threading.Lock()
_MAX_REMEMBERED = 200_000


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def intact(path: Path, sha256: str, nbytes: int) -> bool | None:
    """True if `path` holds exactly the recorded bytes, False if it holds others, None if it
    is gone (or unreadable)."""
    try:
        st = path.stat()
    except OSError:
        return None
    if st.st_size != nbytes:
        return False
    with _lock:
        if _verified.get(path) == _identity(st):
            return True
    try:
        ok = file_sha256(path) == sha256
    except OSError:
        return None
    if ok:
        remember(path, st)
    return ok


def remember(path: Path, st: os.stat_result | None = None) -> None:
    """Mark `path` as verified as it is now (the store just wrote or hashed it)."""
    try:
        identity = _identity(st or path.stat())
    except OSError:
        return
    with _lock:
        if len(_verified) >= _MAX_REMEMBERED:
            _verified.clear()
        _verified[path] = identity


def forget() -> None:
    """Hash every file again at its next serve (benchmarks measure the cold cost with it)."""
    with _lock:
        _verified.clear()
