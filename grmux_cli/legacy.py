"""The legacy command line of the Recording Muxer, kept for operators' scripts.

    python muxer_process.py --config-file=muxer.cfg [--muxer-type=T] [--muxer-id=N] [--total-muxers=M] [--once]

Runs the polling loop: one cycle (one ``grmux`` flow run) every ``[processing] min_poll_interval``
minutes, measured from the start of one cycle to the start of the next. With
``[advanced] call_recording_query_string`` set (backfill mode) it runs one cycle and exits.
Command-line sharding values override the file. ``--once`` (grmux addition) runs one cycle. The
loop keeps polling whatever a cycle ends with (a service down now may be up at the next cycle);
a single cycle's exit code is the process's.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from grmux_cli.config_cmd import add_sharding_overrides, print_config_error, sharding_overrides
from grmux_cli.exit_codes import ExitCode, exit_codes_help
from grmux_cli.run_cmd import flow_parameters, run_cycle
from grmux_core.cancel import process_token, stop_on_signals
from grmux_core.config import load_settings
from grmux_core.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="muxer_process.py", description=__doc__.split("\n\n")[0],
                                     epilog=exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="path of muxer.cfg")
    add_sharding_overrides(parser)
    parser.add_argument("--once", action="store_true", help="run one cycle and exit (grmux addition)")
    return parser


def main(argv: Sequence[str] | None = None, *, sleep: Callable[[float], object] | None = None) -> ExitCode:
    """The legacy loop; SIGTERM/SIGINT end the running cycle Cancelled and the process with
    ``ExitCode.CANCELLED`` (no further cycle starts)."""
    with stop_on_signals() as stop:
        return _loop(argv, sleep or stop.wait)


def _loop(argv: Sequence[str] | None, sleep: Callable[[float], object]) -> ExitCode:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return ExitCode(exit_.code or 0)
    try:
        settings = load_settings(args.config_file, overrides=sharding_overrides(args))
    except ConfigError as error:
        print_config_error(error)
        return ExitCode.USAGE
    proc = settings.processing
    mode = "backfill" if settings.advanced.backfill else proc.muxer_type
    parameters = flow_parameters(args.config_file, mode, muxer_id=args.muxer_id, total_muxers=args.total_muxers)
    if args.muxer_type and mode != "backfill":
        parameters["mode"] = args.muxer_type
    while True:
        started = time.monotonic()
        code = run_cycle(parameters)
        if process_token().is_set():
            return ExitCode.CANCELLED
        if mode == "backfill" or args.once:
            return code
        sleep(max(0.0, started + proc.min_poll_interval * 60 - time.monotonic()))
        if process_token().is_set():
            return ExitCode.CANCELLED
