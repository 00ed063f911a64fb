"""The grmux flow with a Dask task runner (prefect-dask, a local cluster of worker processes): what a
site with CPU-bound muxing and spare cores uses instead of the default thread pool (docs/operations.md, "When to use a Dask task runner")."""

from __future__ import annotations

import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from deployments.local_server import prefect_server
from deployments.processes import run_process
from grmux_sandbox.site import Sandbox
from tests.scale.harness import ROOT

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent('''
    import json, sys
    from prefect_dask import DaskTaskRunner
    from flows.grmux import grmux

    if __name__ == "__main__":
        runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                                "dashboard_address": None})
        state = grmux.with_options(task_runner=runner)(config_path=sys.argv[1], return_state=True)
        summary = state.data if state.is_failed() else state.result()
        print("SUMMARY " + json.dumps(summary))
        sys.exit(0 if state.is_completed() else 1)
''')


def test_the_flow_on_a_dask_local_cluster_muxes_each_call_once(tmp_path, cleanup):
    import json

    sandbox = cleanup.enter_context(Sandbox.start(tmp_path / "site"))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    calls = sandbox.seed(3, seed=41, scenarios=["normal", "encrypted", "normal"], start=start,
                         size=(320, 240), duration=(8.0, 10.0), spacing=(60.0, 70.0))
    config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=3)
    script = tmp_path / "run_dask.py"
    script.write_text(SCRIPT)
    with prefect_server(tmp_path / "prefect-home") as env:
        # the Dask cluster's worker processes are in the script's process group: stopped with it on timeout
        done = run_process([sys.executable, str(script), str(config)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=500)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    summary = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("SUMMARY "))[8:])
    assert summary["counts"]["muxed"] == 3, summary
    assert Counter(wb["id"] for wb in sandbox.write_backs()) == Counter(c.call_id for c in calls)
