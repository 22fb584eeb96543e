"""Issue 5 acceptance in a real Jupyter kernel (nbclient): a 64-image grid of 2560x1440
images leaves static HTML in the notebook, at most 40 KB per image, with no widget state."""

from __future__ import annotations

import json

import pytest
from nbclient import NotebookClient
from nbformat import writes
from nbformat.v4 import new_code_cell, new_notebook

ANIMALS = ["cat", "dog", "owl", "fox", "eel", "yak", "elk", "emu"]
STYLES = ["ink", "oil", "clay", "neon", "chalk", "pixel art", "ukiyo-e", "<b>bold</b>"]
SETUP = f"""
import imagenb as ig
df = ig.prompt_matrix("a {{animal}} in {{style}} style", animal={ANIMALS!r}, style={STYLES!r})
"""
GRID = "g = ig.grid(df, rows='animal', cols='style', size='2560x1440', quality='low')"
CHECK = "print(g.frame.status.value_counts().to_dict(), g.frame.path.map(str).str.len().min())"
AGAIN = "ig.grid(df.head(4), rows='animal', cols='style', size='2560x1440', quality='low')"
BUDGET = 40_000


@pytest.mark.kernel
@pytest.mark.slow
def test_64_image_grid_grows_the_notebook_by_at_most_40_kb_an_image(isolated):
    nb = new_notebook(cells=[new_code_cell(c) for c in (SETUP, GRID, CHECK, AGAIN)])
    before = len(writes(nb).encode())
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    after = len(writes(nb).encode())

    grid_out = nb.cells[1].outputs
    assert [o.output_type for o in grid_out] == ["display_data"]  # one output, updated in place
    html = grid_out[0].data["text/html"]
    assert html.count("<img ") == 64 and "waiting…" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert not any("widget" in key for o in grid_out for key in o.get("data", {}))
    assert "{'ok': 64}" in nb.cells[2].outputs[0].text

    # a grid as the cell's last expression is shown once (live view), its result as text only
    kinds = [(o.output_type, sorted(o.get("data", {}))) for o in nb.cells[3].outputs]
    assert kinds == [
        ("display_data", ["text/html", "text/plain"]),
        ("execute_result", ["text/plain"]),
    ]

    per_image = (after - before) / (64 + 4)
    grid_bytes = len(json.dumps(grid_out))
    print(f"\nnotebook growth: {after - before:,} B, {per_image / 1000:.1f} KB/image "
          f"(grid output {grid_bytes / 64 / 1000:.1f} KB/image)")  # fmt: skip
    assert per_image <= BUDGET


@pytest.mark.kernel
def test_wait_false_fills_in_the_cell_that_started_it(isolated):
    start = (
        "import imagenb as ig\n"
        "g = ig.grid([f'a boat {i}' for i in range(6)], size='2560x1440', quality='low', "
        "wait=False)\nprint('finished on return:', g.finished)"
    )
    nb = new_notebook(cells=[new_code_cell(start), new_code_cell("g.wait(); print(g)")])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    shown, said = nb.cells[0].outputs
    assert said.text.strip() == "finished on return: False"
    html = shown.data["text/html"]
    assert html.count("<img ") == 6 and "waiting…" not in html
    assert "6 ok" in nb.cells[1].outputs[0].text
