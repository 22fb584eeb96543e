"""Issue 17 §2 in a real Jupyter kernel: a moderation block from `ig.generate` arrives as an
error output of at most 5 lines that names the block, the cell still fails (Run All stops),
and `%tb` in the next cell shows the full trace."""

from __future__ import annotations

import re

import nbformat
import pytest
from test_magics_kernel import Notebook, notebook, server  # noqa: F401 - the kernel fixtures

from imagenb.testing import FakeImagesServer

pytestmark = pytest.mark.kernel
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_a_moderation_block_is_a_short_error_output(
    notebook: Notebook,  # noqa: F811 - the imported fixture
    server: FakeImagesServer,  # noqa: F811 - the imported fixture
) -> None:
    cell = nbformat.v4.new_code_cell(
        'import imagenb as ig\nig.generate("a forbidden fox", quality="low")',
        metadata={"tags": ["raises-exception"]},
    )
    notebook.nb.cells.append(cell)
    notebook.client.execute_cell(cell, len(notebook.nb.cells) - 1)
    (error,) = [o for o in cell.outputs if o.output_type == "error"]
    assert error.ename == "ModerationBlocked"  # it propagated: the cell failed
    lines = [ANSI.sub("", line) for text in error.traceback for line in text.splitlines()]
    assert 1 <= len(lines) <= 5, lines
    assert lines[0].startswith("ModerationBlocked: blocked by the safety system")
    assert "%tb" in lines[-1] and not any("Traceback" in line for line in lines)
    assert server.stats.moderation_blocked == 1

    full = notebook.run("%tb")
    shown = "\n".join(
        ANSI.sub("", "\n".join(o.get("traceback", [])) + o.get("text", "")) for o in full.outputs
    )
    assert "Traceback" in shown and "calls.py" in shown
