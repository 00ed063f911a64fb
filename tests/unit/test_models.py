"""Pure parsers of RWS JSON and the already-muxed rule, on captured samples and fuzzed input."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grmux_core.errors import RecordError
from grmux_core.models import (
    AWS_S3,
    WEBDAV,
    MediaLocation,
    epoch_ms,
    format_time,
    is_already_muxed,
    muxed_media_id,
    next_muxed_number,
    parse_call_recording,
    parse_records,
    parse_screen_recording,
    parse_time,
    safe_parse,
    source_media_ids,
)

DATA = Path(__file__).parent / "data" / "rws"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


@pytest.fixture
def page() -> dict:
    return load("call_page.json")


@pytest.fixture
def screen_json() -> dict:
    return load("screen.json")["recording"]


# ------------------------------------------------------------------ times


@pytest.mark.parametrize(
    "text",
    ["2026-11-27T16:58:22.000+0000", "2026-11-27T16:58:22.000Z", "2026-11-27T16:58:22Z", "2026-11-27T16:58:22+0000",
     "2026-11-27T17:58:22.000+01:00", "2026-11-27T11:58:22.000-0500"],
)
def test_times_with_offset_or_z_are_utc(text):
    moment = parse_time(text)
    assert moment == datetime(2026, 11, 27, 16, 58, 22, tzinfo=UTC)
    assert moment.tzinfo == UTC


def test_time_keeps_milliseconds_and_round_trips():
    moment = parse_time("2026-11-27T17:03:10.512+0000")
    assert moment.microsecond == 512000
    assert format_time(moment) == "2026-11-27T17:03:10.512+0000"
    assert epoch_ms(moment) % 1000 == 512


@pytest.mark.parametrize("bad", [None, 12, "", "2026-11-27 16:58:22", "2026-11-27T16:58:22", "2026-13-40T00:00:00Z"])
def test_bad_times_are_record_errors(bad):
    with pytest.raises(RecordError) as info:
        parse_time(bad, call_id="c1", field_name="startTime")
    assert info.value.call_id == "c1" and info.value.field == "startTime"


# ------------------------------------------------------------------ call recordings


def test_call_recording_sample(page):
    call = parse_call_recording(page["recordings"][0])
    assert call.id == "0a1b2c"
    assert call.start == datetime(2026, 11, 27, 16, 58, 22, tzinfo=UTC)
    assert call.duration_ms == 288512
    assert call.caller_phone_number == "5551234" and call.call_type == "Inbound"
    assert call.agent_user_names == ("agent1@cc",)
    assert call.event_history[0].data["GRECORD_SCREEN"] == "SRSScreenRecordingStateStarted"
    first, second = call.media_files
    assert len(call.audio_files) == 2
    assert first.duration_ms == 98000 and first.size == 784000 and first.agent_id == "agent1"
    assert first.location.storage == WEBDAV
    assert first.location.url == "http://127.0.0.1:8080/recordings/voice/0a1b2c-1.mp3"
    assert not first.encrypted
    assert second.encrypted and second.pkcs7.startswith("-----BEGIN PKCS7")
    assert second.location.storage == AWS_S3
    assert (second.location.bucket, second.location.key, second.location.region) == ("gir-rec", "voice/0a1b2c-2.mp3", "us-east-1")


def test_absolute_webdav_path_is_the_url(page):
    call = parse_call_recording(page["recordings"][2])
    assert call.media_files[0].location.url == "http://dav2.example:8080/r/ffee01_a.wav"
    assert call.media_files[0].duration_ms is None


def test_page_keeps_good_records_and_names_the_bad_one(page):
    good, bad = parse_records(page["recordings"], parse_call_recording)
    assert [c.id for c in good] == ["0a1b2c", "ffee01"]
    assert len(bad) == 1
    assert bad[0].call_id == "bad-no-start" and bad[0].field == "startTime"
    assert "bad-no-start" in str(bad[0]) and "startTime" in str(bad[0])


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda r: r.pop("stopTime"), "stopTime"),
        (lambda r: r.__setitem__("stopTime", "2026-11-27T16:00:00.000+0000"), "stopTime"),
        (lambda r: r["mediaFiles"][0].pop("originalMediaDescriptor"), "mediaFiles[0].originalMediaDescriptor"),
        (lambda r: r["mediaFiles"][0]["originalMediaDescriptor"].__setitem__("storage", "ftp"),
         "mediaFiles[0].originalMediaDescriptor.storage"),
        (lambda r: r["mediaFiles"][1]["originalMediaDescriptor"]["data"].pop("bucket"),
         "mediaFiles[1].originalMediaDescriptor.data.bucket"),
        (lambda r: r["mediaFiles"][0]["originalMediaDescriptor"]["data"].pop("storagePath"),
         "mediaFiles[0].originalMediaDescriptor.data.storagePath"),
        (lambda r: r["mediaFiles"][0].pop("mediaId"), "mediaFiles[0].mediaId"),
        (lambda r: r["mediaFiles"][0].__setitem__("type", "mp3"), "mediaFiles[0].type"),
        (lambda r: r.__setitem__("mediaFiles", {"a": 1}), "mediaFiles"),
        (lambda r: r.__setitem__("eventHistory", [{"contact": "x"}]), "eventHistory[0].contact"),
        (lambda r: r["mediaFiles"][0]["parameters"].__setitem__("muxed_mediaIds", "a,b"),
         "mediaFiles[0].parameters.muxed_mediaIds"),
    ],
)
def test_malformed_fields_name_call_and_field(page, mutate, field):
    record = copy.deepcopy(page["recordings"][0])
    mutate(record)
    with pytest.raises(RecordError) as info:
        parse_call_recording(record)
    assert info.value.call_id == "0a1b2c"
    assert info.value.field == field


@pytest.mark.parametrize("record", [None, [], "x", {}, {"id": ""}, {"id": 5}])
def test_record_without_id(record):
    result = safe_parse(parse_call_recording, record)
    assert isinstance(result, RecordError) and result.call_id is None


def test_duration_accepts_integers_too(page):
    record = copy.deepcopy(page["recordings"][0])
    record["mediaFiles"][0]["duration"] = 98000
    assert parse_call_recording(record).media_files[0].duration_ms == 98000


@pytest.mark.parametrize("value, ms", [
    ("12523", 12523),  # milliseconds (the Genesys API sample)
    ("6.192", 6192),  # seconds with decimals (seen in the field)
    ("0.5", 500), (6.192, 6192), (98000.0, 98000), (" 42 ", 42),
    ("12.5s", None), ("-3", None), ("", None), ("NaN", None), (float("nan"), None), (True, None), ([], None),
])
def test_duration_in_ms_or_seconds_and_garbage_is_never_an_error(page, value, ms):
    record = copy.deepcopy(page["recordings"][0])
    record["mediaFiles"][0]["duration"] = value
    record["mediaFiles"][1]["size"] = "garbage"
    parsed = parse_call_recording(record)
    assert parsed.media_files[0].duration_ms == ms
    assert parsed.media_files[1].size is None


@pytest.mark.parametrize("mime", ["audio/mpeg3", "audio/mpeg", "audio/x-wav", "audio/wav", "audio/ogg"])
def test_field_audio_types_are_audio(page, mime):
    record = copy.deepcopy(page["recordings"][0])
    record["mediaFiles"][0]["type"] = mime.upper()
    media_file = parse_call_recording(record).media_files[0]
    assert media_file.type == mime and media_file.is_audio


# ------------------------------------------------------------------ locations


def test_sibling_keeps_the_storage():
    loc = MediaLocation(WEBDAV, "screen/x.mp4", base="http://h:8080/rec/")
    assert loc.sibling("muxed/2026-11-27/x_muxed_1.mp4").url == "http://h:8080/rec/muxed/2026-11-27/x_muxed_1.mp4"
    # an absolute path without storagePath: beside the file, in its own collection, never the server root
    absolute = MediaLocation(WEBDAV, "http://h:8080/rec/screen/2026-11-27/x.mp4")
    muxed = absolute.sibling("muxed/y.mp4")
    assert muxed.url == "http://h:8080/rec/screen/2026-11-27/muxed/y.mp4"
    assert muxed.base == "http://h:8080/rec/screen/2026-11-27/" and muxed.path == "muxed/y.mp4"
    also_base = MediaLocation(WEBDAV, "http://h:8080/rec/screen/x.mp4", base="http://h:8080/other/")
    assert also_base.sibling("m.mp4").url == "http://h:8080/rec/screen/m.mp4"
    s3 = MediaLocation(AWS_S3, "screen/x.mp4", bucket="b", region="r")
    assert s3.sibling("m/y.mp4").describe() == "s3://b/m/y.mp4"


def test_storage_path_without_trailing_slash():
    loc = MediaLocation(WEBDAV, "voice/a.mp3", base="http://h:8080/recordings")
    assert loc.url == "http://h:8080/recordings/voice/a.mp3"


# ------------------------------------------------------------------ screen recordings and muxed rule


def test_screen_recording_sample(screen_json):
    screen = parse_screen_recording(screen_json)
    assert screen.start is None
    assert [m.user_name for m in screen.media_files] == ["agent1@cc", "agent2@cc"]
    assert all(m.is_video for m in screen.media_files)


def _muxed_file(call_id: str, n: int, covers: list[str]) -> dict:
    return {
        "mediaId": muxed_media_id(call_id, n), "type": "video/mp4",
        "startTime": "2026-11-27T16:58:22.000+0000", "stopTime": "2026-11-27T17:03:10.512+0000",
        "parameters": {"muxed_mediaIds": covers, "contact": {"userName": "agent1@cc"}},
        "mediaDescriptor": {"storage": "webDAV", "path": f"muxed/{call_id}_muxed_{n}.mp4",
                            "data": {"storagePath": "http://127.0.0.1:8080/recordings/"}},
    }


def test_already_muxed_rule(page, screen_json):
    call = parse_call_recording(page["recordings"][0])
    screen = parse_screen_recording(screen_json)
    sources = source_media_ids(call, screen)
    assert len(sources) == 4
    assert not is_already_muxed(call, screen)
    assert next_muxed_number(screen) == 1

    done = copy.deepcopy(screen_json)
    done["mediaFiles"].append(_muxed_file("0a1b2c", 1, sorted(sources)))
    muxed = parse_screen_recording(done)
    assert muxed.muxed_files[0].is_muxed
    assert source_media_ids(call, muxed) == sources  # the muxed file is not a source
    assert is_already_muxed(call, muxed)
    assert next_muxed_number(muxed) == 2

    # a nightly upload adds screen media: no longer covered, next file is _muxed_2
    later = copy.deepcopy(done)
    extra = copy.deepcopy(later["mediaFiles"][0])
    extra["mediaId"] = "0a1b2c_screen_3.mp4"
    later["mediaFiles"].append(extra)
    again = parse_screen_recording(later)
    assert not is_already_muxed(call, again)
    assert next_muxed_number(again) == 2


def test_partial_cover_is_not_muxed(page, screen_json):
    call = parse_call_recording(page["recordings"][0])
    data = copy.deepcopy(screen_json)
    data["mediaFiles"].append(_muxed_file("0a1b2c", 3, ["0a1b2c_screen_1.mp4"]))
    screen = parse_screen_recording(data)
    assert not is_already_muxed(call, screen)
    assert next_muxed_number(screen) == 4


def test_no_screen_media_is_never_muxed():
    screen = parse_screen_recording({"id": "x", "mediaFiles": []})
    assert not is_already_muxed(None, screen)
    assert next_muxed_number(None) == 1


# ------------------------------------------------------------------ fuzz

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)


def _mutations(sample: dict):
    """Records close to valid: take the sample and replace one field by arbitrary JSON."""
    keys = ["id", "startTime", "stopTime", "mediaFiles", "eventHistory", "callerPhoneNumber", "region"]
    media_keys = ["mediaId", "type", "startTime", "stopTime", "duration", "size", "parameters",
                  "originalMediaDescriptor", "pkcs7"]

    @st.composite
    def build(draw):
        record = copy.deepcopy(sample)
        if draw(st.booleans()):
            record[draw(st.sampled_from(keys))] = draw(json_values)
        else:
            media = record["mediaFiles"][draw(st.integers(0, len(record["mediaFiles"]) - 1))]
            media[draw(st.sampled_from(media_keys))] = draw(json_values)
        return record

    return build()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, _mutations(load("call_page.json")["recordings"][0])))
def test_fuzz_any_json_gives_a_record_or_a_record_error(value):
    for parser in (parse_call_recording, parse_screen_recording):
        try:
            result = parser(value)
        except RecordError:
            continue
        assert result.id  # a record came out: it has an id


@settings(max_examples=200)
@given(_mutations(load("call_page.json")["recordings"][0]))
def test_fuzz_page_parser_never_raises(record):
    good, bad = parse_records([record, load("call_page.json")["recordings"][2]], parse_call_recording)
    assert len(good) + len(bad) == 2
    assert any(c.id == "ffee01" for c in good)
