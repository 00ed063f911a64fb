"""The `grmux` flow end to end against the sandbox: statuses, decoded alignment, reruns, late media."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from deployments.processes import run_process
from grmux_sandbox.site import Sandbox
from tests.flows.alignment import check_alignment
from tests.reliability.campaign import scratch_leftovers
from tests.support import ROOT
from tests.support.flows import run_flow, start_flow_cycle

pytestmark = pytest.mark.slow

MUXABLE = ["normal", "holds", "overlap", "gap", "late_start", "early_end", "outside", "long_gop", "webm",
           "encrypted", "multi_agent", "s3"]
ALL = [*MUXABLE, "late_screen", "corrupt", "no_screen"]


def by_call(summary) -> dict[str, dict]:
    return {row["call_id"]: row for row in summary["calls"]}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("site")
    sandbox = Sandbox.start(state_dir)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    calls = sandbox.seed(len(ALL), seed=11, scenarios=ALL, start=start, size=(320, 240),
                         duration=(14.0, 20.0), spacing=(60.0, 90.0))
    scratch = state_dir / "scratch"
    scratch.mkdir()
    config = sandbox.write_config(state_dir / "muxer.cfg", worker_threads=3, temp_dir=str(scratch))
    yield sandbox, {c.scenario: c for c in calls}, config
    sandbox.stop()


@pytest.fixture(scope="module")
def first_run(site):
    _sandbox, _calls, config = site
    return run_flow(config, mode="primary")


@pytest.fixture(scope="module")
def field_run(tmp_path_factory):
    """The main window again (its own calls: the work keys of the strict run are cached) against an
    RWS answering the field's way, listed with pagination = 3 (answers cut at 3 without a next link)."""
    state_dir = tmp_path_factory.mktemp("field-site")
    sandbox = Sandbox.start(state_dir, dialect="field")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    calls = sandbox.seed(len(ALL), seed=12, scenarios=ALL, start=start, size=(320, 240),
                         duration=(14.0, 20.0), spacing=(60.0, 90.0))
    scratch = state_dir / "scratch"
    scratch.mkdir()
    config = sandbox.write_config(state_dir / "muxer.cfg", worker_threads=3, temp_dir=str(scratch), pagination=3)
    yield sandbox, {c.scenario: c for c in calls}, run_flow(config, mode="primary"), config
    sandbox.stop()


def assert_main_window(calls, state, summary) -> None:
    rows = by_call(summary)
    assert state.is_failed(), "a corrupt call must make the run red"
    for scenario in MUXABLE:
        assert rows[calls[scenario].call_id]["status"] == "muxed", (scenario, rows[calls[scenario].call_id])
    assert rows[calls["late_screen"].call_id]["status"] == "pending"
    corrupt = rows[calls["corrupt"].call_id]
    assert corrupt["status"] == "failed"
    bad_media = next(m.media_id for m in calls["corrupt"].screens if m.corrupt)
    assert bad_media in corrupt["reason"] and "grmux-work" not in corrupt["reason"]
    # no_screen calls carry no SRSScreenRecordingStateStarted: the default filter never lists them
    assert calls["no_screen"].call_id not in rows
    assert summary["counts"] == {"muxed": len(MUXABLE), "skipped": 0, "pending": 1, "failed": 1, "cancelled": 0}


def test_a_window_with_every_scenario_ends_each_call_as_expected(site, first_run):
    _sandbox, calls, _ = site
    state, summary = first_run
    assert_main_window(calls, state, summary)
    assert summary["list_requests"] == 1


def test_the_main_window_ends_the_same_against_a_field_rws(field_run, tmp_path):
    sandbox, calls, (state, summary), _config = field_run
    assert_main_window(calls, state, summary)
    assert summary["list_requests"] >= summary["listed"] // 2  # answers cut at 3 calls: narrowed each time
    written = {wb["id"]: wb["body"]["mediaFiles"][0] for wb in sandbox.write_backs()}
    assert set(written) == {calls[s].call_id for s in MUXABLE}
    for scenario in ("normal", "multi_agent", "webm"):  # absolute screen URLs: muxed beside the screen file
        media_file = written[calls[scenario].call_id]
        base = media_file["mediaDescriptor"]["data"]["storagePath"]
        assert base.startswith(sandbox.webdav_url) and base != sandbox.webdav_url and "/screen/" in base
        out = tmp_path / f"{scenario}.mp4"
        out.write_bytes(sandbox.media_bytes(media_file))
        assert check_alignment(out, calls[scenario]) == []


def test_every_muxed_output_is_aligned_when_decoded(site, first_run, tmp_path):
    sandbox, calls, _ = site
    written = {wb["id"]: wb["body"]["mediaFiles"][0] for wb in sandbox.write_backs()}
    assert set(written) == {calls[s].call_id for s in MUXABLE}
    failures = {}
    for scenario in MUXABLE:
        call = calls[scenario]
        media_file = written[call.call_id]
        out = tmp_path / f"{scenario}.mp4"
        out.write_bytes(sandbox.media_bytes(media_file))
        assert int(media_file["size"]) == out.stat().st_size
        expected_sources = {m.media_id for m in [*call.audio, *call.screens]}
        assert set(media_file["parameters"]["muxed_mediaIds"]) == expected_sources
        problems = check_alignment(out, call)
        if problems:
            failures[scenario] = problems
    assert not failures


def test_originals_are_untouched_and_scratch_space_is_empty(site, first_run):
    sandbox, calls, _ = site
    for call in calls.values():
        screen = sandbox.screen_recording(call.call_id) or {"mediaFiles": []}
        audio = sandbox.call_recording(call.call_id) or {"mediaFiles": []}
        originals = [m for m in screen["mediaFiles"] + audio["mediaFiles"] if "_muxed_" not in m["mediaId"]]
        assert len(originals) == len(call.audio) + (len(call.screens) if call.screen_delivered else 0)
        for media_file in originals:
            generated = call.media(media_file["mediaId"])
            assert Sandbox.sha256(sandbox.media_bytes(media_file)) == generated.sha256
    leftovers = scratch_leftovers(sandbox.state_dir / "scratch")
    assert leftovers == []


def test_a_rerun_uploads_nothing_and_the_nightly_run_picks_up_late_screens(site, first_run):
    sandbox, calls, config = site
    before = len(sandbox.write_backs())
    _state, summary = run_flow(config, mode="primary")
    rows = by_call(summary)
    assert len(sandbox.write_backs()) == before
    assert all(rows[calls[s].call_id]["status"] == "skipped" for s in MUXABLE)

    late = calls["late_screen"].call_id
    sandbox.deliver_late_screen(late)
    _state, summary = run_flow(config, mode="nightly")
    rows = by_call(summary)
    new = sandbox.write_backs()[before:]
    assert [wb["id"] for wb in new] == [late]
    assert rows[late]["status"] == "muxed"
    assert summary["counts"]["muxed"] == 1


def test_logs_one_line_per_call_outcome(site, first_run):
    sandbox, calls, _ = site
    text = (sandbox.state_dir / "log" / "grmux.log").read_text()
    for scenario in [*MUXABLE, "late_screen", "corrupt"]:
        assert f"call {calls[scenario].call_id} " in text
    assert "ops" not in text.replace("operations", "")  # no password of the sandbox config


def test_two_runs_at_once_mux_every_call_exactly_once(prefect_api, tmp_path, cleanup):
    sandbox = cleanup.enter_context(Sandbox.start(tmp_path / "site"))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    calls = sandbox.seed(4, seed=23, scenarios=["normal"], start=start, size=(320, 240),
                         duration=(10.0, 14.0), spacing=(60.0, 70.0))
    config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=2)
    env = os.environ | {"PREFECT_API_URL": prefect_api}
    runs = [start_flow_cycle(cleanup, config, env) for _ in range(2)]
    outputs = [r.communicate(timeout=400)[0].decode() for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    ids = sorted(wb["id"] for wb in sandbox.write_backs())
    assert ids == sorted(c.call_id for c in calls), outputs


def test_legacy_command_line_in_backfill_mode_muxes_the_queried_call_and_exits(prefect_api, tmp_path, cleanup):
    sandbox = cleanup.enter_context(Sandbox.start(tmp_path / "site"))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
    calls = sandbox.seed(3, seed=31, scenarios=["normal", "corrupt", "normal"], start=start, size=(320, 240),
                         duration=(10.0, 12.0), spacing=(60.0, 70.0))
    env = os.environ | {"PREFECT_API_URL": prefect_api}

    def legacy(caller: str) -> subprocess.CompletedProcess:
        config = sandbox.write_config(tmp_path / "muxer.cfg",
                                      call_recording_query_string=f"callerPhoneNumber={caller}")
        return run_process([sys.executable, "muxer_process.py", f"--config-file={config}"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=400)

    good = legacy(sandbox.call_recording(calls[0].call_id)["callerPhoneNumber"])
    assert good.returncode == 0, good.stdout + good.stderr
    assert [wb["id"] for wb in sandbox.write_backs()] == [calls[0].call_id]
    bad = legacy(sandbox.call_recording(calls[1].call_id)["callerPhoneNumber"])
    assert bad.returncode == 1, bad.stdout + bad.stderr  # the corrupt call failed: non-zero exit
    assert "1 of 1 calls failed" in bad.stdout


def test_status_lists_the_runs_with_their_counts(site, first_run):
    from grmux_cli.status_cmd import last_runs

    _state, summary = first_run
    runs = last_runs(100)
    # several runs may share a name (other tests' cycles of the same window); runs that ended before
    # reporting (a red listing) have no counts
    mine = [run for run in runs if run["name"].startswith("grmux-primary-") and run["name"].endswith("-all")]
    assert mine, runs
    # every listed call has one outcome; the list requests are counted too
    expected = summary["counts"] | {"listed": len(summary["calls"]), "list_requests": summary["list_requests"]}
    assert any({k: (run["counts"] or {}).get(k) for k in expected} == expected and run["state"] == "Failed"
               for run in mine), mine


def test_re_encoded_calls_get_their_timeline_picture_as_an_artifact(site, first_run):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    _sandbox, calls, _ = site
    _state, summary = first_run
    rows = by_call(summary)
    webm = calls["webm"].call_id
    assert rows[webm]["reencoded_spans"] >= 1
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"grmux-call-{webm}"])))
    assert found, "the WebM call was re-encoded: its plan must be drawn"
    markdown = found[0].data
    assert "data:image/svg+xml;base64," in markdown and "re-encoded span" in markdown
    plain = calls["normal"].call_id
    assert rows[plain]["reencoded_spans"] == 0
    with get_client(sync_client=True) as client:
        assert not client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"grmux-call-{plain}"])))


def test_a_backfill_without_times_that_hits_a_full_page_ends_the_run_red(field_run):
    from flows.grmux import grmux
    from grmux_core.errors import ListingIncomplete

    sandbox, _calls, _run, config = field_run
    before = len(sandbox.write_backs())
    state = grmux(config_path=str(config), mode="backfill", query="userData=SRSScreenRecordingStateStarted",
                  return_state=True)
    assert state.is_failed()
    stopped_by = state.result(raise_on_failure=False)
    assert isinstance(stopped_by, ListingIncomplete)
    assert "userData=SRSScreenRecordingStateStarted" in str(stopped_by) and "add startTime=" in str(stopped_by)
    assert len(sandbox.write_backs()) == before  # nothing was muxed from the first page
