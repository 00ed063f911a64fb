"""The sync canary flow: deployment ``grmux/canary`` (hourly) and ``grmux canary``.

It is a flow named ``grmux`` (like the cycle flow) so its deployment reads ``grmux/canary`` beside
``grmux/primary``; its runs are named ``grmux-canary``. The run is Failed (red) with the failing
step in its message when anything is off; see :mod:`grmux_core.canary` for the steps.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Completed, Failed

from grmux_core.logs import attach_log_file
from grmux_core.scratch import clean_stale_workdirs
from tasks.canary import canary_task
from tasks.context import RunConfig
from tasks.secrets import load_secret_blocks


@flow(name="grmux", flow_run_name="grmux-canary")
def canary(config_path: str = "muxer.cfg", certificate: str | None = None) -> Any:
    """One canary run. ``certificate``: a PEM file to encrypt one segment to, instead of the site's
    screen-recording certificates (RWS settings)."""
    load_secret_blocks()
    run = RunConfig(os.path.abspath(config_path), {})
    settings = run.settings()  # a ConfigError fails the run with the list of problems
    attach_log_file(settings.logfile.logfile_path)
    clean_stale_workdirs(settings.processing.temp_dir, get_run_logger())
    data = canary_task(run, [certificate] if certificate else [])
    step = data["failed_step"]
    if step:
        return Failed(message=f"canary red at {step}: {data['reason']}", data=data)
    return Completed(message=f"canary green: {len(data['markers'])} markers within one frame", data=data)
