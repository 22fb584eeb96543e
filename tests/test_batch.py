"""Batch mode against the loopback fake over real HTTP with the real SDK: a 500-prompt job at
half price, a submitter killed after submission and finished by another process, error and
expired lines, cancel, splitting, edits, and the `imagenb batch` commands."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_KEY, wait_for
from PIL import Image

import imagenb as ig
from imagenb.api import calls as api
from imagenb.batch import jobs as batch
from imagenb.batch import lines as batch_lines
from imagenb.batch.store import BatchRecords
from imagenb.cli import main as cli
from imagenb.core import catalog, config, cost
from imagenb.core.request import ImageRequest
from imagenb.engine import session
from imagenb.errors import BudgetExceeded, InvalidRequest, TransientError
from imagenb.grids import grid as grids
from imagenb.testing import FakeImagesServer, Faults

# Small JPEGs: the fake sends a full base64 image per output line.
PARAMS: dict[str, Any] = {
    "size": "1024x640",
    "quality": "low",
    "output_format": "jpeg",
    "output_compression": 50,
}


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "POLL_FIRST_S", 0.05)
    monkeypatch.setattr(batch, "POLL_MAX_S", 0.2)


@pytest.fixture
def server() -> Iterator[FakeImagesServer]:
    with FakeImagesServer(batch_delay=0.5) as srv:
        config.configure(backend="openai", api_key=TEST_KEY, base_url=srv.base_url)
        yield srv


def requests(prompts: list[str], **params: Any) -> list[ImageRequest]:
    return api.requests_from(prompts, config.current(), **(PARAMS | params))


def prompts(n: int, word: str = "a lighthouse") -> list[str]:
    return [f"{word}, study {i}" for i in range(n)]


def images_of(run: Any) -> list[Any]:
    return [image for row in run.results for image in row if image is not None]


# --- the acceptance criteria ---------------------------------------------------------------


def test_a_500_prompt_grid_in_batch_mode_costs_half_the_live_grid(
    server: FakeImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = prompts(500)
    live_estimate = grids.estimate(texts, **PARAMS)
    batch_estimate = grids.estimate(texts, mode="batch", **PARAMS)
    assert batch_estimate.usd == pytest.approx(live_estimate.usd / 2)
    assert batch_estimate.images == 500 and batch_estimate.batch

    frame = ig.grid(texts, mode="batch", **PARAMS).frame
    assert "at the batch price" in capsys.readouterr().out  # the plan line

    assert (frame["status"] == "ok").sum() == 500 and frame["error"].isna().all()
    assert server.stats.batches_created == 1 and server.stats.files_created == 1
    assert server.stats.completed == 0  # nothing went through the online endpoint
    assert set(server.stats.batch_completions_by_prompt.values()) == {1}
    assert len(server.stats.batch_completions_by_prompt) == 500
    spec = catalog.lookup("gpt-image-2")
    for image in frame["image"]:
        assert image.params["batch"] is True and not image.cost_is_estimate
        assert image.cost_usd == pytest.approx(cost.usage_cost(spec, image.usage) / 2)
        assert image.params["n"] == 1
    stored = session.store_for(config.current()).get(frame["image"][0].key)
    assert stored is not None and stored.request_id == batch.jobs()[0].batch_ids[0]

    # The same grid live (fresh, so nothing comes from the store): twice the money.
    live = ig.grid(texts, fresh=True, **PARAMS).frame
    assert (live["status"] == "ok").sum() == 500 and server.stats.completed == 500
    assert frame["cost_usd"].sum() == pytest.approx(live["cost_usd"].sum() / 2, rel=1e-9)
    assert api.spent().usd == pytest.approx(frame["cost_usd"].sum() + live["cost_usd"].sum())


def test_batch_start_fills_a_run_like_a_live_run(server: FakeImagesServer) -> None:
    reqs = requests(prompts(4), n=2)
    job = batch.start(reqs, label="pairs")
    assert isinstance(job, api.Job) and job.ids
    run = job.wait(progress=False)
    assert (run.total, run.done, run.failed) == (8, 8, 0)
    assert [[i.variant for i in row if i] for row in run.results] == [[0, 1]] * 4
    assert len(job.images()) == 8 and "batch collected: 8/8 processed" in repr(job)
    assert run.usd == pytest.approx(job.images().cost_usd)

    twice = requests(["a lone gull"]) * 2  # one line (custom_ids are unique), both filled
    run = batch.start(twice).wait(progress=False)
    assert (run.done, run.cached) == (1, 1)
    first, second = (row[0] for row in run.results)
    assert first is not None and second is not None and first.key == second.key
    assert not first.cached and second.cached
    assert batch.jobs()[0].lines == 1


def test_result_lines_are_parsed_by_custom_id() -> None:
    ok = {
        "id": "batch_req_1",
        "custom_id": "k1",
        "response": {
            "status_code": 200,
            "request_id": "req_1",
            "body": {"data": [{"b64_json": "aGVsbG8="}], "usage": {"output_tokens": 5},
                     "size": "1024x1024", "quality": "low"},
        },
        "error": None,
    }  # fmt: skip
    result = batch_lines.parse(json.dumps(ok))
    assert result.ok and result.images == [b"hello"] and result.usage == {"output_tokens": 5}
    assert result.resolved == {"size": "1024x1024", "quality": "low"}
    refused = {
        "custom_id": "k2",
        "response": {"status_code": 400, "body": {"error": {"code": "moderation_blocked"}}},
    }
    result = batch_lines.parse(json.dumps(refused))
    assert not result.ok and result.status == 400 and result.error == {"code": "moderation_blocked"}
    expired = {"custom_id": "k3", "response": None, "error": {"code": "batch_expired"}}
    result = batch_lines.parse(json.dumps(expired))
    assert not result.ok and result.status is None and result.error == {"code": "batch_expired"}


KILLED_CHILD = textwrap.dedent(
    """
    import sys, time
    import imagenb as ig
    from imagenb.batch import jobs as batch
    ig.configure(backend="openai", api_key=sys.argv[1], base_url=sys.argv[2])
    ig.grid([f"a harbour, study {{i}}" for i in range(40)], mode="batch", wait=False,
            **{params!r})
    print("JOB", batch.jobs()[0].id, flush=True)
    time.sleep(600)
    """
).format(params=PARAMS)
HARBOURS = [f"a harbour, study {i}" for i in range(40)]


def submit_and_kill(server: FakeImagesServer) -> str:
    """A child process submits a 40-prompt grid; it is SIGKILLed once the grid has returned
    (the job recorded and submitted), long before the batch is done."""
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_CHILD, TEST_KEY, server.base_url],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),  # IMAGENB_STORE: this test's store
    ) as child:
        try:
            assert child.stdout is not None
            line = ""
            while not line.startswith("JOB "):  # the grid prints its plan line first
                line = child.stdout.readline()
                assert line, "the child exited before submitting"
            job_id = line.split()[1]
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    return job_id


@pytest.mark.slow
def test_a_killed_submitter_is_finished_by_rerunning_the_same_requests(
    server: FakeImagesServer,
) -> None:
    job_id = submit_and_kill(server)
    assert server.stats.batches_created == 1
    assert grids.estimate(HARBOURS, mode="batch", **PARAMS).usd == 0.0  # paid for already

    frame = ig.grid(HARBOURS, mode="batch", **PARAMS).frame
    assert (frame["status"] == "ok").sum() == 40
    assert server.stats.batches_created == 1 and server.stats.files_created == 1
    assert [job.id for job in batch.jobs()] == [job_id]
    again = ig.grid(HARBOURS, mode="batch", **PARAMS).frame  # all in the store now
    assert (again["status"] == "cached").sum() == 40
    assert server.stats.batches_created == 1


@pytest.mark.slow
def test_a_killed_submitter_is_finished_by_the_collect_command(
    server: FakeImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = submit_and_kill(server)
    assert cli.main(["batch", "collect", job_id]) == 0
    out = capsys.readouterr().out
    assert f"batch {job_id}: 40 image(s) in the store" in out
    store = session.store_for(config.current())
    reqs = requests(HARBOURS)
    assert len(store.get_many(k for r in reqs for k in r.variant_keys())) == 40
    assert server.stats.batches_created == 1
    assert cli.main(["batch", "list"]) == 0
    listing = capsys.readouterr().out
    assert job_id in listing and "collected" in listing and "'grid of 40: a harbour" in listing


def test_error_lines_become_error_rows_with_their_messages(server: FakeImagesServer) -> None:
    server.faults = Faults(moderation_words=("forbidden",))
    texts = [*prompts(6), "a forbidden harbour", "another forbidden harbour"]
    frame = ig.grid(texts, mode="batch", **PARAMS).frame
    assert list(frame["status"]) == ["ok"] * 6 + ["error"] * 2
    for message in frame["error"][6:]:
        assert message.startswith("ModerationBlocked: blocked by the safety system")
        assert "(categories: violence)" in message
    (record,) = batch.jobs()
    assert record.errors == 2 and record.stored == 6 and record.status == "collected"


def test_cli_grid_batch_writes_a_sheet(
    server: FakeImagesServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "prompts.csv"
    csv.write_text("prompt\n" + "\n".join(prompts(6)) + "\n", encoding="utf-8")
    out = tmp_path / "sheet.html"
    flags = ["-s", "1024x640", "-q", "low", "-f", "jpeg"]
    assert cli.main(["grid", str(csv), "--batch", "--estimate", *flags, "-o", str(out)]) == 0
    assert "at the batch price" in capsys.readouterr().out
    assert cli.main(["grid", str(csv), "--batch", *flags, "-o", str(out)]) == 0
    assert out.is_file() and server.stats.batches_created == 1 and server.stats.completed == 0


# --- expiry, cancel, splitting ---------------------------------------------------------------


def test_an_expired_batch_keeps_its_work_and_the_rest_can_be_resubmitted(
    server: FakeImagesServer,
) -> None:
    server.faults = Faults(batch_expire_after=3)
    reqs = requests(prompts(8))
    job = batch.start(reqs)
    run = job.wait(progress=False)
    assert (run.done, run.failed) == (3, 5)
    expired = [e for e in run.errors if e is not None]
    assert all(isinstance(e, TransientError) and "expired" in str(e) for e in expired)
    paid = run.usd

    server.faults = Faults()
    assert job.resubmit_missing() == 5
    run = job.wait(progress=False)
    assert (run.done, run.failed) == (8, 0) and run.errors == [None] * 8
    assert run.usd > paid
    assert server.stats.batches_created == 2
    assert server.stats.batch_requests_completed == 8  # nothing ran twice


def test_cancel_keeps_what_was_done(server: FakeImagesServer) -> None:
    server.stop()
    with FakeImagesServer(batch_delay=4.0) as slow:
        config.configure(base_url=slow.base_url)
        job = batch.start(requests(prompts(40)))
        wait_for(lambda: job.run.remote_settled >= 2)
        job.cancel()
        run = job.wait(progress=False)
        assert 2 <= run.done < 40 and run.done + run.failed == 40
        assert all("cancelled" in str(e) for e in run.errors if e is not None)
        assert batch.status(job.ids[0]).parts[0].status == "cancelled"


def test_ctrl_c_stops_watching_not_the_batch(server: FakeImagesServer) -> None:
    server.stop()
    with FakeImagesServer(batch_delay=2.0) as slow:
        config.configure(base_url=slow.base_url)
        job = batch.start(requests(prompts(10)))
        timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt) as caught:
            job.wait(progress=False)
        timer.join()
        assert job.finished and not job.complete
        assert any("imagenb batch collect" in note for note in caught.value.__notes__)
        run = job.wait(progress=False)  # picks up where it stopped
        assert run.done == 10 and slow.stats.batches_created == 1


def test_past_the_line_limit_a_job_is_split_into_several_batches(
    server: FakeImagesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_lines, "MAX_LINES", 4)
    job = batch.start(requests(prompts(10)))
    run = job.wait(progress=False)
    assert run.done == 10
    assert server.stats.batches_created == 3 and server.stats.files_created == 3
    (record,) = batch.jobs()
    assert [p.total for p in record.parts] == [4, 4, 2] and len(set(record.batch_ids)) == 3


def test_write_parts_splits_by_bytes_and_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_lines, "MAX_BYTES", 250)
    lines = [(batch_lines.GENERATIONS, f"k{i}", b"x" * 99 + b"\n") for i in range(5)]
    lines.append((batch_lines.EDITS, "e", b"{}\n"))
    parts = batch_lines.write_parts(lines, tmp_path, "t")
    assert [(p.endpoint, p.keys) for p in parts] == [
        (batch_lines.GENERATIONS, ["k0", "k1"]),
        (batch_lines.GENERATIONS, ["k2", "k3"]),
        (batch_lines.GENERATIONS, ["k4"]),
        (batch_lines.EDITS, ["e"]),
    ]
    assert parts[0].path.read_bytes() == (b"x" * 99 + b"\n") * 2
    monkeypatch.setattr(batch_lines, "MAX_BYTES", 50)
    with pytest.raises(InvalidRequest, match="over the 50-byte file limit"):
        batch_lines.write_parts(lines, tmp_path, "u")


# --- edits -------------------------------------------------------------------------------------


def png(seed: int, size: tuple[int, int] = (256, 256)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (seed, 80, 160)).save(buf, "PNG")
    return buf.getvalue()


def test_edits_send_the_json_body_with_data_urls_and_shared_file_ids(
    server: FakeImagesServer,
) -> None:
    cfg = config.current()
    shared, single = png(1), png(2)
    reqs = [api.build(f"restyle {i}", cfg, images=shared, **PARAMS) for i in range(3)]
    reqs.append(api.build("restyle alone", cfg, images=[single, shared], **PARAMS))
    reqs.append(api.build("a plain one", cfg, **PARAMS))  # generations go in their own batch
    run = batch.start(reqs).wait(progress=False)
    assert (run.done, run.failed) == (5, 0)
    assert server.stats.batches_created == 2
    uploads = [json.loads(entry) for entry in _batch_inputs(server)]
    edits = [line for line in uploads if line["url"] == batch_lines.EDITS]
    assert len(edits) == 4 and {line["body"]["n"] for line in edits} == {1}
    refs = [line["body"]["images"] for line in edits]
    file_ids = {ref[-1]["file_id"] for ref in refs}  # the shared input: uploaded once
    assert len(file_ids) == 1
    assert refs[3][0]["image_url"].startswith("data:image/png;base64,")
    image = images_of(run)[3]
    assert image.params["batch"] is True
    stored = session.store_for(cfg).get(reqs[3].key(0))
    assert stored is not None and stored.kind == "edit" and len(stored.input_keys) == 2


def _batch_inputs(server: FakeImagesServer) -> list[bytes]:
    listing = server.files.listing({"purpose": "batch"})["data"]
    return [
        line
        for item in listing
        for line in (server.files.data(item["id"]) or b"").splitlines()
        if line.strip()
    ]


# --- what is and is not sent ---------------------------------------------------------------------


def test_stored_images_are_served_and_only_the_rest_is_sent(server: FakeImagesServer) -> None:
    batch.start(requests(prompts(5))).wait(progress=False)
    job = batch.start(requests(prompts(8)))
    run = job.wait(progress=False)
    assert (run.cached, run.done) == (5, 3)
    (newest, _) = batch.jobs()
    assert newest.lines == 3 and server.stats.batches_created == 2


def test_the_budget_is_checked_at_the_batch_price_before_anything_is_sent(
    server: FakeImagesServer,
) -> None:
    reqs = requests(prompts(20))
    price = batch.estimate(reqs).usd
    config.configure(budget_usd=price * 0.9)
    with pytest.raises(BudgetExceeded):
        batch.start(reqs)
    assert server.stats.files_created == 0 and batch.jobs() == []
    config.configure(budget_usd=price * 1.1)  # enough at half price, not at the live price
    assert batch.start(reqs).wait(progress=False).done == 20


def test_batch_mode_needs_a_batch_backend() -> None:
    config.configure(backend="preview")
    with pytest.raises(InvalidRequest, match="OpenAI Batch API"):
        batch.start(api.requests_from(["a cat"], config.current()))
    assert not batch.supported()


# --- crash windows --------------------------------------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_batch_created_but_never_recorded_is_found_not_created_again(
    server: FakeImagesServer,
) -> None:
    reqs = requests(prompts(6))
    job = batch.start(reqs)
    job.wait(progress=False)
    # Pretend the submitter died between creating the batch and writing its id down.
    records = BatchRecords(session.store_for(config.current()))
    (record,) = records.jobs()
    store = session.store_for(config.current())
    with store._transaction() as conn:
        conn.execute("DELETE FROM images")
        conn.execute(
            "UPDATE batch_parts SET batch_id = NULL, status = 'submitting', collected = 0, "
            "owner = ?",
            (f"{socket.gethostname()}:{dead_pid()}",),
        )
    again = batch.start(reqs)
    assert again.ids == [record.id]
    assert again.wait(progress=False).done == 6
    assert server.stats.batches_created == 1


def test_a_submission_that_never_reached_the_service_is_sent_again(
    server: FakeImagesServer,
) -> None:
    reqs = requests(prompts(4))
    records = BatchRecords(session.store_for(config.current()))
    lines = [(batch_lines.GENERATIONS, [_line(r) for r in reqs])]
    assert records.record("bj_dead", label=None, backend="openai", base_url=None, parts=lines)
    with session.store_for(config.current())._transaction() as conn:
        conn.execute("UPDATE batch_parts SET owner = ?", (f"{socket.gethostname()}:{dead_pid()}",))
    assert batch.estimate(reqs).usd == 0.0  # covered, as far as anyone can tell yet
    job = batch.start(reqs)
    assert job.ids != ["bj_dead"] and "bj_dead" not in job.ids
    assert job.wait(progress=False).done == 4
    assert server.stats.batches_created == 1
    dead = records.job("bj_dead")
    assert dead.status == "collected" and dead.parts[0].status == "abandoned"


def _line(request: ImageRequest) -> Any:
    from imagenb.batch.store import LineRecord

    return LineRecord("", 0, request.key(0), request.prompt, request.model, request.kind,
                      request.params(), 0, (), 0.01)  # fmt: skip


# --- the command line -----------------------------------------------------------------------


def test_batch_status_and_list_commands(
    server: FakeImagesServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["batch", "list"]) == 0
    assert "no batch jobs" in capsys.readouterr().out
    job = batch.start(requests(prompts(3)), label="three <lighthouses>")
    job.wait(progress=False)
    (record,) = batch.jobs()
    assert cli.main(["batch", "status", record.batch_ids[0]]) == 0
    out = capsys.readouterr().out
    assert record.id in out and "3/3 processed" in out and record.batch_ids[0] in out
    assert cli.main(["batch", "status", record.id[:6]]) == 0
    assert cli.main(["batch", "status", "bj_nope"]) == 2
    assert "no batch job 'bj_nope'" in capsys.readouterr().err
