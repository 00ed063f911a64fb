"""Encrypted in, encrypted out, through the real flow: a site listing two screen-recording
certificates gets every muxed file stored encrypted; ``encrypt_output = never`` stores plain and
warns once per run; an expired certificate fails the cycle naming it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from grmux_core.config import load_settings
from grmux_core.crypto import RcsClient
from grmux_sandbox.keys import decrypt_bytes
from grmux_sandbox.site import Sandbox
from tests.flows.alignment import check_alignment
from tests.support.flows import run_flow

NEVER_WARNING = "encrypt_output = never"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    with Sandbox.start(folder) as sandbox:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
        calls = sandbox.seed(2, seed=91, scenarios=["encrypted", "s3"], start=start, size=(320, 240),
                             duration=(6.0, 8.0), spacing=(60.0, 90.0))
        yield sandbox, calls, folder


def flow_run_logs(state) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # send what this process still holds
    with get_client(sync_client=True) as client:
        for _ in range(50):  # the log worker ships batches in the background
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
            if any("cycle" in entry.message and "done" in entry.message for entry in logs):
                return [entry.message for entry in logs]
            time.sleep(0.2)
    return [entry.message for entry in logs]


def test_an_expired_certificate_fails_the_cycle_naming_it(site):
    sandbox, _calls, folder = site
    sandbox.set_screen_encryption("expired")
    state, _ = run_flow(sandbox.write_config(folder / "expired.cfg", worker_threads=2), mode="primary")
    assert state.is_failed() and "sandbox-expired" in str(state.message) + repr(state.data)
    assert sandbox.write_backs() == []


def test_with_two_certificates_every_output_is_encrypted_opens_through_rcs_and_is_aligned(site, tmp_path):
    sandbox, calls, folder = site
    sandbox.set_screen_encryption("two")
    config = sandbox.write_config(folder / "two.cfg", worker_threads=2)
    state, summary = run_flow(config, mode="primary")
    assert summary["counts"]["muxed"] == 2, summary
    assert not any(NEVER_WARNING in line for line in flow_run_logs(state))
    rcs = RcsClient(load_settings(config).rcs, sandbox.contact_center_id)
    written = {wb["id"]: wb["body"]["mediaFiles"][0] for wb in sandbox.write_backs()}
    for call in calls:
        media_file = written[call.call_id]
        stored = sandbox.media_bytes(media_file)
        assert media_file["mediaId"].endswith(".mp4.bin") and stored[4:8] != b"ftyp"
        key, iv = rcs.decrypt_key(media_file["pkcs7"])
        out = tmp_path / f"{call.call_id}.mp4"
        out.write_bytes(decrypt_bytes(stored, key, iv))
        assert check_alignment(out, call) == []
    rcs.close()


def test_never_stores_plain_and_warns_once(site):
    sandbox, _calls, folder = site
    sandbox.set_screen_encryption("two")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    [call] = sandbox.seed(1, seed=92, scenarios=["normal"], start=start, size=(320, 240), duration=(6.0, 8.0))
    state, summary = run_flow(sandbox.write_config(folder / "never.cfg", worker_threads=2, encrypt_output="never"),
                              mode="primary")
    rows = {row["call_id"]: row for row in summary["calls"]}
    assert rows[call.call_id]["status"] == "muxed", rows
    [media_file] = [wb["body"]["mediaFiles"][0] for wb in sandbox.write_backs() if wb["id"] == call.call_id]
    assert "pkcs7" not in media_file and media_file["mediaId"].endswith(".mp4")
    assert sandbox.media_bytes(media_file)[4:8] == b"ftyp"
    warnings = [line for line in flow_run_logs(state) if NEVER_WARNING in line]
    assert len(warnings) == 1 and "sandbox-rcs-2" in warnings[0]
