"""Crash recovery as an operator's host meets it: a worker killed with -9 in the middle of a window,
on a real ``prefect server`` set up by ``deployments.setup`` (so the two crash-recovery automations
exist), then a second worker.

The first worker and its flow-run process are SIGKILLed together (the worker starts the flow run in
a session of its own, so both process groups are killed, as when the host dies) while the second
call's ffmpeg runs (a wrapper as ``[processing] ffmpeg`` stalls each mux a few seconds, so the first
call is already registered). Nothing tells the server: only the missing heartbeats do. Checked: the
run is marked Crashed by ``grmux-mark-unresponsive-crashed``; ``grmux-rerun-crashed`` creates one
``resumed-grmux-…`` run of the same deployment with the same parameters, which the second worker
completes; every call registered exactly once, no orphan, scratch empty, originals unchanged; and no
third run (the rerun is not rerun).

A server of its own (not the session's): the automations act on every run of their server.
Heartbeats every 30 s (Prefect's minimum) and a 45 s unresponsive window instead of 60/90 s.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import time
import urllib.request
from typing import Any

import pytest

from deployments.local_server import prefect_server, run_deployment, wait_for_flow_runs
from flows.grmux import grmux
from tests.reliability.campaign import audit, small_site
from tests.reliability.test_cancel_run import slow_ffmpeg
from tests.support.deploy import deploy, start_worker

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
CALLS = 3
HEARTBEAT_S = 30
UNRESPONSIVE_S = 45


@pytest.fixture
def server(tmp_path):
    with prefect_server(tmp_path / "prefect-home", log_path=tmp_path / "server.log", log_level="INFO") as env:
        yield env | {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_S)}


def flow_runs(env: dict[str, str], deployment_id: str) -> list[dict[str, Any]]:
    """Every flow run of the deployment, oldest first, from the server's API."""
    body = json.dumps({"deployments": {"id": {"any_": [deployment_id]}}, "sort": "EXPECTED_START_TIME_ASC"})
    request = urllib.request.Request(f"{env['PREFECT_API_URL']}/flow_runs/filter", data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)


def kill_host(worker_pid: int, ffmpeg_pid: int) -> None:
    """SIGKILL the worker's process group and the flow run's (ffmpeg's), back to back."""
    flow_group = os.getpgid(ffmpeg_pid)
    os.killpg(worker_pid, signal.SIGKILL)
    os.killpg(flow_group, signal.SIGKILL)


def wait_for(what: str, probe, timeout: float, log) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := probe()):
        assert time.monotonic() < deadline, f"{what} not seen in {timeout:.0f} s:\n{log()[-3000:]}"
        time.sleep(1)
    return found


def test_a_worker_killed_mid_window_is_rerun_by_the_automation_and_each_call_is_muxed_once(server, tmp_path,
                                                                                         cleanup):
    env = server
    sandbox, calls, scratch = small_site(cleanup, tmp_path, CALLS, seed=67)
    ffmpeg, marker = slow_ffmpeg(tmp_path, stall_s=4)
    config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=1, temp_dir=str(scratch), ffmpeg=str(ffmpeg))
    deploy(env, config, "--heartbeat-timeout", str(UNRESPONSIVE_S))
    first, last = min(c.start_epoch for c in calls) - 60, max(c.stop_epoch for c in calls) + 60
    query = f"startTime={int(first * 1000)}&endTime={int(last * 1000)}"
    run_id = run_deployment(env, "grmux/backfill", query=query)
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    worker = start_worker(cleanup, env, logs[0])

    def worker_logs() -> str:
        return "\n".join(p.read_text() for p in logs if p.exists())

    wait_for("a second mux", lambda: len(marker.read_text().splitlines()) >= 2 if marker.exists() else False,
             600, worker_logs)
    registered_before = [wb["id"] for wb in sandbox.write_backs()]
    kill_host(worker.pid, int(marker.read_text().splitlines()[-1].split()[0]))
    killed_at = time.monotonic()
    worker.wait(timeout=30)
    assert registered_before, "the first call was registered before the kill"
    assert len(registered_before) < CALLS, "the kill came before the window ended"
    sandbox.write_config(config, worker_threads=1, temp_dir=str(scratch))  # the same file, the real ffmpeg
    start_worker(cleanup, env, logs[1])

    [crashed] = wait_for_flow_runs(env, [run_id], timeout=300, poll=2)
    assert crashed["state"]["type"] == "CRASHED", worker_logs()[-3000:]
    print(f"marked Crashed {time.monotonic() - killed_at:.0f} s after the kill: {crashed['state']['message']}")
    deployment = crashed["deployment_id"]
    [resumed] = wait_for("the automation's rerun", lambda: [r for r in flow_runs(env, deployment) if r["id"] != run_id],
                         120, lambda: (tmp_path / "server.log").read_text())
    print(f"rerun created {time.monotonic() - killed_at:.0f} s after the kill")
    [resumed] = wait_for_flow_runs(env, [resumed["id"]], timeout=600, poll=2)
    print(f"rerun {resumed['state']['type']} {time.monotonic() - killed_at:.0f} s after the kill")
    assert resumed["state"]["type"] == "COMPLETED", worker_logs()[-3000:]
    assert resumed["name"] == "resumed-" + crashed["name"]
    assert resumed["created_by"]["type"] == "AUTOMATION"
    defaults = {name: p.default for name, p in inspect.signature(grmux.fn).parameters.items()}
    assert resumed["parameters"] == defaults | crashed["parameters"]  # the flow's defaults made explicit

    result = audit(sandbox, calls, scratch)
    assert result.ok, result
    assert sorted(wb["id"] for wb in sandbox.write_backs()) == sorted(c.call_id for c in calls)
    # no loop: once the rerun ended nothing else was started (an automation acts within seconds)
    time.sleep(10)
    assert [r["id"] for r in flow_runs(env, deployment)] == [run_id, resumed["id"]]
