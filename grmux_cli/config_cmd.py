"""``grmux config check`` and ``grmux config reference``, and the sharding flags every cycle command takes."""

from __future__ import annotations

import argparse
import sys

from grmux_cli.exit_codes import ExitCode
from grmux_core.config import load_settings, public_dict, reference_markdown
from grmux_core.errors import ConfigError


def add_sharding_overrides(parser: argparse.ArgumentParser) -> None:
    """The legacy sharding flags; they override ``[processing]`` in the file."""
    parser.add_argument("--muxer-type", choices=("primary", "backup"), help="overrides [processing] muxer_type")
    parser.add_argument("--muxer-id", type=int, help="overrides [processing] muxer_id (-1 = no sharding)")
    parser.add_argument("--total-muxers", type=int, help="overrides [processing] total_muxers")


def sharding_overrides(args: argparse.Namespace) -> dict[str, object]:
    return {
        "muxer_type": getattr(args, "muxer_type", None),
        "muxer_id": getattr(args, "muxer_id", None),
        "total_muxers": getattr(args, "total_muxers", None),
    }


def print_config_error(error: ConfigError) -> None:
    print(f"grmux: {error}", file=sys.stderr)


def _check(args: argparse.Namespace) -> ExitCode:
    try:
        settings = load_settings(args.config, overrides=sharding_overrides(args))
    except ConfigError as error:
        print_config_error(error)
        return ExitCode.USAGE
    for warning in settings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"# effective configuration of {settings.source} (secrets masked)")
    for section, entries in public_dict(settings).items():
        print(f"[{section}]")
        for name, value in entries.items():
            if isinstance(value, bool):
                value = int(value)
            print(f"{name} = {value}")
        print()
    return ExitCode.OK


def _reference(_args: argparse.Namespace) -> ExitCode:
    print(reference_markdown())
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser("config", help="check or document muxer.cfg")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser(
        "check",
        help=f"validate a muxer.cfg and print the effective configuration (secrets masked); "
             f"exit {ExitCode.USAGE.value} ({ExitCode.USAGE.name}) if invalid",
    )
    check.add_argument("config", nargs="?", default="muxer.cfg", help="path of muxer.cfg (default: ./muxer.cfg)")
    add_sharding_overrides(check)
    check.set_defaults(func=_check)
    reference = config_sub.add_parser("reference", help="print every option as a Markdown table")
    reference.set_defaults(func=_reference)
