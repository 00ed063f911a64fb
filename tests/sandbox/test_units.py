"""Pure parts of the sandbox: filters, times, write-back validation, fault specs, keys."""

from __future__ import annotations

import os

import pytest

from grmux_sandbox.faults import FaultSpec
from grmux_sandbox.keys import (
    BadEnvelope,
    KeyStore,
    NoMatchingKey,
    decrypt_bytes,
    encrypt_bytes,
    foreign_envelope,
)
from grmux_sandbox.rws import build_filter, validate_writeback
from grmux_sandbox.timeutil import parse_iso, parse_query_time

REC = {
    "callerPhoneNumber": "5551234", "dialedPhoneNumber": "8001",
    "eventHistory": [
        {"contact": {"phoneNumber": "5551234"}, "data": {"CustomerSegment": "gold"}},
        {"contact": {"userName": "agent1@cc", "firstName": "Alice", "lastName": "Ng"},
         "data": {"GRECORD_SCREEN": "SRSScreenRecordingStateStarted", "Tomato": "tomcat"}},
    ],
}


@pytest.mark.parametrize(("params", "expected"), [
    ({"callerPhoneNumber": "5551234"}, True),
    ({"callerPhoneNumber": "555*"}, True),
    ({"callerPhoneNumber": "*1234"}, True),
    ({"callerPhoneNumber": "555"}, False),  # exact match, not prefix
    ({"dialedPhoneNumber": "800*"}, True),
    ({"dialedPhoneNumber": "8002"}, False),
    ({"userName": "alice"}, True),  # case-insensitive
    ({"userName": "AGENT1@CC"}, True),
    ({"userName": "ali*"}, True),
    ({"userName": "ali"}, False),  # whole value
    ({"userName": "bob alice"}, True),  # any word
    ({"userName": "bob carla"}, False),
    ({"userName": "alice AND ng"}, True),  # all
    ({"userName": "alice AND bob"}, False),
    ({"userName": "bob alice AND ng"}, True),
    ({"userData": "SRSScreenRecordingStateStarted"}, True),
    ({"userData": "tom*"}, True),
    ({"userData": "Tom*"}, False),  # userData is case-sensitive
    ({"userData": "nothing gold"}, True),  # any word
    ({"userData": "gol"}, False),
    ({"userData": "gold", "userName": "bob"}, False),  # parameters combine with AND
    ({"userData": "gold", "userName": "alice", "callerPhoneNumber": "555*"}, True),
])
def test_filter_rules(params, expected):
    assert build_filter(params)(REC) is expected


def test_phone_filter_is_case_sensitive_and_literal():
    rec = {"callerPhoneNumber": "sip:Bob.1"}
    assert build_filter({"callerPhoneNumber": "sip:Bob.1"})(rec)
    assert not build_filter({"callerPhoneNumber": "sip:bob.1"})(rec)
    assert not build_filter({"callerPhoneNumber": "sip:Bob?1"})(rec)  # only * is special
    assert build_filter({"callerPhoneNumber": "sip:*.1"})(rec)


@pytest.mark.parametrize("bad", ["AND alice", "alice AND", "alice AND AND bob", "  "])
def test_bad_user_name_filter(bad):
    with pytest.raises(ValueError):
        build_filter({"userName": bad})


def test_times():
    a = parse_iso("2026-11-27T16:58:22.000+0000")
    assert a == parse_iso("2026-11-27T16:58:22Z") == parse_iso("2026-11-27T17:58:22.000+01:00")
    assert parse_query_time("1795712302000") == 1795712302000
    assert parse_query_time("2026-11-27T16:58:22.000+0000") == int(a.timestamp() * 1000)
    with pytest.raises(ValueError):
        parse_iso("2026-11-27 16:58:22")


GOOD = {"id": "abc", "startTime": "2026-11-27T16:58:22.000+0000", "stopTime": "2026-11-27T17:00:00.000+0000",
        "mediaFiles": [{"mediaId": "abc_muxed_1.mp4", "type": "video/mp4",
                        "startTime": "2026-11-27T16:58:22.000+0000", "stopTime": "2026-11-27T17:00:00.000Z",
                        "duration": "98000", "size": "1234",
                        "parameters": {"muxed_mediaIds": ["a.mp3", "b.mp4"], "contact": {"userName": "u"},
                                       "region": "us"},
                        "mediaDescriptor": {"storage": "webDAV", "path": "muxed/x.mp4",
                                            "data": {"storagePath": "http://h/recordings/"}}}]}


def _bad(**media_changes):
    body = {**GOOD, "mediaFiles": [{**GOOD["mediaFiles"][0], **media_changes}]}
    return validate_writeback(body)


def test_writeback_validation():
    assert validate_writeback(GOOD) is None
    assert "object" in validate_writeback([GOOD])
    assert "id" in validate_writeback({**GOOD, "id": ""})
    assert "mediaFiles" in validate_writeback({**GOOD, "mediaFiles": []})
    assert "type" in _bad(type="video/avi")
    assert "duration" in _bad(duration=98000)
    assert "size" in _bad(size="12.5")
    assert "startTime" in _bad(startTime="yesterday")
    assert "before" in _bad(stopTime="2026-11-27T16:00:00.000+0000")
    assert "muxed_mediaIds" in _bad(parameters={"muxed_mediaIds": []})
    assert "mediaDescriptor" in _bad(mediaDescriptor=None)
    assert "storage" in _bad(mediaDescriptor={"storage": "ftp", "path": "x"})
    assert "bucket" in _bad(mediaDescriptor={"storage": "awsS3", "path": "x"})


def test_fault_spec_validation_and_roundtrip():
    spec = FaultSpec(error_rate=0.3, cut_rate=0.2, latency_ms=5, seed=4, methods=("GET",))
    assert FaultSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError):
        FaultSpec(error_rate=1.5)
    with pytest.raises(ValueError):
        FaultSpec(error_rate=0.6, cut_rate=0.6)
    with pytest.raises(ValueError):
        FaultSpec(error_statuses=(404,))
    with pytest.raises(ValueError):
        FaultSpec.from_dict({"nonsense": 1})


def test_envelope_round_trip(tmp_path):
    keys = KeyStore(tmp_path / "keys")
    key, iv = os.urandom(32), os.urandom(16)
    pem = keys.envelope(key, iv)
    assert pem.startswith("-----BEGIN PKCS7-----")
    assert keys.open(pem) == (key, iv)
    assert KeyStore(tmp_path / "keys").open(pem) == (key, iv)  # keys persist
    with pytest.raises(NoMatchingKey):
        keys.open(foreign_envelope(key, iv))
    with pytest.raises(BadEnvelope):
        keys.open("not an envelope")
    data = os.urandom(1000)
    assert decrypt_bytes(encrypt_bytes(data, key, iv), key, iv) == data
    assert len(encrypt_bytes(b"x" * 32, key, iv)) == 48  # PKCS#7 adds a full block
