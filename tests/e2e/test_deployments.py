"""End to end as an operator runs it: a real `prefect server`, `deployments.setup --deploy`, a process
worker, and `prefect deployment run grmux/backfill --param query=...` muxing real sandbox calls.

On a host where nothing ran yet every step is slower (nothing in the page cache, no bytecode of
the project, a new database to migrate): the waits are bounded by the state they wait for, never
by a fixed sleep, and the worker is stopped after the assertions, by the ``cleanup`` fixture.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import pytest

from deployments.local_server import prefect_cli, prefect_server, run_deployment, wait_for_flow_runs
from deployments.processes import run_process
from grmux_sandbox.site import Sandbox
from tests.support import ROOT
from tests.support.deploy import clear_schedules, start_worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture
def server(tmp_path):
    with prefect_server(tmp_path / "prefect-home", log_path=tmp_path / "server.log", log_level="INFO") as env:
        yield env


def test_backfill_deployment_run_by_a_worker_mux_the_queried_calls(server, tmp_path, cleanup):
    env = server
    sandbox = cleanup.enter_context(Sandbox.start(tmp_path / "site"))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    calls = sandbox.seed(2, seed=5, scenarios=["normal", "encrypted"], start=start, size=(320, 240),
                         duration=(10.0, 12.0), spacing=(60.0, 70.0))
    config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=2)
    setup = run_process([sys.executable, "-m", "deployments.setup", "--config", str(config), "--deploy"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    listed = prefect_cli(env, "deployment", "ls")
    for name in ("primary", "backup", "backfill", "backfill-slice", "nightly-sr-alignment"):
        assert name in listed
    clear_schedules(env)  # the scheduled deployments must not run in this test: only the backfill is asked for
    caller = sandbox.call_recording(calls[0].call_id)["callerPhoneNumber"]
    run_id = run_deployment(env, "grmux/backfill", query=f"callerPhoneNumber={caller}")
    start_worker(cleanup, env, tmp_path / "worker.log")
    [run] = wait_for_flow_runs(env, [run_id], timeout=900, poll=3)
    state = run["state"]["type"]
    logs = (tmp_path / "worker.log").read_text()
    assert state == "COMPLETED", logs[-3000:]
    assert [wb["id"] for wb in sandbox.write_backs()] == [calls[0].call_id]
    assert run["name"] == "grmux-backfill-query-all"
    assert run["parameters"]["query"] == f"callerPhoneNumber={caller}"


def test_a_deployment_run_cancelled_mid_mux_ends_cancelled_and_a_rerun_muxes_each_call_once(server, tmp_path,
                                                                                          cleanup):
    """``prefect flow-run cancel`` of a worker's run while ffmpeg runs (a wrapper stalls the mux): the
    run ends Cancelled well within the worker's 30 s kill grace, ffmpeg gone, no second mux started,
    no call failed; a rerun of the deployment muxes each call exactly once."""
    import time

    from grmux_core.scratch import pid_alive
    from tests.reliability.campaign import audit
    from tests.reliability.test_cancel_run import slow_ffmpeg

    env = server
    sandbox = cleanup.enter_context(Sandbox.start(tmp_path / "site"))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    calls = sandbox.seed(2, seed=59, scenarios=["normal"], start=start, size=(320, 240), duration=(6.0, 8.0),
                         spacing=(60.0, 70.0))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    ffmpeg, marker = slow_ffmpeg(tmp_path)
    config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=1, temp_dir=str(scratch), ffmpeg=str(ffmpeg))
    setup = run_process([sys.executable, "-m", "deployments.setup", "--config", str(config), "--deploy"],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    clear_schedules(env)
    prefix = sandbox.call_recording(calls[0].call_id)["callerPhoneNumber"][:3]
    query = f"callerPhoneNumber={prefix}*"
    matching = [c for c in calls if sandbox.call_recording(c.call_id)["callerPhoneNumber"].startswith(prefix)]
    run_id = run_deployment(env, "grmux/backfill", query=query)
    start_worker(cleanup, env, tmp_path / "worker.log")
    deadline = time.monotonic() + 600
    while not (marker.exists() and marker.read_text().strip()):
        assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
        time.sleep(0.2)
    ffmpeg_pid = int(marker.read_text().split()[0])
    cancelled_at = time.monotonic()
    prefect_cli(env, "flow-run", "cancel", run_id)
    [run] = wait_for_flow_runs(env, [run_id], timeout=60, poll=0.5)
    print(f"deployment run {run['state']['type']} {time.monotonic() - cancelled_at:.1f} s after the cancel")
    logs = (tmp_path / "worker.log").read_text()
    assert run["state"]["type"] == "CANCELLED", logs[-3000:]
    assert not pid_alive(ffmpeg_pid)
    assert len(marker.read_text().splitlines()) == 1, "a mux started after the cancel"
    assert "ffmpeg (mux) failed" not in logs, logs[-3000:]
    rerun_config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=1, temp_dir=str(scratch))
    assert rerun_config == config  # the deployment reads the same file: now with the real ffmpeg
    [rerun] = wait_for_flow_runs(env, [run_deployment(env, "grmux/backfill", query=query)], timeout=600, poll=2)
    assert rerun["state"]["type"] == "COMPLETED", (tmp_path / "worker.log").read_text()[-3000:]
    result = audit(sandbox, matching, scratch)
    assert result.ok, result
