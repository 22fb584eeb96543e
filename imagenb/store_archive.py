"""Moving images between stores: a teacher exports what a class will need, students import it
and replay it without a key.

An export is a zip (stored, not compressed: the images already are) of `manifest.json`,
`index.jsonl` (one `StoredImage.to_record` per line) and `objects/<sha[:2]>/<sha>.<ext>`. It is
written under a `.part` name and renamed, so a half-written export never looks complete. An
import checks every file against its SHA-256 before any row refers to it, and keeps the rows
the target already has.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

from .errors import ImagenbError
from .store import Store, json_text
from .store_schema import MIGRATIONS

EXPORT_FORMAT = "imagenb-store-export/1"


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


def import_(store: Store, path: str | os.PathLike[str]) -> int:
    """Merge the export at `path` into `store`; returns how many images were added."""
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if "index.jsonl" not in names or "manifest.json" not in names:
            raise ImagenbError(f"{os.fspath(path)!r} is not an imagenb store export")
        if json.loads(archive.read("manifest.json")).get("format") != EXPORT_FORMAT:
            raise ImagenbError(f"{os.fspath(path)!r} is not an imagenb store export")
        lines = archive.read("index.jsonl").decode().splitlines()
        records = [store.row_from_record(json.loads(line)) for line in lines if line.strip()]
        have = store.get_many(r.key for r in records)
        todo = [r for r in records if r.key not in have]
        damaged: set[str] = set()
        for image in {r.path: r for r in todo}.values():
            member = f"objects/{image.sha256[:2]}/{image.path.name}"
            data = archive.read(member) if member in names else b""
            if hashlib.sha256(data).hexdigest() != image.sha256:
                damaged.add(image.sha256)
                continue
            store.write_object(image.path, data)
    added = [r for r in todo if r.sha256 not in damaged]
    store.add_rows(added)
    if damaged:
        raise ImagenbError(
            f"{len(todo) - len(added)} image(s) in {os.fspath(path)!r} are missing or do "
            f"not match their SHA-256 and were skipped; the other {len(added)} were imported"
        )
    return len(added)
