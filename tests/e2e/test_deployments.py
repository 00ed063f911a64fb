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
