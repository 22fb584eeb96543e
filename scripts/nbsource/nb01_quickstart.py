"""Cells of notebooks/01_quickstart.ipynb (see scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

NAME = "01_quickstart.ipynb"

CELLS = [
    new_markdown_cell(
        "# imagenb quick start\n\n"
        "imagenb puts OpenAI's image models in the notebook: validated requests, honest cost "
        "before you spend, a store that never pays twice for the same image, and thumbnails "
        "(never full-resolution images) in your notebook.\n\n"
        "With no `OPENAI_API_KEY` in the environment the **preview** backend answers: offline, "
        "free and deterministic images of exactly the requested size, clearly marked PREVIEW. "
        "Set the key *in your shell*, never in a cell, and the same cells call the real model."
    ),
    new_code_cell("import imagenb as ig\n\nig.configure()"),
    new_markdown_cell(
        "## What will it cost?\n\n`ig.estimate` uses the published gpt-image-2 token "
        "calculation; nothing is sent. Images already in the store count as free."
    ),
    new_code_cell(
        'print(ig.estimate("a red fox in the snow", size="16:9", quality="low"))\n'
        'print(ig.estimate("a red fox in the snow", size="4k", quality="high"))'
    ),
    new_markdown_cell(
        "## Generate\n\nSizes can be `WxH`, presets (`square`, `landscape`, `portrait`, `2k`, "
        "`4k`) or ratios: `16:9` is the largest valid size at the model's default long edge."
    ),
    new_code_cell(
        'foxes = ig.generate("a red fox in the snow, watercolour", size="16:9", quality="low", '
        'n=2, output_format="webp")\nfoxes'
    ),
    new_markdown_cell(
        "Run the cell again: the images come from the store, at no cost (`cached`). "
        "`fresh=True` asks for new ones."
    ),
    new_code_cell(
        'again = ig.generate("a red fox in the snow, watercolour", size="16:9", quality="low", '
        'n=2, output_format="webp")\n'
        "print([img.cached for img in again], again.cost_usd)"
    ),
    new_markdown_cell(
        "## Mistakes cost nothing\n\nAn invalid request fails before anything is sent, and "
        "says what would work."
    ),
    new_code_cell(
        "try:\n"
        '    ig.generate("a poster", size="1920x1080")\n'
        "except ig.errors.InvalidRequest as err:\n"
        "    print(err)"
    ),
    new_markdown_cell(
        "## Compare side by side\n\n`ig.prompt_matrix` builds the cartesian product of your "
        "axes; `ig.grid` lays it out with labelled rows and columns. A column named like a "
        "request parameter (`quality`, `size`, `model`, ...) sets it per row."
    ),
    new_code_cell(
        'frame = ig.prompt_matrix("a {animal}, {style}", animal=["red fox", "snowy owl"], '
        'style=["watercolour", "linocut", "pixel art"])\n'
        'grid = ig.grid(frame, rows="animal", cols="style", size="landscape", quality="low")'
    ),
    new_markdown_cell("The results are a tidy DataFrame you can filter, group and join:"),
    new_code_cell('grid.frame[["animal", "style", "status", "cost_usd", "path"]]'),
    new_markdown_cell(
        "## Keep the results\n\nEvery image is already in the store. Copy them out, or save the "
        "grid as a contact sheet (PNG, JPEG, PDF) or a self-contained HTML page:"
    ),
    new_code_cell(
        "from pathlib import Path\n\n"
        'out = Path("quickstart-output")\n'
        "foxes.save(out, overwrite=True)\n"
        'grid.save(out / "contact-sheet.png")\n'
        'grid.save(out / "grid.html")\n'
        "sorted(p.name for p in out.iterdir())"
    ),
    new_code_cell("ig.spent()"),
]
