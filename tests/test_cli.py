"""Issue 17 §3: a CLI that checks before it pays. Every user error: a non-zero exit, one line on
stderr, no traceback, and (where the mistake shows before sending) no request to the server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import imagenb
from imagenb.cli import main as cli
from imagenb.testing import FakeImagesServer

UNWRITABLE = "/proc/imagenb-cannot-write-here"  # even root cannot create files in /proc


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code != 0, (argv, out, err)
    assert len(lines) == 1 and lines[0].startswith("imagenb: "), (argv, err)
    assert "Traceback" not in out + err
    return lines[0]


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.csv"
    path.write_text("prompt,quality\na red fox,low\na blue whale,low\n")
    return path


def test_mistakes_found_before_sending_send_nothing(fake, capsys, tmp_path, csv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("a.png").write_bytes(b"mine")
    binary = tmp_path / "photo.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("prompt\ncaf\xe9 au lait\n".encode("latin-1"))
    Path("folder.png").mkdir()
    cases = {
        ("generate", "a dog", "-o", "a.png"): "--overwrite",
        ("generate", "a dog", "-o", "out/{x}.png"): "{x}",
        ("generate", "a dog", "-o", "out/{i:.1}.png", "-n", "2"): "{i}",
        ("generate", "a dog", "-o", "out/{i.png"): "braces",
        ("generate", "a dog", "-o", f"{UNWRITABLE}/a.png"): "cannot write",
        ("generate", "a dog", "-o", "fox.gif"): ".png, .jpg",
        ("generate", "a dog", "-o", "fox"): "suffix",
        ("generate", "a dog", "-o", "fox.png", "-f", "jpeg"): "agree",
        ("generate", "a dog", "-o", "folder.png"): "folder",
        ("generate", "a dog"): "-o FILE",
        ("generate", "a dog", "-q", "best", "-o", "b.png"): "quality",
        ("generate", "a dog", "-n", "100000000", "-o", "many-{i}.png"): "n=100000000",
        ("grid", str(csv), "-o", f"{UNWRITABLE}/s.png"): "cannot write",
        ("grid", str(csv), "-o", "sheet.gif"): ".html",
        ("grid", str(csv)): "-o FILE",
        ("grid", "missing.csv", "-o", "s.png"): "no such file 'missing.csv'",
        ("grid", str(binary), "-o", "s.png"): "binary",
        ("grid", str(latin), "-o", "s.png"): "UTF-8",
        ("grid", str(tmp_path), "-o", "s.png"): "not a file",
        ("grid", str(csv), "--prompt-col", "nope", "-o", "s.png"): "no prompt column",
        ("grid", str(csv), "--template", "a {animal}", "-o", "s.png"): "rename",
        ("grid", str(csv), "--prompt", "prompt", "-o", "s.png"): "--prompt",  # no abbreviation
        ("generate", "a dog", "--overwr", "-o", "a.png"): "--overwr",
        ("frobnicate",): "frobnicate",
    }
    for argv, expected in cases.items():
        line = one_line_error(capsys, *argv)
        assert expected in line, (argv, line)
    assert fake.stats.requests == 0
    assert Path("a.png").read_bytes() == b"mine"


def test_store_mistakes_are_one_line(capsys, tmp_path):
    (tmp_path / "notzip.zip").write_text("hello")
    for argv in (
        ("store", "export", f"{UNWRITABLE}/store.zip"),
        ("store", "import", str(tmp_path / "missing.zip")),
        ("store", "import", str(tmp_path / "notzip.zip")),
    ):
        one_line_error(capsys, *argv)


def test_the_suffix_decides_the_format(fake, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "generate", "a fox", "-q", "low", "-o", "fox.jpg")
    assert code == 0 and "fox.jpg" in out
    assert Path("fox.jpg").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes
    assert fake.log[-1]["params"]["output_format"] == "jpeg"
    code, _, _ = run(capsys, "generate", "a fox", "-q", "low", "-o", "fox.png")
    assert code == 0 and Path("fox.png").read_bytes()[:4] == b"\x89PNG"
    assert "output_format" not in fake.log[-1]["params"]  # png is the service's default


def test_several_images_get_distinct_names_and_overwrite_replaces(
    fake, capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    code, _, _ = run(capsys, "generate", "a fox", "-q", "low", "-n", "3", "-o", "out/f.webp")
    assert code == 0
    assert sorted(p.name for p in Path("out").iterdir()) == ["f-0.webp", "f-1.webp", "f-2.webp"]
    line = one_line_error(capsys, "generate", "a fox", "-q", "low", "-n", "3", "-o", "out/f.webp")
    assert "--overwrite" in line and fake.stats.requests == 1
    code, _, _ = run(
        capsys, "generate", "a fox", "-q", "low", "-n", "3", "-o", "out/f.webp", "--overwrite"
    )
    assert code == 0 and fake.stats.requests == 1  # the store answered: nothing paid twice


def test_estimate_needs_no_output(fake, capsys, csv):
    code, out, _ = run(capsys, "generate", "a fox", "-q", "low", "--estimate")
    assert code == 0 and "$" in out
    code, out, _ = run(capsys, "grid", str(csv), "--estimate")
    assert code == 0 and "2 image(s)" in out
    assert fake.stats.requests == 0


def test_template_grid_from_a_csv_of_axis_values(fake, capsys, tmp_path):
    axes = tmp_path / "axes.csv"
    axes.write_text("animal,style\ncat,ink\ndog,watercolour\nfox,\n")
    sheet = tmp_path / "sheet.html"
    code, _, err = run(
        capsys,
        "grid",
        str(axes),
        "--template",
        "a {animal}, {style}",
        "-q",
        "low",
        "-o",
        str(sheet),
    )
    assert code == 0, err
    prompts = sorted(e["prompt"] for e in fake.log)
    assert len(prompts) == 6 and "a fox, watercolour" in prompts and "a cat, ink" in prompts
    assert sheet.exists()
    line = one_line_error(capsys, "grid", str(axes), "--template", "{animal}", "-o", str(sheet))
    assert "--overwrite" in line and len(fake.log) == 6


def test_bare_command_prints_help_with_examples_and_version(capsys):
    code, out, _ = run(capsys)
    assert code == 0 and "examples:" in out and "imagenb generate" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"imagenb {imagenb.__version__}"


def test_a_real_process_shows_one_line_and_no_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "IMAGENB_"))}
    env["IMAGENB_STORE"] = str(tmp_path / "store")
    with FakeImagesServer() as server:
        env.update(OPENAI_API_KEY="sk-test-cli-000000000000", OPENAI_BASE_URL=server.base_url)
        for argv in (["grid", "missing.csv", "-o", "s.png"], ["generate", "x", "-o", "x.bmp"]):
            done = subprocess.run(
                [sys.executable, "-m", "imagenb.cli.main", *argv],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode != 0 and len(done.stderr.strip().splitlines()) == 1
            assert "Traceback" not in done.stderr + done.stdout
        assert server.stats.requests == 0


def test_a_write_that_fails_after_paying_says_the_images_are_kept(
    fake, capsys, tmp_path, monkeypatch
):
    from imagenb.store import images as results

    monkeypatch.chdir(tmp_path)

    def disk_full(self: object, path: object, *, overwrite: bool = False) -> object:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(results.GeneratedImage, "save", disk_full)
        line = one_line_error(capsys, "generate", "a fox", "-q", "low", "-o", "fox.png")
    assert "No space left on device" in line and "in the store" in line
    assert fake.stats.requests == 1
    code, _, _ = run(capsys, "generate", "a fox", "-q", "low", "-o", "fox.png")
    assert code == 0 and Path("fox.png").is_file()
    assert fake.stats.requests == 1  # the store answered the re-run
