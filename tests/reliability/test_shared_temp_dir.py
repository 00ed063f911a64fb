"""Two instances sharing one temp_dir, the second in a PID namespace of its own (``unshare --pid
--fork``, as a second container on the host): to it every pid of the first looks dead. Checked:
its start-up cleaning removes none of the first instance's live call folders (they are held by an
OS lock), every call is muxed exactly once, scratch empty, no orphan, originals unchanged."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from deployments.processes import run_process
from grmux_core.scratch import WORK_PREFIX
from tests.reliability.campaign import audit, small_site
from tests.reliability.test_cancel_run import slow_ffmpeg
from tests.support import ROOT
from tests.support.flows import flow_cycle_argv, start_flow_cycle

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                    reason="needs unshare(1) and root for a PID namespace")
def test_an_instance_in_another_pid_namespace_removes_no_live_folder_and_every_call_is_muxed_once(
        prefect_api, tmp_path, cleanup):
    sandbox, calls, scratch = small_site(cleanup, tmp_path, 2, seed=53)
    ffmpeg, marker = slow_ffmpeg(tmp_path, stall_s=6)
    first_config = sandbox.write_config(tmp_path / "first.cfg", worker_threads=2, temp_dir=str(scratch),
                                        ffmpeg=str(ffmpeg))
    second_config = sandbox.write_config(tmp_path / "second.cfg", worker_threads=2, temp_dir=str(scratch))
    env = os.environ | {"PREFECT_API_URL": prefect_api}
    first = start_flow_cycle(cleanup, first_config, env)
    deadline = time.monotonic() + 300
    while not (marker.exists() and len(marker.read_text().splitlines()) == 2):
        assert first.poll() is None, first.stdout.read() if first.stdout else ""
        assert time.monotonic() < deadline, "the first instance started no mux in time"
        time.sleep(0.05)
    live = sorted(p.name for p in scratch.glob(f"{WORK_PREFIX}*"))
    assert len(live) == 2, live
    began = time.monotonic()
    second = run_process(["unshare", "--pid", "--fork", *flow_cycle_argv(second_config)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    print(f"second instance ran {time.monotonic() - began:.1f} s")
    out = first.communicate(timeout=300)[0].decode(errors="replace")
    print(f"first instance done {time.monotonic() - began:.1f} s after the second started")
    assert first.returncode == 0, out[-3000:]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "COUNTS {'muxed': 2" in out, out[-2000:]  # the first instance's calls were not pulled from under it
    result = audit(sandbox, calls, scratch)
    assert result.ok, result
