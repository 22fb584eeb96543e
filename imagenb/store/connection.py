"""The store's SQLite connection: opened once per root and process (never reused across a
fork), shared by every view of that store (`Store.serving`), in WAL mode so kernels share it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from imagenb.errors import ImagenbError


class Index:
    """The SQLite connection one store root shares between its views (`Store.serving`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self.set_aside: set[tuple[str, str]] = set()  # (key, source) whose file was damaged

    def connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # never reuse one across fork
            self._pid = os.getpid()
            self._conn = _open_index(self.path)
        return self._conn

    def close(self) -> None:
        with self.lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


def _open_index(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")  # other kernels may be writing
    for _ in range(100):  # switching to WAL needs a moment alone with the file
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                conn.close()
                raise
            time.sleep(0.05)
    else:
        conn.close()
        raise ImagenbError(f"could not open {path}: another process keeps it locked")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn
