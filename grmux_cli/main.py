"""``grmux``: the modern command line over the same code the Prefect flow runs.

Each subcommand lives in the module of its own (``config_cmd``, ``media_cmd``, ``decrypt_cmd``, ``run_cmd``,
``canary_cmd``, ``status_cmd``; ``sandbox`` in :mod:`grmux_sandbox.cli`), which exposes ``register(subparsers)``
and sets ``func`` on its parsers; this file only wires them together. Registering imports neither
Prefect nor the media engine nor the sandbox servers: handlers import what they need when called.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from grmux_cli import canary_cmd, config_cmd, decrypt_cmd, media_cmd, run_cmd, status_cmd
from grmux_cli.exit_codes import ExitCode, exit_codes_help
from grmux_sandbox import cli as sandbox_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grmux", description="Align and mux GIR call audio with screen recordings.",
        epilog=exit_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in (config_cmd, media_cmd, decrypt_cmd, run_cmd, canary_cmd, status_cmd, sandbox_cli):
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> ExitCode:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits 2 on usage errors, 0 on --help
        return ExitCode(exit_.code or 0)
    # the sandbox commands sit beside the layers and cannot import this package: they return the
    # same numbers as plain ints
    return ExitCode(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
