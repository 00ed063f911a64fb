"""``grmux``: the modern command line over the same code the Prefect flow runs.

Exit codes (the same for every subcommand): 0 all good, 1 some call/media failed,
2 configuration or usage error.

Subcommands live next to the code they drive; each module exposes ``register(subparsers)`` and
sets ``func`` on its parsers, so this file only wires them together and imports nothing heavy.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from grmux_core.config import OPTIONS, load_settings, public_dict
from grmux_core.errors import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


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


def _config_check(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config, overrides=sharding_overrides(args))
    except ConfigError as error:
        print_config_error(error)
        return EXIT_CONFIG
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
    return EXIT_OK


def config_reference_markdown() -> str:
    """The option table of the README, generated from :data:`grmux_core.config.OPTIONS`."""
    lines = ["| section | option | default | meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
        default = "(required)" if option.default is None else (f"`{option.default}`" if option.default else "empty")
        doc = option.doc + (" *(grmux addition)*" if option.grmux_addition else "")
        lines.append(f"| {option.section} | {option.name} | {default} | {doc} |")
    return "\n".join(lines)


def _config_reference(_args: argparse.Namespace) -> int:
    print(config_reference_markdown())
    return EXIT_OK


def _register_config(subparsers: argparse._SubParsersAction) -> None:
    config = subparsers.add_parser("config", help="check or document muxer.cfg")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser(
        "check",
        help="validate a muxer.cfg and print the effective configuration (secrets masked); exit 2 if invalid",
    )
    check.add_argument("config", nargs="?", default="muxer.cfg", help="path of muxer.cfg (default: ./muxer.cfg)")
    add_sharding_overrides(check)
    check.set_defaults(func=_config_check)
    reference = config_sub.add_parser("reference", help="print every option as a Markdown table")
    reference.set_defaults(func=_config_reference)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grmux",
        description="Align and mux GIR call audio with screen recordings. "
        "Exit codes: 0 all muxed or skipped, 1 some calls failed, 2 configuration or usage error.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    _register_config(subparsers)
    from grmux_core import cli_mux

    cli_mux.register(subparsers)
    # `run` (Prefect) and `sandbox` live with the code they drive; registering them imports neither
    # Prefect nor the servers: their handlers import what they need when called.
    from flows import cli as flow_cli
    from grmux_sandbox import cli as sandbox_cli

    flow_cli.register(subparsers)
    sandbox_cli.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return int(exit_.code or 0)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
