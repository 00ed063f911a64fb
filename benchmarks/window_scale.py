"""The listing/orchestration path at scale: a window of 1,000 calls vs one of 10,000.

    .venv/bin/python benchmarks/window_scale.py [--sizes 1000 10000] [--muxed-share 0.5]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/DB]

Each size gets a fresh sandbox with metadata-only calls (``Sandbox.seed_metadata``): a share of
them carry a screen recording that is already muxed (a muxed media file whose ``muxed_mediaIds``
cover the sources, as a write-back leaves it), the rest have no screen recording yet. So the run
lists (paged by ``nextUri``), bulk-reads the screen recordings, checks the metadata
(great-expectations), classifies every call as skipped or pending, logs one line per call and
publishes the summary — no media are fetched and no per-call task is created.

The ``grmux`` flow (mode ``primary``, its configured 720-minute window) runs in a child process
against a real ``prefect server``; the child reports its wall time, phase times and peak RSS
(``ru_maxrss``) plus its RSS just before the flow started. Printed: both sizes, the time ratio
(target ≤ 11 for 10x the calls) and the peak RSS (target ≤ 1 GiB, nearly flat).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.pipeline_overhead import flow_phases
from deployments.local_server import prefect_server


def rss_now_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(config: str) -> dict:
    import flows.grmux as flow_module

    before = rss_now_mb()
    t0, wall0 = time.perf_counter(), time.time()
    state = flow_module.grmux(mode="primary", config_path=config, return_state=True)
    total = time.perf_counter() - t0
    summary = state.data if state.is_failed() else state.result()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"total": total, "counts": summary["counts"], "rss_before_mb": before, "peak_rss_mb": peak,
            "marks": flow_phases(state.state_details.flow_run_id, wall0, 0)[0]}  # from the server, not patched


def mark_muxed(store, call_id: str) -> None:
    """Give the call's screen recording a muxed file covering its sources (what a write-back does)."""
    screen = store.screens[call_id]
    call = store.calls[call_id]
    sources = sorted([m["mediaId"] for m in call["mediaFiles"]] + [m["mediaId"] for m in screen["mediaFiles"]])
    first = screen["mediaFiles"][0]
    muxed = {**first, "mediaId": f"{call_id}_muxed_1.mp4",
             "parameters": {**first["parameters"], "muxed_mediaIds": sources}}
    store.put_screen({**screen, "mediaFiles": [*screen["mediaFiles"], muxed]})


def hold_back(store, call_id: str) -> None:
    """The call's screen recording has not arrived yet (the listing still finds the call: its
    screen-recording state is set): move the record to the sandbox's held-back screens."""
    with store.lock:
        record = store.screens.pop(call_id)
        (store.root / "rws/screens" / f"{call_id}.json").unlink(missing_ok=True)
    store.put_late(record)


def prepare(state: Path, calls: int, muxed_share: float) -> dict[str, int]:
    """Seed ``calls`` metadata-only calls inside the last 12 hours: a share already muxed, the rest
    waiting for their screen recording."""
    from grmux_sandbox.site import Sandbox

    sandbox = Sandbox.open(state)
    # spacing keeps 10,000 calls within ~6 h, well inside the 720-minute window
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=7)
    ids = sandbox.seed_metadata(calls, seed=calls, start=start, spacing=(1.0, 3.0), duration=(20.0, 300.0),
                                screen_share=1.0)
    rng = random.Random(calls)
    muxed = 0
    for call_id in ids:
        if rng.random() < muxed_share:
            mark_muxed(sandbox.store, call_id)
            muxed += 1
        else:
            hold_back(sandbox.store, call_id)
    return {"skipped": muxed, "pending": calls - muxed}


def run_size(calls: int, work: Path, env: dict[str, str], muxed_share: float) -> dict:
    from grmux_sandbox.site import Sandbox

    state = work / f"site-{calls}"
    t = time.perf_counter()
    expected = prepare(state, calls, muxed_share)
    seeded = time.perf_counter() - t
    sandbox = Sandbox.start(state)
    try:
        config = sandbox.write_config(state / "muxer.cfg", worker_threads=4, window_past=720)
        t = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--child", "--config", str(config)], cwd=ROOT,
                              env=env, capture_output=True, text=True, check=False, timeout=7200)
        wall = time.perf_counter() - t
        if done.returncode != 0:
            raise RuntimeError(f"child failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        counts = {k: v for k, v in result["counts"].items() if v}
        if counts != expected:
            raise RuntimeError(f"{calls} calls: counts {counts}, expected {expected}")
        result |= {"calls": calls, "process_wall": wall, "seed_s": seeded}
        return result
    finally:
        sandbox.stop()
        shutil.rmtree(state, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--muxed-share", type=float, default=0.5,
                        help="share of calls already muxed (the rest have no screen recording yet)")
    parser.add_argument("--database-url", help="Prefect server database (default: SQLite in a temp home)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.config)))
        return 0

    work = Path(tempfile.mkdtemp(prefix="grmux-bench-window-"))
    results = []
    try:
        with prefect_server(work / "prefect-home", args.database_url) as env:
            for size in args.sizes:
                r = run_size(size, work, env, args.muxed_share)
                results.append(r)
                marks = r["marks"]
                print(f"{size:>6} calls: {r['total']:7.2f} s in the flow (process {r['process_wall']:.2f} s), "
                      f"peak RSS {r['peak_rss_mb']:.0f} MiB (before the flow {r['rss_before_mb']:.0f} MiB); "
                      f"set-up {marks.get('listing', 0):.2f} s, list+read+check+classify "
                      f"{marks.get('report', 0) - marks.get('listing', 0):.2f} s, report+log "
                      f"{r['total'] - marks.get('report', 0):.2f} s; {r['counts']}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(results) >= 2:
        small, large = results[0], results[-1]
        print_time_ratio(small["calls"], small["total"], large["calls"], large["total"])
        print(f"peak RSS: {small['peak_rss_mb']:.0f} → {large['peak_rss_mb']:.0f} MiB "
              f"(+{large['peak_rss_mb'] - small['peak_rss_mb']:.0f} MiB; target ≤ 1024 MiB, nearly flat)")
    return 0


def print_time_ratio(small_calls: int, small_seconds: float, large_calls: int, large_seconds: float) -> None:
    """The scaling figure of a size sweep: time ratio against the goal of 1.1 x the ratio of calls."""
    factor = large_calls / small_calls
    print(f"\ntime ratio {large_calls}/{small_calls} calls: {large_seconds / small_seconds:.2f} "
          f"(target ≤ {factor * 1.1:.0f} for {factor:.0f}x the calls)")


if __name__ == "__main__":
    raise SystemExit(main())
