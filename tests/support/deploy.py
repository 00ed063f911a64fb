"""grmux's deployments on a real Prefect server, as an operator sets them up, and process workers.

Only the runs a test asks for may run: the scheduled deployments' schedules are cleared right
after the deploy. Workers are started in their own process group (stopped by the ``Cleanup``
they are given) and waited for until the server lists them online, instead of a fixed sleep that
a cold host outlasts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from deployments.local_server import prefect_cli
from deployments.processes import run_process, start_process
from tests.support import ROOT
from tests.support.cleanup import Cleanup

SCHEDULED = ("primary", "backup", "nightly-sr-alignment", "canary")
#: a worker's graceful stop waits for its flow-run processes: give it time before the SIGKILL
WORKER_GRACE_S = 60.0


def deploy(env: dict[str, str], config: Path, *setup_args: str, timeout: float = 600) -> None:
    """``deployments.setup --deploy SETUP_ARGS``, then no schedule: nothing runs but what the test starts."""
    done = run_process([sys.executable, "-m", "deployments.setup", "--config", str(config), "--deploy", *setup_args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"deployments.setup --deploy failed:\n{done.stdout}\n{done.stderr}")
    clear_schedules(env)


def clear_schedules(env: dict[str, str]) -> None:
    """The scheduled deployments must not run in a test: only what the test asks for runs."""
    for name in SCHEDULED:
        prefect_cli(env, "deployment", "schedule", "clear", f"grmux/{name}", "-y")


def start_worker(cleanup: Cleanup, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    """``prefect worker start --pool grmux ARGS``, output to ``log``, stopped by ``cleanup``."""
    out = open(log, "w")  # noqa: SIM115 - closed by cleanup, after the worker stopped
    cleanup.callback(out.close)
    proc = start_process([sys.executable, "-m", "prefect", "worker", "start", "--pool", "grmux", *args],
                         cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return cleanup.process(proc, grace=WORKER_GRACE_S)


def online_workers(env: dict[str, str], pool: str = "grmux") -> list[str]:
    """Names of the pool's workers the server sees online."""
    url = f"{env['PREFECT_API_URL']}/work_pools/{pool}/workers/filter"
    request = urllib.request.Request(url, data=b"{}", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return [w["name"] for w in json.load(answer) if w.get("status") == "ONLINE"]


def wait_for_workers(env: dict[str, str], count: int, procs: list[subprocess.Popen], logs: list[Path], *,
                     timeout: float = 300) -> list[str]:
    """Wait until ``count`` workers are online (a cold start takes a while); fail early if one died."""
    deadline = time.monotonic() + timeout
    while len(online := online_workers(env)) < count:
        for proc, log in zip(procs, logs, strict=True):
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(online)} of {count} workers online after {timeout:.0f} s")
        time.sleep(1)
    return online
