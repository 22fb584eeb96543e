"""Cells of notebooks/03_panel.ipynb (see scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

NAME = "03_panel.ipynb"

CELLS = [
    new_markdown_cell(
        "# The imagenb panel\n\n"
        "For teaching and quick exploration a panel beats code: type a prompt, see what it "
        "costs before you click, watch the images arrive, pick one and refine it.\n\n"
        "- **Model, Size, Quality, Format, Background, Images** offer exactly what the chosen "
        "model accepts; the estimate under them follows every change (images already in the "
        "store are free).\n"
        "- **Generate** returns at once: other cells run while the images are made. "
        "**Cancel** stops; whatever arrived is kept. Tick *Stream: partial images* to watch "
        "each image take shape.\n"
        "- Under each result: **Select** and **Enlarge**. **Edit selected** makes the selected "
        "images the inputs of your next prompt (describe the change, then click *Edit*). "
        "**Save** writes the full-resolution files to the folder you name.\n"
        "- **History** lists earlier results from the store; *Reload* puts one back, at no "
        "cost. **Copy as code** shows the `%%imagegen` cell that makes the same request.\n\n"
        "Without an `OPENAI_API_KEY` in the kernel's environment the offline **preview** "
        "backend answers, free. The notebook keeps only thumbnails: a copy opened without a "
        "kernel shows the panel's last results as a static snapshot."
    ),
    new_code_cell('import imagenb as ig\n\npanel = ig.panel(quality="low")\npanel'),
    new_markdown_cell(
        "The panel is a Python object too: its results are ordinary `GeneratedImage`s, and "
        "this cell runs at once even while a generation is going on."
    ),
    new_code_cell(
        'print(f"{len(panel.results)} result(s), {len(panel.selected)} selected")\nig.spent()'
    ),
]
