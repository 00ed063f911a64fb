"""Cancel honoured by the runs an operator starts by hand: ``prefect flow-run cancel`` of a ``grmux
run`` and SIGTERM of ``muxer_process.py``, each while a mux is running (ffmpeg made slow by a
wrapper script as ``[processing] ffmpeg``).

Checked: the process exits with ``ExitCode.CANCELLED`` and the run ends Cancelled within the
issue's bound, the slow ffmpeg is gone, no call started after the cancel was heard, no call is
reported ``failed``; then a rerun muxes every call exactly once, no orphan, scratch empty,
originals unchanged (a cancelled call's task result was not cached as done).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployments.processes import start_process
from grmux_core.scratch import pid_alive
from tests.reliability.campaign import audit, small_site
from tests.support import ROOT
from tests.support.flows import run_flow

pytestmark = pytest.mark.slow
CALLS = 3
#: The issue's bound from the cancel to a Cancelled run with ffmpeg gone (not a measurement).
BOUND_S = 10.0

SLOW_FFMPEG = """#!{python}
import os, sys, time
if any(".muxed.partial-" in arg for arg in sys.argv):  # the mux itself: announce, then stall
    with open({marker!r}, "a") as f:
        f.write(f"{{os.getpid()}} {{time.time()}}\\n")
    time.sleep({stall_s})
os.execvp("ffmpeg", ["ffmpeg", *sys.argv[1:]])
"""


def slow_ffmpeg(folder: Path, stall_s: float = 120) -> tuple[Path, Path]:
    """A ``[processing] ffmpeg`` that stalls ``stall_s`` before each mux, and the file where each
    mux writes its pid as it starts."""
    marker = folder / "muxes.txt"
    script = folder / "slow-ffmpeg"
    script.write_text(SLOW_FFMPEG.format(python=sys.executable, marker=str(marker), stall_s=stall_s))
    script.chmod(0o755)
    return script, marker


def flow_run_of(config: Path):
    """The (single) flow run of ``config``'s cycle, from the Prefect API."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        runs = [r for r in client.read_flow_runs(limit=50)
                if r.parameters.get("config_path") == str(config)]
        return runs[0] if runs else None


def task_runs(flow_run_id):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))


def cancel_via_api(flow_run_id) -> None:
    """What ``prefect flow-run cancel`` does."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, Cancelling(message="cancelled by the test"))


@pytest.mark.parametrize("how", ["api-cancel-of-grmux-run", "sigterm-of-muxer-process"])
def test_a_cancel_mid_mux_stops_the_run_and_a_rerun_muxes_each_call_once(how, prefect_api, tmp_path, cleanup):
    sandbox, calls, scratch = small_site(cleanup, tmp_path, CALLS, seed=41)
    ffmpeg, marker = slow_ffmpeg(tmp_path)
    config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=1, temp_dir=str(scratch),
                                  ffmpeg=str(ffmpeg))
    argv = ([sys.executable, "-m", "grmux_cli", "run", "--config", str(config)] if how.startswith("api")
            else [sys.executable, "muxer_process.py", f"--config-file={config}", "--once"])
    log = (tmp_path / "run.log").open("wb")
    cleanup.callback(log.close)
    process = cleanup.process(start_process(argv, cwd=ROOT, env=os.environ | {"PREFECT_API_URL": prefect_api},
                                            stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 300
    while not (marker.exists() and marker.read_text().strip()):
        assert process.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "no mux started in time"
        time.sleep(0.05)
    ffmpeg_pid = int(marker.read_text().split()[0])
    run = flow_run_of(config)
    cancelled_at = datetime.now(UTC)
    if how.startswith("api"):
        cancel_via_api(run.id)
    else:
        process.send_signal(signal.SIGTERM)
    while flow_run_of(config).state.type.value != "CANCELLED" and \
            (datetime.now(UTC) - cancelled_at).total_seconds() < 4 * BOUND_S:
        time.sleep(0.1)
    stopped_after = (datetime.now(UTC) - cancelled_at).total_seconds()
    ffmpeg_gone = not pid_alive(ffmpeg_pid)
    code = process.wait(timeout=60)
    print(f"{how}: run Cancelled {stopped_after:.1f} s after the cancel; process ended "
          f"{(datetime.now(UTC) - cancelled_at).total_seconds():.1f} s after it, exit code {code}")
    output = (tmp_path / "run.log").read_text()
    assert code == 4, output[-3000:]  # ExitCode.CANCELLED
    assert flow_run_of(config).state.type.value == "CANCELLED", output[-3000:]
    assert stopped_after <= BOUND_S and ffmpeg_gone, output[-3000:]  # the bound, not a measurement
    assert len(marker.read_text().splitlines()) == 1, "a second mux started after the cancel"
    tasks = task_runs(run.id)
    late = [t.name for t in tasks if t.start_time and (t.start_time - cancelled_at).total_seconds() > 2]
    assert late == [], f"calls started after the cancel: {late}"
    assert "ffmpeg (mux) failed" not in output and " failed" not in output.split("Cancelled")[-1], output[-3000:]
    assert sorted(p.name for p in scratch.iterdir() if p.name != "grmux-pad-cache") == []

    config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=2, temp_dir=str(scratch))
    state, summary = run_flow(config)
    assert state.is_completed(), summary
    assert sorted(row["status"] for row in summary["calls"]) == ["muxed"] * CALLS, summary["calls"]
    result = audit(sandbox, calls, scratch)
    assert result.ok, result
