"""Issue 17 §6: defaults that do not surprise. `quality="auto"` stays the default (the service
picks; the wire carries only what was asked), and every plan line says what it is priced at;
streaming partial images shows what they really add."""

from __future__ import annotations

import re

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import imagenb as ig
from imagenb.cli import main as cli
from imagenb.core import cost, plan_notes, request

AUTO_NOTE = re.compile(r"quality auto: priced as high, ~\$0\.21\d\d/image \(-q low: ~\$0\.00\d\d\)")
PARTIALS_NOTE = re.compile(r"2 partial images: \+\$0\.0060/image \(\+(\d+)%\)")


def test_the_notes_price_auto_as_high_and_partials_at_100_tokens_each():
    req = request.build("a red fox in snow")
    (note,) = plan_notes.notes([req])
    assert AUTO_NOTE.fullmatch(note), note
    high = cost.estimate(request.build("a red fox in snow", quality="high")).usd
    assert f"~${high:.4f}/image" in note
    low = request.build("a red fox in snow", quality="low")
    assert plan_notes.notes([low]) == []
    (streamed,) = plan_notes.notes([low], partials=2)
    share = PARTIALS_NOTE.fullmatch(streamed)
    assert share and int(share[1]) >= 95  # about doubles a low-quality 1024x1024 image


def test_cli_estimates_say_it(capsys, tmp_path):
    assert cli.main(["generate", "a fox", "--estimate"]) == 0
    assert AUTO_NOTE.search(capsys.readouterr().out)
    assert cli.main(["generate", "a fox", "-q", "low", "--stream", "--estimate"]) == 0
    streamed = capsys.readouterr().out
    assert PARTIALS_NOTE.search(streamed) and "quality auto" not in streamed
    assert cli.main(["generate", "a fox", "-q", "low", "--estimate"]) == 0
    plain = capsys.readouterr().out
    price = re.compile(r"~\$(\d+\.\d+)")
    assert float(price.findall(streamed)[0]) > 1.9 * float(price.findall(plain)[0])
    table = tmp_path / "p.csv"
    table.write_text("prompt\na cat\na dog\n")
    assert cli.main(["grid", str(table), "--estimate"]) == 0
    assert AUTO_NOTE.search(capsys.readouterr().out)


def test_the_magic_and_the_grid_plan_line_say_it():
    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("imagenb")
    with capture_output() as cap:
        shell.run_cell("%imagegen --estimate a fox", store_history=False)
    assert AUTO_NOTE.search(cap.stdout), cap.stdout
    grid = ig.grid(["a cat", "a dog"])  # the preview backend: free, but priced as if real
    assert AUTO_NOTE.search(grid.plan_line)
    assert "quality auto" not in ig.grid(["a cat"], quality="medium").plan_line


def test_the_panel_estimate_says_it():
    panel = ig.panel()
    panel.prompt.value = "a lighthouse at dusk"
    panel.quality.value = "auto"
    assert AUTO_NOTE.search(panel.estimate.value), panel.estimate.value
    panel.quality.value = "low"
    panel.stream.value = True
    assert PARTIALS_NOTE.search(panel.estimate.value), panel.estimate.value


def test_the_storyboard_plan_line_says_it():
    board = ig.storyboard(["Mira walks home"], characters={"Mira": "a girl in a red scarf"})
    # panels are edits: their per-image price includes reading the reference image
    assert re.search(r"quality auto: priced as high, ~\$0\.2\d+/image", board.plan_line)
