"""Scale-out as operators run it: a Prefect server on PostgreSQL, process workers on one work pool,
and the two shards of one window run as two deployment runs at the same time.

Used by ``tests/scale/test_scale_out.py`` and runnable by hand to print the throughput of two
workers against one (same window, same two shard runs, fresh sandbox each time)::

    .venv/bin/python -m tests.scale.harness [--calls 24] [--threads 2]

Each shard run is ``grmux/backfill`` with ``muxer_id`` 0 or 1 of ``total_muxers`` 2 (the backfill
deployment allows two runs at once). With one worker (``--limit 1``) the two runs go one after the
other; with two workers (``--limit 1`` each) they run side by side.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.pipeline_overhead import create_postgres_database, drop_postgres_database
from deployments.local_server import prefect_server, run_deployment, wait_for_flow_runs
from tests.support.cleanup import Cleanup
from tests.support.deploy import deploy, start_worker, wait_for_workers

QUERY = "userData=SRSScreenRecordingStateStarted"


@contextlib.contextmanager
def postgres_prefect_server(home: Path) -> Iterator[dict[str, str]]:
    """A fresh database (with pg_trgm) on the machine's PostgreSQL and a Prefect server on it."""
    name = f"grmux_scale_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = create_postgres_database(name)
    try:
        with prefect_server(home, url) as env:
            yield env
    finally:
        with contextlib.suppress(Exception):
            drop_postgres_database(name)


def seed_template(path: Path, calls: int) -> None:
    from grmux_sandbox.site import Sandbox

    marker = path / "seeded.json"
    if marker.exists() and json.loads(marker.read_text()).get("calls") == calls:
        return
    shutil.rmtree(path, ignore_errors=True)
    Sandbox.open(path).seed(calls, seed=3, scenarios=["normal"], start=datetime(2026, 2, 2, 9, 0, tzinfo=UTC),
                            size=(320, 240), duration=(6.0, 8.0), spacing=(20.0, 30.0))
    marker.write_text(json.dumps({"calls": calls}))


@dataclass
class ScaleOutResult:
    workers: int
    seconds: float  # first run submitted → both runs terminal
    states: list[str]
    write_backs: list[str]  # call ids, one per accepted write-back
    call_ids: list[str]
    runs_by_worker: dict[str, int] = field(default_factory=dict)
    overlap_s: float = 0.0  # how long both shard runs were running at once


def run_shards(env: dict[str, str], template: Path, work: Path, workers: int, threads: int = 2,
               timeout: float = 1200) -> ScaleOutResult:
    """Both shards of the template's window as two ``grmux/backfill`` runs, on ``workers`` workers."""
    from grmux_sandbox.site import Sandbox

    state = work / f"site-{workers}w-{uuid.uuid4().hex[:6]}"
    shutil.copytree(template, state)
    with Cleanup() as cleanup:  # workers stopped (bounded), then the sandbox, whatever failed
        sandbox = cleanup.enter_context(Sandbox.start(state))
        scratch = state / "scratch"
        scratch.mkdir(exist_ok=True)
        config = sandbox.write_config(state / "muxer.cfg", worker_threads=threads, temp_dir=str(scratch))
        deploy(env, config)
        worker_env = env | {"PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_LOGGING_LEVEL": "INFO"}
        logs = [work / f"worker-{workers}w-{i}.log" for i in range(workers)]
        procs = [start_worker(cleanup, worker_env, log, "--limit", "1", "--name", f"grmux-worker-{i}")
                 for i, log in enumerate(logs)]
        wait_for_workers(env, workers, procs, logs)  # all polling before anything is scheduled
        started = time.monotonic()
        run_ids = [run_deployment(env, "grmux/backfill", query=QUERY, muxer_id=shard, total_muxers=2)
                   for shard in (0, 1)]
        runs = wait_for_flow_runs(env, run_ids, timeout)
        seconds = time.monotonic() - started
        # the run's own "View at .../flow-run/<id>" line is in the log of the worker whose flow-run
        # process ran it (a bare id is not: both workers may try to submit a run, one is refused)
        by_worker = runs_by_worker(logs, run_ids)
        return ScaleOutResult(workers=workers, seconds=seconds, states=[r["state"]["type"] for r in runs],
                              write_backs=[wb["id"] for wb in sandbox.write_backs()],
                              call_ids=sandbox.call_ids(), runs_by_worker=by_worker, overlap_s=overlap(runs))


def overlap(runs: list[dict]) -> float:
    spans = []
    for r in runs:
        if not (r.get("start_time") and r.get("end_time")):
            return 0.0
        spans.append((datetime.fromisoformat(r["start_time"]), datetime.fromisoformat(r["end_time"])))
    (a0, a1), (b0, b1) = spans
    return max(0.0, (min(a1, b1) - max(a0, b0)).total_seconds())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="throughput of two process workers vs one (PostgreSQL server)")
    parser.add_argument("--calls", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2, help="[advanced] worker_threads of each run")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="grmux-scale-"))
    template = ROOT / "var" / "bench" / f"scale-{args.calls}"
    try:
        seed_template(template, args.calls)
        results = []
        for workers in (1, 2):
            with postgres_prefect_server(work / f"home-{workers}") as env:
                r = run_shards(env, template, work, workers, args.threads)
            once = sorted(r.write_backs) == sorted(r.call_ids)
            results.append(r)
            print(f"{workers} worker(s): {r.seconds:6.1f} s for {args.calls} calls in 2 shard runs "
                  f"({args.calls / r.seconds:.2f} calls/s); states {r.states}; each call muxed once: {once}; "
                  f"runs per worker {r.runs_by_worker}; shard runs overlapped {r.overlap_s:.1f} s", flush=True)
        one, two = results
        print(f"\nthroughput two workers / one: {one.seconds / two.seconds:.2f}x "
              f"({os.cpu_count()} CPUs on this one host: ffmpeg shares them)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# --------------------------------------------------------------------------------------------
# A fanned-out backfill (tests/scale/test_backfill_fanout.py, benchmarks/backfill_scale.py)

BACKFILL_START = datetime(2026, 3, 1, tzinfo=UTC)


def seed_backfill_template(path: Path, metadata: int, real: int, days: int) -> list[str]:
    """``metadata`` metadata-only calls (already muxed: each ends *skipped*) and ``real`` calls with
    real media (each ends *muxed*), spread evenly over ``days`` days from :data:`BACKFILL_START`.
    Seeded once per shape into ``path`` (reused by later runs); returns the real calls' ids."""
    from benchmarks.window_scale import mark_muxed
    from grmux_sandbox.site import Sandbox

    marker = path / "seeded.json"
    shape = {"metadata": metadata, "real": real, "days": days}
    if marker.exists() and json.loads(marker.read_text()).get("shape") == shape:
        return json.loads(marker.read_text())["real_ids"]
    shutil.rmtree(path, ignore_errors=True)
    sandbox = Sandbox.open(path)
    per_day = -(-metadata // days)
    gap = 86_400 / max(1, per_day)
    real_ids: list[str] = []
    for day in range(days):
        start = BACKFILL_START + timedelta(days=day)
        count = min(per_day, metadata - day * per_day)
        for call_id in sandbox.seed_metadata(count, seed=day, start=start + timedelta(seconds=30),
                                             spacing=(gap * 0.9, gap * 0.9), duration=(20.0, 60.0),
                                             screen_share=1.0):
            mark_muxed(sandbox.store, call_id)
        share = real // days + (1 if day < real % days else 0)
        if share:
            calls = sandbox.seed(share, seed=100 + day, scenarios=["normal"], start=start + timedelta(hours=5),
                                 size=(160, 120), duration=(6.0, 6.5), spacing=(600.0, 900.0))
            real_ids += [c.call_id for c in calls]
    marker.write_text(json.dumps({"shape": shape, "real_ids": real_ids}))
    return real_ids


def api(env: dict[str, str], path: str, body: Any = None) -> Any:
    """One request to the Prefect API of ``env`` (POST when ``body`` is given), as JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{env['PREFECT_API_URL']}{path}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def slice_runs(env: dict[str, str]) -> list[dict[str, Any]]:
    """Every flow run of ``grmux/backfill-slice`` so far."""
    deployment = api(env, "/deployments/name/grmux/backfill-slice")
    return api(env, "/flow_runs/filter", {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}},
                                          "limit": 200})


def run_artifacts(env: dict[str, str], run_id: str) -> list[dict[str, Any]]:
    return api(env, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run_id]}}, "limit": 200})


def flow_run_pid(run_id: str) -> int | None:
    """The pid of the process running flow run ``run_id`` on this host (a worker gives its flow-run
    process ``PREFECT__FLOW_RUN_ID`` in its environment), or None."""
    needle = f"PREFECT__FLOW_RUN_ID={run_id}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    return int(entry.name)
            except OSError:
                continue
    return None


def runs_by_worker(logs: list[Path], run_ids: list[str]) -> dict[str, int]:
    """How many of ``run_ids`` each worker's flow-run processes ran (its log names the run's page)."""
    return {log.stem: sum(1 for run_id in run_ids if f"/flow-run/{run_id}" in log.read_text()) for log in logs}
