"""Cells of notebooks/02_prompt_grids.ipynb (see scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

NAME = "02_prompt_grids.ipynb"

CELLS = [
    new_markdown_cell(
        "# Prompt grids: compare prompts, styles, sizes, qualities and models side by side\n\n"
        "Exploratory prompt design is a search: you change one thing and look. A grid makes "
        "the looking fair, because every image sits next to the ones it differs from by "
        "exactly one axis. imagenb builds the grid from a DataFrame, tells you what it will "
        "cost before anything is sent, fills it in as images arrive, and gives you back a "
        "tidy DataFrame of results.\n\n"
        "This notebook runs offline on the preview backend when no `OPENAI_API_KEY` is set."
    ),
    new_code_cell("import imagenb as ig\n\nig.configure(budget_usd=5)"),
    new_markdown_cell(
        "## Build the rows\n\n`ig.prompt_matrix` is the cartesian product of its axes: one "
        "column per axis, plus the `prompt` that the template makes of each row."
    ),
    new_code_cell(
        "frame = ig.prompt_matrix(\n"
        '    "a {subject} as a {medium}, soft morning light",\n'
        '    subject=["lighthouse", "windmill", "tea house"],\n'
        '    medium=["watercolour", "linocut print", "isometric 3D render"],\n'
        ")\nframe"
    ),
    new_markdown_cell(
        "## Count before you pay\n\n`ig.estimate` takes the same rows and says what the grid "
        "would cost; images already in the store count as free."
    ),
    new_code_cell('ig.estimate(frame, size="landscape", quality="low")'),
    new_markdown_cell(
        "The same settings make the grid. `caption` is a template: besides the row's columns "
        "it can name `{cost}` and `{latency}`, filled in per cell as each image arrives."
    ),
    new_code_cell(
        'styles = ig.grid(frame, rows="subject", cols="medium", size="landscape", quality="low",\n'
        '                 caption="{cost} · {latency}")'
    ),
    new_markdown_cell(
        "## Compare parameters, not just prompts\n\nA column named like a request parameter "
        "(`quality`, `size`, `model`, `background`, ...) sets that parameter for its row. So "
        "comparing qualities is one more axis:"
    ),
    new_code_cell(
        "by_quality = ig.prompt_matrix(\n"
        '    "a {subject}, watercolour", subject=["lighthouse", "tea house"], '
        'quality=["low", "medium", "high"]\n'
        ")\n"
        'ig.estimate(by_quality, size="square")'
    ),
    new_code_cell(
        'quality_grid = ig.grid(by_quality, rows="subject", cols="quality", size="square")'
    ),
    new_markdown_cell(
        "Sizes and models work the same way. Elongated sizes cost less than square ones of the "
        "same area (the published token calculation), which a grid makes visible:"
    ),
    new_code_cell(
        'sizes = ig.prompt_matrix("a {subject}", subject=["lighthouse"], '
        'size=["square", "16:9", "3:1", "2k"])\n'
        'size_grid = ig.grid(sizes, cols="size", quality="medium")\n'
        'size_grid.frame[["size", "status", "cost_usd"]]'
    ),
    new_markdown_cell(
        "## The results are data\n\n`Grid.frame` holds the input columns plus `image`, `path`, "
        "`status`, `error`, `cost_usd` and `latency_s`: filter it, group it, join it. "
        "`cost_usd` is what *this run* paid, so on a re-run (every image from the store) it "
        "is 0; what the images cost to make is the estimate with `fresh=True`."
    ),
    new_code_cell(
        "results = styles.frame\n"
        'print(results.groupby("medium")["cost_usd"].sum())\n'
        'ig.estimate(frame, size="landscape", quality="low", fresh=True)'
    ),
    new_markdown_cell(
        "## Run it again\n\nEvery image is in the store, so re-running the grid sends nothing "
        "and costs nothing:"
    ),
    new_code_cell(
        'again = ig.grid(frame, rows="subject", cols="medium", size="landscape", quality="low")\n'
        'again.frame["status"].value_counts()'
    ),
    new_markdown_cell(
        "## Share it\n\nA contact sheet (PNG, JPEG or PDF) with labelled rows and columns, or a "
        "self-contained HTML page:"
    ),
    new_code_cell(
        "from pathlib import Path\n\n"
        'out = Path("grids-output")\n'
        "out.mkdir(exist_ok=True)\n"
        'styles.save(out / "styles.png")\n'
        'styles.save(out / "styles.html")\n'
        "print(ig.spent())"
    ),
]
