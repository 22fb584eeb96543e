"""The magics in a real in-process IPython shell: parsing, every option, the output bundle and
the one-line errors, against the preview backend (no key) and the loopback FakeImagesServer."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from PIL import Image
from traitlets.config import Config

from imagenb.core import config, options
from imagenb.magics import args as magic_args
from imagenb.magics.cells import ImagenbMagics, register
from imagenb.render.html import MAX_OUTPUT_BYTES
from imagenb.testing import FakeImagesServer, Faults

KEY = "sk-test-magics-4f1d2e3c4b5a69788796a5b4c3d2e1f0"
DATA_URI = re.compile(r"data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)")


@dataclass
class Cell:
    """What running one cell showed: streams, display bundles (with updates) and the result."""

    stdout: str
    stderr: str
    outputs: list[Any]
    success: bool

    @property
    def bundles(self) -> list[dict[str, Any]]:
        return [o.data for o in self.outputs]

    def text(self) -> str:
        """Everything the cell showed, as one string (for leak checks)."""
        parts = [self.stdout, self.stderr]
        parts += [str(v) for bundle in self.bundles for v in bundle.values()]
        return "\n".join(parts)


class Shell:
    def __init__(self, shell: InteractiveShell) -> None:
        self.shell = shell

    def run(self, code: str) -> Cell:
        with capture_output() as cap:
            result = self.shell.run_cell(code, store_history=False)
        return Cell(cap.stdout, cap.stderr, cap.outputs, result.success)

    @property
    def ns(self) -> dict[str, Any]:
        return self.shell.user_ns  # type: ignore[no-any-return]

    @property
    def magics(self) -> ImagenbMagics:
        found: ImagenbMagics = self.shell.magics_manager.registry["ImagenbMagics"]
        return found


@pytest.fixture
def ip() -> Iterator[Shell]:
    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("imagenb")
    wrapped = Shell(shell)
    before = set(shell.user_ns)
    yield wrapped
    for name in set(shell.user_ns) - before:
        del shell.user_ns[name]
    shell.config.pop("ImagenbMagics", None)
    magics = wrapped.magics
    for name, trait in magics.traits(config=True).items():
        setattr(magics, name, trait.default_value)


def one_error_line(cell: Cell) -> str:
    """The cell printed exactly one `imagenb: ...` line on stderr and no traceback."""
    lines = [line for line in cell.stderr.splitlines() if line.strip()]
    assert cell.success, cell.stderr
    assert len(lines) == 1, cell.stderr
    assert lines[0].startswith("imagenb: ")
    assert "Traceback" not in cell.text()
    return lines[0]


def images_sent(server: FakeImagesServer) -> int:
    return server.stats.image_requests


def png_bytes(size: tuple[int, int] = (64, 64), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    colour = (200, 30, 30, 0) if mode == "RGBA" else (200, 30, 30)
    Image.new(mode, size, colour).save(buf, "PNG")
    return buf.getvalue()


# --- loading ----------------------------------------------------------------------------------


def test_load_ext_registers_magics_imports_nothing_heavy_and_installs_nothing_global() -> None:
    probe = """
import sys
from IPython.core.interactiveshell import InteractiveShell
ip = InteractiveShell.instance()
hooks = (sys.excepthook, ip.custom_exceptions, {k: len(v) for k, v in ip.events.callbacks.items()})
before = set(sys.modules)
ip.run_line_magic("load_ext", "imagenb")
after = (sys.excepthook, ip.custom_exceptions, {k: len(v) for k, v in ip.events.callbacks.items()})
assert hooks == after, (hooks, after)
assert {"imagegen", "imageedit", "imagenb"} <= set(ip.magics_manager.magics["line"])
assert {"imagegen", "imageedit"} <= set(ip.magics_manager.magics["cell"])
print(" ".join(sorted({m.split(".")[0] for m in set(sys.modules) - before})))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    loaded = set(out.stdout.split())
    assert loaded.isdisjoint({"openai", "pandas", "PIL", "ipywidgets", "numpy", "sqlite3"}), loaded


def test_help_lists_every_option_with_its_current_default(ip: Shell) -> None:
    gen_doc = ip.shell.find_line_magic("imagegen").__doc__
    edit_doc = ip.shell.find_cell_magic("imageedit").__doc__
    shared = [*options.REQUEST_OPTIONS, *options.MAGIC_OPTIONS]
    for flags, _ in shared:
        for flag in flags:
            assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", gen_doc), flag
            assert re.search(rf"(^|[\s,]){re.escape(flag)}\b", edit_doc), flag
    for flags, _ in options.EDIT_OPTIONS:
        assert flags[-1] in edit_doc and flags[-1] not in gen_doc
    # every option line carries its default (help may wrap, so count them)
    assert " ".join(gen_doc.split()).count("(default: ") == len(shared)
    assert "(default: auto)" in " ".join(gen_doc.split())

    shown = ip.run("%config ImagenbMagics.default_size = '16:9'\n%imagegen?")
    assert "16:9 (default: 16:9)" in " ".join(shown.stdout.split())


def test_traitlet_defaults_apply_and_come_from_the_ipython_config(ip: Shell) -> None:
    ip.run("%config ImagenbMagics.default_quality = 'low'\n%config ImagenbMagics.default_n = 2")
    ip.run("%imagegen -o r a lighthouse")
    assert [(i.params["quality"], i.params["n"]) for i in ip.ns["r"]] == [("low", 2)] * 2
    ip.run("%imagegen -q medium -n 1 -o r a lighthouse")  # the line wins
    assert ip.ns["r"][0].params["quality"] == "medium"

    # ipython_config.py: `c.ImagenbMagics.default_size = "1536x864"`, read when registered
    ip.shell.config.merge(Config({"ImagenbMagics": {"default_size": "1536x864"}}))
    register(ip.shell)
    ip.run("%imagegen -q low -o r a lighthouse")
    assert (ip.ns["r"][0].width, ip.ns["r"][0].height) == (1536, 864)


# --- parsing ----------------------------------------------------------------------------------


def test_quoted_prompt_with_escaped_quotes_is_one_prompt(ip: Shell) -> None:
    cell = ip.run(r'%imagegen -s 1536x864 -q low "a cat, \"quoted\" and spaced" -o r')
    assert cell.success and not cell.stderr, cell.stderr
    image = ip.ns["r"][0]
    assert image.prompt == 'a cat, "quoted" and spaced'
    assert (image.width, image.height) == (1536, 864)


def test_unquoted_line_prompts_keep_every_word_even_with_an_apostrophe(ip: Shell) -> None:
    ip.run("%imagegen -q low -o r a red fox in the snow")
    assert ip.ns["r"][0].prompt == "a red fox in the snow"
    ip.run("%imagegen -q low -o r the cat's hat")
    assert ip.ns["r"][0].prompt == "the cat's hat"


def test_cell_body_is_the_prompt_and_a_line_prompt_as_well_is_refused(ip: Shell) -> None:
    ip.run("%%imagegen -q low -o r\nan owl\non a branch\n")
    assert ip.ns["r"][0].prompt == "an owl\non a branch"
    cell = ip.run("%%imagegen -q low stray words\nan owl\n")
    assert "UsageError" in cell.stderr and "stray words" in cell.stderr
    assert "Traceback" not in cell.stderr


def test_bad_option_syntax_is_an_ipython_usage_error(ip: Shell) -> None:
    for line in ("%imagegen -n many a fox", "%imagegen --nonsense a fox", "%imagegen -o 1x a fox"):
        cell = ip.run(line)
        assert not cell.success
        assert "UsageError" in cell.stderr and "Traceback" not in cell.stderr, line


def test_parse_gives_a_frozen_typed_object() -> None:
    parser = ImagenbMagics.imageedit.parser
    args = magic_args.parse(
        parser,
        "-i a.png -i 'b c.png' --mask m.png -s 16:9 -n 2 --compression 40 -f webp "
        "--input-fidelity high --fresh --stream --backend preview -o out --save x/",
        "make it night",
        {"quality": "low", "size": "auto"},
    )
    assert args.images == ("a.png", "b c.png") and args.mask == "m.png"
    assert args.params() == {
        "size": "16:9",
        "quality": "low",
        "n": 2,
        "output_format": "webp",
        "output_compression": 40,
        "input_fidelity": "high",
    }
    assert (args.fresh, args.stream, args.estimate) == (True, True, False)
    assert (args.out, args.save, args.backend, args.prompt) == (
        "out",
        "x/",
        "preview",
        "make it night",
    )
    with pytest.raises(AttributeError):
        args.size = "auto"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("template", "expected", "unfilled"),
    [
        ("a {animal} at {hour:02d}:00", "a fox at 07:00", ()),
        ("a {animal!r}, {pets[0]}, {who.name}, {who.age}", "a 'fox', cat, Ada, {who.age}", None),
        ("{missing} and {missing:>5} and {animal}", "{missing} and {missing:>5} and fox", None),
        ("literal {{braces}} and {animal}", "literal {braces} and fox", ()),
        ("{animal:{width}}|", "fox  |", ()),
        ("{hour:q}", "{hour:q}", ("{hour:q}",)),
        ("a smiley :-}", "a smiley :-}", (magic_args.UNPAIRED,)),
        ("{}", "{}", ("{}",)),
    ],
)
def test_interpolation(template: str, expected: str, unfilled: tuple[str, ...] | None) -> None:
    ns = {
        "animal": "fox",
        "hour": 7,
        "pets": ["cat"],
        "width": 5,
        "who": SimpleNamespace(name="Ada"),
    }
    text, left = magic_args.interpolate(template, ns)
    assert text == expected
    assert left == (
        unfilled if unfilled is not None else tuple(re.findall(r"\{[^{}]*\}", expected))
    )


def test_prompt_fields_are_filled_and_an_unknown_one_is_an_error_that_sends_nothing(
    ip: Shell, fake: FakeImagesServer
) -> None:
    ip.ns.update(animal="fox", count=3)
    assert ip.run("%%imagegen -q low -o r\na {animal} with {count:02d} tails {{ok}}").success
    assert ip.ns["r"][0].prompt == "a fox with 03 tails {ok}"
    sent = images_sent(fake)
    for name in ("mood", "x", "place", "nobody"):  # the shell is shared by other tests
        ip.ns.pop(name, None)
    error = one_error_line(ip.run("%%imagegen -q low -o r2\na {animal}, {mood} and {x:>4}"))
    assert "{mood}" in error and "{x:>4}" in error and "{{name}}" in error
    # IPython's own {var} expansion is off for these magics: the line is ours to read
    error = one_error_line(ip.run("%imagegen -q low -o r2 a {animal} in {place}"))
    assert "{place}" in error
    error = one_error_line(ip.run("%%storyboard -q low\n{nobody} walks in"))
    assert "{nobody}" in error
    assert images_sent(fake) == sent and "r2" not in ip.ns


# --- every option against the fake server -------------------------------------------------------


def test_every_request_option_reaches_the_server(ip: Shell, fake: FakeImagesServer) -> None:
    cell = ip.run(
        "%imagegen -m gpt-image-2 -s 1024x1536 -q low -n 2 -f webp --compression 40 "
        "--background opaque --moderation low -o r 'a fox'"
    )
    assert cell.success and not cell.stderr, cell.stderr
    sent = fake.log[-1]
    assert sent["prompt"] == "a fox" and sent["n"] == 2
    assert {k: sent["params"][k] for k in ("size", "quality", "output_format")} == {
        "size": "1024x1536",
        "quality": "low",
        "output_format": "webp",
    }
    assert sent["params"]["output_compression"] == 40
    assert sent["params"]["background"] == "opaque" and sent["params"]["moderation"] == "low"
    result = ip.ns["r"]
    assert len(result) == 2 and all(i.backend == "openai" for i in result)
    with Image.open(result[0].path) as im:
        assert (im.format, im.size) == ("WEBP", (1024, 1536))

    ip.run("%imagegen -m gpt-image-2.6-sunburst --complexity high -q low -o r a fox")
    assert fake.log[-1]["params"]["complexity"] == "high"
    assert fake.log[-1]["model"] == "gpt-image-2.6-sunburst"


def test_the_store_answers_a_repeated_cell_and_fresh_pays_again(
    ip: Shell, fake: FakeImagesServer
) -> None:
    cell = "%%imagegen -q low -o r\na quiet harbour"
    ip.run(cell)
    assert images_sent(fake) == 1 and not ip.ns["r"][0].cached
    again = ip.run(cell)
    assert images_sent(fake) == 1 and ip.ns["r"][0].cached
    assert "cached" in again.bundles[-1]["text/plain"]
    ip.run("%%imagegen -q low --fresh -o r\na quiet harbour")
    assert images_sent(fake) == 2 and not ip.ns["r"][0].cached


def test_estimate_prints_the_cost_and_sends_nothing(ip: Shell, fake: FakeImagesServer) -> None:
    config.configure(budget_usd=5)
    cell = ip.run("%imagegen --estimate -q high -n 3 -o r a fox")
    assert images_sent(fake) == 0 and "r" not in ip.ns and not cell.bundles
    assert re.search(r"estimate: 3 image\(s\) in 1 request\(s\): ~\$0\.\d{4}", cell.stdout)
    assert "budget $5.0000 left of $5.00" in cell.stdout and "nothing sent" in cell.stdout


def test_stream_shows_small_partials_in_place_then_the_final_images(
    ip: Shell, fake: FakeImagesServer
) -> None:
    cell = ip.run("%%imagegen -q low -s 1536x1024 --stream -o r\na kite over the sea")
    assert cell.success and not cell.stderr, cell.stderr
    assert fake.log[-1]["stream"] is True
    first, *updates = cell.outputs
    display_id = first.transient["display_id"]
    assert "partial" in first.data["text/plain"]
    assert updates and all(u.update and u.transient["display_id"] == display_id for u in updates)
    assert updates[-1].data["text/plain"].startswith("ImageSet(1 image")
    for out in cell.outputs[:-1]:
        (_mime, payload), *_ = DATA_URI.findall(out.data["text/html"])
        with Image.open(io.BytesIO(base64.b64decode(payload))) as thumb:
            assert max(thumb.size) <= config.current().thumbnail_px
    assert len(ip.ns["r"]) == 1


def test_backend_option_applies_to_one_call(ip: Shell, fake: FakeImagesServer) -> None:
    ip.run("%imagegen --backend preview -q low -o r a fox")
    assert images_sent(fake) == 0 and ip.ns["r"][0].backend == "preview"
    assert config.current().backend == "openai"
    line = one_error_line(ip.run("%imagegen --backend nope a fox"))
    assert "'nope'" in line and "preview" in line


def test_output_bundle_holds_small_thumbnails_and_the_store_the_full_files(
    ip: Shell, fake: FakeImagesServer
) -> None:
    cell = ip.run("%imagegen -s 2560x1440 -q low -n 3 -o r a detailed city at night")
    (bundle,) = cell.bundles
    assert bundle["text/plain"].startswith("ImageSet(3 images")
    thumbs = DATA_URI.findall(bundle["text/html"])
    assert len(thumbs) == 3
    for mime, payload in thumbs:
        assert mime == "image/webp" and len(payload) <= MAX_OUTPUT_BYTES
    assert len(bundle["text/html"]) <= 3 * MAX_OUTPUT_BYTES
    for image in ip.ns["r"]:
        assert image.path.is_file() and image.path.is_relative_to(config.current().store or "")
        with Image.open(image.path) as full:
            assert full.size == (2560, 1440)


# --- --save -------------------------------------------------------------------------------------


def test_save_to_a_pattern_a_folder_or_a_file_never_replacing_a_different_file(
    ip: Shell, tmp_path: Path
) -> None:
    ip.shell.run_line_magic("cd", str(tmp_path))
    cell = ip.run("%imagegen -q low -n 2 --save out/{i}.png a fox")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.png", "1.png"]
    assert "saved" in cell.stdout
    first = (tmp_path / "out" / "0.png").read_bytes()
    again = ip.run("%imagegen -q low -n 2 --save out/{i}.png a fox")  # the same files: fine
    assert again.success and not again.stderr
    clash = one_error_line(ip.run("%imagegen -q low -n 2 --save out/{i}.png a wolf"))
    assert "already exists" in clash and "store" in clash
    assert (tmp_path / "out" / "0.png").read_bytes() == first

    ip.run("%imagegen -q low -o r --save folder a fox")
    (saved,) = (tmp_path / "folder").iterdir()
    assert saved.name == f"0-{ip.ns['r'][0].key[:16]}.png"
    ip.run("%imagegen -q low -n 2 --save fox.png a fox")
    assert (tmp_path / "fox-0.png").is_file() and (tmp_path / "fox-1.png").is_file()
    ip.run("%imagegen -q low --save single.png a fox")
    assert (tmp_path / "single.png").is_file()


def test_save_mistakes_are_caught_before_anything_is_sent(
    ip: Shell, fake: FakeImagesServer, tmp_path: Path
) -> None:
    ip.shell.run_line_magic("cd", str(tmp_path))
    for line, words in [
        ("-f webp --save fox.png", "-f png"),
        ("--save out/{name}.png", "{i}"),
        ("-n 2 --save out/fox-{ext}", "put {i}"),
        ("-n 8 --save out/{key:.1}.png", "only 1 file name"),  # collisions beyond the 2nd name
        ("-n 8 --save out/{key:.8}.png", "put {i}"),
        ("--save out/{i}/../../../x.png", "outside"),
    ]:
        error = one_error_line(ip.run(f"%imagegen -q low {line} a fox"))
        assert words in error, (line, error)
    assert images_sent(fake) == 0


# --- -i and --mask ------------------------------------------------------------------------------


def test_edit_inputs_from_variables_paths_and_globs(
    ip: Shell, fake: FakeImagesServer, tmp_path: Path
) -> None:
    ip.shell.run_line_magic("cd", str(tmp_path))
    (tmp_path / "in").mkdir()
    for name, colour in (("a.png", (10, 200, 30)), ("b.png", (200, 10, 30))):
        Image.new("RGB", (64, 64), colour).save(tmp_path / "in" / name)
    ip.run("%imagegen -q low -n 2 -o made a fox")
    ip.ns["pil"] = Image.new("RGB", (48, 48), (0, 0, 255))
    ip.ns["raw"] = png_bytes()
    cases = {
        "-i made": 2,  # an ImageSet
        "-i made[1]": 1,  # a GeneratedImage, by item
        "-i pil": 1,
        "-i raw": 1,
        "-i in/a.png": 1,
        "-i 'in/*.png'": 2,
        "-i made -i pil -i in/b.png": 4,
    }
    for option, count in cases.items():
        cell = ip.run(f"%%imageedit {option} -q low -o r\nmake it night")
        assert cell.success and not cell.stderr, (option, cell.stderr)
        assert fake.log[-1]["image_count"] == count, option
        assert fake.log[-1]["path"].endswith("/images/edits")
        assert ip.ns["r"][0].prompt == "make it night"
    by_item = fake.log[-6]  # "-i made[1]"
    assert by_item["image_sha256s"] == [hashlib.sha256(ip.ns["made"][1].data).hexdigest()]


def test_edit_with_a_mask_and_input_fidelity(
    ip: Shell, fake: FakeImagesServer, tmp_path: Path
) -> None:
    ip.shell.run_line_magic("cd", str(tmp_path))
    (tmp_path / "photo.png").write_bytes(png_bytes((64, 64)))
    (tmp_path / "mask.png").write_bytes(png_bytes((64, 64), "RGBA"))
    cell = ip.run(
        "%imageedit -i photo.png --mask mask.png -m gpt-image-1.5 --input-fidelity high -q low "
        "-o r 'add a moon'"
    )
    assert cell.success and not cell.stderr, cell.stderr
    assert fake.log[-1]["mask_sha256"] is not None
    assert fake.log[-1]["params"]["input_fidelity"] == "high"


def test_edit_needs_an_image_and_names_a_missing_one(ip: Shell, fake: FakeImagesServer) -> None:
    cell = ip.run("%%imageedit -q low\nmake it night")
    assert "UsageError" in cell.stderr and "-i IMAGE" in cell.stderr
    line = one_error_line(ip.run("%%imageedit -i nowhere.png\nmake it night"))
    assert "'nowhere.png'" in line and "variable" in line
    line = one_error_line(ip.run("%%imageedit -i nothing_*.png\nmake it night"))
    assert "nothing_*.png" in line
    assert images_sent(fake) == 0


# --- errors users can act on --------------------------------------------------------------------


def test_user_errors_are_one_line_that_says_what_to_do(ip: Shell) -> None:
    server = FakeImagesServer(faults=Faults(moderation_words=("forbidden",)))
    with server:
        config.configure(backend="openai", api_key=KEY, base_url=server.base_url, budget_usd=0.05)
        expected = {
            "%imagegen -s 1000x1000 a fox": "divisible by 16",
            "%imagegen -m gpt-image-9 a fox": "choose one of",
            "%imagegen -q ultra a fox": "choose one of",
            "%imagegen -f gif a fox": "choose one of",
            "%imagegen --compression 50 -f png a fox": "drop it or change the format",
            "%imagegen -q high -n 4 a fox": "budget",
            "%imagegen -q low a forbidden fox": "safety system",
            "%imagegen -q low ''": "prompt is empty",
        }
        for line, words in expected.items():
            error = one_error_line(ip.run(line))
            assert words in error, (line, error)
        assert server.stats.moderation_blocked == 1
        assert server.stats.image_requests == 1  # only the moderation case reached it


def test_an_interrupt_says_what_was_kept_and_still_interrupts(
    ip: Shell, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagenb.engine import loop

    def interrupted(future: Any, **kwargs: Any) -> Any:
        future.result(timeout=30)  # let the run finish, then "press Ctrl-C"
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "wait", interrupted)
    cell = ip.run("%imagegen -q low -n 2 a fox")
    assert not cell.success and "KeyboardInterrupt" in cell.stdout + cell.stderr
    assert "imagenb: interrupted; 2 finished image(s) are in the store" in cell.stderr


# --- %imagenb -----------------------------------------------------------------------------------


def test_status_without_a_key_names_the_preview_backend(ip: Shell, isolated: Path) -> None:
    ip.run("%imagegen -q low a fox")
    out = ip.run("%imagenb").stdout
    assert re.search(r"^backend\s+preview \(auto: no OPENAI_API_KEY set", out, re.M)
    assert re.search(r"^model\s+gpt-image-2$", out, re.M)
    assert re.search(rf"^store\s+{re.escape(str(isolated))}$", out, re.M)
    assert re.search(r"^spent\s+this session \$0\.0000", out, re.M)
    assert re.search(r"^budget\s+none", out, re.M)
    assert "previews" in out


def test_configure_sets_numbers_resets_and_refuses_unknown_keys_and_the_api_key(ip: Shell) -> None:
    out = ip.run("%imagenb budget_usd=2 concurrency=4 model=gpt-image-1.5")
    assert out.stdout.strip() == "imagenb: budget_usd=2.0, concurrency=4, model=gpt-image-1.5"
    cfg = config.current()
    assert (cfg.budget_usd, cfg.concurrency, cfg.model) == (2.0, 4, "gpt-image-1.5")
    status = ip.run("%imagenb").stdout
    assert re.search(r"^budget\s+\$2\.00, \$2\.0000 left", status, re.M)

    ip.run("%imagenb budget_usd=none")
    assert config.current().budget_usd is None

    line = one_error_line(ip.run("%imagenb colour=red"))
    assert "'colour'" in line and "budget_usd" in line and "concurrency" in line
    line = one_error_line(ip.run("%imagenb concurrency=lots"))
    assert "not a number" in line
    line = one_error_line(ip.run("%imagenb budget_usd"))
    assert "KEY=VALUE" in line
    refused = ip.run(f"%imagenb budget_usd=3 api_key={KEY}")
    line = one_error_line(refused)
    assert "environment" in line and KEY not in refused.text()
    assert config.current().api_key is None and config.current().budget_usd is None


def test_the_api_key_appears_in_no_output(ip: Shell, tmp_path: Path) -> None:
    ip.shell.run_line_magic("cd", str(tmp_path))
    env_cell = ip.run(f"%env OPENAI_API_KEY={KEY}")  # IPython echoes this one itself
    assert env_cell.success
    cells: list[Cell] = []
    with FakeImagesServer() as server:
        config.configure(base_url=server.base_url)
        cells += [
            ip.run("%imagenb"),
            ip.run("%imagegen -q low -o r a fox"),
            ip.run("%imagegen -q low --stream --fresh a fox"),
            ip.run("%imagegen --estimate a fox"),
            ip.run("%imagegen -s 3x3 a fox"),
            ip.run("%imagegen -q low a fox --save fox.webp"),
            ip.run(f"%imagenb api_key={KEY}"),
            ip.run("%imagenb model=nope"),
            ip.run("%%imageedit -i r --mask missing.png\nx"),
        ]
        assert ip.ns["r"][0].backend == "openai"
    with FakeImagesServer(api_key="sk-test-a-different-key-entirely") as wrong:
        config.configure(base_url=wrong.base_url)
        refused = ip.run("%imagegen -q low --fresh a fox")
        assert "not authorised" in one_error_line(refused)
        cells.append(refused)
    cells.append(ip.run("%imagegen -q low --backend replay a fox never made"))
    for cell in cells:
        assert KEY not in cell.text()
        assert KEY[10:30] not in cell.text()
    ip.shell.run_line_magic("env", "OPENAI_API_KEY=")


def test_error_lines_mask_anything_shaped_like_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from imagenb.magics import cells as magics

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with capture_output() as cap:
        magics._fail(RuntimeError(f"bad key {KEY} or sk-proj-abcdefgh1234\nsecond line"))
    assert cap.stderr == "imagenb: bad key <OPENAI_API_KEY> or <OPENAI_API_KEY> second line\n"
