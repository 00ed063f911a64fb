"""``grmux run``: one cycle now, in this process (the same flow the deployments run).

Shared with the legacy loop (:mod:`grmux_cli.legacy`). The flow run reports to ``PREFECT_API_URL``
when it is set (it then shows in the UI like a deployment run), else to a temporary local Prefect
server.

How a cycle's end becomes an exit code: a Completed run is ``OK``. A Failed run that got as far as
the calls carries the cycle summary as its data: ``CALLS_FAILED``. A run that failed before the
calls carries the exception that stopped it (Prefect keeps it as the state's result), mapped by
:func:`~grmux_cli.exit_codes.exit_code_for`: a service that could not be reached (RWS listing
after its retries, ``TransientError``) is ``UNAVAILABLE``, a configuration error ``USAGE``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from grmux_cli.config_cmd import add_sharding_overrides, print_config_error
from grmux_cli.exit_codes import ExitCode, exit_code_for, exit_codes_help
from grmux_core.cancel import stop_on_signals
from grmux_core.config import load_settings
from grmux_core.cycle import MODES, mode_overrides
from grmux_core.errors import ConfigError


def flow_parameters(config_path: str, mode: str, *, query: str | None = None, muxer_id: int | None = None,
                    total_muxers: int | None = None, **windows: Any) -> dict[str, Any]:
    params = {"mode": mode, "config_path": config_path, "query": query, "muxer_id": muxer_id,
              "total_muxers": total_muxers, **windows}
    return {k: v for k, v in params.items() if v is not None}


def cycle_exit_code(state: Any) -> ExitCode:
    """The exit code of a finished flow run of ``grmux`` (see the module docstring)."""
    if state.is_completed():
        return ExitCode.OK
    if state.is_cancelled() or state.is_cancelling():
        return ExitCode.CANCELLED
    stopped_by = state.result(raise_on_failure=False)
    if isinstance(stopped_by, BaseException):
        return exit_code_for(stopped_by)
    return ExitCode.CALLS_FAILED


def start_flow(label: str, run: Callable[[], Any]) -> Any:
    """The final state of the flow run ``run`` makes, or ``UNAVAILABLE`` when it could not even be
    created (the Prefect API is unreachable); other errors propagate."""
    try:
        return run()
    except Exception as error:
        code = exit_code_for(error)
        if code is not ExitCode.UNAVAILABLE:
            raise
        print(f"{label}: the flow run could not start: {error}", file=sys.stderr)
        return code


def run_cycle(parameters: dict[str, Any]) -> ExitCode:
    """Validate, then run one flow run; returns its exit code."""
    mode = parameters.get("mode", "primary")
    try:
        overrides = mode_overrides(mode, **{k: v for k, v in parameters.items() if k not in ("mode", "config_path")})
        load_settings(parameters.get("config_path", "muxer.cfg"), overrides=overrides)
    except ConfigError as error:
        print_config_error(error)
        return ExitCode.USAGE
    from flows.grmux import grmux

    state = start_flow(f"grmux {mode}", lambda: grmux(**parameters, return_state=True))
    if isinstance(state, ExitCode):
        return state
    message = state.message or state.name
    print(f"grmux {mode}: {state.name}: {message}")
    return cycle_exit_code(state)


def _run(args: argparse.Namespace) -> ExitCode:
    mode = args.mode or ("backup" if args.muxer_type == "backup" else "primary")
    with stop_on_signals():
        return run_cycle(flow_parameters(args.config, mode, query=args.query, muxer_id=args.muxer_id,
                                     total_muxers=args.total_muxers))


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run", help="run one cycle now (window from muxer.cfg, or --query for a backfill)",
        description="Run one muxer cycle now, as the deployments do.", epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--config", default="muxer.cfg", help="path of muxer.cfg (default ./muxer.cfg)")
    run.add_argument("--mode", choices=MODES, help="primary (default), backup, backfill or nightly")
    run.add_argument("--query", help="backfill: the RWS list query, e.g. 'callerPhoneNumber=555*'")
    add_sharding_overrides(run)
    run.set_defaults(func=_run)
