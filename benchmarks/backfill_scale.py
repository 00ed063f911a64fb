"""A fanned-out backfill at scale: 10,000 and 100,000 metadata-only calls, two workers vs one.

    .venv/bin/python benchmarks/backfill_scale.py [--sizes 10000 100000] [--per-day 1000]
        [--parallel-per-worker 2] [--ratio-size 10000]

Each size gets a sandbox of metadata-only calls, ``--per-day`` calls a day (so one slice of a day
holds the same number of calls at every size and 10x the calls is 10x the slices), every call
already muxed (each ends *skipped*: listed, bulk-read, checked, classified, logged, counted; no
media). A Prefect server on the machine's PostgreSQL, process workers on the ``grmux`` pool, the
deployments of ``prefect.yaml``; then ``grmux/backfill`` over the whole range with slices of a day,
``max_parallel_slices`` = workers x ``--parallel-per-worker``.

Printed per run: the wall time (parent submitted → parent finished), the peak RSS (``VmHWM``) of
the parent's flow-run process and of the largest slice run (sampled from ``/proc`` while they run),
and the Prefect database rows written per call (flow runs, states, task runs, logs, artifacts,
events). Then the time ratio of the largest to the smallest size (target ≤ 11 for 10x), the RSS
at each size (target flat), and the throughput of two workers against one at ``--ratio-size``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from typing import Self

from benchmarks.window_scale import print_time_ratio
from deployments.local_server import run_deployment, wait_for_flow_runs
from tests.scale.harness import BACKFILL_START, postgres_prefect_server, slice_runs
from tests.support.cleanup import Cleanup
from tests.support.deploy import deploy, start_worker, wait_for_workers

TABLES = ("flow_run", "flow_run_state", "task_run", "task_run_state", "log", "artifact", "events",
          "event_resources")


def seed(path: Path, calls: int, per_day: int) -> int:
    """``calls`` metadata-only calls, already muxed, ``per_day`` a day; returns the number of days."""
    from benchmarks.window_scale import mark_muxed
    from grmux_sandbox.site import Sandbox

    days = -(-calls // per_day)
    marker = path / "seeded.json"
    if marker.exists() and json.loads(marker.read_text()) == {"calls": calls, "per_day": per_day}:
        return days
    shutil.rmtree(path, ignore_errors=True)
    sandbox = Sandbox.open(path)
    gap = 86_400 / per_day * 0.9
    for day in range(days):
        count = min(per_day, calls - day * per_day)
        for call_id in sandbox.seed_metadata(count, seed=day, start=BACKFILL_START + timedelta(days=day, seconds=30),
                                             spacing=(gap, gap), duration=(20.0, 60.0), screen_share=1.0):
            mark_muxed(sandbox.store, call_id)
    marker.write_text(json.dumps({"calls": calls, "per_day": per_day}))
    return days


class PeakRss:
    """Samples the peak RSS (VmHWM) of every flow-run process of this host while it runs."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    env = (entry / "environ").read_bytes().split(b"\0")
                    run_id = next((v[21:].decode() for v in env if v.startswith(b"PREFECT__FLOW_RUN_ID=")), None)
                    if run_id is None:
                        continue
                    status = (entry / "status").read_text()
                except OSError:
                    continue
                hwm = next((int(line.split()[1]) / 1024 for line in status.splitlines()
                            if line.startswith("VmHWM:")), 0.0)
                self.peaks[run_id] = max(self.peaks.get(run_id, 0.0), hwm)


def database_rows(env: dict[str, str]) -> dict[str, int]:
    import asyncpg

    name = env["PREFECT_SERVER_DATABASE_CONNECTION_URL"].rsplit("/", 1)[1]

    async def count() -> dict[str, int]:
        db = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database=name)
        try:
            out = {}
            for table in TABLES:
                if await db.fetchval("SELECT to_regclass($1)", table):
                    out[table] = await db.fetchval(f'SELECT count(*) FROM "{table}"')
            return out
        finally:
            await db.close()

    return asyncio.run(count())


def run_once(template: Path, days: int, calls: int, workers: int, per_worker: int, work: Path) -> dict:
    from grmux_sandbox.site import Sandbox

    state = work / f"site-{calls}-{workers}w"
    shutil.copytree(template, state)
    with postgres_prefect_server(work / f"home-{calls}-{workers}w") as env, Cleanup() as cleanup:
        sandbox = cleanup.enter_context(Sandbox.start(state))
        config = sandbox.write_config(state / "muxer.cfg", worker_threads=4, logfile_path=str(state))
        deploy(env, config)
        worker_env = env | {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_LOGGING_LEVEL": "INFO"}
        logs = [work / f"worker-{calls}-{workers}w-{i}.log" for i in range(workers)]
        procs = [start_worker(cleanup, worker_env, log, "--limit", str(per_worker + 1), "--name", f"w{i}")
                 for i, log in enumerate(logs)]
        wait_for_workers(env, workers, procs, logs)
        rows_before = database_rows(env)
        until = BACKFILL_START + timedelta(days=days)
        with PeakRss() as rss:
            started = time.monotonic()
            parent = run_deployment(env, "grmux/backfill", since=BACKFILL_START.isoformat(), until=until.isoformat(),
                                    slice_minutes=1440, max_parallel_slices=workers * per_worker)
            [run] = wait_for_flow_runs(env, [parent], 4 * 3600, poll=2.0)
            seconds = time.monotonic() - started
        rows = database_rows(env)
        children = [r["id"] for r in slice_runs(env)]
        written = {t: rows[t] - rows_before.get(t, 0) for t in rows}
        return {"calls": calls, "workers": workers, "seconds": seconds, "state": run["state"]["type"],
                "slices": len(children), "parent_rss": rss.peaks.get(parent, 0.0),
                "slice_rss": max((rss.peaks.get(c, 0.0) for c in children), default=0.0),
                "rows_per_call": sum(written.values()) / calls, "rows": written}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--per-day", type=int, default=1000)
    parser.add_argument("--parallel-per-worker", type=int, default=2)
    parser.add_argument("--ratio-size", type=int, default=10_000, help="size of the 1-worker vs 2-worker run (0: none)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="grmux-bench-backfill-"))
    results = []
    try:
        plan = [(size, 2) for size in args.sizes] + ([(args.ratio_size, 1)] if args.ratio_size else [])
        for size, workers in plan:
            template = ROOT / "var" / "bench" / f"backfill-meta-{size}-{args.per_day}"
            t = time.perf_counter()
            days = seed(template, size, args.per_day)
            seeded = time.perf_counter() - t
            r = run_once(template, days, size, workers, args.parallel_per_worker, work)
            results.append(r)
            print(f"{size:>7} calls, {r['slices']:>3} slices, {workers} worker(s): {r['seconds']:7.1f} s "
                  f"({size / r['seconds']:.0f} calls/s), {r['state']}; peak RSS parent {r['parent_rss']:.0f} MiB, "
                  f"largest slice run {r['slice_rss']:.0f} MiB; {r['rows_per_call']:.3f} DB rows per call "
                  f"{r['rows']} (seeded in {seeded:.0f} s)", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    two = [r for r in results if r["workers"] == 2]
    if len(two) >= 2:
        small, large = two[0], two[-1]
        print_time_ratio(small["calls"], small["seconds"], large["calls"], large["seconds"])
        print(f"peak RSS parent {small['parent_rss']:.0f} → {large['parent_rss']:.0f} MiB, "
              f"slice run {small['slice_rss']:.0f} → {large['slice_rss']:.0f} MiB (target flat)")
    one = [r for r in results if r["workers"] == 1]
    pair = [r for r in two if one and r["calls"] == one[0]["calls"]]
    if one and pair:
        print(f"throughput two workers / one at {one[0]['calls']} calls: {one[0]['seconds'] / pair[0]['seconds']:.2f}x "
              f"({os.cpu_count()} CPUs on this one host)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
