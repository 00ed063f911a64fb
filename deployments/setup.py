"""Prepare a Prefect server for grmux, from muxer.cfg: work pool, limits, variables, deployments.

    python -m deployments.setup --config muxer.cfg [--deploy] [--secrets-from-env]

Idempotent: existing objects are updated, not duplicated. What it sets up:

* the process work pool ``grmux`` (workers: ``prefect worker start --pool grmux``);
* global concurrency limits ``grmux-rws``, ``grmux-rcs``, ``grmux-storage`` (= worker_threads):
  each flow-run process reads their size once and bounds its calls' steps with it (ffmpeg is
  bounded by the host's CPU count);
* Prefect variables read by ``prefect.yaml``: the project folder, the absolute config path, the
  backup window (twice ``window_past``, older than ``window_past``: the HA layout of the spec)
  and the site time zone;
* ``--secrets-from-env``: HTCC_PASSWORD/RCS_PASSWORD/WEBDAV_PASSWORD from this shell into Secret
  blocks ``grmux-htcc-password`` etc., and prints the ``GRMUX_SECRET_BLOCKS`` value for workers;
* ``--deploy``: ``prefect --no-prompt deploy --all`` from the project folder, then the polling
  deployments' schedule set to ``[processing] min_poll_interval``;
* ``--notify-block TYPE/NAME``: the alert automations (:mod:`deployments.automations`), each
  notifying through that notification block.
* two automations (:func:`crash_recovery_automations`): ``grmux-mark-unresponsive-crashed`` marks
  a run Crashed when its heartbeats stop (a worker killed with -9 sends nothing: without this the
  run stays Running for ever; workers need ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY=60``, set in
  ``grmux-worker.service``), and ``grmux-rerun-crashed`` reruns a Crashed ``grmux-*`` run once, as
  a new run of the same deployment with the same parameters. The rerun is named ``resumed-grmux-…``
  (:func:`flows.grmux.run_name`), which the trigger does not match: a rerun that crashes again is
  left to the operator, never looped. The exactly-once rules make the rerun safe.
  ``--heartbeat-timeout SECONDS`` (default 450, safe for Prefect's default 180 s heartbeat) sets the
  window without heartbeats.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from grmux_core.config import ENV_SECRETS, Settings, load_settings
from grmux_core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
POOL = "grmux"


def limits(settings: Settings) -> dict[str, int]:
    threads = settings.advanced.worker_threads
    return {"grmux-rws": threads, "grmux-rcs": threads, "grmux-storage": threads}


def variables(settings: Settings, config_path: Path, timezone: str) -> dict[str, str | int]:
    proc = settings.processing
    return {
        "grmux_home": str(ROOT),
        "grmux_config": str(config_path.resolve()),
        "grmux_backup_window_past": 2 * proc.window_past,
        "grmux_backup_window_past_older_than": proc.window_past,
        "grmux_timezone": timezone,
    }


def _prefect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "prefect", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False)


def ensure_pool() -> None:
    done = _prefect("work-pool", "create", POOL, "--type", "process")
    if done.returncode != 0 and "already exists" not in (done.stdout + done.stderr):
        raise SystemExit(f"could not create work pool {POOL}:\n{done.stdout}{done.stderr}")


def ensure_limits(wanted: dict[str, int]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name, limit in wanted.items():
            try:
                client.read_global_concurrency_limit_by_name(name)
                client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=limit))
            except ObjectNotFound:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))


def ensure_variables(values: dict[str, str | int]) -> None:
    from prefect.variables import Variable

    for name, value in values.items():
        Variable.set(name, value, overwrite=True)


POLLING_DEPLOYMENTS = ("grmux/primary", "grmux/backup")


def apply_poll_interval(seconds: int) -> None:
    """Schedule the polling deployments every ``min_poll_interval`` (prefect.yaml cannot template it:
    schedules are validated before variables are filled in)."""
    for name in POLLING_DEPLOYMENTS:
        for args in (("deployment", "schedule", "clear", name, "-y"),
                     ("deployment", "schedule", "create", name, "--interval", str(seconds), "--timezone", "UTC")):
            done = _prefect(*args)
            if done.returncode != 0:
                raise SystemExit(f"could not schedule {name}: {done.stdout}{done.stderr}")


def store_secrets() -> str:
    """Env passwords → Secret blocks; returns the GRMUX_SECRET_BLOCKS value for the workers."""
    from prefect.blocks.system import Secret

    pairs = []
    for env_name, (section, _option) in ENV_SECRETS.items():
        value = os.environ.get(env_name)
        if value:
            block = f"grmux-{section}-password"
            Secret(value=value).save(block, overwrite=True)
            pairs.append(f"{env_name}={block}")
    return ",".join(pairs)


def setup_alerts(settings: Settings, notify_block: str) -> None:
    """The alert automations (kept apart from the rest of setup: see deployments/automations.py)."""
    from deployments.automations import ensure_automations

    names = ensure_automations(settings, notify_block)
    print(f"alert automations ready, notifying through {notify_block}: {', '.join(names)}")


#: Seconds without a heartbeat after which a grmux run counts as crashed: 2.5 periods of Prefect's
#: default heartbeat (180 s), so a worker started without ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` never
#: has a live run marked Crashed (and rerun beside itself). Workers with 60 s heartbeats
#: (``grmux-worker.service``) may use ``--heartbeat-timeout 150`` for a faster resume.
UNRESPONSIVE_AFTER_S = 450
RERUN_AUTOMATION = "grmux-rerun-crashed"
ZOMBIE_AUTOMATION = "grmux-mark-unresponsive-crashed"


def rerun_parameters() -> dict[str, Any]:
    """The rerun's parameters: each of the flow's, taken from the crashed run (its default when
    the run did not set it), as Jinja templates the server renders with the crashed flow run."""
    import inspect

    from flows.grmux import grmux

    templates: dict[str, Any] = {}
    for name, parameter in inspect.signature(grmux.fn).parameters.items():
        template = f"{{{{ flow_run.parameters.get({name!r}, {parameter.default!r}) | tojson }}}}"
        templates[name] = {"__prefect_kind": "json", "value": {"__prefect_kind": "jinja", "template": template}}
    return templates


def crash_recovery_automations(unresponsive_after_s: int = UNRESPONSIVE_AFTER_S) -> list[Any]:
    """The two automations of crash recovery (see the module docstring). ``unresponsive_after_s``
    must exceed the workers' ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` (Prefect's minimum is 30 s), or
    live runs are marked Crashed between two heartbeats."""
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState, RunDeployment
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    grmux_runs = ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*", "prefect.resource.name": "grmux-*"})
    unresponsive = Automation(
        name=ZOMBIE_AUTOMATION,
        description="marks a grmux run Crashed when its heartbeats stop (its worker was killed)",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            for_each={"prefect.resource.id"}, posture=Posture.Proactive, threshold=1,
            within=timedelta(seconds=unresponsive_after_s)),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"no heartbeat for {unresponsive_after_s} s: the worker is gone")],
    )
    rerun = Automation(
        name=RERUN_AUTOMATION,
        description="reruns a Crashed grmux-* run once (same deployment, same parameters) as resumed-grmux-*",
        trigger=EventTrigger(expect={"prefect.flow-run.Crashed"}, match=grmux_runs, posture=Posture.Reactive,
                             threshold=1, within=timedelta(0)),
        actions=[RunDeployment(source="inferred", parameters=rerun_parameters())],
    )
    return [unresponsive, rerun]


def ensure_crash_recovery(unresponsive_after_s: int = UNRESPONSIVE_AFTER_S) -> list[str]:
    """Create or update the crash-recovery automations (idempotent: one of each name)."""
    from prefect.client.orchestration import get_client

    names = []
    with get_client(sync_client=True) as client:
        for wanted in crash_recovery_automations(unresponsive_after_s):
            found = client.read_automations_by_name(wanted.name)
            for extra in found[1:]:
                client.delete_automation(extra.id)
            if found:
                wanted.id = found[0].id
                wanted.update()
            else:
                wanted.create()
            names.append(wanted.name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.setup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="muxer.cfg", help="muxer.cfg the deployments run with")
    parser.add_argument("--timezone", default=os.environ.get("GRMUX_TIMEZONE", "UTC"),
                        help="IANA time zone of the nightly schedule (default: $GRMUX_TIMEZONE or UTC)")
    parser.add_argument("--deploy", action="store_true", help="also run `prefect deploy --all`")
    parser.add_argument("--notify-block", metavar="TYPE/NAME",
                        help="create/update the alert automations, notifying through this block "
                             "(e.g. custom-webhook/grmux-alerts)")
    parser.add_argument("--secrets-from-env", action="store_true",
                        help="store HTCC_/RCS_/WEBDAV_PASSWORD from this shell in Secret blocks")
    parser.add_argument("--heartbeat-timeout", type=int, default=UNRESPONSIVE_AFTER_S, metavar="SECONDS",
                        help="seconds without a heartbeat after which a run is marked Crashed and rerun "
                             f"(default {UNRESPONSIVE_AFTER_S}; must exceed the workers' "
                             "PREFECT_FLOWS_HEARTBEAT_FREQUENCY, at least 30)")
    args = parser.parse_args(argv)
    if args.heartbeat_timeout <= 30:
        parser.error("--heartbeat-timeout must exceed 30 s (the shortest heartbeat period Prefect allows)")
    config = Path(args.config)
    try:
        settings = load_settings(config)
    except ConfigError as error:
        print(f"grmux: {error}", file=sys.stderr)
        return 2
    ensure_pool()
    ensure_limits(limits(settings))
    ensure_variables(variables(settings, config, args.timezone))
    ensure_crash_recovery(args.heartbeat_timeout)
    if args.secrets_from_env:
        blocks = store_secrets()
        print(f"set on every worker: GRMUX_SECRET_BLOCKS={blocks}" if blocks else "no password in the environment")
    print(f"work pool {POOL}, concurrency limits and variables ready (config {config.resolve()})")
    if args.notify_block:
        setup_alerts(settings, args.notify_block)
    if args.deploy:
        done = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=ROOT, check=False)
        if done.returncode != 0:
            return done.returncode
        apply_poll_interval(settings.processing.min_poll_interval * 60)
        print(f"deployed; start a worker with: prefect worker start --pool {POOL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
