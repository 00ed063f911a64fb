"""Generated calls with real media, late delivery, state surviving a restart, and the CLI."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import threading

import boto3
import pytest
import requests

from grmux_sandbox import cli
from grmux_sandbox.generator import SCENARIOS, SCREEN_STATE
from grmux_sandbox.keys import decrypt_bytes
from grmux_sandbox.media import detect_beeps, detect_flashes
from grmux_sandbox.site import Sandbox

from .conftest import csrf, list_all, screens_url

pytestmark = pytest.mark.slow
START = dt.datetime(2026, 11, 26, 9, 0, 0, tzinfo=dt.UTC)


def _probe(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=False)
    return out.returncode, json.loads(out.stdout or "{}")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    sb = Sandbox.start(tmp_path_factory.mktemp("gen"))
    calls = sb.seed(len(SCENARIOS), seed=7, scenarios=list(SCENARIOS), start=START, duration=(8, 10),
                    size=(160, 120), fps=10)
    yield sb, {c.scenario: c for c in calls}
    sb.stop()


def test_every_scenario_has_real_media(generated, tmp_path):
    sb, calls = generated
    assert set(calls) == set(SCENARIOS)
    for name, call in calls.items():
        assert len(call.call_id) == 32 and int(call.call_id, 16) >= 0
        record = sb.call_recording(call.call_id)
        assert record and len(record["mediaFiles"]) == len(call.audio)
        for m in call.audio + call.screens:
            data = sb.media_bytes({"storage": m.storage, "path": m.path,
                                   "data": {"bucket": sb.bucket, "storagePath": sb.webdav_url}})
            assert len(data) == m.size and sb.sha256(data) == m.sha256
            if m.encrypted:
                data = sb.plain_media_bytes(m.media_id)
                assert sb.sha256(data) == m.plain_sha256
            local = tmp_path / m.media_id
            local.write_bytes(data)
            code, info = _probe(local)
            if m.corrupt:
                assert code != 0, name
                continue
            assert code == 0, (name, m.media_id)
            stream = info["streams"][0]
            if m.kind == "audio":
                assert stream["codec_name"] == "mp3" and stream["sample_rate"] == "8000" and stream["channels"] == 1
            else:
                assert stream["codec_name"] == ("vp8" if name == "webm" else "h264")
                assert (stream["width"], stream["height"]) == (160, 120)
            assert abs(float(info["format"]["duration"]) - (m.stop_epoch - m.start_epoch)) < 0.3


def test_scenario_shapes(generated):
    sb, calls = generated
    c = calls["overlap"]
    assert c.screens[0].stop_epoch > c.screens[1].start_epoch
    c = calls["gap"]
    assert c.screens[1].start_epoch - c.screens[0].stop_epoch >= 1.9
    assert calls["late_start"].screens[0].start_epoch > calls["late_start"].start_epoch + 1.9
    assert calls["early_end"].screens[0].stop_epoch < calls["early_end"].stop_epoch - 1.9
    assert calls["outside"].screens[0].start_epoch < calls["outside"].start_epoch
    assert len(calls["holds"].audio) == 2 and calls["holds"].audio[1].start_epoch > calls["holds"].audio[0].stop_epoch
    assert len(calls["multi_agent"].agents) == 2 and len(calls["multi_agent"].screens) == 2
    assert calls["long_gop"].screens[0].gop == 100
    assert calls["no_screen"].screens == [] and not calls["no_screen"].screen_recording_started
    assert sb.screen_recording(calls["no_screen"].call_id) is None
    s3 = sb.call_recording(calls["s3"].call_id)["mediaFiles"][0]["originalMediaDescriptor"]
    assert s3["storage"] == "awsS3" and s3["data"]["bucket"] == sb.bucket and s3["data"]["endpoint"] == sb.s3_endpoint
    enc = sb.call_recording(calls["encrypted"].call_id)["mediaFiles"][0]
    assert enc["pkcs7"].startswith("-----BEGIN PKCS7-----")
    assert "pkcs7" not in sb.call_recording(calls["normal"].call_id)["mediaFiles"][0]
    # SR calls carry SRSScreenRecordingStateStarted; the default filter finds exactly them
    session = requests.Session()
    session.auth = ("ops", "ops")
    found, _ = list_all(session, sb, startTime=0, userData=SCREEN_STATE)
    assert {r["id"] for r in found} == {c.call_id for c in calls.values() if c.screen_recording_started}


def test_markers_are_where_the_generator_says(generated, tmp_path):
    sb, calls = generated
    call = calls["normal"]
    audio, screen = call.audio[0], call.screens[0]
    a = tmp_path / "a.mp3"
    a.write_bytes(sb.media_bytes({"storage": "webDAV", "path": audio.path}))
    v = tmp_path / "v.mp4"
    v.write_bytes(sb.media_bytes({"storage": "webDAV", "path": screen.path}))
    beeps = [round(t + audio.start_epoch, 2) for t in detect_beeps(a)]
    flashes = [round(t + screen.start_epoch, 2) for t in detect_flashes(v)]
    assert audio.markers and len(beeps) >= len(audio.markers) - 1
    for t in beeps:
        assert min(abs(t - m) for m in audio.markers) < 0.08
    for t in flashes:
        assert min(abs(t - m) for m in screen.markers) < 0.12
    assert flashes
    assert call.expected_offsets("beeps")[0] == round(call.beeps[0] - call.start_epoch, 3)


def test_encrypted_media_decrypts_with_the_rcs_key(generated):
    sb, calls = generated
    call = calls["encrypted"]
    for m in call.audio + call.screens:
        media = next(x for x in (sb.call_recording(call.call_id)["mediaFiles"]
                                 + sb.screen_recording(call.call_id)["mediaFiles"]) if x["mediaId"] == m.media_id)
        r = requests.post(f"{sb.rcs_url}rcs/api/v1/contact-centers/{sb.contact_center_id}/decrypt-key",
                          json={"pkcs7": media["pkcs7"]}, auth=("rcs", "rcs"))
        assert r.status_code == 200
        key, iv = bytes.fromhex(r.json()["key"]), bytes.fromhex(r.json()["iv"])
        assert decrypt_bytes(sb.media_bytes(media), key, iv) == sb.plain_media_bytes(m.media_id)


def test_late_screen_is_delivered_later(generated):
    sb, calls = generated
    call = calls["late_screen"]
    session = requests.Session()
    session.auth = ("ops", "ops")
    url = f"{screens_url(sb)}/{call.call_id}"
    assert session.get(url).status_code == 404
    assert call.call_id in sb.late_screen_ids() and not call.screen_delivered
    sb.deliver_late_screen(call.call_id)
    r = session.get(url)
    assert r.status_code == 200
    assert [m["mediaId"] for m in r.json()["recording"]["mediaFiles"]] == [m.media_id for m in call.screens]
    assert sb.generated_call(call.call_id).screen_delivered


def test_generation_is_deterministic(tmp_path):
    made = []
    for name in ("a", "b"):
        sb = Sandbox.open(tmp_path / name)
        made.append(sb.seed(2, seed=3, start=START, duration=(6, 7), size=(96, 64), fps=5,
                            scenarios=["normal", "holds"]))
    assert [c.to_dict() for c in made[0]] == [c.to_dict() for c in made[1]]
    again = Sandbox.open(tmp_path / "a").seed(1, seed=3, start=START, duration=(6, 7), size=(96, 64), fps=5)
    assert again[0].call_id not in {c.call_id for c in made[0]}  # a second seed adds new calls


def test_state_survives_restart(tmp_path):
    state = tmp_path / "state"
    with Sandbox.start(state) as sb:
        calls = sb.seed(2, seed=1, scenarios=["s3", "late_screen"], start=START, duration=(6, 7), size=(96, 64),
                        fps=5)
        cc, ports = sb.contact_center_id, (sb.rws_url, sb.webdav_url)
        s3 = boto3.client("s3", endpoint_url=sb.s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.put_object(Bucket=sb.bucket, Key="muxed/uploaded-by-client.mp4", Body=b"muxed bytes")
        session = requests.Session()
        session.auth = ("ops", "ops")
        s3_call = calls[0]
        body = {"id": s3_call.call_id, "mediaFiles": [{
            "mediaId": f"{s3_call.call_id}_muxed_1.mp4", "type": "video/mp4",
            "startTime": "2026-11-26T09:00:00.000+0000", "stopTime": "2026-11-26T09:00:06.000+0000",
            "duration": "6000", "size": "11", "parameters": {"muxed_mediaIds": ["x"]},
            "mediaDescriptor": {"storage": "webDAV", "path": "muxed/a.mp4", "data": {"storagePath": sb.webdav_url}}}]}
        assert session.post(screens_url(sb), json=body, headers=csrf(session, sb)).ok
        old_headers = csrf(session, sb)
        assert (state / "running.json").exists()
    assert not (state / "running.json").exists()
    with Sandbox.start(state) as sb:
        assert sb.contact_center_id == cc
        assert (sb.rws_url, sb.webdav_url) == ports  # the same ports when they are free
        assert set(sb.call_ids()) == {c.call_id for c in calls}
        muxed = sb.screen_recording(s3_call.call_id)["mediaFiles"][-1]
        assert muxed["mediaDescriptor"]["data"]["storagePath"] == sb.webdav_url
        assert len(sb.write_backs()) == 1
        s3 = boto3.client("s3", endpoint_url=sb.s3_endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        assert s3.get_object(Bucket=sb.bucket, Key="muxed/uploaded-by-client.mp4")["Body"].read() == b"muxed bytes"
        media = s3_call.audio[0]
        assert sb.sha256(s3.get_object(Bucket=sb.bucket, Key=media.path)["Body"].read()) == media.sha256
        assert calls[1].call_id in sb.late_screen_ids()
        # CSRF sessions do not survive: the old token is refused
        assert session.post(screens_url(sb), json=body, headers=old_headers).status_code == 403


def test_cli_seed_offline_and_running_and_up(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    state = tmp_path / "st"
    args = parser.parse_args(["sandbox", "seed", "--calls", "1", "--state", str(state), "--size", "96x64",
                              "--duration", "6-7", "--scenario", "normal"])
    assert args.func(args) == 0
    assert "seeded 1 calls" in capsys.readouterr().out
    cfg = tmp_path / "muxer.cfg"
    up = parser.parse_args(["sandbox", "up", "--state", str(state), "--config-out", str(cfg)])
    ready, stop = threading.Event(), threading.Event()
    result = {}
    thread = threading.Thread(target=lambda: result.update(rc=cli.cmd_up(up, ready=ready, stop=stop)))
    thread.start()
    try:
        assert ready.wait(30)
        from grmux_core.config import load_settings

        settings = load_settings(cfg)
        assert settings.htcc.contact_center_id == Sandbox.open(state).contact_center_id
        r = requests.get(settings.htcc.base_uri + "api/v2/diagnostics/version", auth=("ops", "ops"))
        assert r.status_code == 200
        args = parser.parse_args(["sandbox", "seed", "--calls", "1", "--state", str(state), "--size", "96x64",
                                  "--duration", "6-7", "--scenario", "no_screen"])
        assert args.func(args) == 0  # goes through the running sandbox's admin endpoint
        base = (f"{settings.htcc.base_uri}api/v2/ops/contact-centers/{settings.htcc.contact_center_id}"
                "/recordings?startTime=0")
        assert len(requests.get(base, auth=("ops", "ops")).json()["recordings"]) == 2
    finally:
        stop.set()
        thread.join(30)
    assert result["rc"] == 0
