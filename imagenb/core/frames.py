"""Tabular input for grids: any frame-like thing becomes plain rows, and axes become a layout.

Grids accept a pandas or polars DataFrame, a list of dicts, a dict of columns or a list of
prompts. Everything is normalised here once, through narwhals for DataFrames, so the grid code
sees one shape: `Table` (column order, rows of plain Python values, the pandas index if any).
Missing values (None, NaN, NA, "") are `None`, and numpy scalars are Python scalars, because
request validation rightly refuses `numpy.int64(2)` as `n`.
"""

from __future__ import annotations

import itertools
import math
import os
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imagenb.core.request import PARAMETERS, check_text
from imagenb.errors import InvalidRequest

if TYPE_CHECKING:
    import pandas as pd


MAX_MATRIX_ROWS = 100_000  # a frame this long is already far past any grid worth paying for
RESULT_COLUMNS = ("variant", "image", "path", "status", "error", "cost_usd", "latency_s")
CHECK_COLUMNS = ("ocr_text", "cer", "pass")  # added by grid(check_text=...)
_INT_PARAMETERS = ("n", "output_compression")


@dataclass(frozen=True)
class Table:
    """Rows as dicts with every column present, in input order. `index` is the pandas index
    (so results line up with the caller's frame); None for other inputs."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    index: Any = None

    def __len__(self) -> int:
        return len(self.rows)


def table(data: Any) -> Table:
    """Normalise grid input. Columns a grid writes (`status`, `image`, ...) are dropped, so a
    grid's own `.frame` (say, its failed rows) can be fed back in."""
    if isinstance(data, str):
        data = [data]
    if _is_pandas_frame(data) and not data.columns.is_unique:  # before narwhals, in our words
        repeated = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
        raise InvalidRequest(
            f"the frame has repeated column names: {', '.join(repeated)}; rename or drop the "
            "copies (frame.loc[:, ~frame.columns.duplicated()])"
        )
    index = getattr(data, "index", None) if _is_pandas_frame(data) else None
    if _is_frame(data):
        columns, rows = _from_frame(data)
    elif isinstance(data, Mapping):
        columns, rows = _from_columns(data)
    elif isinstance(data, Iterable):
        columns, rows = _from_records(list(data))
    else:
        raise InvalidRequest(
            f"a grid needs a DataFrame (pandas or polars), a list of dicts or a list of prompts; "
            f"got {type(data).__name__}"
        )
    keep = tuple(c for c in columns if c not in RESULT_COLUMNS and c not in CHECK_COLUMNS)
    clean = tuple({c: _plain(row.get(c)) for c in keep} for row in rows)
    for number, row in enumerate(clean, start=1):
        for column, value in row.items():
            if isinstance(value, str):
                check_text(value, f"row {number}, column {column!r}")
    return Table(keep, clean, index)


def read_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A CSV as text columns: a prompt reading "NA" or "null" stays text (pandas would make it
    missing); empty cells are missing, and numeric parameters are converted per row."""
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except UnicodeDecodeError:
        raise InvalidRequest(
            f"{os.fspath(path)!r} is not UTF-8 text; save the table as a UTF-8 CSV"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no data"
        raise InvalidRequest(f"{os.fspath(path)!r} is not a readable CSV: {first}") from None


def require(tab: Table, *, prompt: str, caption: str | None) -> None:
    """Refuse an input with no rows, no prompt column, or a caption that is neither a column
    nor a template."""
    if not tab.rows:
        raise InvalidRequest("the grid input has no rows; give it at least one prompt")
    if prompt not in tab.columns:
        raise InvalidRequest(
            f"there is no prompt column {prompt!r}; columns: {', '.join(tab.columns)}. "
            "Name the right one with prompt=..."
        )
    if caption is not None and "{" not in caption and caption not in tab.columns:
        raise InvalidRequest(
            f"caption={caption!r} is neither a column nor a template like '{{style}}'; "
            f"columns: {', '.join(tab.columns)}"
        )
    if caption is not None and "{" in caption:
        for row in tab.rows:  # fill every caption now: a template that fails does so unpaid
            _caption(caption, row)


def _is_pandas_frame(data: Any) -> bool:
    return type(data).__module__.startswith("pandas") and hasattr(data, "columns")


def _is_frame(data: Any) -> bool:
    module = type(data).__module__
    return (
        module.startswith(("pandas", "polars", "pyarrow", "modin", "cudf", "narwhals"))
        and hasattr(type(data), "columns")  # on the class: a LazyFrame's would resolve it
        and not isinstance(data, Mapping)
    )


def _from_frame(data: Any) -> tuple[list[str], list[dict[str, Any]]]:
    import narwhals as nw

    frame = nw.from_native(data)
    if isinstance(frame, nw.LazyFrame):
        frame = frame.collect()
    columns = [str(c) for c in frame.columns]
    if len(set(columns)) != len(columns):
        raise InvalidRequest(f"the frame has repeated column names: {columns}")
    return columns, [dict(zip(columns, r, strict=True)) for r in frame.rows(named=False)]


def _from_columns(data: Mapping[Any, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    columns = [str(c) for c in data]
    values = [list(v) if not isinstance(v, str) else [v] for v in data.values()]
    lengths = {len(v) for v in values}
    if len(lengths) > 1:
        raise InvalidRequest(f"the columns have different lengths: {sorted(lengths)}")
    return columns, [dict(zip(columns, r, strict=True)) for r in zip(*values, strict=True)]


def _from_records(items: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    if all(isinstance(i, str) for i in items):
        return ["prompt"], [{"prompt": i} for i in items]
    columns: dict[str, None] = {}
    rows = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidRequest(
                f"item {position} is a {type(item).__name__}; a list for a grid must hold only "
                "prompts (str) or only rows (dicts)"
            )
        row = {str(k): v for k, v in item.items()}
        columns.update(dict.fromkeys(row))
        rows.append(row)
    return list(columns), rows


def _plain(value: Any) -> Any:
    """Python scalars for numpy ones; None for every flavour of missing."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value


def parameters(row: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Request parameters for one row: `defaults`, overridden by the row's non-missing
    parameter columns (`n` from a float column or a CSV string becomes an int)."""
    merged = dict(defaults)
    for name in PARAMETERS:
        value = row.get(name)
        if value is None:
            continue
        if name in _INT_PARAMETERS:
            value = _as_int(name, value)
        merged[name] = value
    return merged


def _as_int(name: str, value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return value  # validation names the problem


# --- prompt_matrix ----------------------------------------------------------------------------


def prompt_matrix(template: str, /, **axes: Any) -> pd.DataFrame:
    """Every combination of the axes, one row each: a column per axis (first axis outermost)
    plus `prompt = template.format(**row)`. An axis the template does not mention (say
    `quality=["low", "high"]`) still multiplies the rows, and a grid reads it as a parameter."""
    import pandas as pd

    if not axes:
        raise InvalidRequest("prompt_matrix needs at least one axis, e.g. animal=['cat', 'dog']")
    if "prompt" in axes:
        raise InvalidRequest("'prompt' is the column prompt_matrix writes; rename that axis")
    values = {name: _axis_values(name, v) for name, v in axes.items()}
    _check_template(template, values)
    count = math.prod(len(v) for v in values.values())
    if count > MAX_MATRIX_ROWS:
        sizes = " x ".join(f"{len(v)} {k}" for k, v in values.items())
        raise InvalidRequest(
            f"prompt_matrix would make {count:,} rows ({sizes}); the limit is "
            f"{MAX_MATRIX_ROWS:,}. Use fewer values per axis."
        )
    names = list(values)
    rows = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values.values())]
    for row in rows:
        row["prompt"] = template.format(**row)
    return pd.DataFrame(rows, columns=[*names, "prompt"])


def _axis_values(name: str, value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        return [value]  # a single value: a constant column
    items = list(value)
    if not items:
        raise InvalidRequest(f"axis {name!r} has no values; give it at least one")
    return items


def _check_template(template: str, axes: Mapping[str, Sequence[Any]]) -> None:
    if not isinstance(template, str):
        raise InvalidRequest(f"the template must be a str, not {type(template).__name__}")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise InvalidRequest(
            f"the template {template!r} is not a valid format string: {exc}"
        ) from exc
    for field in fields:
        root = field.split(".", 1)[0].split("[", 1)[0]
        if not root or root.isdigit():
            raise InvalidRequest(
                f"the template uses a positional field {{{field}}}; name it after an axis, "
                "e.g. 'a {animal} in {style} style'"
            )
        if root not in axes:
            raise InvalidRequest(
                f"the template uses {{{root}}} but no axis of that name was given; axes: "
                f"{', '.join(axes)}"
            )


# --- layout -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where each input row goes: `cells[r][c]` lists row numbers (several rows may share a
    cell). With no axes the rows flow into a near-square block without labels."""

    row_axis: str | None
    col_axis: str | None
    row_labels: tuple[str, ...]
    col_labels: tuple[str, ...]
    cells: tuple[tuple[tuple[int, ...], ...], ...]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.cells), len(self.cells[0]) if self.cells else 0


def layout(tab: Table, rows: str | None, cols: str | None, *, flow_columns: int = 0) -> Layout:
    """Place rows by the values of the `rows` and `cols` columns, in order of first appearance."""
    for axis, name in (("rows", rows), ("cols", cols)):
        if name is not None and name not in tab.columns:
            raise InvalidRequest(
                f"{axis}={name!r} is not a column; columns: {', '.join(tab.columns)}"
            )
    if rows is None and cols is None:
        return _flow(len(tab), flow_columns)
    row_values = _labels(tab, rows)
    col_values = _labels(tab, cols)
    grid: list[list[list[int]]] = [[[] for _ in col_values] for _ in row_values]
    r_at = {v: i for i, v in enumerate(row_values)}
    c_at = {v: i for i, v in enumerate(col_values)}
    for i, row in enumerate(tab.rows):
        grid[r_at[_label(row, rows)]][c_at[_label(row, cols)]].append(i)
    return Layout(
        rows,
        cols,
        tuple(row_values) if rows else (),
        tuple(col_values) if cols else (),
        tuple(tuple(tuple(cell) for cell in line) for line in grid),
    )


def _label(row: Mapping[str, Any], axis: str | None) -> str:
    if axis is None:
        return ""
    value = row.get(axis)
    return "(missing)" if value is None else str(value)


def _labels(tab: Table, axis: str | None) -> list[str]:
    return list(dict.fromkeys(_label(row, axis) for row in tab.rows)) or [""]


def _flow(count: int, columns: int) -> Layout:
    width = columns or max(1, min(8, math.ceil(math.sqrt(count))))
    lines: list[tuple[tuple[int, ...], ...]] = []
    for start in range(0, count, width):
        cells: list[tuple[int, ...]] = [(i,) for i in range(start, min(start + width, count))]
        lines.append(tuple(cells + [()] * (width - len(cells))))
    return Layout(None, None, (), (), tuple(lines))


def distinguishing(tab: Table, lay: Layout, skip: Iterable[str]) -> dict[int, str]:
    """A short caption for rows that share a cell: the other columns whose values differ
    there (`quality=low`), so side-by-side images are told apart."""
    skipped = {*skip, "prompt"}
    out: dict[int, str] = {}
    for line in lay.cells:
        for cell in line:
            if len(cell) < 2:
                continue
            varying = [
                c
                for c in tab.columns
                if c not in skipped and len({repr(tab.rows[i].get(c)) for i in cell}) > 1
            ]
            for i in cell:
                out[i] = " · ".join(f"{c}={tab.rows[i].get(c)}" for c in varying)
    return out


def captions(tab: Table, lay: Layout, prompt: str, caption: str | None) -> list[str]:
    """Text under each row's image. `caption` names a column, or is a template such as
    "{style}, {quality}"; by default a grid without axes shows the prompt, and one with axes
    shows only what tells apart rows that share a cell."""
    if caption is None:
        if lay.row_axis is None and lay.col_axis is None:
            return [str(r.get(prompt) or "") for r in tab.rows]
        shared = distinguishing(tab, lay, [a for a in (lay.row_axis, lay.col_axis) if a])
        return [shared.get(i, "") for i in range(len(tab))]
    if "{" in caption:
        return [_caption(caption, r) for r in tab.rows]
    return ["" if r.get(caption) is None else str(r.get(caption)) for r in tab.rows]


def _caption(template: str, row: Mapping[str, Any]) -> str:
    try:
        return template.format_map(_Blanks(row))
    except (ValueError, IndexError, AttributeError, TypeError, KeyError) as exc:
        raise InvalidRequest(
            f"caption template {template!r} failed: {exc}; use plain {{column}} names, and "
            "{{ }} for literal braces"
        ) from None


class _Blanks(dict[str, Any]):
    """For caption templates: a missing value reads as empty, an unknown name stays as is."""

    def __getitem__(self, key: str) -> Any:
        if key not in self:
            return "{" + key + "}"
        value = super().__getitem__(key)
        return "" if value is None else value
