"""temp_dir on a small tmpfs (mounted by the test, as root): full before the window, then filling
up while a mux writes its output. Checked: each call fails with a reason naming temp_dir, its
media ids and "No space left" (never "corrupt media"); once space is back, the next cycle muxes
every call exactly once, no orphan, scratch empty, originals unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from grmux_sandbox.site import Sandbox
from tests.reliability.campaign import audit
from tests.support.flows import run_flow

pytestmark = pytest.mark.slow

FILL_ON_MUX = """#!{python}
import os, sys
if any(".muxed.partial-" in arg for arg in sys.argv):  # the mux: fill the disk first
    with open({filler!r}, "ab") as f:
        try:
            while True:
                f.write(b"x" * 65536)
                f.flush()
        except OSError:
            pass
os.execvp("ffmpeg", ["ffmpeg", *sys.argv[1:]])
"""


def need_root() -> None:
    if os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("this test mounts a tmpfs and must run under CI: run the suite as root there")
    pytest.skip("mounting a tmpfs needs root (it runs under CI, as root)")


def fill(path) -> None:
    with open(path, "ab") as f:
        try:
            while True:
                f.write(b"x" * 65536)
                f.flush()
        except OSError:
            pass


def test_a_full_temp_dir_names_temp_dir_the_media_and_no_space_then_the_next_cycle_muxes_all(
        prefect_api, tmp_path, cleanup):
    need_root()
    sandbox = cleanup.enter_context(Sandbox.start(tmp_path / "site"))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    calls = sandbox.seed(2, seed=47, scenarios=["normal"], start=start, size=(320, 240),
                         duration=(6.0, 8.0), spacing=(60.0, 90.0))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(scratch)], check=True)
    cleanup.callback(subprocess.run, ["umount", "-l", str(scratch)], check=False)
    filler = scratch / "filler"
    config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=1, temp_dir=str(scratch))

    fill(filler)  # full before the window
    _state, summary = run_flow(config)
    for row in summary["calls"]:
        assert row["status"] == "failed" and "temp_dir has 0 MB free" in row["reason"], row
        assert "No space left" in row["reason"] and row["call_id"] in row["reason"], row

    filler.unlink()  # room for the downloads, filled up by the mux
    wrapper = tmp_path / "fill-ffmpeg"
    wrapper.write_text(FILL_ON_MUX.format(python=sys.executable, filler=str(filler)))
    wrapper.chmod(0o755)
    _state, summary = run_flow(sandbox.write_config(tmp_path / "muxer-fill.cfg", worker_threads=1,
                                                    temp_dir=str(scratch), ffmpeg=str(wrapper)))
    reasons = [row["reason"] for row in summary["calls"]]
    assert [row["status"] for row in summary["calls"]] == ["failed", "failed"], summary["calls"]
    assert any("No space left on device in temp_dir" in r for r in reasons), reasons
    for row in summary["calls"]:
        assert "No space left" in row["reason"] and row["call_id"] in row["reason"], row
        assert "corrupt" not in row["reason"] and "exit code" not in row["reason"], row

    filler.unlink()
    state, summary = run_flow(config)
    assert state.is_completed(), summary["calls"]
    result = audit(sandbox, calls, scratch)
    assert result.ok, result
