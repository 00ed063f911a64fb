"""``grmux run``: one cycle now, in this process (the same flow the deployments run).

Shared with the legacy ``muxer_process.py``. The flow run reports to ``PREFECT_API_URL`` when it is
set (it then shows in the UI like a deployment run), else to a temporary local Prefect server.
Exit codes: 0 every call muxed, skipped or pending; 1 some call failed; 2 configuration error.
"""

from __future__ import annotations

import argparse
from typing import Any

from grmux_core.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, add_sharding_overrides, print_config_error
from grmux_core.config import load_settings
from grmux_core.cycle import MODES, mode_overrides
from grmux_core.errors import ConfigError


def flow_parameters(config_path: str, mode: str, *, query: str | None = None, muxer_id: int | None = None,
                    total_muxers: int | None = None, **windows: Any) -> dict[str, Any]:
    params = {"mode": mode, "config_path": config_path, "query": query, "muxer_id": muxer_id,
              "total_muxers": total_muxers, **windows}
    return {k: v for k, v in params.items() if v is not None}


def run_cycle(parameters: dict[str, Any]) -> int:
    """Validate, then run one flow run; returns the exit code."""
    mode = parameters.get("mode", "primary")
    try:
        overrides = mode_overrides(mode, **{k: v for k, v in parameters.items() if k not in ("mode", "config_path")})
        load_settings(parameters.get("config_path", "muxer.cfg"), overrides=overrides)
    except ConfigError as error:
        print_config_error(error)
        return EXIT_CONFIG
    from flows.grmux import grmux

    state = grmux(**parameters, return_state=True)
    message = state.message or state.name
    print(f"grmux {mode}: {state.name}: {message}")
    return EXIT_OK if state.is_completed() else EXIT_FAILED


def _run(args: argparse.Namespace) -> int:
    mode = args.mode or ("backup" if args.muxer_type == "backup" else "primary")
    return run_cycle(flow_parameters(args.config, mode, query=args.query, muxer_id=args.muxer_id,
                                     total_muxers=args.total_muxers))


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run", help="run one cycle now (window from muxer.cfg, or --query for a backfill)",
        description="Run one muxer cycle now, as the deployments do. Exit 0: all muxed/skipped/pending; "
                    "1: some calls failed; 2: configuration error.")
    run.add_argument("--config", default="muxer.cfg", help="path of muxer.cfg (default ./muxer.cfg)")
    run.add_argument("--mode", choices=MODES, help="primary (default), backup, backfill or nightly")
    run.add_argument("--query", help="backfill: the RWS list query, e.g. 'callerPhoneNumber=555*'")
    add_sharding_overrides(run)
    run.set_defaults(func=_run)
    from flows import status

    status.register(subparsers)
