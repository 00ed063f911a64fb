"""``grmux canary``: one sync-canary run now, in this process (the flow ``grmux/canary`` runs).

Exit code 0 when green, 1 when red (the failing step is printed), 2 for a configuration error,
3 when the Prefect API cannot be reached. Like ``grmux run``, the run reports to
``PREFECT_API_URL`` when it is set (its artifact then shows in the UI).
"""

from __future__ import annotations

import argparse

from grmux_cli.config_cmd import print_config_error
from grmux_cli.exit_codes import ExitCode
from grmux_cli.run_cmd import cycle_exit_code, start_flow
from grmux_core.config import load_settings
from grmux_core.errors import ConfigError


def _canary(args: argparse.Namespace) -> ExitCode:
    try:
        load_settings(args.config)
    except ConfigError as error:
        print_config_error(error)
        return ExitCode.USAGE
    from flows.canary import canary

    state = start_flow("grmux canary", lambda: canary(config_path=args.config, certificate=args.certificate,
                                                      return_state=True))
    if isinstance(state, ExitCode):
        return state
    print(f"grmux canary: {state.name}: {state.message or ''}")
    return cycle_exit_code(state)


def register(subparsers: argparse._SubParsersAction) -> None:
    canary = subparsers.add_parser(
        "canary", help="run the sync canary now: a synthetic call through storage, RCS and the mux",
        description="A synthetic call muxed with the production code path and settings, checked by "
                    "decoding; red names the failing step. Exit 0 green, 1 red.")
    canary.add_argument("--config", default="muxer.cfg", help="path of muxer.cfg (default ./muxer.cfg)")
    canary.add_argument("--certificate", help="PEM certificate to encrypt one segment to (exercises RCS)")
    canary.set_defaults(func=_canary)
