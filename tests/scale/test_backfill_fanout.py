"""A fanned-out backfill as operators run it: a PostgreSQL-backed Prefect server, two process
workers on the ``grmux`` pool, 10 days of sandbox time (3,000 metadata-only calls already muxed,
60 calls with real media) as ``grmux/backfill`` with ``since``/``until``. The parent is killed
(SIGKILL of its flow-run process) once a slice finished, then run again: it skips the slices done,
follows the ones still running, runs the rest; no slice runs twice, no call is muxed twice. Then a
nightly run given ``slice_minutes`` fans out the same way."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from collections import Counter

import pytest

from deployments.local_server import TERMINAL, run_deployment, wait_for_flow_runs
from grmux_sandbox.site import Sandbox
from tests.conftest import require_service
from tests.scale.harness import (
    BACKFILL_START,
    QUERY,
    ROOT,
    api,
    flow_run_pid,
    postgres_prefect_server,
    run_artifacts,
    runs_by_worker,
    seed_backfill_template,
    slice_runs,
)
from tests.support.deploy import deploy, start_worker, wait_for_workers

pytestmark = [pytest.mark.slow, pytest.mark.needs_postgres]
METADATA, REAL, DAYS = 3000, 60, 10
SLICE_MINUTES = 2 * 24 * 60  # five slices of two days


def _wait(what: str, check, timeout: float, poll: float = 1.0):
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)
    return found


def test_backfill_fans_out_over_both_workers_resumes_after_a_kill_and_muxes_each_call_once(tmp_path, cleanup):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    template = ROOT / "var" / "bench" / f"backfill-{METADATA}-{REAL}-{DAYS}"
    real_ids = seed_backfill_template(template, METADATA, REAL, DAYS)
    state = tmp_path / "site"
    shutil.copytree(template, state)
    env = cleanup.enter_context(postgres_prefect_server(tmp_path / "prefect-home"))
    sandbox = cleanup.enter_context(Sandbox.start(state))
    (state / "scratch").mkdir(exist_ok=True)
    config = sandbox.write_config(state / "muxer.cfg", worker_threads=2, temp_dir=str(state / "scratch"))
    deploy(env, config)
    worker_env = env | {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_LOGGING_LEVEL": "INFO"}
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    procs = [start_worker(cleanup, worker_env, log, "--limit", "2", "--name", f"grmux-worker-{i}")
             for i, log in enumerate(logs)]
    wait_for_workers(env, 2, procs, logs)
    until = BACKFILL_START.replace(day=BACKFILL_START.day + DAYS)
    params = {"since": BACKFILL_START.isoformat(), "until": until.isoformat(), "query": QUERY,
              "slice_minutes": SLICE_MINUTES, "max_parallel_slices": 2}

    first = run_deployment(env, "grmux/backfill", **params)
    _wait("a finished slice", lambda: any(r["state_type"] == "COMPLETED" for r in slice_runs(env)), 600)
    pid = _wait("the parent's process", lambda: flow_run_pid(first), 60, 0.2)
    os.kill(pid, signal.SIGKILL)
    before = {r["id"]: r["state_type"] for r in slice_runs(env)}
    _wait("the killed parent to end", lambda: api(env, f"/flow_runs/{first}")["state_type"] in TERMINAL, 120)

    second = run_deployment(env, "grmux/backfill", **params)
    [parent] = wait_for_flow_runs(env, [second], 900)
    assert parent["state"]["type"] == "COMPLETED", parent["state"]

    children = slice_runs(env)
    by_slice = Counter(next(t for t in r["tags"] if t.startswith("grmux-slice-")) for r in children)
    assert len(by_slice) == DAYS // 2 and set(by_slice.values()) == {1}, by_slice  # no slice ran twice
    assert {r["state_type"] for r in children} == {"COMPLETED"}
    assert any(state == "COMPLETED" for state in before.values())  # the kill left work done ...
    assert len(before) < len(children) or any(s != "COMPLETED" for s in before.values())  # ... and work to do
    # every real call muxed and registered exactly once, every metadata-only call skipped
    assert Counter(wb["id"] for wb in sandbox.write_backs()) == Counter(real_ids)
    artifacts = {a["key"]: a for a in run_artifacts(env, second) if a.get("key")}
    [counts] = json.loads(artifacts["grmux-backfill-counts"]["data"])
    assert counts.pop("list_requests") >= DAYS // 2  # summed over the slices
    assert {k: v for k, v in counts.items() if v} == {"muxed": REAL, "skipped": METADATA, "listed": REAL + METADATA}
    [progress] = [a for a in run_artifacts(env, second) if a["type"] == "progress"]
    assert progress["data"] == 100.0
    # slices the killed parent saw finish (and those that finished before the rerun looked) were skipped
    done_earlier = re.search(r"slices: 5 done \((\d+) earlier\), 0 running, 0 failed, 0 to do, of 5",
                             progress["description"])
    assert done_earlier, progress["description"]
    assert int(done_earlier[1]) >= sum(1 for state in before.values() if state == "COMPLETED")
    rows = json.loads(artifacts["grmux-backfill-slices"]["data"])
    assert sum(int(r["listed"]) for r in rows) == REAL + METADATA
    # both workers of the pool ran slices
    assert all(n >= 1 for n in runs_by_worker(logs, [r["id"] for r in children]).values())

    # the nightly run fans out the same way when given slice_minutes: its two days, two slice runs
    nightly = run_deployment(env, "grmux/nightly-sr-alignment", slice_minutes=24 * 60, max_parallel_slices=2)
    [run] = wait_for_flow_runs(env, [nightly], 600)
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert run["name"].startswith("grmux-nightly-") and run["name"].endswith("-slices")
    assert len(slice_runs(env)) == len(children) + 2
