"""End to end as an operator runs it: a real `prefect server`, `deployments.setup --deploy`, a process
worker, and `prefect deployment run grmux/backfill --param query=...` muxing real sandbox calls."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployments.local_server import prefect_server
from grmux_sandbox.site import Sandbox

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def prefect(env: dict[str, str], *args: str, check: bool = True, timeout: float = 180) -> str:
    done = subprocess.run([sys.executable, "-m", "prefect", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout + done.stderr


@pytest.fixture
def server(tmp_path):
    with prefect_server(tmp_path / "prefect-home", log_path=tmp_path / "server.log", log_level="INFO") as env:
        yield env


def test_backfill_deployment_run_by_a_worker_mux_the_queried_calls(server, tmp_path):
    env = server
    sandbox = Sandbox.start(tmp_path / "site")
    worker = None
    try:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
        calls = sandbox.seed(2, seed=5, scenarios=["normal", "encrypted"], start=start, size=(320, 240),
                             duration=(10.0, 12.0), spacing=(60.0, 70.0))
        config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=2)
        setup = subprocess.run([sys.executable, "-m", "deployments.setup", "--config", str(config), "--deploy"],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        listed = prefect(env, "deployment", "ls")
        for name in ("primary", "backup", "backfill", "nightly-sr-alignment"):
            assert name in listed
        # the scheduled deployments must not run in this test: only the backfill is asked for
        for name in ("primary", "backup", "nightly-sr-alignment"):
            prefect(env, "deployment", "schedule", "clear", f"grmux/{name}", "-y")
        caller = sandbox.call_recording(calls[0].call_id)["callerPhoneNumber"]
        out = prefect(env, "deployment", "run", "grmux/backfill", "--param", f"query=callerPhoneNumber={caller}")
        run_id = next(line.split()[-1] for line in out.splitlines() if "UUID" in line)
        worker = subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", "grmux"],
                                  cwd=ROOT, env=env, stdout=open(tmp_path / "worker.log", "w"),
                                  stderr=subprocess.STDOUT)
        state = ""
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            info = prefect(env, "flow-run", "inspect", run_id, "--output", "json")
            run = json.loads(info[info.index("{"):])
            state = run["state"]["type"]
            if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                break
            time.sleep(3)
        logs = (tmp_path / "worker.log").read_text()
        assert state == "COMPLETED", logs[-3000:]
        assert [wb["id"] for wb in sandbox.write_backs()] == [calls[0].call_id]
        assert run["name"] == "grmux-backfill-query-all"
        assert run["parameters"]["query"] == f"callerPhoneNumber={caller}"
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        sandbox.stop()
