"""Bad input in one window: each bad call ends failed with a clear reason, the good calls are muxed.

Bad cases are made from generated calls by breaking their stored bytes or their RWS metadata:
corrupt (unreadable) media, a truncated file, a zero-byte file, audio whose metadata claims minutes
more than the file holds, encrypted media with an envelope RCS cannot open and with the envelope of
another file, an RWS answer that is not JSON, a record missing a field, a screen recording entirely
outside its call. A config with wrong types or out-of-range values fails the run with a ConfigError
before any call is touched.
"""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime, timedelta

import pytest

from grmux_sandbox.faults import FaultSpec
from grmux_sandbox.site import Sandbox
from grmux_sandbox.timeutil import iso_ms, parse_iso
from tests.reliability.campaign import originals_changed
from tests.support.flows import run_flow

pytestmark = pytest.mark.slow

GOOD = ["normal", "s3", "holds", "encrypted"]
BAD = {  # case -> scenario it is made from
    "corrupt": "corrupt",
    "truncated": "normal",
    "zero_byte": "normal",
    "duration_minutes_off": "normal",
    "foreign_envelope": "encrypted",
    "envelope_of_another_file": "encrypted",
    "not_json": "normal",
    "missing_field": "normal",
    "screen_outside_call": "normal",
}
#: words the failure reason must contain (case-insensitive), any one of each tuple
REASONS = {
    "corrupt": [("media",)],
    "truncated": [("media",)],
    "zero_byte": [("media", "empty", "0 bytes", "zero")],
    "duration_minutes_off": [("duration", "metadata", "long", "short")],
    "foreign_envelope": [("RCS",), ("private key", "404")],
    "envelope_of_another_file": [("padding", "key does not match", "decrypt")],
    "not_json": [("not JSON",)],
    "missing_field": [("malformed", "field")],
    "screen_outside_call": [("outside", "overlap", "does not cover", "no screen")],
}


def shift(record_time: str, delta: timedelta) -> str:
    return iso_ms(parse_iso(record_time) + delta)


def local_file(sandbox: Sandbox, media) -> os.PathLike:
    return sandbox.store.webdav_recordings / media.path


@pytest.fixture(scope="module")
def window(prefect_api, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-input")
    sandbox = Sandbox.start(folder / "site")
    scenarios = GOOD + list(BAD.values())
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    generated = sandbox.seed(len(scenarios), seed=41, scenarios=scenarios, start=start, size=(320, 240),
                             duration=(6.0, 9.0), spacing=(60.0, 90.0))
    good = dict(zip(GOOD, generated[:len(GOOD)], strict=True))
    bad = dict(zip(BAD, generated[len(GOOD):], strict=True))
    store = sandbox.store

    # stored bytes
    screen = bad["truncated"].screens[0]
    data = local_file(sandbox, screen).read_bytes()
    local_file(sandbox, screen).write_bytes(data[: len(data) // 3])
    local_file(sandbox, bad["zero_byte"].audio[0]).write_bytes(b"")

    # metadata
    call_id = bad["duration_minutes_off"].call_id
    record = copy.deepcopy(store.calls[call_id])
    record["stopTime"] = shift(record["stopTime"], timedelta(minutes=5))
    record["mediaFiles"][0]["stopTime"] = shift(record["mediaFiles"][0]["stopTime"], timedelta(minutes=5))
    record["mediaFiles"][0]["duration"] = str(int(record["mediaFiles"][0].get("duration") or 0) + 300000)
    store.put_call(record)

    key, iv = os.urandom(32), os.urandom(16)
    call_id = bad["foreign_envelope"].call_id
    record = copy.deepcopy(store.screens[call_id])
    record["mediaFiles"][0]["pkcs7"] = Sandbox.foreign_envelope(key, iv)
    store.put_screen(record)

    call_id = bad["envelope_of_another_file"].call_id
    record = copy.deepcopy(store.screens[call_id])
    record["mediaFiles"][0]["pkcs7"] = sandbox.envelope(key, iv)  # RCS opens it; the key is not this file's
    store.put_screen(record)

    call_id = bad["missing_field"].call_id
    record = copy.deepcopy(store.screens[call_id])
    del record["mediaFiles"][0]["startTime"]
    store.put_screen(record)

    call_id = bad["screen_outside_call"].call_id
    record = copy.deepcopy(store.screens[call_id])
    for media in record["mediaFiles"]:
        media["startTime"] = shift(media["startTime"], timedelta(hours=1))
        media["stopTime"] = shift(media["stopTime"], timedelta(hours=1))
    store.put_screen(record)

    # the per-call re-read of this call's screen recording answers an HTML page
    sandbox.set_faults("rws", FaultSpec(garbage_rate=1.0, methods=("GET",),
                                        path_regex=f"/screen-recordings/{bad['not_json'].call_id}$"))
    scratch = folder / "scratch"
    scratch.mkdir()
    config = sandbox.write_config(folder / "muxer.cfg", worker_threads=2, temp_dir=str(scratch))
    state, summary = run_flow(config)
    sandbox.set_faults("rws", None)
    yield sandbox, good, bad, {row["call_id"]: row for row in summary["calls"]}, state, scratch
    sandbox.stop()


def test_good_calls_are_muxed_despite_bad_neighbours(window):
    sandbox, good, _, rows, state, _ = window
    assert state.is_failed()  # some calls failed: the run is red
    for scenario, call in good.items():
        assert rows[call.call_id]["status"] == "muxed", (scenario, rows[call.call_id])
    written = {wb["id"] for wb in sandbox.write_backs()}
    assert written == {c.call_id for c in good.values()}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_call_fails_alone_with_a_clear_reason(window, case):
    _, _, bad, rows, _, _ = window
    row = rows.get(bad[case].call_id)
    assert row is not None, f"{case}: the call is missing from the summary"
    assert row["status"] == "failed", (case, row)
    reason = row["reason"]
    for words in REASONS[case]:
        assert any(w.lower() in reason.lower() for w in words), (case, reason)
    assert "grmux-work-" not in reason and "Traceback" not in reason, reason
    assert len(reason.splitlines()) == 1


def test_bad_input_leaves_originals_and_scratch_clean(window):
    sandbox, good, _, _, _, scratch = window
    assert originals_changed(sandbox, list(good.values())) == []
    assert list(scratch.iterdir()) == []


def test_a_wrong_config_fails_the_run_before_any_call(prefect_api, tmp_path):
    with Sandbox.start(tmp_path / "site") as sandbox:
        config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads="lots", pagination=1000,
                                      window_past=-3)
        from flows.grmux import grmux

        state = grmux(config_path=str(config), return_state=True)
        assert state.is_failed()
        with pytest.raises(Exception) as info:
            state.result()
        text = str(info.value)
        assert type(info.value).__name__ == "ConfigError"
        for name in ("worker_threads", "pagination", "window_past"):
            assert name in text
        assert sandbox.write_backs() == []
