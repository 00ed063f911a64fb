"""temp_dir on a small tmpfs (mounted by the test, as root): full before the window, then filling
up while a mux writes its output. Checked: each call fails with a reason naming temp_dir, its
media ids and "No space left" (never "corrupt media"); once space is back, the next cycle muxes
every call exactly once, no orphan, scratch empty, originals unchanged."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.reliability.campaign import audit, small_site
from tests.support.flows import run_flow

pytestmark = pytest.mark.slow

#: ``[processing] ffmpeg`` that fills the disk just before the mux writes its output.
FILL_ON_MUX = """#!/bin/sh
case "$*" in *.muxed.partial-*) {fill} ;; esac
exec ffmpeg "$@"
"""


def fill_command(path) -> str:
    return f"dd if=/dev/zero of={path} bs=64k 2>/dev/null"


def need_root() -> None:
    if os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        pytest.fail("this test mounts a tmpfs and must run under CI: run the suite as root there")
    pytest.skip("mounting a tmpfs needs root (it runs under CI, as root)")


def fill(path) -> None:
    subprocess.run(fill_command(path), shell=True, check=False)  # until No space left


def test_a_full_temp_dir_names_temp_dir_the_media_and_no_space_then_the_next_cycle_muxes_all(
        prefect_api, tmp_path, cleanup):
    need_root()
    sandbox, calls, scratch = small_site(cleanup, tmp_path, 2, seed=47)
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
    wrapper.write_text(FILL_ON_MUX.format(fill=fill_command(filler)))
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
