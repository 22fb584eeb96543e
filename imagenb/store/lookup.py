"""Which stored row answers a request: among the rows of its key that the serving policy
allows, the best-ranked whose file is intact (`store_verify`). A file that no longer matches
its row is removed (the row stays: it was paid for) so the request is made again, and the
lookup says so; rows of other sources are counted as "not reused"."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from imagenb.store import sources
from imagenb.store import verify as store_verify

if TYPE_CHECKING:
    from imagenb.store.index import StoredImage

log = logging.getLogger("imagenb.store.index")


@dataclass
class Lookup:
    """What the store holds for some keys, for one serving policy: the rows it may serve
    (`found`, files verified), how many rows of other sources it passed over, and the keys
    whose file was damaged or gone (treated as missing: made again)."""

    found: dict[str, StoredImage] = field(default_factory=dict)
    passed_over: Counter[str] = field(default_factory=Counter)
    damaged: list[str] = field(default_factory=list)

    def note(self) -> str:
        """`6 preview images in the store were not reused; 1 damaged file is made again`."""
        parts = [
            f"{n} {sources.describe(s)} image{'s' * (n != 1)} in the store "
            f"{'were' if n != 1 else 'was'} not reused"
            for s, n in sorted(self.passed_over.items())
        ]
        if self.damaged:
            n = len(self.damaged)
            parts.append(
                f"{n} stored file{'s' * (n != 1)} no longer matched {'their' if n != 1 else 'its'}"
                " hash and will be made again"
            )
        return "; ".join(parts)


def choose(
    candidates: dict[str, list[StoredImage]],
    others: dict[str, set[str]],
    set_aside: set[tuple[str, str]],
) -> Lookup:
    """The answer per key from `candidates` (rows the policy allows), what `others` (the
    sources of rows it does not) leave unused, and the damaged files found. `set_aside`
    remembers, for this process, the rows whose file was removed as damaged."""
    result = Lookup()
    for key, rows in candidates.items():
        rows.sort(key=lambda r: (sources.rank(r.source), -r.created))
        for row in rows:
            state = store_verify.intact(row.path, row.sha256, row.nbytes)
            if state:
                result.found[key] = row
                break
            if state is False:
                _remove_damaged(row, set_aside)
            if state is False or (row.key, row.source) in set_aside:
                result.damaged.append(key)
    for key, kinds in others.items():  # "not reused" only where it would have answered
        if key not in result.found:
            result.passed_over.update(kinds)
    return result


def _remove_damaged(row: StoredImage, set_aside: set[tuple[str, str]]) -> None:
    log.warning(
        "imagenb: the stored file %s no longer matches its hash; it is not served and "
        "will be made again (`imagenb store check` lists such rows)",
        row.path.name,
    )
    set_aside.add((row.key, row.source))
    try:
        if store_verify.intact(row.path, row.sha256, row.nbytes) is False:
            row.path.unlink()
    except OSError:
        pass
