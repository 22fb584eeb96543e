"""Contact sheets stay within Pillow's limits however big the grid, keep their labels (CJK
included) on every tile, and draw errors and missing images in place."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PIL import Image

from imagenb.backends.preview import render as preview_render
from imagenb.core import request
from imagenb.render import sheet
from imagenb.render.sheet import Sheet, Tile
from imagenb.text import fonts


def previews(folder: Path, count: int, size: str = "3840x2160") -> list[Path]:
    """`count` distinct preview PNGs of `size` (real files of the real size)."""
    paths = []
    for i in range(count):
        req = request.build(f"a harbour at dusk, take {i}", size=size, quality="low")
        data, _ = preview_render(req, 0, 0)
        path = folder / f"{size}-{i}.png"
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Sources for tests about layout, where decoding 4K files would only cost time."""
    return previews(tmp_path_factory.mktemp("small"), 2, "1088x608")


def grid_sheet(paths: list[Path], rows: int, cols: int, *, size=(3840, 2160)) -> Sheet:
    cells = [
        [[Tile(paths[(r * cols + c) % len(paths)], *size)] for c in range(cols)]
        for r in range(rows)
    ]
    return Sheet(
        "test sheet",
        [f"row {r} — a long prompt label that has to wrap onto more lines" for r in range(rows)],
        [f"列 {c} 赤い狐" for c in range(cols)],
        "rows: r · cols: c",
        cells,
    )


def test_100_cells_of_4k_images_save_within_limits(tmp_path):
    sources = previews(tmp_path, 5)
    with Image.open(sources[0]) as im:
        assert im.size == (3840, 2160)
    started = time.perf_counter()
    (out,) = sheet.save(grid_sheet(sources, 10, 10), tmp_path / "sheet.png")
    elapsed = time.perf_counter() - started
    with Image.open(out) as im:  # warnings are errors: a decompression-bomb warning fails
        im.load()
        w, h = im.size
    print(f"\n100 x 4K contact sheet: {elapsed:.2f} s, {w}x{h} ({w * h / 1e6:.1f} MP)")
    assert w * h <= Image.MAX_IMAGE_PIXELS and max(w, h) <= 65_535
    assert w > 10 * 300  # cells were not shrunk to nothing
    assert elapsed < 60


def test_a_sheet_too_big_shrinks_its_cells_first(small):
    big = grid_sheet(small, 6, 6, size=(1088, 608))
    (im,) = sheet.render(big, cell_px=512, max_pixels=4_000_000)
    assert im.width * im.height <= 4_000_000 and im.width < 6 * 512


def test_a_sheet_too_big_even_shrunk_is_tiled_with_labels_on_every_tile(tmp_path, small):
    big = grid_sheet(small, 12, 12, size=(1088, 608))
    written = sheet.save(big, tmp_path / "tiled.png", max_pixels=1_500_000, max_side=3000)
    assert len(written) > 1 and written[1].name == "tiled-2.png"
    for path in written:
        with Image.open(path) as im:
            assert im.width * im.height <= 1_500_000 and max(im.size) <= 3000
            rgb = im.convert("RGB")
            label_band = rgb.crop((0, rgb.height // 2, 60, rgb.height // 2 + 40))
            assert label_band.getextrema() != ((250, 250), (250, 250), (250, 250)), path


def test_too_many_columns_for_one_side_are_split(tmp_path):
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (64, 64), "navy").save(tiny)
    wide = grid_sheet([tiny], 1, 600, size=(64, 64))
    tiles = sheet.render(wide, cell_px=128)
    assert len(tiles) >= 2 and all(t.width <= 65_535 for t in tiles)
    assert sum(1 for _ in tiles) == len(tiles)


def test_errors_pending_and_missing_files_are_drawn_in_place(tmp_path):
    ok = tmp_path / "ok.png"
    Image.new("RGB", (1024, 1024), (0, 128, 0)).save(ok)
    cells = [
        [
            [Tile(ok, 1024, 1024)],
            [Tile(None, 1024, 1024, text="ModerationBlocked: blocked", error=True)],
            [Tile(None, 1024, 1024, text="not made: a red kite")],
            [Tile(tmp_path / "gone.png", 1024, 1024)],
        ]
    ]
    (im,) = sheet.render(Sheet("t", ["only row"], ["ok", "error", "pending", "gone"], "", cells))
    geo = sheet._geometry(
        Sheet("t", ["only row"], ["ok", "error", "pending", "gone"], "", cells), 384
    )
    y = geo.title_h + geo.header_h + 10
    x0 = geo.pad + geo.label_w
    colours = [im.getpixel((x0 + j * (geo.cell + geo.gap) + geo.cell - 10, y)) for j in range(4)]
    assert colours[0] == (0, 128, 0)
    assert colours[1] == sheet._ERROR_FILL
    assert colours[2] == colours[3] == sheet._PENDING_FILL


def test_variants_share_a_cell_and_captions_fit(tmp_path):
    paths = []
    for i, colour in enumerate(["red", "blue", "orange"]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (512, 768), colour).save(paths[-1])
    cells = [[[Tile(p, 512, 768, caption=f"variant {i}") for i, p in enumerate(paths)]]]
    (im,) = sheet.render(Sheet("t", [], [], "", cells), cell_px=300)
    assert im.height > im.width  # two lines of portrait tiles


@pytest.mark.skipif("cjk" not in fonts.available(), reason="no CJK font installed")
def test_cjk_labels_are_drawn_with_real_glyphs(tmp_path):
    cells = [[[Tile(None, 1, 1, text="")]]]
    kanji = sheet.render(Sheet("", ["赤い狐と青い鳥"], [], "", cells), cell_px=256)[0]
    tofu = sheet.render(Sheet("", ["\U0010fffd" * 7], [], "", cells), cell_px=256)[0]
    assert kanji.tobytes() != tofu.tobytes()


def test_jpeg_and_pdf(tmp_path, small):
    (jpg,) = sheet.save(grid_sheet(small, 2, 2, size=(1088, 608)), tmp_path / "s.jpg")
    with Image.open(jpg) as im:
        assert im.format == "JPEG"
    long = grid_sheet(small, 40, 4, size=(1088, 608))
    (pdf,) = sheet.save(long, tmp_path / "s.pdf", cell_px=384)
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page\n") >= 3  # pages, not a scroll
    pages = sheet.render(long, cell_px=384, shrink=False, page_ratio=sheet.PDF_PAGE_RATIO)
    assert all(p.height <= 1.5 * p.width for p in pages)
