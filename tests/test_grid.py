"""Issue 5 acceptance: prompt grids from dataframes, end to end against the loopback fake
(the real SDK over HTTP) or the preview backend, with a fresh store per test."""

from __future__ import annotations

import io
import itertools
import os
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from PIL import Image

import imagenb as ig
from imagenb.backends.base import Partial
from imagenb.cli import main as cli
from imagenb.core import frames
from imagenb.errors import BudgetExceeded, InvalidRequest
from imagenb.grids import grid as grids
from imagenb.grids import html as grid_html
from imagenb.store.images import GeneratedImage
from imagenb.testing import Faults

EVIL = "<script>alert(1)</script> <img src=x onerror=alert(1)>"
ANIMALS = ["cat", "dog", "owl"]
STYLES = ["watercolor", "pixel art", "ukiyo-e", "charcoal"]


def matrix() -> pd.DataFrame:
    return ig.prompt_matrix("a {animal} in {style} style", animal=ANIMALS, style=STYLES)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML document."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_inert(text: str) -> None:
    """`EVIL` is there as text, and no script or event handler came out of it."""
    parsed = Tags(text)
    assert not [t for t, _ in parsed.tags if t == "script"]
    assert not [a for _, a in parsed.tags if any(k.startswith("on") for k in a)]
    assert not [a for t, a in parsed.tags if t == "img" and a.get("src") == "x"]
    assert EVIL in "".join(parsed.text)


class RecordingView:
    """Stands in for the notebook display: keeps every HTML it is given, with the time."""

    def __init__(self) -> None:
        self.shown: list[str] = []
        self.updates: list[tuple[float, str]] = []

    def show(self, text: str, plain: str) -> None:
        assert plain.startswith("Grid(")  # a readable text fallback beside the HTML
        self.shown.append(text)

    def update(self, text: str, plain: str) -> None:
        self.updates.append((time.monotonic(), text))

    def in_current_cell(self) -> bool:
        return False


@pytest.fixture
def view(monkeypatch: pytest.MonkeyPatch) -> RecordingView:
    recorder = RecordingView()
    monkeypatch.setattr(grids, "_open_view", lambda: recorder)
    return recorder


# --- prompt_matrix -----------------------------------------------------------------------------


def test_prompt_matrix_is_the_cartesian_product():
    df = matrix()
    assert len(df) == 12 and list(df.columns) == ["animal", "style", "prompt"]
    assert df.iloc[0].to_dict() == {
        "animal": "cat",
        "style": "watercolor",
        "prompt": "a cat in watercolor style",
    }
    assert list(df["animal"]) == [a for a in ANIMALS for _ in STYLES]  # first axis outermost
    # an axis the template does not use still multiplies, and becomes a parameter column
    assert len(ig.prompt_matrix("a {animal}", animal=ANIMALS, quality=["low", "high"])) == 6


@pytest.mark.parametrize(
    ("template", "axes", "match"),
    [
        ("a {animal} in {style}", {"animal": ["cat"]}, "no axis of that name"),
        ("a {} cat", {"animal": ["cat"]}, "positional"),
        ("a {animal}", {"animal": []}, "no values"),
        ("a {prompt}", {"prompt": ["x"]}, "rename"),
        ("a {animal", {"animal": ["cat"]}, "not a valid format string"),
        ("a {a}", {"a": range(1000), "b": range(1000)}, "limit"),
    ],
)
def test_prompt_matrix_refuses_what_cannot_work(template, axes, match):
    with pytest.raises(InvalidRequest, match=match):
        ig.prompt_matrix(template, **axes)


# --- inputs ------------------------------------------------------------------------------------


def test_inputs_normalise_to_plain_rows():
    assert frames.table(["a fox", "a cat"]).rows == ({"prompt": "a fox"}, {"prompt": "a cat"})
    mixed = frames.table([{"prompt": "a", "quality": "low"}, {"prompt": "b", "n": 2}])
    assert mixed.columns == ("prompt", "quality", "n")
    assert mixed.rows[1] == {"prompt": "b", "quality": None, "n": 2}
    df = pd.DataFrame({"prompt": ["a", "b"], "n": [2, None], "status": ["ok", "error"]})
    tab = frames.table(df)
    assert tab.columns == ("prompt", "n")  # a grid's own result columns are dropped
    assert tab.rows[0]["n"] == 2 and type(tab.rows[0]["n"]) is float and tab.rows[1]["n"] is None
    assert frames.parameters(tab.rows[0], {"quality": "low"}) == {"quality": "low", "n": 2}
    assert frames.table({"prompt": ["x", "y"]}).rows[1] == {"prompt": "y"}
    with pytest.raises(InvalidRequest, match="only prompts"):
        frames.table(["a", 3])


def test_csv_keeps_prompts_as_text_and_numbers_work(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("prompt,n,quality\nNA,2,\nnull,,low\n", encoding="utf-8")
    tab = frames.table(frames.read_csv(path))
    assert [r["prompt"] for r in tab.rows] == ["NA", "null"]
    assert frames.parameters(tab.rows[0], {}) == {"n": 2}
    assert frames.parameters(tab.rows[1], {"quality": "high"}) == {"quality": "low"}


# --- the acceptance grid -----------------------------------------------------------------------


def test_matrix_grid_against_the_fake_is_all_ok(fake, capsys):
    g = ig.grid(matrix(), rows="animal", cols="style", quality="low", size="square")
    frame = g.frame
    assert len(frame) == 12 and (frame["status"] == "ok").all()
    assert fake.stats.image_requests == 12
    assert list(frame.columns) == [
        "animal",
        "style",
        "prompt",
        "variant",
        "image",
        "path",
        "status",
        "error",
        "cost_usd",
        "latency_s",
    ]
    assert all(Path(p).is_file() for p in frame["path"])
    assert frame["cost_usd"].gt(0).all() and frame["latency_s"].gt(0).all()
    assert frame["error"].isna().all()
    assert g.layout.shape == (3, 4)
    assert g.layout.row_labels == tuple(ANIMALS) and g.layout.col_labels == tuple(STYLES)
    line = capsys.readouterr().out
    assert "grid: 12 image(s)" in line and "12 to make ~$" in line and "no budget set" in line


def test_cached_rerun_of_64_cells_sends_nothing_and_is_fast(fake, capsys):
    df = ig.prompt_matrix("a {a} with a {b}", a=[f"fox {i}" for i in range(8)], b=list("abcdefgh"))
    first = ig.grid(df, rows="a", cols="b", quality="low", size="square")
    first._repr_mimebundle_()  # a notebook would have drawn it, caching the thumbnails
    assert (first.frame["status"] == "ok").all()
    fake.stats.reset()

    started = time.perf_counter()
    again = ig.grid(df, rows="a", cols="b", quality="low", size="square")
    frame = again.frame
    html = again._repr_mimebundle_()["text/html"]
    elapsed = time.perf_counter() - started

    assert fake.stats.requests == 0
    assert (frame["status"] == "cached").all() and (frame["cost_usd"] == 0).all()
    assert html.count("<img ") == 64
    assert "64 already in the store (free)" in capsys.readouterr().out
    print(f"\n64-cell cached re-run: {elapsed:.3f} s")
    assert elapsed < 1.5


def test_moderation_block_fails_only_its_row(fake):
    fake.faults = Faults(moderation_words=("forbidden",))
    prompts = ["a quiet lake", "a forbidden ritual", "a mountain hut", "a red kite"]
    g = ig.grid(prompts, quality="low", size="square")
    frame = g.frame
    assert list(frame["status"]) == ["ok", "error", "ok", "ok"]
    error = frame.loc[1, "error"]
    assert "ModerationBlocked" in error and "safety system" in error and "violence" in error
    assert frame.loc[1, "image"] is None and pd.isna(frame.loc[1, "cost_usd"])
    html = g._repr_mimebundle_()["text/html"]
    assert "imagenb-err" in html and "ModerationBlocked" in html and html.count("<img ") == 3


def test_polars_gives_the_same_results_frame(fake):
    df = matrix()
    ig.grid(df, rows="animal", cols="style", quality="low", size="square")  # fills the store
    from_pandas = ig.grid(df, rows="animal", cols="style", quality="low", size="square").frame
    from_polars = ig.grid(
        pl.DataFrame(df.to_dict("list")), rows="animal", cols="style", quality="low", size="square"
    ).frame
    assert fake.stats.image_requests == 12
    assert [i.key for i in from_pandas["image"]] == [i.key for i in from_polars["image"]]
    pd.testing.assert_frame_equal(
        from_pandas.drop(columns="image"), from_polars.drop(columns="image")
    )


def test_parameter_columns_override_and_variants_get_rows(fake):
    df = pd.DataFrame(
        {"prompt": ["a fox", "a fox"], "quality": ["low", "medium"], "n": [1, 2]},
        index=pd.Index(["first", "second"], name="take"),
    )
    g = ig.grid(df, cols="quality", size="square", quality="high")
    frame = g.frame
    assert list(frame.index) == ["first", "second", "second"]  # lines up with the input
    assert frame.index.name == "take"
    assert list(frame["variant"]) == [0, 0, 1]
    assert [i.params["quality"] for i in frame["image"]] == ["low", "medium", "medium"]
    assert fake.stats.image_requests == 2 and fake.stats.images_completed == 3
    html = g._repr_mimebundle_()["text/html"]
    assert html.count("<img ") == 3 and ">low<" in html and ">medium<" in html


def test_identical_rows_are_paid_for_once(fake):
    g = ig.grid(["a fox", "a fox", "a cat"], quality="low", size="square")
    assert fake.stats.image_requests == 2
    assert list(g.frame["status"]) == ["ok", "ok", "ok"]


def test_failed_rows_can_be_fed_back(fake):
    fake.faults = Faults(moderation_words=("forbidden",))
    g = ig.grid(["a forbidden idea", "a kite"], quality="low", size="square")
    failed = g.frame[g.frame["status"] == "error"]
    fake.faults = Faults()
    retry = ig.grid(failed, quality="low", size="square")
    assert list(retry.frame["status"]) == ["ok"] and list(retry.frame.index) == [0]


# --- refusals before spending ------------------------------------------------------------------


def test_over_budget_sends_nothing(fake):
    ig.configure(budget_usd=0.05)
    with pytest.raises(BudgetExceeded, match="budget"):
        ig.grid(matrix(), quality="high", size="4k")
    assert fake.stats.requests == 0


@pytest.mark.parametrize(
    ("frame", "params", "match"),
    [
        (["x"] * 10_001, {}, "10,001 rows; the limit is 10,000"),
        (["x"] * 1001, {"n": 10}, "10,010 images"),
        ([{"prompt": "a", "quality": "low"}, {"prompt": "b", "quality": "ultra"}], {}, "row 1"),
        (["a", ""], {}, "row 1: the prompt must be a non-empty string"),
        (["a"], {"colour": "red"}, "unknown keyword"),
        ([{"text": "a"}], {}, "no prompt column 'prompt'"),
        ([], {}, "no rows"),
    ],
)
def test_bad_grids_are_refused_before_sending(fake, frame, params, match):
    with pytest.raises(InvalidRequest, match=match):
        ig.grid(frame, **params)
    assert fake.stats.requests == 0


def test_axes_must_be_columns_and_batch_needs_a_batch_backend():
    with pytest.raises(InvalidRequest, match="rows='colour' is not a column"):
        ig.grid(matrix(), rows="colour")
    with pytest.raises(InvalidRequest, match="OpenAI Batch API"):
        ig.grid(matrix(), mode="batch")  # the preview backend has no batches
    with pytest.raises(InvalidRequest, match="choose one of"):
        ig.grid(matrix(), mode="fast")


# --- what is shown -----------------------------------------------------------------------------


def test_prompts_are_escaped_everywhere(tmp_path):
    df = pd.DataFrame({"who": ["cat", EVIL], "prompt": [f"a cat {EVIL}", f"a dog {EVIL}"]})
    g = grids._prepare(df, "prompt", "who", None, None, {"quality": "low"}, ig.configure())
    assert_inert(grid_html.render(g, live=True))  # placeholders show the prompt
    g = ig.grid(df, rows="who", quality="low", size="square", caption="{prompt}")
    assert_inert(g._repr_mimebundle_()["text/html"])
    page = g.save(tmp_path / "grid.html")[0].read_text(encoding="utf-8")
    assert_inert(page) and page.startswith("<!DOCTYPE html>")
    assert page.count('href="file://') == 2 and "data:image/" in page
    sheet = grid_html.sheet_of(g)
    assert EVIL in sheet.row_labels and f"a dog {EVIL}" in sheet.cells[1][0][0].caption
    png = g.save(tmp_path / "grid.png")[0]
    with Image.open(png) as im:
        assert im.size[0] > 200


def test_worst_case_image_stays_within_the_notebook_budget(tmp_path):
    noise = tmp_path / "noise.png"
    Image.frombytes("RGB", (2560, 1440), os.urandom(2560 * 1440 * 3)).save(noise)
    prompt = '"<&' * 10_000  # every character escapes to 4-6 bytes
    g = grids._prepare([prompt], "prompt", None, None, None, {}, ig.configure())
    image = GeneratedImage(
        key="k" * 64, path=noise, prompt=prompt, model="gpt-image-2", backend="openai",
        params={}, width=2560, height=1440,
    )  # fmt: skip
    item = grids.Item(0, 0, "ok", prompt, prompt, image, None, (2560, 1440))
    markup = grid_html._item(g, item, grid_html.CELL_PX, live=False, standalone=False)
    assert len(markup.encode()) + len("<td></td>") <= 40_000, len(markup.encode())


def test_live_view_shows_placeholders_then_fills_in_throttled(fake, view):
    fake.latency = 0.05
    ig.configure(concurrency=2)
    prompts = [f"a lantern number {i}" for i in range(16)]
    g = ig.grid(prompts, quality="low", size="square")
    assert len(view.shown) == 1
    first = view.shown[0]
    assert first.count("waiting…") == 16 and "a lantern number 15" in first
    times = [t for t, _ in view.updates]
    gaps = [b - a for a, b in itertools.pairwise(times[:-1])]  # the last one is forced
    assert len(view.updates) >= 3 and all(gap >= 0.249 for gap in gaps)
    final = view.updates[-1][1]
    assert "waiting…" not in final and final.count("<img ") == 16
    assert any(0 < text.count("<img ") < 16 for _, text in view.updates[:-1])
    assert "<style" not in final and final.count("imagenb-pic") == 16
    assert (g.frame["status"] == "ok").all()


def test_wait_false_returns_at_once_and_keeps_drawing(fake, view):
    fake.latency = 0.2
    g = ig.grid([f"a boat {i}" for i in range(6)], quality="low", size="square", wait=False)
    assert not g.finished and set(g.frame["status"]) == {"pending"}
    g.wait()
    assert g.finished and (g.frame["status"] == "ok").all()
    assert view.updates[-1][1].count("<img ") == 6 and "waiting…" not in view.updates[-1][1]


def test_streamed_partials_fill_cells_while_the_images_render(fake, view):
    fake.latency = 1.2  # spread over two partials and the final image: 0.4 s apart
    g = ig.grid(["a comet", "a nebula"], quality="low", size="square", stream=True)
    assert fake.stats.streams == 2 and (g.frame["status"] == "ok").all()
    assert any('alt="partial image"' in text for _, text in view.updates[:-1])
    assert 'alt="partial image"' not in view.updates[-1][1]


def test_streamed_partial_is_drawn_only_while_live():
    g = grids._prepare(["a comet"], "prompt", None, None, None, {}, ig.configure())
    buf = io.BytesIO()
    Image.new("RGB", (512, 512), "teal").save(buf, "PNG")
    g._missing = [[0]]
    g._on_partial(0, Partial(0, 0, buf.getvalue()))
    assert 'alt="partial image"' in grid_html.render(g, live=True)
    assert 'alt="partial image"' not in grid_html.render(g, live=False)


def test_preview_grid_is_marked_and_saves_every_format(tmp_path):
    g = ig.grid(matrix(), rows="animal", cols="style", quality="low", size="16:9")
    assert (g.frame["status"] == "ok").all()
    assert "PREVIEW" in g._repr_mimebundle_()["text/html"]
    assert "preview backend" in grid_html.sheet_of(g).title
    for name in ("g.png", "g.jpg", "g.pdf", "g.html"):
        (written,) = g.save(tmp_path / name)
        assert written.stat().st_size > 1000
    assert (tmp_path / "g.pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(InvalidRequest, match=r"use \.png"):
        g.save(tmp_path / "g.gif")
    assert "Grid(12 rows in 3x4 cells: 12 ok" in repr(g)


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_grid_writes_a_sheet(fake, tmp_path, capsys):
    csv = tmp_path / "prompts.csv"
    matrix().to_csv(csv, index=False)
    out = tmp_path / "sheet.png"
    code = cli.main(["grid", str(csv), "--rows", "animal", "--cols", "style", "-q", "low",
                     "-s", "square", "-o", str(out)])  # fmt: skip
    assert code == 0 and out.is_file() and fake.stats.image_requests == 12
    assert str(out) in capsys.readouterr().out
    code = cli.main(["grid", str(csv), "--rows", "animal", "--cols", "style", "-q", "low",
                     "-s", "square", "--batch", "-o", str(out), "--overwrite"])  # fmt: skip
    assert code == 0 and fake.stats.batches_created == 0  # every cell is in the store
    assert cli.main(["grid", str(csv), "-o", str(tmp_path / "sheet.gif")]) == 2
    assert "use a .png" in capsys.readouterr().err and fake.stats.image_requests == 12
    assert cli.main(["grid", str(csv), "--estimate", "-q", "low", "-o", str(out)]) == 0
    assert "12 image(s)" in capsys.readouterr().out and fake.stats.image_requests == 12


def test_summary_line_reads_in_words_and_the_page_is_titled(fake, tmp_path):
    g = ig.grid(["a red fox", "a blue fox"], quality="low", size="square")
    html = g._html(live=False)
    assert ">2 images · 2 new ($" in html and "already in the store" not in html.split("title=")[0]
    again = ig.grid(["a red fox", "a blue fox"], quality="low", size="square")
    assert ">2 images · all 2 from the store (free)<" in again._html(live=False)
    page = (again.save(tmp_path / "grid.html"))[0].read_text()
    assert "<h1" in page and "gpt-image-2" in page and "<style" not in page
    assert 'width="384"' in page  # larger images than in a notebook (192 px)


def test_caption_template_annotates_each_cell_with_its_cost_and_latency(fake):
    frame = ig.prompt_matrix("a {subject}", subject=["kite", "boat"])
    g = ig.grid(frame, cols="subject", quality="low", size="square", caption="{cost} · {latency}")
    html = g._html(live=False)
    costs = [f"${i.image.cost_usd:.4f}" for row in range(2) for i in g.items(row)]
    assert all(f"{c} · " in html for c in costs) and " s</div>" in html
    again = ig.grid(frame, cols="subject", quality="low", size="square", caption="{cost}")
    assert again._html(live=False).count(">cached (free)</div>") == 2
    assert "{cost}" not in again._html(live=False)
