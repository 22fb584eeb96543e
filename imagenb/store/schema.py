"""The store's SQLite schema and its migrations: one place to read what the index holds.

Each step runs once per store, in order, counted by `PRAGMA user_version`; a store written by
a newer imagenb is refused instead of being misread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from imagenb.errors import ImagenbError
from imagenb.store import sources


def _create_images(conn: sqlite3.Connection) -> None:
    conn.execute(
        """CREATE TABLE images (
            key TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL,
            ext TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            prompt TEXT NOT NULL,
            model TEXT NOT NULL,
            backend TEXT NOT NULL,
            params TEXT NOT NULL,
            variant INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL,
            usage TEXT,
            cost_usd REAL,
            cost_is_estimate INTEGER NOT NULL DEFAULT 1,
            latency_s REAL,
            request_id TEXT,
            kind TEXT NOT NULL DEFAULT 'generate',
            input_keys TEXT NOT NULL DEFAULT '[]',
            nbytes INTEGER NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX images_created ON images (created)")
    conn.execute("CREATE INDEX images_sha256 ON images (sha256)")


def _create_batches(conn: sqlite3.Connection) -> None:
    """Batch jobs (`imagenb.batch.store`): a job is one submission, split into parts (one
    remote batch each); every request line is a row keyed by its store key (the custom_id)."""
    conn.execute(
        """CREATE TABLE batch_jobs (
            id TEXT PRIMARY KEY,
            created REAL NOT NULL,
            label TEXT,
            backend TEXT NOT NULL,
            base_url TEXT
        )"""
    )
    conn.execute(
        """CREATE TABLE batch_parts (
            job_id TEXT NOT NULL REFERENCES batch_jobs (id),
            part INTEGER NOT NULL,
            endpoint TEXT NOT NULL,
            status TEXT NOT NULL,
            owner TEXT,
            batch_id TEXT,
            input_file_id TEXT,
            output_file_id TEXT,
            error_file_id TEXT,
            total INTEGER NOT NULL DEFAULT 0,
            completed INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            updated REAL NOT NULL,
            collected INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (job_id, part)
        )"""
    )
    conn.execute("CREATE INDEX batch_parts_batch_id ON batch_parts (batch_id)")
    conn.execute(
        """CREATE TABLE batch_lines (
            job_id TEXT NOT NULL,
            part INTEGER NOT NULL,
            key TEXT NOT NULL,
            prompt TEXT NOT NULL,
            model TEXT NOT NULL,
            kind TEXT NOT NULL,
            params TEXT NOT NULL,
            variant INTEGER NOT NULL,
            input_keys TEXT NOT NULL,
            estimate_usd REAL NOT NULL,
            error TEXT,
            PRIMARY KEY (job_id, key)
        )"""
    )
    conn.execute("CREATE INDEX batch_lines_key ON batch_lines (key)")


def _create_claims(conn: sqlite3.Connection) -> None:
    """Requests being paid for right now, by which process (`Store.claim`)."""
    conn.execute(
        "CREATE TABLE claims (key TEXT PRIMARY KEY, owner TEXT NOT NULL, since REAL NOT NULL)"
    )


def _create_judgments(conn: sqlite3.Connection) -> None:
    """Judges' answers (`imagenb.judging.records`): one row per question asked (a verdict on
    an image, or one order of a comparison), keyed by a hash of the images, rubric, criteria,
    judge model and settings; and people's star ratings, one per image key."""
    conn.execute(
        """CREATE TABLE verdicts (
            key TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            images TEXT NOT NULL,
            rubric TEXT NOT NULL,
            model TEXT NOT NULL,
            settings TEXT NOT NULL,
            payload TEXT NOT NULL,
            usage TEXT,
            cost_usd REAL NOT NULL,
            cost_is_estimate INTEGER NOT NULL,
            backend TEXT NOT NULL,
            created REAL NOT NULL
        )"""
    )
    conn.execute(
        """CREATE TABLE ratings (
            key TEXT PRIMARY KEY,
            sha256 TEXT NOT NULL,
            stars INTEGER NOT NULL,
            created REAL NOT NULL
        )"""
    )


def _create_turns(conn: sqlite3.Connection) -> None:
    """Conversation turns (`imagenb.store.turns`), one row per turn and origin (a preview
    turn never stands in for a real one); the turn's image is a row of `images`."""
    conn.execute(
        """CREATE TABLE turns (
            key TEXT NOT NULL,
            origin TEXT NOT NULL,
            chat TEXT NOT NULL,
            parent TEXT,
            text TEXT NOT NULL,
            settings TEXT NOT NULL,
            image_key TEXT,
            response_id TEXT,
            image_call_id TEXT,
            reasoning_id TEXT,
            revised_prompt TEXT,
            reasoning TEXT,
            model_text TEXT NOT NULL DEFAULT '',
            sources TEXT NOT NULL DEFAULT '[]',
            usage TEXT,
            tool_usage TEXT,
            mainline TEXT NOT NULL,
            image_model TEXT NOT NULL,
            mainline_usd REAL NOT NULL DEFAULT 0,
            image_usd REAL NOT NULL DEFAULT 0,
            cost_is_estimate INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL,
            error TEXT,
            notice TEXT,
            backend TEXT NOT NULL,
            latency_s REAL,
            created REAL NOT NULL,
            PRIMARY KEY (key, origin)
        )"""
    )
    conn.execute("CREATE INDEX turns_parent ON turns (parent)")


_IMAGES_V2 = """CREATE TABLE images (
    key TEXT NOT NULL,
    source TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    ext TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    prompt TEXT NOT NULL,
    model TEXT NOT NULL,
    backend TEXT NOT NULL,
    params TEXT NOT NULL,
    variant INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    usage TEXT,
    cost_usd REAL,
    cost_is_estimate INTEGER NOT NULL DEFAULT 1,
    latency_s REAL,
    request_id TEXT,
    kind TEXT NOT NULL DEFAULT 'generate',
    input_keys TEXT NOT NULL DEFAULT '[]',
    nbytes INTEGER NOT NULL,
    PRIMARY KEY (key, source)
)"""


def _add_sources(conn: sqlite3.Connection) -> None:
    """Record where each image came from (`imagenb.store.sources`), one row per key *and* source,
    so a preview and a real image of one request live side by side. Keys stay as they were.
    Rows that a loopback test server made are found (batch jobs on a loopback base URL, the
    fake server's mark inside the file) and become `test`: no longer money, never served to a
    real request."""
    conn.execute("ALTER TABLE images RENAME TO images_v1")
    conn.execute("DROP INDEX IF EXISTS images_created")
    conn.execute("DROP INDEX IF EXISTS images_sha256")
    conn.execute(_IMAGES_V2)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(images_v1)")]
    listed = ", ".join(columns)
    conn.execute(
        f"INSERT INTO images (source, {listed}) SELECT backend, {listed} FROM images_v1"
    )
    conn.execute("DROP TABLE images_v1")
    conn.execute("CREATE INDEX images_created ON images (created)")
    conn.execute("CREATE INDEX images_sha256 ON images (sha256)")
    conn.execute("CREATE INDEX images_key ON images (key)")
    for key, sha, ext in conn.execute(
        "SELECT key, sha256, ext FROM images WHERE backend = 'openai'"
    ).fetchall():
        if _made_by_test_server(conn, key, sha, ext):
            conn.execute(
                "UPDATE OR REPLACE images SET source = ? WHERE key = ? AND source = 'openai'",
                (sources.TEST, key),
            )


def _made_by_test_server(conn: sqlite3.Connection, key: str, sha: str, ext: str) -> bool:
    base = key.partition("~")[0]
    jobs = conn.execute(
        "SELECT j.base_url FROM batch_lines l JOIN batch_jobs j ON j.id = l.job_id "
        "WHERE l.key = ?",
        (base,),
    ).fetchall()
    if any(url and sources.openai_source(url) == sources.TEST for (url,) in jobs):
        return True
    path = _root(conn) / "objects" / sha[:2] / f"{sha}.{ext}"
    try:
        with open(path, "rb") as fh:  # the mark sits near the start (JPEG) or the end
            head = fh.read(1 << 16)
            fh.seek(max(0, path.stat().st_size - (1 << 12)))
            tail = fh.read()
    except OSError:
        return False
    return sources.FAKE_IMAGE_MARK in head or sources.FAKE_IMAGE_MARK in tail


def _root(conn: sqlite3.Connection) -> Path:
    for _seq, name, file in conn.execute("PRAGMA database_list"):
        if name == "main" and file:
            return Path(file).parent
    return Path(".")


# Applied in order, each once; `PRAGMA user_version` counts those done. Append, never edit.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _create_images,
    _create_batches,
    _create_claims,
    _create_judgments,
    _create_turns,
    _add_sources,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns how many steps ran. Safe when several processes
    open a store at once: the write lock serialises them and the second finds nothing to do."""
    if conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        done = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if done > len(MIGRATIONS):
            raise ImagenbError(
                f"this store was written by a newer imagenb (schema {done} > "
                f"{len(MIGRATIONS)}); upgrade imagenb or point IMAGENB_STORE elsewhere"
            )
        for step in MIGRATIONS[done:]:
            step(conn)
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS) - done
