"""Storage that misbehaves without failing: a WebDAV server that trickles one call's screen, then
one whose disk is full (507). Checked: the trickled call fails with the rate reason (media id,
bytes received of expected, rate) and the others finish; a 507 fails the call with "storage full"
after the upload step alone retried it (PUTs counted: no re-download, no re-mux); the next cycle
muxes every call exactly once, no orphan, scratch empty, originals unchanged."""

from __future__ import annotations

import pytest

import grmux_core.call
from grmux_sandbox.faults import FaultSpec
from tests.reliability.campaign import audit, small_site
from tests.support.flows import run_flow

pytestmark = pytest.mark.slow


def by_call(summary) -> dict[str, dict]:
    return {row["call_id"]: row for row in summary["calls"]}


def test_a_trickle_fails_its_call_with_the_rate_507_retries_only_the_upload_and_the_next_cycle_muxes_all(
        prefect_api, tmp_path, cleanup, monkeypatch):
    sandbox, calls, scratch = small_site(cleanup, tmp_path, 3, seed=43)
    config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=3, temp_dir=str(scratch),
                                  min_transfer_rate_kbps=64)
    slow = calls[0].screens[0]
    sandbox.set_faults("webdav", FaultSpec(methods=("GET",), path_regex=slow.media_id, trickle_bytes=256,
                                           trickle_every_s=0.5))
    state, summary = run_flow(config)
    rows = by_call(summary)
    reason = rows[calls[0].call_id]["reason"]
    assert rows[calls[0].call_id]["status"] == "failed", rows
    assert slow.media_id in reason and "bytes received in" in reason and "KiB/s, below the minimum 64 KiB/s" in reason
    assert [rows[c.call_id]["status"] for c in calls[1:]] == ["muxed", "muxed"], rows
    assert state.is_failed()  # the run ended (red, one call failed), nothing left running

    monkeypatch.setattr(grmux_core.call, "UPLOAD_RETRY_DELAY_S", 0.1)
    sandbox.set_faults("webdav", FaultSpec(methods=("PUT",), error_rate=1.0, error_statuses=(507,)))
    sandbox.reset_fault_stats()
    state, summary = run_flow(config)
    row = by_call(summary)[calls[0].call_id]
    assert row["status"] == "failed" and "storage full (507 Insufficient Storage)" in row["reason"], row
    puts = sandbox.fault_stats("webdav")["statuses"]
    assert puts == {507: grmux_core.call.UPLOAD_ATTEMPTS} or puts == {"507": grmux_core.call.UPLOAD_ATTEMPTS}, puts

    sandbox.set_faults("webdav", None)
    state, summary = run_flow(config)
    assert by_call(summary)[calls[0].call_id]["status"] == "muxed", summary["calls"]
    result = audit(sandbox, calls, scratch)
    assert result.ok, result
