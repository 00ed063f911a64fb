"""Encrypted in, encrypted out: one call at a time through ``process_call`` against a sandbox that
lists two screen-recording certificates (no Prefect)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from grmux_core.call import process_call
from grmux_core.config import load_settings
from grmux_core.encryption import OutputEncryption, SiteCertificate
from grmux_core.models import parse_call_recording
from grmux_core.services import Services
from grmux_sandbox.keys import decrypt_bytes, make_certificate
from grmux_sandbox.site import Sandbox
from tests.flows.alignment import check_alignment
from tests.reliability.campaign import scratch_leftovers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with Sandbox.start(tmp_path_factory.mktemp("site")) as sandbox:
        sandbox.set_screen_encryption("two")
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        calls = sandbox.seed(4, seed=81, scenarios=["encrypted", "normal", "s3", "normal"], start=start,
                             size=(320, 240),
                             duration=(6.0, 8.0), spacing=(30.0, 40.0))
        yield sandbox, calls


@pytest.fixture(scope="module")
def services(site, tmp_path_factory):
    sandbox, _ = site
    folder = tmp_path_factory.mktemp("cfg")
    (folder / "scratch").mkdir()
    found = Services.from_settings(load_settings(sandbox.write_config(folder / "muxer.cfg",
                                                                      temp_dir=str(folder / "scratch"),
                                                                      delete_original=1)))
    yield found
    found.close()


def mux(sandbox: Sandbox, services: Services, call_id: str, encryption: OutputEncryption | None = None):
    return process_call(parse_call_recording(sandbox.call_recording(call_id)), services, encryption=encryption)


def test_every_muxed_file_is_stored_encrypted_and_either_private_key_opens_it(site, services, tmp_path):
    sandbox, calls = site
    calls = calls[:3]
    for call in calls:
        outcome = mux(sandbox, services, call.call_id)
        assert outcome.status == "muxed", outcome
        assert outcome.media_id.endswith(".mp4.bin") and outcome.output.endswith(".mp4.bin")
        assert "deleted" in outcome.reason  # delete_original = 1 works unchanged with .mp4.bin files
        left = sandbox.screen_recording(call.call_id)["mediaFiles"]
        assert [m["mediaId"] for m in left] == [outcome.media_id]
    written = {wb["id"]: wb["body"]["mediaFiles"][0] for wb in sandbox.write_backs()}
    for call in calls:
        media_file = written[call.call_id]
        stored = sandbox.media_bytes(media_file)
        assert stored[4:8] != b"ftyp" and int(media_file["size"]) == len(stored)
        assert media_file["mediaDescriptor"]["path"].endswith(".mp4.bin")
        envelope = media_file["pkcs7"].encode()
        keys = {pkcs7.pkcs7_decrypt_pem(envelope, cert, private, []) for cert, private in sandbox.keys.private_keys()}
        assert len(keys) == 1  # both private keys give the same key || iv
        [content] = keys
        assert services.rcs.decrypt_key(media_file["pkcs7"]) == (content[:32], content[32:])
        plain = decrypt_bytes(stored, content[:32], content[32:])
        assert plain[4:8] == b"ftyp"
        out = tmp_path / f"{call.call_id}.mp4"
        out.write_bytes(plain)
        assert check_alignment(out, call) == []
    assert scratch_leftovers(Path(services.settings.processing.temp_dir)) == []


def test_a_file_rcs_cannot_open_is_not_registered_and_not_left_in_storage(site, services):
    sandbox, calls = site
    stranger, _ = make_certificate("a certificate RCS does not hold")
    foreign = OutputEncryption("auto", (SiteCertificate("stranger", stranger.public_bytes(
        serialization.Encoding.PEM).decode()),))
    call = calls[3]  # muxed by no other test
    before = len(sandbox.write_backs())
    muxed_before = sorted(p.name for p in sandbox.store.webdav_recordings.rglob("*_muxed_*"))
    outcome = mux(sandbox, services, call.call_id, foreign)
    assert outcome.status == "failed" and "RCS cannot open" in outcome.reason, outcome
    assert len(sandbox.screen_recording(call.call_id)["mediaFiles"]) == len(call.screens)  # originals kept
    assert len(sandbox.write_backs()) == before
    assert sorted(p.name for p in sandbox.store.webdav_recordings.rglob("*_muxed_*")) == muxed_before


def test_grmux_decrypt_writes_the_plaintext_of_the_newest_muxed_file(site, services, tmp_path):
    from grmux_cli.main import main

    sandbox, calls = site
    call = calls[0]
    if not sandbox.screen_recording(call.call_id) or not any(
            "_muxed_" in m["mediaId"] for m in sandbox.screen_recording(call.call_id)["mediaFiles"]):
        assert mux(sandbox, services, call.call_id).status == "muxed"
    [media_file] = [wb["body"]["mediaFiles"][0] for wb in sandbox.write_backs() if wb["id"] == call.call_id]
    key, iv = sandbox.keys.open(media_file["pkcs7"])
    config = sandbox.write_config(tmp_path / "muxer.cfg", temp_dir=str(tmp_path))
    out = tmp_path / "check.mp4"
    assert main(["decrypt", call.call_id, "-o", str(out), "--config", str(config)]) == 0
    assert out.read_bytes() == decrypt_bytes(sandbox.media_bytes(media_file), key, iv)
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert main(["decrypt", call.call_id, "-o", str(out), "--config", str(config)]) == 2  # never overwrites
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("grmux-get-")]  # no ciphertext left
    assert main(["decrypt", calls[3].call_id, "-o", str(tmp_path / "none.mp4"), "--config", str(config)]) == 1
