"""The legacy command line of the Recording Muxer, kept for operators' scripts.

    python muxer_process.py --config-file=muxer.cfg [--muxer-type=T] [--muxer-id=N] [--total-muxers=M]

Command-line sharding values override the file. Exit codes: 0 all muxed or skipped, 1 some calls
failed, 2 configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from grmux_core.cli import EXIT_CONFIG, EXIT_OK, add_sharding_overrides, print_config_error, sharding_overrides
from grmux_core.config import load_settings
from grmux_core.errors import ConfigError
from grmux_core.windows import effective_shard, split_window, window_at


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="muxer_process.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True, help="path of muxer.cfg")
    add_sharding_overrides(parser)
    return parser


def describe_cycle(settings, now: datetime) -> list[str]:
    """What one cycle covers: window (or backfill query), sub-intervals and shard."""
    proc, adv = settings.processing, settings.advanced
    if adv.backfill:
        lines = [f"backfill query: {adv.call_recording_query_string}"]
    else:
        window = window_at(now, proc.window_past, proc.window_past_older_than)
        lines = [f"window: {window.label()}"]
        if proc.split_window_enabled:
            pieces = split_window(window, proc.max_interval_minutes, proc.interval_buffer_minutes)
            lines.append(f"split into {len(pieces)} sub-intervals of {proc.max_interval_minutes} min")
    shard = effective_shard(proc.muxer_id, proc.total_muxers, proc.muxer_type)
    lines.append("shard: none (all calls)" if shard is None else f"shard: {shard.index} of {shard.total} ({proc.muxer_type})")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config_file, overrides=sharding_overrides(args))
        lines = describe_cycle(settings, datetime.now(UTC))
    except ConfigError as error:
        print_config_error(error)
        return EXIT_CONFIG
    for warning in settings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line in lines:
        print(line)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
