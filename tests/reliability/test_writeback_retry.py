"""The write-back POST under faults: posted again only when a read-back shows RWS does not have it."""

from __future__ import annotations

import json

import pytest
import responses

from grmux_core.config import HtccSettings, SecretStr
from grmux_core.errors import TransientError
from grmux_core.http import HttpPolicy
from grmux_core.models import parse_call_recording
from grmux_core.rws import RwsClient

BASE = "http://rws.test/"
CC = "cc1"
CALL = "c0ffee"
SCREENS = f"{BASE}internal-api/contact-centers/{CC}/screen-recordings"
ONE = f"{SCREENS}/{CALL}"
MEDIA = {"mediaId": f"{CALL}_muxed_1.mp4", "type": "video/mp4"}


def client() -> RwsClient:
    htcc = HtccSettings(base_uri=BASE, contact_center_id=CC, username="ops", password=SecretStr("ops"))
    return RwsClient(htcc, policy=HttpPolicy(retries=0, backoff_factor=0.0, body_retries=3))


def call():
    t = "2026-11-27T16:58:22.000+0000"
    return parse_call_recording({"id": CALL, "startTime": t, "stopTime": "2026-11-27T17:00:22.000+0000",
                                 "mediaFiles": [{"mediaId": "a.mp3", "type": "audio/mp3", "startTime": t,
                                                 "stopTime": "2026-11-27T17:00:22.000+0000",
                                                 "originalMediaDescriptor": {"storage": "webDAV",
                                                                             "path": "http://dav/a.mp3"}}]})


def screen(with_muxed: bool) -> dict:
    files = [{"mediaId": "s.mp4", "type": "video/mp4", "startTime": "2026-11-27T16:58:22.000+0000",
              "stopTime": "2026-11-27T17:00:22.000+0000",
              "originalMediaDescriptor": {"storage": "webDAV", "path": "http://dav/s.mp4"}}]
    if with_muxed:
        files.append({**files[0], "mediaId": MEDIA["mediaId"], "parameters": {"muxed_mediaIds": ["a.mp3", "s.mp4"]}})
    return {"statusCode": 0, "recording": {"id": CALL, "startTime": "2026-11-27T16:58:22.000+0000",
                                           "stopTime": "2026-11-27T17:00:22.000+0000", "mediaFiles": files}}


def posts(rsps) -> int:
    return sum(1 for c in rsps.calls if c.request.method == "POST")


@responses.activate
def test_a_failed_post_that_rws_does_not_have_is_posted_again():
    responses.get(f"{BASE}api/v2/diagnostics/version", json={"statusCode": 0, "version": "8.5.201.14"})
    responses.post(SCREENS, status=502, json={"statusCode": 5})
    responses.post(SCREENS, status=200, json={"statusCode": 0})
    responses.get(ONE, json=screen(with_muxed=False))
    client().write_back(call(), MEDIA)
    assert posts(responses) == 2
    assert json.loads(responses.calls[-1].request.body)["mediaFiles"] == [MEDIA]


@responses.activate
def test_a_failed_post_that_landed_is_not_posted_again():
    responses.get(f"{BASE}api/v2/diagnostics/version", json={"statusCode": 0, "version": "8.5.201.14"})
    responses.post(SCREENS, status=503, json={"statusCode": 5})
    responses.get(ONE, json=screen(with_muxed=True))
    client().write_back(call(), MEDIA)
    assert posts(responses) == 1


@responses.activate
def test_an_unknown_outcome_is_never_reposted_blindly():
    responses.get(f"{BASE}api/v2/diagnostics/version", json={"statusCode": 0, "version": "8.5.201.14"})
    responses.post(SCREENS, status=502, json={"statusCode": 5})
    responses.get(ONE, status=503, json={"statusCode": 5})
    with pytest.raises(TransientError):
        client().write_back(call(), MEDIA)
    assert posts(responses) == 1


@responses.activate
def test_the_post_gives_up_as_transient_after_its_attempts():
    responses.get(f"{BASE}api/v2/diagnostics/version", json={"statusCode": 0, "version": "8.5.201.14"})
    responses.post(SCREENS, status=500, json={"statusCode": 5})
    responses.get(ONE, json=screen(with_muxed=False))
    with pytest.raises(TransientError):
        client().write_back(call(), MEDIA)
    assert posts(responses) == 4
