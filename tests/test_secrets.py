"""Issue 9 §5: the API key appears in no log, exception text or traceback, even when the
service echoes it back; what every notebook and the panel save is checked elsewhere
(tests/test_notebooks.py, tests/test_panel*.py, tests/test_api_openai.py)."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TEST_KEY
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

import imagenb as ig
from imagenb.backends.openai_backend import error_from
from imagenb.core import config
from imagenb.errors import BackendError, ModerationBlocked, TransientError
from imagenb.panels.controls import explain
from imagenb.testing import FakeImagesServer, Faults

WRONG_KEY = "sk-fake-wrong-imagenb-1111111111111111111"  # a test key, not a real one


def _texts(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc), explain(exc)])


def test_no_log_error_or_traceback_shows_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # openai, httpx and imagenb at their chattiest
    faults = Faults(moderation_words=("forbidden",))
    with FakeImagesServer(api_key=TEST_KEY, faults=faults) as server:
        config.configure(backend="openai", base_url=server.base_url, max_attempts=1)
        config.configure(api_key=TEST_KEY)
        ig.generate("a quiet harbour", size="square", quality="low")
        with pytest.raises(ModerationBlocked) as blocked:
            ig.generate("a forbidden harbour", size="square", quality="low")
        config.configure(api_key=WRONG_KEY)
        with pytest.raises(BackendError) as refused:
            ig.generate("a quiet harbour at dusk", size="square", quality="low")
        port = server.port
    assert refused.value.status == 401 and "Incorrect API key" in str(refused.value)
    config.configure(base_url=f"http://127.0.0.1:{port}/v1")  # nobody listens there now
    with pytest.raises(TransientError) as unreachable:
        ig.generate("a harbour nobody answers", size="square", quality="low")

    seen = caplog.text + "".join(_texts(e.value) for e in (blocked, refused, unreachable))
    assert "POST" in caplog.text  # the SDK's debug log was really captured
    for key in (TEST_KEY, WRONG_KEY):
        assert key not in seen and key[-12:] not in seen


def test_a_service_that_echoes_the_key_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    config.configure(api_key=WRONG_KEY)
    message = f"key {TEST_KEY} is not valid here; nor is {WRONG_KEY}; sk-other-123456789 either"
    error = error_from(401, {"message": message, "code": "invalid_api_key"})
    assert error.status == 401
    for key in (TEST_KEY, WRONG_KEY, "sk-other-123456789"):
        assert key not in _texts(error)
    assert "<OPENAI_API_KEY>" in str(error)


# --- issue 17 §4: a server that echoes pieces of the key ----------------------------------------

# made up for this test, and split so that no secret scan takes it for a leaked key
ECHO_KEY = "sk-" + "proj-Q7vLm2XaT9cR4eWb8NyK3hJd6FsZ1uPgOiE5tYrVwBnMqC0x"
BODY = ECHO_KEY.removeprefix("sk-proj-")


def mangled_forms(key: str = ECHO_KEY) -> list[str]:
    """Ten ways a server or proxy echoes a key it was sent."""
    return [
        key,  # as sent
        key.removeprefix("sk-"),  # without sk-
        BODY,  # without its prefix
        key.upper(),
        key[:20],  # a prefix
        key[-20:],  # a suffix
        BODY[5:25],  # 20-character windows
        BODY[20:40],
        BODY.lower(),
        f"{BODY[:12]}...{BODY[-12:]}",  # the "first and last characters" style
    ]


class _EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers every image request 400 with a message echoing the key in all ten forms."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        message = "bad request; key seen: " + " | ".join(mangled_forms())
        body = json.dumps(
            {"error": {"message": message, "type": "invalid_request_error", "code": "bad"}}
        ).encode()
        self.send_response(400)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads imagenb's output, not the server's."""


@pytest.fixture
def echo_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OPENAI_API_KEY", ECHO_KEY)
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    config.configure(backend="openai", base_url=base_url, max_attempts=1)
    yield base_url
    server.shutdown()
    server.server_close()


def assert_no_piece(text: str, what: str) -> None:
    """No 12-character run of the key's secret part, in any case, is in `text`."""
    lowered = text.lower()
    for i in range(len(BODY) - 11):
        assert BODY[i : i + 12].lower() not in lowered, (what, BODY[i : i + 12])


def test_the_redaction_covers_every_form() -> None:
    config.configure(api_key=ECHO_KEY)
    for form in mangled_forms():
        assert_no_piece(config.redact(f"before {form} after"), form)
    assert config.redact("a short 7-char run QSVLM2X and 00000000 stay") == (
        "a short 7-char run QSVLM2X and 00000000 stay"
    )
    config.configure(api_key=TEST_KEY)  # padded with zeros: runs of zeros are not the key
    assert config.redact("n=100000000 is not allowed") == "n=100000000 is not allowed"
    assert config.redact(f"key: {TEST_KEY.upper()}") == "key: <OPENAI_API_KEY>"


def test_a_server_echoing_the_key_in_ten_forms_leaks_no_piece_of_it(
    echo_server: str,
    tmp_path: Path,
    isolated: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(BackendError) as refused:
        ig.generate("a quiet harbour", quality="low")
    assert refused.value.status == 400 and "<OPENAI_API_KEY>" in str(refused.value)
    brief = "\n".join(refused.value._render_traceback_() + refused.value._render_traceback_())

    shell = InteractiveShell.instance()
    shell.extension_manager.load_extension("imagenb")
    with capture_output() as cell:
        shell.run_cell("%%imagegen -q low\na harbour at night", store_history=False)
    assert "imagenb: " in cell.stderr

    grid = ig.grid(["a red boat", "a blue boat"], quality="low")
    assert list(grid.frame["status"]) == ["error", "error"]
    (page,) = grid.save(tmp_path / "grid.html")

    outputs = {
        "error": _texts(refused.value),
        "brief render": brief,
        "%%imagegen": cell.stdout + cell.stderr,
        "grid frame": grid.frame.to_csv(),
        "grid.html": page.read_text(),
        "log": caplog.text,
    }
    for what, text in outputs.items():
        assert_no_piece(text, what)
    assert "POST" in caplog.text  # the SDK's debug log was really captured
    for path in (p for p in isolated.rglob("*") if p.is_file()):
        assert_no_piece(path.read_bytes().decode("latin-1"), str(path))
