"""``grmux canary``: one sync-canary run now, in this process (the flow ``grmux/canary`` runs).

Exit code 0 when green, 1 when red (the failing step is printed), 2 for a configuration error,
3 when the Prefect API cannot be reached. Like ``grmux run``, the run reports to
``PREFECT_API_URL`` when it is set (its artifact then shows in the UI).
"""

from __future__ import annotations

import argparse
import sys

from grmux_cli.config_cmd import print_config_error
from grmux_cli.exit_codes import ExitCode, exit_code_for
from grmux_core.config import load_settings
from grmux_core.errors import ConfigError


def _canary(args: argparse.Namespace) -> ExitCode:
    try:
        load_settings(args.config)
    except ConfigError as error:
        print_config_error(error)
        return ExitCode.USAGE
    from flows.canary import canary

    try:
        state = canary(config_path=args.config, certificate=args.certificate, return_state=True)
    except Exception as error:  # the flow run could not even be created: the Prefect API
        code = exit_code_for(error)
        if code is not ExitCode.UNAVAILABLE:
            raise
        print(f"grmux canary: the flow run could not start: {error}", file=sys.stderr)
        return code
    print(f"grmux canary: {state.name}: {state.message or ''}")
    if state.is_completed():
        return ExitCode.OK
    stopped_by = state.result(raise_on_failure=False)
    return exit_code_for(stopped_by) if isinstance(stopped_by, BaseException) else ExitCode.CALLS_FAILED


def register(subparsers: argparse._SubParsersAction) -> None:
    canary = subparsers.add_parser(
        "canary", help="run the sync canary now: a synthetic call through storage, RCS and the mux",
        description="A synthetic call muxed with the production code path and settings, checked by "
                    "decoding; red names the failing step. Exit 0 green, 1 red.")
    canary.add_argument("--config", default="muxer.cfg", help="path of muxer.cfg (default ./muxer.cfg)")
    canary.add_argument("--certificate", help="PEM certificate to encrypt one segment to (exercises RCS)")
    canary.set_defaults(func=_canary)
