"""RwsClient logic against `responses` mocks: paging, filters, CSRF, retries, 403/404 handling."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from responses import matchers

from grmux_core.config import AdvancedSettings, HtccSettings, ProcessingSettings, SecretStr
from grmux_core.contract import media_descriptor
from grmux_core.errors import AuthError, ProtocolError, RecordError, TransientError, WriteBackRefused
from grmux_core.http import HttpPolicy
from grmux_core.models import (
    AWS_S3,
    WEBDAV,
    CallRecording,
    MediaLocation,
    ScreenRecording,
    parse_call_recording,
    parse_location,
)
from grmux_core.rws import RwsClient, default_extra_query, encode_query, version_tuple

BASE = "http://rws.example:8090/"
CC = "cc1"
LIST = f"{BASE}api/v2/ops/contact-centers/{CC}/recordings"
SCREENS = f"{BASE}internal-api/contact-centers/{CC}/screen-recordings"
VERSION = f"{BASE}api/v2/diagnostics/version"
FAST = HttpPolicy(backoff_factor=0, retries=3, body_retries=1)
DATA = Path(__file__).parent / "data" / "rws"
T0 = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)


def call_json(i: int) -> dict:
    return {
        "id": f"call{i:04d}", "startTime": "2026-11-27T10:00:00.000+0000", "stopTime": "2026-11-27T10:01:00.000+0000",
        "mediaFiles": [{"mediaId": f"call{i:04d}_a.mp3", "type": "audio/mp3",
                        "startTime": "2026-11-27T10:00:00.000+0000", "stopTime": "2026-11-27T10:01:00.000+0000",
                        "originalMediaDescriptor": {"storage": "webDAV", "path": f"v/{i}.mp3",
                                                    "data": {"storagePath": "http://dav:8080/r/"}}}],
    }


def screen_json(call_id: str, extra_media: list[dict] | None = None) -> dict:
    return {"id": call_id, "mediaFiles": [
        {"mediaId": f"{call_id}_s1.mp4", "type": "video/mp4",
         "startTime": "2026-11-27T10:00:00.000+0000", "stopTime": "2026-11-27T10:01:00.000+0000",
         "parameters": {"contact": {"userName": "a1"}},
         "originalMediaDescriptor": {"storage": "webDAV", "path": f"s/{call_id}.mp4",
                                     "data": {"storagePath": "http://dav:8080/r/"}}}, *(extra_media or [])]}


def make_client(extra: str = "", *, pagination: int = 2, slice_size: int = 3, bulk: int = 1) -> RwsClient:
    htcc = HtccSettings(base_uri=BASE, contact_center_id=CC, username="ops", password=SecretStr("s3cret"))
    return RwsClient(
        htcc,
        AdvancedSettings(pagination=pagination, call_recording_extra_query_string=extra),
        ProcessingSettings(query_slice_size=slice_size, batch_read_screen_recording_metadata=bulk),
        policy=FAST,
    )


def add_version(version: str = "8.5.201.14", csrf: bool = True, token: str = "tok1") -> None:
    headers = {"X-CSRF-HEADER": "X-CSRF-TOKEN", "X-CSRF-TOKEN": token, "Set-Cookie": f"JSESSIONID=js-{token}; Path=/"}
    responses.get(VERSION, json={"statusCode": 0, "version": version}, headers=headers if csrf else {})


# ------------------------------------------------------------------ pure helpers


def test_default_extra_query_by_version():
    assert default_extra_query("", "8.5.201.14") == "userData=SRSScreenRecordingStateStarted"
    assert default_extra_query("", "8.5.210.02") == "userData=SRSScreenRecordingStateStarted"
    assert default_extra_query("", "8.5.201.13") == ""
    assert default_extra_query("", "8.1.400.20") == ""
    assert default_extra_query("", None) == ""
    assert default_extra_query("disable", "9.0.0.0") == ""
    assert default_extra_query("DISABLE", "9.0.0.0") == ""
    assert default_extra_query("userName=agent*", "9.0.0.0") == "userName=agent*"
    assert version_tuple("8.5.201.14b") == (8, 5, 201, 14)


def test_encode_query_normalises_spaces_and_keeps_wildcards():
    assert encode_query("userName=tom* AND ann") == "userName=tom*%20AND%20ann"
    assert encode_query("?userName=tom%20ann&userData=x") == "userName=tom%20ann&userData=x"


# ------------------------------------------------------------------ listing


@responses.activate
def test_paging_follows_next_uri_and_never_assumes_a_count():
    add_version()
    calls = [call_json(i) for i in range(5)]
    pages = [calls[0:2], calls[2:4], calls[4:5]]
    for number, page in enumerate(pages, start=1):
        body = {"statusCode": 0, "recordings": page}
        if number < len(pages):
            body["nextUri"] = f"{LIST}?cursor={number + 1}"
        match = [matchers.query_param_matcher({"cursor": str(number)})] if number > 1 else [
            matchers.query_param_matcher({"startTime": str(int(T0.timestamp() * 1000)),
                                          "endTime": str(int(T1.timestamp() * 1000)),
                                          "limit": "2", "userData": "SRSScreenRecordingStateStarted"})]
        responses.get(LIST, json=body, match=match)
    client = make_client()
    gen = client.list_recordings(T0, T1)
    assert len(responses.calls) == 0  # a generator: nothing fetched yet
    first = next(gen)
    assert isinstance(first, CallRecording) and first.id == "call0000"
    assert len(responses.calls) == 2  # version + first page only
    rest = list(gen)
    assert [c.id for c in [first, *rest]] == [f"call{i:04d}" for i in range(5)]
    assert len(responses.calls) == 4


@responses.activate
def test_configured_extra_query_passes_through_and_disable_sends_none():
    responses.get(LIST, json={"statusCode": 0, "recordings": []})
    list(make_client("userName=agent* AND x").list_recordings(T0, T1))
    list(make_client("disable").list_recordings(T0, T1))
    first, second = (parse_qs(urlsplit(c.request.url).query) for c in responses.calls)
    assert first["userName"] == ["agent* AND x"] and "userData" not in first
    assert "userName" not in second and "userData" not in second
    assert all(VERSION not in c.request.url for c in responses.calls)  # no version needed


@responses.activate
def test_old_rws_gets_no_userdata_filter():
    add_version("8.5.200.99")
    responses.get(LIST, json={"statusCode": 0, "recordings": []})
    list(make_client().list_recordings(T0, T1))
    assert "userData" not in responses.calls[-1].request.url


@responses.activate
def test_list_by_query_uses_exactly_the_query_plus_limit():
    responses.get(LIST, json={"statusCode": 0, "recordings": [call_json(1)]})
    out = list(make_client().list_by_query("callerPhoneNumber=555*"))
    assert [c.id for c in out] == ["call0001"]
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query == {"callerPhoneNumber": ["555*"], "limit": ["2"]}


@responses.activate
def test_a_malformed_record_is_yielded_as_record_error_and_the_page_goes_on():
    bad = call_json(2)
    del bad["startTime"]
    responses.get(LIST, json={"statusCode": 0, "recordings": [call_json(1), bad, call_json(3)]})
    out = list(make_client("disable", pagination=5).list_recordings(T0, T1))
    assert [c.id for c in out if isinstance(c, CallRecording)] == ["call0001", "call0003"]
    errors = [e for e in out if isinstance(e, RecordError)]
    assert len(errors) == 1 and errors[0].call_id == "call0002" and errors[0].field == "startTime"


@responses.activate
def test_next_uri_to_another_host_is_refused():
    responses.get(LIST, json={"statusCode": 0, "recordings": [call_json(1)],
                              "nextUri": "http://evil.example/steal"})
    with pytest.raises(ProtocolError, match="another host"):
        list(make_client("disable").list_recordings(T0, T1))


@responses.activate
def test_paging_loop_is_detected():
    responses.get(LIST, json={"statusCode": 0, "recordings": [], "nextUri": f"{LIST}?cursor=1"})
    with pytest.raises(ProtocolError, match="already read"):
        list(make_client("disable").list_by_query("cursor=1&limit=2"))


@responses.activate
def test_5xx_is_retried_then_succeeds():
    responses.get(LIST, status=503)
    responses.get(LIST, status=502)
    responses.get(LIST, json={"statusCode": 0, "recordings": [call_json(1)]})
    out = list(make_client("disable").list_recordings(T0, T1))
    assert [c.id for c in out] == ["call0001"]
    assert len(responses.calls) == 3


@responses.activate
def test_persistent_5xx_is_a_transient_error():
    responses.get(LIST, status=500, json={"statusCode": 1, "statusMessage": "db down"})
    with pytest.raises(TransientError, match="500"):
        list(make_client("disable").list_recordings(T0, T1))
    assert len(responses.calls) == 4  # 1 + 3 retries


@responses.activate
def test_connection_error_is_transient():
    responses.get(LIST, body=requests.exceptions.ConnectionError("refused"))
    with pytest.raises(TransientError, match="could not be reached"):
        list(make_client("disable").list_recordings(T0, T1))


@responses.activate
def test_wrong_password_is_an_auth_error_without_the_password():
    responses.get(LIST, status=401, json={"statusCode": 2, "statusMessage": "Unauthorized"})
    with pytest.raises(AuthError) as info:
        list(make_client("disable").list_recordings(T0, T1))
    assert "[htcc] username/password" in str(info.value)
    assert "s3cret" not in str(info.value)
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_not_json_and_nonzero_status_code_are_protocol_errors():
    responses.get(LIST, body="<html>login</html>", content_type="text/html")
    with pytest.raises(ProtocolError, match="not JSON"):
        list(make_client("disable").list_recordings(T0, T1))
    responses.replace(responses.GET, LIST, json={"statusCode": 7, "statusMessage": "bad filter"})
    with pytest.raises(ProtocolError, match="bad filter"):
        list(make_client("disable").list_recordings(T0, T1))


@responses.activate
def test_400_is_a_protocol_error():
    responses.get(LIST, status=400, json={"statusCode": 3, "statusMessage": "startTime or a filter is required"})
    with pytest.raises(ProtocolError, match="startTime or a filter"):
        list(make_client("disable").list_recordings(T0, T1))


# ------------------------------------------------------------------ screen recordings


@responses.activate
def test_bulk_reads_in_slices_and_missing_ids_are_absent():
    ids = [f"call{i:04d}" for i in range(7)]
    existing = set(ids) - {"call0002", "call0005"}

    def answer(request):
        asked = parse_qs(urlsplit(request.url).query)["ids"][0].split(",")
        assert len(asked) <= 3
        return 200, {}, json.dumps({"statusCode": 0, "recordings": [screen_json(i) for i in asked if i in existing]})

    responses.add_callback(responses.GET, SCREENS, callback=answer)
    out = make_client().screen_recordings(ids)
    assert set(out) == existing
    assert all(isinstance(v, ScreenRecording) for v in out.values())
    assert len(responses.calls) == 3  # 3 + 3 + 1


@responses.activate
def test_bulk_read_keeps_a_malformed_screen_as_record_error():
    bad = screen_json("call0001")
    bad["mediaFiles"][0]["startTime"] = "yesterday"
    responses.get(SCREENS, json={"statusCode": 0, "recordings": [screen_json("call0000"), bad]})
    out = make_client().screen_recordings(["call0000", "call0001"])
    assert isinstance(out["call0000"], ScreenRecording)
    assert isinstance(out["call0001"], RecordError) and out["call0001"].field == "mediaFiles[0].startTime"


@responses.activate
def test_one_request_per_call_mode_404_is_absent():
    responses.get(f"{SCREENS}/a", json={"statusCode": 0, "recording": screen_json("a")})
    responses.get(f"{SCREENS}/b", status=404, json={"statusCode": 404, "statusMessage": "not found"})
    out = make_client(bulk=0).screen_recordings(["a", "b"])
    assert list(out) == ["a"]


# ------------------------------------------------------------------ CSRF, write-back, delete


def muxed_media(call_id: str) -> dict:
    return {"mediaId": f"{call_id}_muxed_1.mp4", "type": "video/mp4",
            "startTime": "2026-11-27T10:00:00.000+0000", "stopTime": "2026-11-27T10:01:00.000+0000",
            "duration": "60000", "size": "1000", "parameters": {"muxed_mediaIds": [f"{call_id}_a.mp3"]},
            "mediaDescriptor": {"storage": "webDAV", "path": f"m/{call_id}_muxed_1.mp4",
                                "data": {"storagePath": "http://dav:8080/r/"}}}


@responses.activate
def test_write_back_sends_csrf_header_and_cookie():
    add_version()
    responses.post(SCREENS, json={"statusCode": 0},
                   match=[matchers.header_matcher({"X-CSRF-TOKEN": "tok1"})])
    client = make_client()
    call = parse_call_recording(call_json(1))
    client.write_back(call, muxed_media(call.id))
    post = responses.calls[-1].request
    assert "JSESSIONID=js-tok1" in post.headers["Cookie"]
    body = json.loads(post.body)
    assert body["id"] == "call0001" and body["startTime"] == "2026-11-27T10:00:00.000+0000"
    assert body["mediaFiles"][0]["mediaId"] == "call0001_muxed_1.mp4"


@responses.activate
def test_csrf_403_renews_the_token_once_and_retries():
    add_version(token="old")
    add_version(token="new")
    responses.post(SCREENS, status=403, json={"statusCode": 403}, match=[matchers.header_matcher({"X-CSRF-TOKEN": "old"})])
    responses.post(SCREENS, json={"statusCode": 0}, match=[matchers.header_matcher({"X-CSRF-TOKEN": "new"})])
    client = make_client()
    client.write_back(parse_call_recording(call_json(1)), muxed_media("call0001"))
    methods = [c.request.method for c in responses.calls]
    assert methods == ["GET", "POST", "GET", "POST"]


@responses.activate
def test_persistent_403_on_post_is_a_refusal_once_a_read_back_shows_it_absent():
    add_version()
    responses.post(SCREENS, status=403, json={"statusCode": 403, "statusMessage": "forbidden"})
    responses.get(f"{SCREENS}/call0001", json={"statusCode": 0, "recording": screen_json("call0001")})
    with pytest.raises(WriteBackRefused, match=r"403.*forbidden.*\[htcc\] username/password"):
        make_client().write_back(parse_call_recording(call_json(1)), muxed_media("call0001"))
    assert [c.request.method for c in responses.calls] == ["GET", "POST", "GET", "POST", "GET"]


@responses.activate
def test_post_is_not_retried_on_5xx_and_unknown_outcome_is_checked():
    """A failed POST is posted again only after a read-back shows RWS lacks it (1 + body_retries in all)."""
    add_version()
    responses.post(SCREENS, status=503)
    responses.get(f"{SCREENS}/call0001", json={"statusCode": 0, "recording": screen_json("call0001")})
    with pytest.raises(TransientError):
        make_client().write_back(parse_call_recording(call_json(1)), muxed_media("call0001"))
    methods = [c.request.method for c in responses.calls if "screen-recordings" in c.request.url]
    assert methods == ["POST", "GET"] * (1 + FAST.body_retries)


@responses.activate
def test_post_that_landed_despite_a_5xx_is_success():
    add_version()
    responses.post(SCREENS, status=504)
    landed = screen_json("call0001", [muxed_media("call0001")])
    responses.get(f"{SCREENS}/call0001", json={"statusCode": 0, "recording": landed})
    make_client().write_back(parse_call_recording(call_json(1)), muxed_media("call0001"))


@responses.activate
def test_no_csrf_headers_means_csrf_off():
    add_version(csrf=False)
    responses.delete(f"{SCREENS}/c1/content/c1_s1.mp4", json={"statusCode": 0})
    make_client().delete_original("c1", "c1_s1.mp4")
    assert "X-CSRF-TOKEN" not in responses.calls[-1].request.headers


@responses.activate
def test_delete_of_an_absent_original_is_fine():
    add_version()
    responses.delete(f"{SCREENS}/c1/content/c1_s1.mp4", status=404, json={"statusCode": 404})
    make_client().delete_original("c1", "c1_s1.mp4")
    assert responses.calls[-1].request.headers["X-CSRF-TOKEN"] == "tok1"


# ------------------------------------------------------------------ write-back shape


def test_location_descriptor_round_trip():
    for loc in (
        MediaLocation(WEBDAV, "muxed/a.mp4", base="http://h:8080/rec/"),
        MediaLocation(AWS_S3, "muxed/a.mp4", bucket="b", region="eu-west-1", endpoint="http://s3:9000"),
    ):
        assert parse_location(media_descriptor(loc)) == loc


# ------------------------------------------------------------------ variants seen in the field (captured samples)


@responses.activate
def test_field_page_parses_every_record():
    """Durations in ms, in seconds with decimals and garbage; audio/mp3, mpeg3, mpeg, x-wav; Z and +0000
    times with and without ms; absolute voice URLs without storagePath. The answer has no next link
    and holds fewer records than the limit: complete."""
    page = json.loads((DATA / "field_page.json").read_text())
    responses.get(LIST, json=page)
    out = list(make_client("disable", pagination=5).list_recordings(T0, T1))
    assert all(isinstance(c, CallRecording) for c in out), out
    by_id = {c.id: c for c in out}
    genesys = by_id["011AP643CSAPR4FKQGQE31TAES00029V"].media_files[0]
    assert genesys.duration_ms == 12523 and genesys.location.url.startswith("http://dav1.example:8080/recordings/")
    field = by_id["02field"].media_files[0]
    assert field.duration_ms == 6192 and field.type == "audio/mpeg3" and field.is_audio
    assert (field.stop - field.start).total_seconds() == 6.192
    wav, mp3 = by_id["03field"].media_files
    assert wav.duration_ms is None and wav.size is None and wav.is_audio and mp3.duration_ms == 30000
    assert by_id["03field"].stop == mp3.stop


@responses.activate
def test_plain_text_error_bodies_decide_by_status():
    responses.get(f"{SCREENS}/gone", status=404, body="Not Found", content_type="text/plain")
    responses.get(LIST, status=400, body="startTime is required", content_type="text/plain")
    client = make_client("disable")
    assert client.screen_recording("gone") is None
    with pytest.raises(ProtocolError, match="400.*startTime is required"):
        list(client.list_recordings(T0, T1))


@responses.activate
def test_a_write_back_answered_with_text_status_0_is_accepted_after_a_read_back():
    add_version()
    responses.post(SCREENS, status=200, body="{status:0}", content_type="text/plain")
    landed = screen_json("call0001", [muxed_media("call0001")])
    responses.get(f"{SCREENS}/call0001", json={"statusCode": 0, "recording": landed})
    make_client().write_back(parse_call_recording(call_json(1)), muxed_media("call0001"))
    assert [c.request.method for c in responses.calls] == ["GET", "POST", "GET"]


@responses.activate
def test_a_text_status_0_that_rws_did_not_keep_is_posted_again_never_refused():
    add_version()
    responses.post(SCREENS, status=200, body="{status:0}", content_type="text/plain")
    responses.get(f"{SCREENS}/call0001", json={"statusCode": 0, "recording": screen_json("call0001")})
    with pytest.raises(TransientError, match="muxed file is kept"):
        make_client().write_back(parse_call_recording(call_json(1)), muxed_media("call0001"))
    assert sum(c.request.method == "POST" for c in responses.calls) == 1 + FAST.body_retries


@responses.activate
def test_a_delete_answered_with_text_is_done():
    add_version()
    responses.delete(f"{SCREENS}/c1/content/c1_s1.mp4", status=200, body="{status:0}", content_type="text/plain")
    make_client().delete_original("c1", "c1_s1.mp4")


@responses.activate
def test_iso_list_time_format():
    responses.get(LIST, json={"statusCode": 0, "recordings": []})
    htcc = HtccSettings(base_uri=BASE, contact_center_id=CC, username="ops", password=SecretStr("x"),
                        list_time_format="iso")
    list(RwsClient(htcc, AdvancedSettings(call_recording_extra_query_string="disable"), policy=FAST)
         .list_recordings(T0, T1))
    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query["startTime"] == ["2026-11-27T00:00:00.000+0000"] and query["endTime"] == ["2026-11-28T00:00:00.000+0000"]
