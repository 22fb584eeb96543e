"""Moving images between stores: a teacher exports what a class will need, students import it
and replay it without a key.

An export is a zip (stored, not compressed: the images already are) of `manifest.json`,
`index.jsonl` (one `StoredImage.to_record` per line) and `objects/<sha[:2]>/<sha>.<ext>`. It is
written under a `.part` name and renamed, so a half-written export never looks complete.

An archive is untrusted input. Import reads it member by member, streaming, within size
limits (per member, in total, and a bounded compression ratio, checked before a byte is
inflated and again while reading), and keeps a row only if

- its key is the hash of its own request (prompt, parameters, inputs) and variant,
- its file has the recorded SHA-256 and size and is a PNG, JPEG or WebP of the recorded size,
- the record embedded in the file (key, prompt, parameters, variant) agrees with the row: a
  consistent row pointing at another request's image is refused,
- its cost and usage are sane (non-negative, bounded).

Refused rows are listed by key and reason; the others are imported. Files are written only
to the store's own object paths, named by their hash. What an importer trusts: rows of an
archive not marked trusted keep their origin as `imported:<source>` (`sources`): they serve
`replay` (the classroom case) but never a live request, and never count as money spent. With
`trusted=True` (`imagenb store import --trusted`, for your own archives) rows keep their source
and serve live requests of that source, after the same checks.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imagenb.core import request
from imagenb.errors import ImagenbError
from imagenb.store import provenance, sources
from imagenb.store.index import Store, StoredImage, json_text
from imagenb.store.schema import MIGRATIONS

EXPORT_FORMAT = "imagenb-store-export/1"
MAX_MEMBER_BYTES = 64 * 1024 * 1024  # an image file: a 4K PNG is well under this
MAX_INDEX_BYTES = 64 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 32 * 1024**3
MAX_RATIO = 50  # uncompressed / compressed: images barely compress; bombs do
MAX_COST_USD = 100.0  # one image; the dearest costs well under $1
_CHUNK = 1 << 20


@dataclass
class ImportResult:
    """What an import did: how many rows it added, which it refused and why."""

    added: int = 0
    kept: int = 0  # already in the store
    refused: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"imported {self.added} image(s)"
        text += f", {self.kept} already in the store" if self.kept else ""
        if self.refused:
            text += f"; refused {len(self.refused)}: " + "; ".join(self.refused[:5])
            text += " ..." if len(self.refused) > 5 else ""
        return text


def export(store: Store, path: str | os.PathLike[str], keys: Iterable[str] | None = None) -> int:
    """Write `store`'s rows (all, or those of `keys`) and their files to the zip `path`."""
    images = store.history() if keys is None else list(store.get_many(keys).values())
    target = Path(path)
    partial = target.with_name(target.name + ".part")
    manifest = {"format": EXPORT_FORMAT, "schema_version": len(MIGRATIONS)}
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("manifest.json", json_text({**manifest, "images": len(images)}))
        lines = (json_text(image.to_record()) + "\n" for image in images)
        archive.writestr("index.jsonl", "".join(lines))
        for image in {image.path: image for image in images}.values():
            archive.write(image.path, f"objects/{image.sha256[:2]}/{image.path.name}")
    os.replace(partial, target)
    return len(images)


def import_(store: Store, path: str | os.PathLike[str], *, trusted: bool = False) -> ImportResult:
    """Merge the export at `path` into `store`, refusing rows that fail a check (above).
    Raises `ImagenbError` (nothing imported) if the archive as a whole is unsafe or no export."""
    name = os.fspath(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ImagenbError(f"{name!r} is not a readable imagenb store export ({exc})") from exc
    with archive:
        members = {info.filename: info for info in archive.infolist()}
        _check_sizes(name, members.values())
        if "index.jsonl" not in members or "manifest.json" not in members:
            raise ImagenbError(f"{name!r} is not an imagenb store export (no index)")
        manifest = _json(_read(archive, members["manifest.json"], MAX_MANIFEST_BYTES))
        if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
            raise ImagenbError(f"{name!r} is not an imagenb store export")
        result = ImportResult()
        rows = _rows(store, _read(archive, members["index.jsonl"], MAX_INDEX_BYTES), result)
        have = store.serving(sources.Policy(sources.REPLAY, None)).get_many(r.key for r in rows)
        added: list[StoredImage] = []
        for row in rows:
            if have.get(row.key) is not None and have[row.key].sha256 == row.sha256:
                result.kept += 1
                continue
            member = members.get(f"objects/{row.sha256[:2]}/{row.path.name}")
            placed = _place_file(store, archive, member, row) if member else "its file is absent"
            if isinstance(placed, str):
                result.refused.append(f"{row.key[:16]} ({row.prompt[:40]!r}): {placed}")
                continue
            added.append(placed if trusted else _untrusted(placed))
    store.add_rows(added)
    result.added = len(added)
    return result


def _check_sizes(name: str, members: Iterable[zipfile.ZipInfo]) -> None:
    """Refuse a zip whose declared sizes are out of bounds, before anything is inflated."""
    total = 0
    for info in members:
        limit = MAX_INDEX_BYTES if info.filename == "index.jsonl" else MAX_MEMBER_BYTES
        if info.file_size > limit:
            raise ImagenbError(
                f"{name!r}: member {info.filename!r} would be {info.file_size:,} bytes, over "
                f"the {limit:,}-byte limit; refused, nothing imported"
            )
        if info.file_size > MAX_RATIO * max(info.compress_size, 1) + 4096:
            raise ImagenbError(
                f"{name!r}: member {info.filename!r} inflates {info.compress_size:,} bytes to "
                f"{info.file_size:,} (a zip bomb?); refused, nothing imported"
            )
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise ImagenbError(f"{name!r} would unpack to {total:,} bytes; refused, nothing imported")


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, read in chunks and never more than `limit` (the declared size may
    lie)."""
    parts, size = [], 0
    try:
        with archive.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ImagenbError(
                        f"member {info.filename!r} is larger than its {limit:,}-byte limit; "
                        "refused"
                    )
                parts.append(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
        raise ImagenbError(f"member {info.filename!r} cannot be read ({exc})") from exc
    return b"".join(parts)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _rows(store: Store, index: bytes, result: ImportResult) -> list[StoredImage]:
    """The rows of `index.jsonl` that are well formed and re-derive to their key."""
    rows: list[StoredImage] = []
    for number, line in enumerate(index.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        record = _json(line.encode())
        try:
            if not isinstance(record, dict):
                raise ImagenbError("not a JSON object")
            row = store.row_from_record(record)
        except ImagenbError as exc:
            result.refused.append(f"line {number}: {exc}")
            continue
        if problem := _row_problem(row):
            result.refused.append(f"{row.key[:16]} ({row.prompt[:40]!r}): {problem}")
            continue
        rows.append(row)
    return rows


def _row_problem(row: StoredImage) -> str | None:
    base, _, suffix = row.key.partition("~")
    if suffix and not row.sha256.startswith(suffix):
        return "its superseded key does not name its file"
    canonical = request.canonical_of_row(row.kind, row.prompt, row.params, row.input_keys)
    if request.key_of(canonical, row.variant) != base:
        return "its key is not the hash of its own request (prompt, parameters, variant)"
    if row.cost_usd is not None and not (
        math.isfinite(row.cost_usd) and 0 <= row.cost_usd <= MAX_COST_USD
    ):
        return f"its cost {row.cost_usd!r} is not between $0 and ${MAX_COST_USD:.0f}"
    for name, value in (row.usage or {}).items():
        if isinstance(value, int | float) and not (math.isfinite(value) and 0 <= value < 1e9):
            return f"its usage {name}={value!r} is not a sane count"
    if row.nbytes <= 0 or row.nbytes > MAX_MEMBER_BYTES or not 0 < row.width <= 16384:
        return "its recorded size is out of bounds"
    return None


def _place_file(
    store: Store, archive: zipfile.ZipFile, info: zipfile.ZipInfo, row: StoredImage
) -> StoredImage | str:
    """Check the file of `row` in the archive and put it in the store: the row to add, or
    what is wrong with it."""
    try:
        data = _read(archive, info, MAX_MEMBER_BYTES)
    except ImagenbError as exc:
        return str(exc)
    if len(data) != row.nbytes or hashlib.sha256(data).hexdigest() != row.sha256:
        return "its file does not match its recorded size and SHA-256"
    header = provenance.probe(data)
    if header is None or (header.format, header.width, header.height) != (
        row.ext, row.width, row.height,
    ):  # fmt: skip
        return "its file is not the image the row describes"
    meta = provenance.read(data) or {}
    embedded = (meta.get("key"), meta.get("prompt"), meta.get("params"), meta.get("variant"))
    if embedded != (row.key.partition("~")[0], row.prompt, row.params, row.variant):
        return "the record inside its file (key, prompt, parameters) disagrees with the row"
    store.write_object(row.path, data)
    return _source_seen(row, data)


def _source_seen(row: StoredImage, data: bytes) -> StoredImage:
    """An old export's OpenAI row whose file bears the test server's mark is a test row."""
    from dataclasses import replace

    if row.source == sources.OPENAI and sources.FAKE_IMAGE_MARK in data:
        return replace(row, source=sources.TEST)
    return row


def _untrusted(row: StoredImage) -> StoredImage:
    """`row` marked as imported from an untrusted archive: replay only, never money."""
    from dataclasses import replace

    if row.source.startswith(sources.IMPORTED):
        return row
    return replace(row, source=sources.IMPORTED + row.source)
