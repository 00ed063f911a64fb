"""ffprobe JSON parsers, on ffprobe 5.1.9 output captured from files made by grmux_sandbox.media."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grmux_core.errors import MediaError
from grmux_core.mux import check_output
from grmux_core.probe import (
    duration_from_packets,
    id3v2_size,
    parse_keyframes,
    parse_mp3_gapless,
    parse_probe,
)

DATA = Path(__file__).parent / "data"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def test_h264_with_b_frames():
    info = parse_probe(load("ffprobe_h264_bframes.json"))
    v = info.video
    assert (info.n_video, info.n_audio, info.audio) == (1, 0, None)
    assert (v.codec, v.width, v.height, v.pix_fmt, v.profile, v.level) == ("h264", 320, 240, "yuv420p", "Main", 13)
    assert v.timescale == 12800 and v.fps == 25.0 and not v.vfr
    assert v.has_b_frames == 2
    assert v.reorder_delay == pytest.approx(0.08)  # first packet: pts 0, dts -0.08
    assert info.duration == pytest.approx(3.0)
    sig = v.signature()
    assert sig.x264_profile == "main" and sig.fps == "25/1"


def test_vp8_webm_has_millisecond_time_base_and_no_reorder_delay():
    info = parse_probe(load("ffprobe_vp8_webm.json"))
    assert info.video.codec == "vp8" and "webm" in info.format_name
    assert info.video.timescale == 1000 and info.video.reorder_delay == 0.0
    assert info.duration == pytest.approx(2.0)


def test_mp3_audio_only():
    info = parse_probe(load("ffprobe_mp3_8k.json"))
    assert info.video is None and info.n_audio == 1
    assert (info.audio.codec, info.audio.sample_rate, info.audio.channels) == ("mp3", 8000, 1)


def test_duration_falls_back_to_stream_duration_and_none():
    data = load("ffprobe_h264_bframes.json")
    del data["format"]["duration"]
    assert parse_probe(data).duration == pytest.approx(3.0)
    for s in data["streams"]:
        s.pop("duration", None)
    assert parse_probe(data).duration is None


def test_vfr_detected_when_average_rate_differs():
    data = load("ffprobe_h264_bframes.json")
    data["streams"][0]["avg_frame_rate"] = "1800/151"  # ~11.9 fps average, 25 fps base
    v = parse_probe(data).video
    assert v.vfr and v.fps == pytest.approx(1800 / 151)


def test_attached_pictures_are_not_video():
    data = load("ffprobe_mp3_8k.json")
    data["streams"].append({"index": 1, "codec_type": "video", "codec_name": "mjpeg",
                            "disposition": {"attached_pic": 1}})
    assert parse_probe(data).video is None


def test_keyframes_and_packet_duration():
    packets = load("ffprobe_packets_h264_gop25.json")
    assert parse_keyframes(packets) == (0.0, 1.0, 2.0)  # gop 25 at 25 fps, 3 s
    assert duration_from_packets(packets) == pytest.approx(3.0)
    with pytest.raises(MediaError):
        duration_from_packets({"packets": []})


def test_signature_differences_name_each_parameter():
    a = parse_probe(load("ffprobe_h264_bframes.json")).video.signature()
    b = parse_probe(load("ffprobe_vp8_webm.json")).video.signature()
    text = " ".join(a.differences(b))
    assert "codec h264 ≠ vp8" in text and "time base 1/12800 ≠ 1/1000" in text
    assert a.differences(a) == []


def test_check_output_accepts_the_muxed_sample_and_names_problems():
    info = parse_probe(load("ffprobe_muxed_output.json"))
    assert check_output(info, 30.0) == []
    assert any("duration" in p for p in check_output(info, 29.8))
    data = load("ffprobe_muxed_output.json")
    data["streams"] = [s for s in data["streams"] if s["codec_type"] == "video"]
    assert check_output(parse_probe(data), 30.0) == ["0 audio streams (expected 1)"]
    data = load("ffprobe_muxed_output.json")
    data["streams"][0]["start_time"] = "0.080000"
    assert any("video starts" in p for p in check_output(parse_probe(data), 30.0))
    data = load("ffprobe_muxed_output.json")
    data["streams"][1]["start_time"] = "-0.128000"  # AAC priming at 8 kHz, as some builds report it
    assert check_output(parse_probe(data), 30.0) == []


# ---------------------------------------------------------------- MP3 gapless header

def _head(name: str) -> bytes:
    data = (DATA / name).read_bytes()
    return data[id3v2_size(data):]


def test_mp3_gapless_8k_cbr():
    """First 1 KiB of 30.000 s of 8 kHz mono, libmp3lame 32k (ffmpeg 5.1): ffprobe says 30.168 s."""
    g = parse_mp3_gapless(_head("mp3_8k_30s_head.bin"))
    assert g is not None
    assert (g.sample_rate, g.samples_per_frame, g.frames, g.enc_delay, g.enc_padding) == (8000, 576, 419, 576, 768)
    assert g.container_duration == pytest.approx(30.168)  # what ffprobe reports
    assert g.duration == pytest.approx(30.0, abs=1e-9)     # what ffmpeg decodes


def test_mp3_gapless_44k_vbr_behind_an_id3v2_tag():
    """12.345 s of 44.1 kHz stereo VBR (-q:a 4) with a title tag; a full decode gives 12.345011 s."""
    data = (DATA / "mp3_44k_vbr_id3_head.bin").read_bytes()
    assert id3v2_size(data) == 62
    g = parse_mp3_gapless(data[62:])
    assert g is not None and (g.sample_rate, g.samples_per_frame) == (44100, 1152)
    assert g.duration == pytest.approx(12.345011, abs=1e-6)


def test_mp3_gapless_absent_or_damaged_means_none():
    head = _head("mp3_8k_30s_head.bin")
    x = head.index(b"Info")
    assert parse_mp3_gapless(b"") is None
    assert parse_mp3_gapless(b"\x00" * 2000) is None
    assert parse_mp3_gapless(head[:x] + b"Abcd" + head[x + 4:]) is None  # no Xing/Info tag
    lame = head.index(b"Lavc")  # ffmpeg writes its own name where LAME writes "LAME3.100"
    assert parse_mp3_gapless(head[:lame] + b"XXXX" + head[lame + 4:]) is None  # unknown encoder tag
    assert parse_mp3_gapless(head[:lame + 10]) is None  # truncated LAME tag
    layer2 = bytearray(head)
    layer2[1] = (layer2[1] & ~0x06) | 0x04  # layer bits 10 = Layer II
    assert parse_mp3_gapless(bytes(layer2)) is None
    assert id3v2_size(b"ID3") == 0 and id3v2_size(head) == 0
