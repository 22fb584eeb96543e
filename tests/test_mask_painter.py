"""The mask painter through its Python side: the operations the view sends (binary float32
points, as the browser does), undo, the mask in the API's convention, what the widget state
and the static picture hold (display-size images only), and the painter accepted as a mask by
`ig.edit` and `%%imageedit --mask VAR`. The browser test drives the same painter by mouse."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from PIL import Image

import imagenb as ig
from imagenb.errors import InvalidRequest
from imagenb.masks import MaskPainter
from imagenb.masks.canvas import UNDO_STEPS, MaskCanvas
from imagenb.render.html import MAX_OUTPUT_BYTES

DATA_URI = re.compile(r"data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)")


def _photo(width: int = 1536, height: int = 1024) -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def _view_stroke(painter: MaskPainter, points: list[tuple[float, float]], **content: Any) -> None:
    """What the view sends when a stroke ends: JSON content and one float32 buffer."""
    buffer = np.asarray(points, dtype=np.float32).tobytes()
    painter._on_view_message(painter, {"op": "stroke", **content}, [memoryview(buffer)])


def _alpha(painter: MaskPainter) -> np.ndarray:
    return np.asarray(painter.mask.getchannel("A"))


def test_a_view_stroke_paints_the_full_resolution_mask() -> None:
    painter = ig.mask(_photo(), brush=40)
    assert isinstance(painter, MaskPainter) and (painter.width, painter.height) == (1536, 1024)
    assert painter.mask.mode == "RGBA" and painter.mask.size == (1536, 1024)
    assert _alpha(painter).min() == 255  # nothing painted: all opaque
    _view_stroke(painter, [(100, 500), (1400, 500)], seq=1, size=40)
    alpha = _alpha(painter)
    assert alpha[500, 100:1401].max() == 0 and alpha[481:520, 700].max() == 0  # 40 px wide
    assert alpha[440, 700] == 255 and alpha[100, 100] == 255 and alpha[900, 1500] == 255
    assert painter._acked == 1 and painter.can_undo
    assert painter.painted == pytest.approx((1300 * 40 + np.pi * 400) / (1536 * 1024), rel=0.05)


def test_eraser_rectangle_invert_clear_and_undo() -> None:
    painter = ig.mask(_photo(), brush=40)
    painter._on_view_message(
        painter,
        {"op": "rectangle", "seq": 1},
        [np.asarray([[200, 100], [600, 400]], np.float32).tobytes()],
    )
    assert _alpha(painter)[100:401, 200:601].max() == 0 and _alpha(painter)[500, 700] == 255
    _view_stroke(painter, [(400, 250)], seq=2, size=60, erase=True)  # a dot of eraser
    assert _alpha(painter)[250, 400] == 255 and _alpha(painter)[250, 300] == 0
    before_invert = _alpha(painter).copy()
    painter._on_view_message(painter, {"op": "invert", "seq": 3}, [])
    assert np.array_equal(_alpha(painter), 255 - before_invert)
    painter._on_view_message(painter, {"op": "undo", "seq": 4}, [])
    assert np.array_equal(_alpha(painter), before_invert)
    painter._on_view_message(painter, {"op": "clear", "seq": 5}, [])
    assert _alpha(painter).min() == 255 and painter.painted == 0.0
    assert painter.undo() and np.array_equal(_alpha(painter), before_invert)
    assert painter._acked == 5


def test_undo_history_is_bounded_and_ends() -> None:
    canvas = MaskCanvas(64, 64)
    for i in range(UNDO_STEPS + 5):
        canvas.rectangle((i, 0, i, 63), erase=False)
    steps = 0
    while canvas.undo():
        steps += 1
    assert steps == UNDO_STEPS and not canvas.can_undo


def test_bad_brush_and_tool_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="brush"):
        ig.mask(_photo(256, 256), brush=0)
    painter = ig.mask(_photo(256, 256))
    with pytest.raises(Exception, match="tool must be one of"):
        painter.tool = "spray"
    with pytest.raises(InvalidRequest, match="not a readable"):
        ig.mask(b"not an image")


def test_widget_state_holds_display_size_images_only() -> None:
    painter = ig.mask(_photo(3840, 2160), display_px=512)
    painter.stroke([(100, 100), (3000, 2000)], size=200)
    state = painter.get_state()
    with Image.open(io.BytesIO(state["_picture"])) as picture:
        assert max(picture.size) == 512
    with Image.open(io.BytesIO(state["_overlay"])) as overlay:
        assert overlay.size == (512, 288) and overlay.mode == "RGBA"
    blobs = [v for v in state.values() if isinstance(v, (bytes, memoryview))]
    assert blobs and max(len(b) for b in blobs) <= MAX_OUTPUT_BYTES


def test_static_picture_shows_the_mask_within_the_budget() -> None:
    painter = ig.mask(_photo(2048, 2048))
    painter.rectangle((0, 0, 1023, 2047))  # the left half
    bundle = painter._static()
    html = bundle["text/html"]
    assert "imagenb-mask-static" in html and "50.0% painted" in bundle["text/plain"]
    ((_, data),) = DATA_URI.findall(html)
    raw = base64.b64decode(data)
    assert len(html) <= MAX_OUTPUT_BYTES
    with Image.open(io.BytesIO(raw)) as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
        assert max(im.size) <= 512
    left, right = rgb[:, : rgb.shape[1] // 2 - 8], rgb[:, rgb.shape[1] // 2 + 8 :]
    assert left[..., 0].mean() - left[..., 1].mean() > 60  # tinted where painted
    assert abs(right[..., 0].mean() - right[..., 1].mean()) < 20  # the noise as it was


def test_displayed_painter_keeps_its_static_picture_up_to_date() -> None:
    shell = InteractiveShell.instance()
    shell.user_ns["painter"] = painter = ig.mask(_photo(512, 512))
    with capture_output() as cap:
        shell.run_cell("painter", store_history=False)
        painter.rectangle((0, 0, 255, 511))
    first, static, update = (o.data for o in cap.outputs)
    assert "application/vnd.jupyter.widget-view+json" in first
    assert first["text/plain"].startswith("mask painter over a 512x512 image · 0.0% painted")
    assert "0.0% painted" in static["text/plain"] and "50.0% painted" in update["text/plain"]
    del shell.user_ns["painter"]


def test_save_writes_the_api_mask(tmp_path: Path) -> None:
    painter = ig.mask(_photo(256, 256))
    painter.stroke([(128, 128)], size=50)
    saved = painter.save(tmp_path / "out" / "mask.png")
    with Image.open(saved) as im:
        assert im.format == "PNG" and im.mode == "RGBA" and im.size == (256, 256)
        assert im.getpixel((128, 128)) == (0, 0, 0, 0) and im.getpixel((0, 0)) == (0, 0, 0, 255)


def _mask_sha(painter: MaskPainter) -> str:
    buf = io.BytesIO()
    painter.mask.save(buf, "PNG")
    return hashlib.sha256(buf.getvalue()).hexdigest()


def test_ig_edit_takes_the_painter_as_its_mask(fake: Any) -> None:
    photo = _photo(1024, 1024)
    painter = ig.mask(photo)
    painter.rectangle((300, 300, 700, 700))
    kept = ig.edit("a round window", painter.image, mask=painter, quality="low")[0]
    assert fake.log[-1]["mask_sha256"] == _mask_sha(painter)
    assert kept.changed_outside is not None and kept.raw is not None


def test_imageedit_magic_takes_the_painter_and_keeps_the_outside(fake: Any) -> None:
    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("imagenb")
    photo = _photo(1024, 1024)
    painter = ig.mask(photo)
    painter.stroke([(200, 200), (800, 800)], size=120)
    shell.user_ns.update(photo=photo, painter=painter)
    try:
        with capture_output() as cap:
            result = shell.run_cell(
                "%%imageedit -i photo --mask painter -q low -o edited\na paper boat", False
            )
        assert result.success and "imagenb:" not in cap.stderr, cap.stderr
        assert fake.log[-1]["mask_sha256"] == _mask_sha(painter)
        (kept,) = shell.user_ns["edited"]
        assert kept.raw is not None and kept.changed_outside is not None
        assert fake.log[-1]["params"]["size"] == "1024x1024"
        far = np.asarray(kept.image.convert("RGB"))[950:, :100]
        assert np.array_equal(far, np.asarray(photo)[950:, :100])
    finally:
        for name in ("photo", "painter", "edited"):
            shell.user_ns.pop(name, None)


@pytest.mark.kernel
@pytest.mark.slow
def test_a_saved_notebook_keeps_only_small_images_and_the_static_picture(tmp_path: Path) -> None:
    """Executed by nbclient, which saves the widget state in the notebook as Lab can: the
    painter's state holds display-size images only, and the static picture is an output."""
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    code = (
        "import numpy as np, imagenb as ig\nfrom PIL import Image\n"
        "rng = np.random.default_rng(1)\n"
        "photo = Image.fromarray(rng.integers(0, 256, (2048, 2048, 3), dtype=np.uint8))\n"
        "painter = ig.mask(photo)\npainter.rectangle((0, 0, 1023, 2047))\npainter"
    )
    nb = new_notebook(cells=[new_code_cell(code)])
    client = NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True)
    client.execute(cwd=str(tmp_path))
    nbformat.write(nb, tmp_path / "painted.ipynb")
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    (painter,) = [m for m in state.values() if m["model_name"] == "AnyModel"]
    buffers = {tuple(b["path"]): base64.b64decode(b["data"]) for b in painter["buffers"]}
    assert set(buffers) == {("_picture",), ("_overlay",)}
    for data in buffers.values():
        assert len(data) <= MAX_OUTPUT_BYTES
        with Image.open(io.BytesIO(data)) as im:
            assert max(im.size) <= 512
    outputs = nb.cells[0].outputs
    static = [o for o in outputs if "imagenb-mask-static" in o["data"].get("text/html", "")]
    assert len(static) == 1 and "50.0% painted" in static[0]["data"]["text/plain"]
    (uri,) = DATA_URI.findall(static[0]["data"]["text/html"])
    assert len(base64.b64decode(uri[1])) <= MAX_OUTPUT_BYTES
