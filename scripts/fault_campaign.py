#!/usr/bin/env python
"""Fault campaign: a window of calls muxed while RWS, RCS, WebDAV and S3 fail, time out and cut.

    .venv/bin/python scripts/fault_campaign.py [--calls 50] [--fault-seed 1] [--error-rate 0.2]
                                               [--cut-rate 0.05] [--workers 2] [--json out.json]

Starts a sandbox site in a temporary folder, seeds ``--calls`` small calls (normal, encrypted, s3,
holds), injects per service ``--error-rate`` 5xx answers, ``--cut-rate`` cut connections and
10-50 ms latency, runs the real ``grmux`` flow (a throw-away local Prefect server unless
``PREFECT_API_URL`` is set) and prints the table. Exit 0 when every call was muxed exactly once,
no original changed, storage holds no orphan or temporary file and the temp dir is empty.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--fault-seed", type=int, default=1)
    parser.add_argument("--data-seed", type=int, default=5)
    parser.add_argument("--error-rate", type=float, default=0.2)
    parser.add_argument("--cut-rate", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2, help="[advanced] worker_threads")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the sandbox folder")
    args = parser.parse_args(argv)

    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="grmux-campaign-prefect-"))
    from prefect.testing.utilities import prefect_test_harness

    from tests.reliability.campaign import run_campaign

    workdir = Path(tempfile.mkdtemp(prefix="grmux-campaign-"))
    harness = nullcontext() if os.environ.get("PREFECT_API_URL") else prefect_test_harness(server_startup_timeout=180)
    with harness:
        result = run_campaign(workdir, calls=args.calls, fault_seed=args.fault_seed, data_seed=args.data_seed,
                              worker_threads=args.workers, error_rate=args.error_rate, cut_rate=args.cut_rate)
    print(f"fault campaign: {args.error_rate:.0%} 5xx, {args.cut_rate:.0%} cuts, 10-50 ms latency on "
          f"rws, rcs, webdav, s3; worker_threads={args.workers}; {result.seconds} s")
    print(result.table())
    problems = {k: v for k, v in vars(result.audit).items()
                if k in ("missing", "bad_outputs", "orphans", "originals_changed", "scratch_left") and v}
    for reason in result.retry_reasons:
        print("task retry:", reason)
    if problems:
        print("problems:", json.dumps(problems, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=1, default=str))
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print("sandbox kept in", workdir)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
