"""The legacy command line of the Recording Muxer, kept for operators' scripts.

    python muxer_process.py --config-file=muxer.cfg [--muxer-type=T] [--muxer-id=N] [--total-muxers=M] [--once]

Runs the polling loop: one cycle (one ``grmux`` flow run) every ``[processing] min_poll_interval``
minutes, measured from the start of one cycle to the start of the next. With
``[advanced] call_recording_query_string`` set (backfill mode) it runs one cycle and exits.
Command-line sharding values override the file. ``--once`` (grmux addition) runs one cycle.
Exit codes: 0 all muxed, skipped or pending; 1 some calls failed; 2 configuration error.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence

from flows.cli import flow_parameters, run_cycle
from grmux_core.cli import EXIT_CONFIG, add_sharding_overrides, print_config_error, sharding_overrides
from grmux_core.config import load_settings
from grmux_core.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="muxer_process.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True, help="path of muxer.cfg")
    add_sharding_overrides(parser)
    parser.add_argument("--once", action="store_true", help="run one cycle and exit (grmux addition)")
    return parser


def main(argv: Sequence[str] | None = None, *, sleep: Callable[[float], None] = time.sleep) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config_file, overrides=sharding_overrides(args))
    except ConfigError as error:
        print_config_error(error)
        return EXIT_CONFIG
    proc = settings.processing
    mode = "backfill" if settings.advanced.backfill else proc.muxer_type
    parameters = flow_parameters(args.config_file, mode, muxer_id=args.muxer_id, total_muxers=args.total_muxers)
    if args.muxer_type and mode != "backfill":
        parameters["mode"] = args.muxer_type
    while True:
        started = time.monotonic()
        code = run_cycle(parameters)
        if mode == "backfill" or args.once:
            return code
        sleep(max(0.0, started + proc.min_poll_interval * 60 - time.monotonic()))


if __name__ == "__main__":
    sys.exit(main())
