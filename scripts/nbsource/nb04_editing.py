"""Cells of notebooks/04_editing.ipynb (see scripts/make_notebooks.py)."""

from nbformat.v4 import new_code_cell, new_markdown_cell

NAME = "04_editing.ipynb"

CELLS = [
    new_markdown_cell(
        "# Editing: change an image, mask a region, combine references, draw a comic\n\n"
        "An edit sends one or more input images (up to 16) with an instruction. imagenb "
        "checks the inputs before anything is sent, and keys each result in the store by the "
        "hashes of its inputs: the same edit of the same images is free the second time, and "
        "a changed input makes a new image.\n\n"
        "This notebook runs offline on the preview backend when no `OPENAI_API_KEY` is set: "
        "the previews show a small inset of the first input, so you can see what went in."
    ),
    new_code_cell("import imagenb as ig\n\nig.configure(budget_usd=5)"),
    new_markdown_cell("## Something to edit"),
    new_code_cell(
        "room = ig.generate(\n"
        '    "a sunlit reading room with a green armchair and tall bookshelves, watercolour",\n'
        '    size="landscape",\n'
        '    quality="low",\n'
        ")\nroom"
    ),
    new_markdown_cell(
        "## Edit the whole image\n\n`ig.edit` takes paths, bytes, PIL images, `GeneratedImage`s "
        "or a whole `ImageSet` as its inputs."
    ),
    new_code_cell(
        'night = ig.edit("the same room at night, lit by one warm lamp", room, quality="low")\n'
        "night"
    ),
    new_markdown_cell(
        "## Paint the area to change\n\n`ig.mask(image)` opens a painter over the image: "
        "brush, eraser, size, rectangle, invert, clear and undo, with a mouse, a finger or a "
        "pen. The picture you paint on is small, but the mask is kept at the image's full "
        "size, transparent where you painted (the API's convention): `painter.mask` is that "
        'image, and `painter.save("mask.png")` writes it.\n\n'
        "A notebook run headless has no one to paint, so here the painter is also driven from "
        "code; in JupyterLab you would paint over the armchair yourself. Saved, the notebook "
        "keeps a small static picture of the mask, so it reads the same without a kernel."
    ),
    new_code_cell(
        "w, h = room[0].width, room[0].height\n"
        "painter = ig.mask(room[0], brush=64)\n"
        "painter.rectangle((w // 3, h // 3, 2 * w // 3, h - 1))  # the armchair\n"
        "painter.stroke([(w // 3, h // 3), (2 * w // 3, h // 3)], size=120)  # and above it\n"
        "painter"
    ),
    new_markdown_cell(
        "## Edit only there, and keep the rest exactly\n\n"
        'The API treats a mask as guidance: the model "may not follow its exact shape", '
        "and often redraws the whole picture a little. So by default `ig.edit` puts the "
        "model's answer inside the mask onto your image, which stays exactly as it was "
        "outside (blended over a seam of a few pixels). `changed_outside` tells how much of "
        "the outside the model had changed; `.raw` is its answer as it came, which is in the "
        "store too (`keep_outside=False` returns it instead)."
    ),
    new_code_cell(
        'cat = ig.edit("a ginger cat asleep in the armchair", room, mask=painter, '
        'quality="low")\n'
        "kept = cat[0]\n"
        'print(f"the model changed {kept.changed_outside:.0%} of the pixels outside the mask; "\n'
        '      "the result keeps every one of them as it was")\n'
        "ig.masks.before_after(room[0], kept)"
    ),
    new_markdown_cell(
        "Masks can also come from code: any PNG or PIL image the size of the first input, "
        "transparent where to edit. A mask of the wrong size is refused before anything is "
        "sent:"
    ),
    new_code_cell(
        "try:\n"
        '    ig.edit("a cat", room, mask=painter.mask.resize((64, 64)))\n'
        "except ig.errors.InvalidRequest as err:\n"
        "    print(err)"
    ),
    new_markdown_cell(
        "## Several reference images\n\nGive up to 16 inputs and say which is which: "
        "*image 1*, *image 2*, ... in the order you pass them."
    ),
    new_code_cell(
        'teapot = ig.generate("a blue and white porcelain teapot, studio photo", '
        'size="square", quality="low")\n'
        'cup = ig.generate("a red enamel camping mug, studio photo", size="square", '
        'quality="low")\n'
        "still_life = ig.edit(\n"
        '    "the teapot of image 1 and the mug of image 2 on the armchair of image 3, '
        'afternoon light",\n'
        "    [teapot[0], cup[0], room[0]],\n"
        '    size="landscape",\n'
        '    quality="low",\n'
        ")\n"
        "still_life"
    ),
    new_markdown_cell(
        "## A four-panel comic\n\n`ig.storyboard` builds on exactly this. Describe the "
        "characters once: each gets a reference image first. Every panel is then an edit "
        "whose inputs are the references of the characters it names, and whose prompt says "
        "which input is whom, so Mira and Tom look the same from panel to panel.\n\n"
        "The captions and speech bubbles are drawn by imagenb when the page is saved (the "
        "model is asked to leave the panels unlettered), so the text is exact, in any "
        "script, and can change without paying for new images."
    ),
    new_code_cell(
        "import pandas as pd\n\n"
        "characters = {\n"
        '    "Mira": "a ten-year-old girl with curly black hair, a red scarf and yellow boots",\n'
        '    "Tom": "a tall, gentle, slightly rusty robot with round blue eyes",\n'
        "}\n"
        "panels = pd.DataFrame(\n"
        "    {\n"
        '        "panel": [\n'
        '            "Mira finds Tom half buried in a junkyard",\n'
        '            "Tom wakes up, his blue eyes glowing, Mira jumps back",\n'
        '            "Mira and Tom walk into town side by side",\n'
        '            "Tom carries Mira home through the rain under a big umbrella",\n'
        "        ],\n"
        '        "caption": ["One rainy morning...", None, "They became friends.", None],\n'
        '        "dialogue": [\n'
        '            "Mira: Hello? Anybody in there?",\n'
        '            "Tom: BEEP. SYSTEM ONLINE.\\nMira: Whoa!",\n'
        "            None,\n"
        '            "Mira: Thanks, Tom.\\nTom: ありがとう、ミラ。",\n'
        "        ],\n"
        "    }\n"
        ")\n"
        'style = "ink and watercolour comic, clean line art"\n'
        'comic = ig.storyboard(panels, characters=characters, style=style, quality="low")'
    ),
    new_markdown_cell(
        "The cost line above came first: it covers both stages, the references and the "
        "panels. The results are a DataFrame, like a grid's:"
    ),
    new_code_cell('comic.frame[["panel", "characters", "status", "cost_usd"]]'),
    new_markdown_cell(
        "## The page\n\n`save` writes pages with gutters, borders and lettering: `.png` (one "
        "file per page) or `.pdf` (one page each). `layout` is rows x columns per page: "
        "`2x2` is the classic four-panel page, and `1x2` makes two strips of two."
    ),
    new_code_cell(
        "from pathlib import Path\n\n"
        'out = Path("editing-output")\n'
        'pages = comic.save(out / "comic.png", title="Mira and Tom")\n'
        'strips = comic.save(out / "comic.pdf", layout="1x2")\n'
        'print([p.name for p in pages], [p.name for p in strips], comic.pages("1x2"), '
        '"PDF pages")\n'
        "comic.page(1)"
    ),
    new_markdown_cell(
        "## Change one panel\n\nThe store keys of edits include the hashes of their inputs, "
        "and the references are already in the store, so a re-run sends only the panel that "
        "changed (by default panels do not see each other; `chain=True` gives each panel the "
        "one before it, for continuity, at the price of making later panels depend on "
        "earlier ones)."
    ),
    new_code_cell(
        'panels.loc[2, "panel"] = "Mira and Tom fly a kite on a windy hill"\n'
        'comic = ig.storyboard(panels, characters=characters, style=style, quality="low")\n'
        'comic.frame[["panel", "status", "cost_usd"]]'
    ),
    new_markdown_cell(
        "## The same from a cell\n\n`%%storyboard` takes one panel per line: "
        "`description | caption: narration | Name: words`. Characters come from `-c "
        'NAME="description"`, `-c NAME=IMAGE` or `--cast VAR`; everything else is the '
        "usual option group. These panels are all in the store already: nothing is sent."
    ),
    new_code_cell("%load_ext imagenb"),
    new_code_cell(
        '%%storyboard --cast characters --style "ink and watercolour comic, clean line art" '
        "-q low -o again --save editing-output/again.png\n"
        "Mira finds Tom half buried in a junkyard | caption: One rainy morning... | "
        "Mira: Hello? Anybody in there?\n"
        "Tom wakes up, his blue eyes glowing, Mira jumps back | Tom: BEEP. SYSTEM ONLINE. | "
        "Mira: Whoa!\n"
        "Mira and Tom fly a kite on a windy hill | caption: They became friends.\n"
        "Tom carries Mira home through the rain under a big umbrella | Mira: Thanks, Tom. | "
        "Tom: ありがとう、ミラ。"
    ),
    new_code_cell('again.frame["status"].value_counts()'),
    new_code_cell("print(ig.spent())"),
]
