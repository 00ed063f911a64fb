"""What the Prefect orchestration costs: the grmux flow vs the same per-call functions in a bare pool.

    .venv/bin/python benchmarks/pipeline_overhead.py [--calls 200] [--repeat 3] [--threads 4]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB] [--keep DIR]

The same sandbox window of ``--calls`` short calls (real media: 320x240 H.264 screen, MP3 audio,
6-8 s) is processed, from a fresh copy of the seeded sandbox state each time, by

(a) **flow**: ``flows.grmux.grmux(mode="backfill", query=...)`` in a child process talking to a
    running ``prefect server`` (SQLite in a temporary PREFECT_HOME, or ``--database-url``),
    prepared by ``python -m deployments.setup`` (work pool, global concurrency limits, variables),
    exactly as a deployment run executes it;
(b) **bare**: the same ``grmux_core`` steps in a child process without Prefect: ``list_calls``,
    bulk screen reads, the metadata checks, ``triage`` (as the flow), then ``process_call`` with one shared
    ``Services`` in a ``ThreadPoolExecutor(worker_threads)``, ffmpeg bounded to the CPU count as
    the flow's guard does.

Both children report phase times measured inside them (process start-up and imports excluded,
reported separately); the flow is run as it is, its phases read from the server's records of
its task runs. Runs alternate flow/bare; the medians and their ratio are printed (target:
flow/bare ≤ 1.3), then where the flow's extra time goes: set-up before listing, the metadata stage,
the mux window (with the sum of ``process_call`` times, so per-task overhead shows), the report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from deployments.local_server import free_port, prefect_env, prefect_server  # noqa: F401 - re-exported

QUERY = "userData=SRSScreenRecordingStateStarted"


# ----------------------------------------------------------------------------- Prefect server


def create_postgres_database(name: str, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres") -> str:
    """Create (or recreate) database ``name`` with ``pg_trgm``; returns Prefect's connection URL."""
    import asyncio

    import asyncpg

    async def create() -> None:
        admin = await asyncpg.connect(host=host, port=port, user=user, database="postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        db = await asyncpg.connect(host=host, port=port, user=user, database=name)
        try:
            await db.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        finally:
            await db.close()

    asyncio.run(create())
    return f"postgresql+asyncpg://{user}@{host}:{port}/{name}"


def drop_postgres_database(name: str, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres") -> None:
    import asyncio

    import asyncpg

    async def drop() -> None:
        admin = await asyncpg.connect(host=host, port=port, user=user, database="postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(drop())


def run_setup(env: dict[str, str], config: Path) -> None:
    """``python -m deployments.setup``: pool, global concurrency limits, variables (no deploy)."""
    done = subprocess.run([sys.executable, "-m", "deployments.setup", "--config", str(config)], cwd=ROOT,
                          env=env, capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"deployments.setup failed:\n{done.stdout}{done.stderr}")


# ----------------------------------------------------------------------------- children


def child_flow(config: str, query: str) -> dict:
    """Run the grmux flow in this process (PREFECT_API_URL points at the server).

    The flow is run as it is, not patched: its phases and per-call times are read afterwards from
    the server's records of its task runs (listing starts with ``list-calls``, muxing after
    ``check-metadata-quality``, and ends with the last ``mux-call``).
    """
    t_import = time.perf_counter()
    import flows.grmux as flow_module
    from tasks.context import forget_services

    imported = time.perf_counter() - t_import
    t0, wall0 = time.perf_counter(), time.time()
    state = flow_module.grmux(mode="backfill", config_path=config, query=query, return_state=True)
    total = time.perf_counter() - t0
    summary = state.data if state.is_failed() else state.result()
    forget_services()
    to_mux = summary["counts"]["muxed"] + summary["counts"]["failed"]  # the calls that got a task run
    marks, per_call = flow_phases(state.state_details.flow_run_id, wall0, to_mux)
    return {"total": total, "imports": imported, "counts": summary["counts"], "marks": marks,
            "process_call_sum": sum(per_call), "process_calls": len(per_call)}


def flow_phases(flow_run_id, wall0: float, calls: int, timeout: float = 120.0) -> tuple[dict[str, float], list[float]]:
    """The flow run's phase marks (seconds after ``wall0``) and each ``mux-call`` task run's
    running time, from the server. The records arrive shortly after the flow returns: this
    waits until the listing and check task runs and the ``calls`` per-call ones are final."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            runs = []
            while batch := client.read_task_runs(flow_run_filter=flow_runs, limit=200, offset=len(runs)):
                runs += batch
            final = [r for r in runs if r.state and r.state.is_final() and r.start_time and r.end_time]
            per_call = [r for r in final if r.name.startswith("mux-")]
            stages = all(any(r.name.startswith(p) for r in final) for p in ("list-calls", "check-metadata-quality"))
            if (stages and len(per_call) >= calls) or time.monotonic() > deadline:
                break
            time.sleep(1.0)

    def at(prefix: str, end: bool = False) -> float | None:
        times = [(r.end_time if end else r.start_time).timestamp() for r in final if r.name.startswith(prefix)]
        return (max(times) if end else min(times)) - wall0 if times else None

    marks = {"listing": at("list-calls"), "mux_start": at("check-metadata-quality", end=True)}
    marks["mux_end"] = marks["report"] = at("mux-", end=True) or marks["mux_start"]
    return ({k: v for k, v in marks.items() if v is not None},
            [r.total_run_time.total_seconds() for r in per_call])


class Phases:
    def __init__(self) -> None:
        self.marks: dict[str, float] = {}
        self.process_call: list[float] = []

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.perf_counter())

    def report(self, t0: float) -> dict:
        return {"marks": {k: v - t0 for k, v in self.marks.items()},
                "process_call_sum": sum(self.process_call), "process_calls": len(self.process_call)}


def child_bare(config: str, query: str) -> dict:
    """The same grmux_core steps, no Prefect: one Services, a ThreadPoolExecutor(worker_threads)."""
    t_import = time.perf_counter()
    import concurrent.futures

    from grmux_core.call import process_call
    from grmux_core.config import load_settings
    from grmux_core.cycle import cycle_scope, mode_overrides
    from grmux_core.listing import list_calls
    from grmux_core.models import ScreenRecording
    from grmux_core.quality import metadata_rows, validate_metadata
    from grmux_core.services import Services
    from grmux_core.triage import triage

    imported = time.perf_counter() - t_import
    phases = Phases()
    t0 = time.perf_counter()
    settings = load_settings(config, overrides=mode_overrides("backfill", query=query))
    scope = cycle_scope(settings, "backfill", datetime.now(UTC))
    services = Services.from_settings(settings)
    phases.mark("listing")
    encryption = services.output_encryption()  # once per cycle, as the flow does
    listing = list_calls(services.rws, window=scope.window, pieces=scope.pieces, query=scope.query,
                         shard=scope.shard)
    screens = services.rws.screen_recordings([c.id for c in listing.calls]) if listing.calls else {}
    good = {k: v for k, v in screens.items() if isinstance(v, ScreenRecording)}
    quality = validate_metadata(metadata_rows(listing.calls, good), scope.window)
    decided = triage(listing, screens, quality.rejected)
    phases.mark("mux_start")

    # the same bound on ffmpeg as the flow's guard (this host's CPUs), so only Prefect differs
    import threading

    ffmpeg_slots = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))

    def guard(service: str):
        return ffmpeg_slots if service == "ffmpeg" else contextlib.nullcontext()

    def one(call):
        t = time.perf_counter()
        try:
            return process_call(call, services, guard=guard, encryption=encryption)
        finally:
            phases.process_call.append(time.perf_counter() - t)

    outcomes = list(decided.outcomes)
    with concurrent.futures.ThreadPoolExecutor(settings.advanced.worker_threads) as pool:
        outcomes.extend(pool.map(one, [call for call, _key in decided.to_mux]))
    phases.mark("mux_end")
    phases.mark("report")
    services.close()
    phases.mark("report_end")
    total = time.perf_counter() - t0
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
    return {"total": total, "imports": imported, "counts": counts, **phases.report(t0)}


# ----------------------------------------------------------------------------- driver


def seed_template(path: Path, calls: int) -> None:
    """Seed ``calls`` short calls with real media once; later runs copy this state folder."""
    from grmux_sandbox.site import Sandbox

    marker = path / "seeded.json"
    if marker.exists() and json.loads(marker.read_text()).get("calls") == calls:
        return
    shutil.rmtree(path, ignore_errors=True)
    t = time.perf_counter()
    sandbox = Sandbox.open(path)
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    sandbox.seed(calls, seed=7, scenarios=["normal"], start=start, size=(320, 240), duration=(6.0, 8.0),
                 spacing=(20.0, 30.0))
    marker.write_text(json.dumps({"calls": calls}))
    print(f"seeded {calls} calls with media in {time.perf_counter() - t:.1f} s ({path})", flush=True)


def run_once(kind: str, template: Path, work: Path, env: dict[str, str], threads: int, calls: int,
             setup: bool = False) -> dict:
    from grmux_sandbox.site import Sandbox

    state = work / f"site-{kind}"
    shutil.rmtree(state, ignore_errors=True)
    shutil.copytree(template, state)
    sandbox = Sandbox.start(state)
    try:
        scratch = state / "scratch"
        scratch.mkdir(exist_ok=True)
        config = sandbox.write_config(state / "muxer.cfg", worker_threads=threads, temp_dir=str(scratch))
        if setup:
            run_setup(env, config)
        t = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--child", kind, "--config", str(config),
                               "--query", QUERY], cwd=ROOT, env=env, capture_output=True, text=True, check=False,
                              timeout=3600)
        wall = time.perf_counter() - t
        if done.returncode != 0:
            raise RuntimeError(f"{kind} child failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["process_wall"] = wall
        muxed = len({wb["id"] for wb in sandbox.write_backs()})
        if muxed != calls or result["counts"].get("muxed") != calls:
            raise RuntimeError(f"{kind}: {muxed} write-backs, counts {result['counts']} (expected {calls} muxed)")
        return result
    finally:
        sandbox.stop()
        shutil.rmtree(state, ignore_errors=True)


def explain(flow: list[dict], bare: list[dict], threads: int) -> None:
    def med(rows: list[dict], fn) -> float:
        return statistics.median(fn(r) for r in rows)

    def span(a: str, b: str):
        return lambda r: r["marks"].get(b, 0.0) - r["marks"].get(a, 0.0)

    print("\nwhere the time goes (medians, seconds)            flow     bare    extra")
    rows = [
        ("set-up before listing (config, secrets, names)", lambda r: r["marks"].get("listing", 0.0)),
        ("list + screen reads + quality + classify", span("listing", "mux_start")),
        ("mux window", span("mux_start", "mux_end")),
        (f"  sum of per-call times / {threads} threads", lambda r: r["process_call_sum"] / threads),
        ("  = orchestration inside the window", lambda r: span("mux_start", "mux_end")(r)
         - r["process_call_sum"] / threads),
        ("report (artifacts) and the rest", lambda r: r["total"] - r["marks"].get("mux_end", 0.0)),
        ("process start + imports (not in the totals)", lambda r: r["process_wall"] - r["total"]),
    ]
    for name, fn in rows:
        f, b = med(flow, fn), med(bare, fn)
        print(f"  {name:<48} {f:7.2f}  {b:7.2f}  {f - b:+7.2f}")
    per_call_flow = med(flow, lambda r: r["process_call_sum"] / max(r["process_calls"], 1))
    per_call_bare = med(bare, lambda r: r["process_call_sum"] / max(r["process_calls"], 1))
    print(f"  process_call per call: flow {per_call_flow * 1000:.0f} ms (mux-call task run), "
          f"bare {per_call_bare * 1000:.0f} ms (the flow's includes its concurrency-limit slots)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4, help="[advanced] worker_threads of both")
    parser.add_argument("--database-url", help="Prefect server database (default: SQLite in a temp home)")
    parser.add_argument("--keep", type=Path, help="folder for the seeded template (reused when present)")
    parser.add_argument("--child", choices=["flow", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--query", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        result = (child_flow if args.child == "flow" else child_bare)(args.config, args.query)
        print(json.dumps(result))
        return 0

    work = Path(tempfile.mkdtemp(prefix="grmux-bench-overhead-"))
    template = (args.keep or ROOT / "var" / "bench") / f"overhead-{args.calls}"
    try:
        seed_template(template, args.calls)
        with prefect_server(work / "prefect-home", args.database_url) as env:
            results: dict[str, list[dict]] = {"flow": [], "bare": []}
            for i in range(args.repeat):
                order = ("flow", "bare") if i % 2 == 0 else ("bare", "flow")
                for kind in order:
                    r = run_once(kind, template, work, env, args.threads, args.calls, setup=not i and kind == "flow")
                    results[kind].append(r)
                    print(f"run {i + 1} {kind:4}: {r['total']:7.2f} s  (process {r['process_wall']:.2f} s) "
                          f"{r['counts']}", flush=True)
        flow = statistics.median(r["total"] for r in results["flow"])
        bare = statistics.median(r["total"] for r in results["bare"])
        print(f"\n{args.calls} calls, worker_threads={args.threads}, {args.repeat} run(s) each, "
              f"{os.cpu_count()} CPUs, server database: {'PostgreSQL' if args.database_url else 'SQLite'}")
        print(f"flow (Prefect server):     median {flow:7.2f} s  ({flow / args.calls * 1000:.0f} ms/call)")
        print(f"bare (ThreadPoolExecutor): median {bare:7.2f} s  ({bare / args.calls * 1000:.0f} ms/call)")
        print(f"ratio flow/bare: {flow / bare:.3f}  (target ≤ 1.3)")
        explain(results["flow"], results["bare"], args.threads)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
