"""Crash and resume: kill -9 the flow process mid-window, rerun, and get what an undisturbed run gives.

The flow runs in a subprocess (a process group of its own) against the session's Prefect server. It
is killed (SIGKILL to the group: with its ffmpeg children, as when a worker host dies) once a first
upload or a first write-back is seen while a call is in progress, then the window is run again in
another process. Checked after the kill: nothing
half-uploaded is visible under a final name. Checked after the rerun: every call registered
exactly once, no orphan or temporary file in storage, originals untouched, temp dir empty (the
dead run's scratch folders are removed at start-up).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grmux_sandbox.site import Sandbox
from tests.reliability.campaign import audit, storage_listing
from tests.support.cleanup import Cleanup
from tests.support.flows import start_flow_cycle

pytestmark = pytest.mark.slow
CALLS = 6


def kill_hard(process: subprocess.Popen) -> None:
    """SIGKILL the flow process and its children (ffmpeg) at once: its whole process group."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def flow_process(cleanup: Cleanup, config: Path, api_url: str, log: Path) -> subprocess.Popen:
    """One cycle in a process group of its own, output to ``log``; ``cleanup`` stops what is left."""
    out = log.open("wb")
    cleanup.callback(out.close)
    return start_flow_cycle(cleanup, config, os.environ | {"PREFECT_API_URL": api_url}, stdout=out)


def final_names(listing: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(storage, name) of muxed files under their final name (a temporary upload's starts with a dot)."""
    return [(kind, name) for kind, names in listing.items() for name in names
            if "_muxed_" in name.rsplit("/", 1)[-1] and not name.rsplit("/", 1)[-1].startswith(".")]


def something_published(sandbox: Sandbox, moment: str) -> bool:
    """A first muxed file under its final name ("upload"; an upload still under its temporary name
    does not count), or a first write-back."""
    if moment == "write-back":
        return bool(sandbox.write_backs())
    return bool(final_names(storage_listing(sandbox)))


def frozen_mid_call(process: subprocess.Popen, sandbox: Sandbox, moment: str, scratch: Path) -> bool:
    """Freeze the flow's process group; True (left frozen) when something is published and a call
    folder of the process exists, else thaw it and return False."""
    if not something_published(sandbox, moment):
        return False
    os.killpg(process.pid, signal.SIGSTOP)
    if any(f"-{process.pid}-" in p.name for p in scratch.glob("grmux-work-*")):
        return True
    os.killpg(process.pid, signal.SIGCONT)
    return False


def lock_folder() -> Path:
    from prefect.settings import PREFECT_HOME

    return Path(PREFECT_HOME.value()) / "grmux-locks"


def stale_locks() -> dict[str, bool]:
    """Lock files of per-call transactions on disk → whether grmux's lock manager still honours them."""
    from tasks.locking import lock_manager

    manager = lock_manager()
    files = sorted(lock_folder().glob("*.lock")) if lock_folder().exists() else []
    return {p.name: manager.is_locked(p.name.removesuffix(".lock")) for p in files}


def probe_duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout)["format"]["duration"])


@pytest.fixture(scope="module", params=["upload", "write-back"])
def crashed(request, prefect_api, tmp_path_factory):
    """A window whose flow process was killed after its first upload / first write-back, mid-call."""
    moment = request.param
    folder = tmp_path_factory.mktemp(f"crash-{moment}")
    with Cleanup() as cleanup:  # the sandbox, and the flow process if the kill never came
        sandbox = cleanup.enter_context(Sandbox.start(folder / "site"))
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        calls = sandbox.seed(CALLS, seed=31, scenarios=["normal", "s3", "encrypted"], start=start,
                             size=(320, 240), duration=(6.0, 9.0), spacing=(60.0, 90.0))
        scratch = folder / "scratch"
        scratch.mkdir()
        config = sandbox.write_config(folder / "muxer.cfg", worker_threads=2, temp_dir=str(scratch))
        process = flow_process(cleanup, config, prefect_api, folder / "first-run.log")
        deadline = time.monotonic() + 300
        # killed after a first publish *and* while a call is in progress (a call just written back
        # removes its folder within milliseconds): the group is frozen (SIGSTOP) while both are
        # checked, so nothing changes between the check and the kill
        while not frozen_mid_call(process, sandbox, moment, scratch):
            assert process.poll() is None, (folder / "first-run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "nothing was published while a call was in progress, in time"
            time.sleep(0.05)
        kill_hard(process)
        after_kill = {"listing": storage_listing(sandbox), "write_backs": list(sandbox.write_backs()),
                      "scratch": sorted(p.name for p in scratch.iterdir()), "locks": stale_locks(),
                      "dead_pid": process.pid}
        yield sandbox, calls, config, scratch, folder, after_kill


@pytest.fixture(scope="module")
def rerun(crashed, prefect_api):
    sandbox, calls, config, scratch, folder, _ = crashed
    # the killed process's lock files are left on disk: the rerun must not wait on them
    log = folder / "rerun.log"
    with Cleanup() as cleanup:  # stopped (bounded) if it does not end in time
        process = flow_process(cleanup, config, prefect_api, log)
        code = process.wait(timeout=400)
    assert code == 0, log.read_text()[-4000:]
    return audit(sandbox, calls, scratch)


def test_nothing_half_uploaded_is_visible_under_a_final_name(crashed, tmp_path):
    sandbox, calls, _, _, _, after_kill = crashed
    finals = final_names(after_kill["listing"])
    assert finals, "the kill came after a first publish"
    by_id = {c.call_id: c for c in calls}
    for kind, name in finals:
        call = by_id[name.rsplit("/", 1)[-1].split("_muxed_")[0]]
        local = tmp_path / name.replace("/", "_")
        if kind == "s3":
            local.write_bytes(sandbox.s3_client().get_object(Bucket=sandbox.bucket, Key=name)["Body"].read())
        else:
            local.write_bytes((sandbox.store.webdav_recordings / name).read_bytes())
        # a complete mux: readable, and as long as the call (a partial file would be neither)
        assert abs(probe_duration(local) - call.duration) < 0.5, name


def test_the_rerun_equals_an_undisturbed_run(crashed, rerun):
    sandbox, calls, *_ = crashed
    assert rerun.missing == [] and rerun.muxed == CALLS
    posts = Counter(wb["id"] for wb in sandbox.write_backs())
    assert set(posts) == {c.call_id for c in calls}
    assert max(posts.values()) == 1, "a call was registered twice"
    assert rerun.duplicates == 0
    # each call registered as <id>_muxed_1.mp4 covering exactly its sources, as an undisturbed run does
    for call in calls:
        media = [m for m in sandbox.screen_recording(call.call_id)["mediaFiles"] if "_muxed_" in m["mediaId"]]
        assert [m["mediaId"] for m in media] == [f"{call.call_id}_muxed_1.mp4"]
        assert set(media[0]["parameters"]["muxed_mediaIds"]) == {m.media_id for m in [*call.audio, *call.screens]}
    assert rerun.orphans == []
    assert rerun.bad_outputs == []
    assert rerun.originals_changed == []


def test_scratch_of_the_dead_run_is_removed_at_start_up(crashed, rerun):
    _, _, _, scratch, _, after_kill = crashed
    dead = [n for n in after_kill["scratch"] if n.startswith("grmux-work-") and f"-{after_kill['dead_pid']}-" in n]
    assert dead, "the killed run had a call in progress, so it left a scratch folder"
    assert rerun.scratch_left == []
    assert list(scratch.iterdir()) == []


def test_a_killed_run_leaves_no_lock_that_blocks_a_rerun(crashed):
    _, _, _, _, _, after_kill = crashed
    assert after_kill["locks"], "the killed run held a per-call lock (its file is still on disk)"
    assert [name for name, locked in after_kill["locks"].items() if locked] == []
