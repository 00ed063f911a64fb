"""Encryption at rest of the muxed file: the envelope, streaming AES, the site's certificates and
the ``encrypt_output`` rule."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from grmux_core.config import HtccSettings
from grmux_core.crypto import decrypt_file
from grmux_core.encryption import (
    OutputEncryption,
    SiteCertificate,
    call_encryption,
    encrypt_file,
    make_envelope,
    new_key,
    output_encryption,
    settings_certificates,
    sha256_of_decrypted,
    startup_warning,
    validate_certificates,
)
from grmux_core.errors import CertificateError, DecryptError, TransientError
from grmux_core.http import HttpPolicy
from grmux_core.models import next_muxed_number, parse_screen_recording
from grmux_core.rws import RwsClient
from grmux_sandbox.keys import decrypt_bytes, encrypt_bytes, make_certificate


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def two_recipients():
    """Two site certificates with their private keys (as two RCS instances would hold them)."""
    return [make_certificate("site certificate A"), make_certificate("site certificate B")]


def test_one_envelope_for_two_certificates_is_opened_by_either_private_key(two_recipients):
    key, iv = new_key()
    envelope = make_envelope(key, iv, [SiteCertificate(f"alias-{i}", pem(c)) for i, (c, _) in
                                       enumerate(two_recipients)])
    assert envelope.startswith("-----BEGIN PKCS7-----")
    for cert, private in two_recipients:
        assert pkcs7.pkcs7_decrypt_pem(envelope.encode(), cert, private, []) == key + iv
    stranger, stranger_key = make_certificate("not a recipient")
    with pytest.raises(ValueError):
        pkcs7.pkcs7_decrypt_pem(envelope.encode(), stranger, stranger_key, [])


def test_every_file_gets_a_fresh_key_and_iv():
    pairs = {new_key() for _ in range(50)}
    assert len(pairs) == 50 and all(len(k) == 32 and len(iv) == 16 for k, iv in pairs)


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 3 * 1024 * 1024 + 5])
def test_streaming_encryption_round_trips_and_hashes_the_plain_bytes(tmp_path, size):
    key, iv = new_key()
    plain = os.urandom(size)
    src = tmp_path / "muxed.mp4"
    src.write_bytes(plain)
    sealed = encrypt_file(src, tmp_path / "muxed.mp4.bin", key, iv, chunk_size=64 * 1024 + 3)  # odd chunks
    data = sealed.path.read_bytes()
    assert data == encrypt_bytes(plain, key, iv)  # the same bytes as one-shot AES-256-CBC + PKCS#7
    assert sealed.size == len(data) == (size // 16 + 1) * 16
    assert sealed.plain_sha256 == hashlib.sha256(plain).hexdigest()
    assert stat.S_IMODE(sealed.path.stat().st_mode) == 0o600
    assert sha256_of_decrypted(sealed.path, key, iv, chunk_size=4096 + 1) == sealed.plain_sha256
    assert decrypt_file(sealed.path, tmp_path / "back.mp4", key, iv).read_bytes() == plain


def test_a_wrong_key_does_not_verify(tmp_path):
    key, iv = new_key()
    src = tmp_path / "m.mp4"
    src.write_bytes(b"ftyp" * 1000)
    sealed = encrypt_file(src, tmp_path / "m.mp4.bin", key, iv)
    other, _ = new_key()
    with pytest.raises(DecryptError):
        sha256_of_decrypted(sealed.path, other, iv)
    assert decrypt_bytes(sealed.path.read_bytes(), key, iv) == src.read_bytes()


def test_encrypting_over_an_existing_file_is_refused(tmp_path):
    key, iv = new_key()
    (tmp_path / "m.mp4").write_bytes(b"x")
    (tmp_path / "m.mp4.bin").write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        encrypt_file(tmp_path / "m.mp4", tmp_path / "m.mp4.bin", key, iv)
    assert (tmp_path / "m.mp4.bin").read_bytes() == b"keep"


# ------------------------------------------------------------------------------------- certificates


def test_settings_are_paired_by_number_and_unaliased_certificates_are_named_by_it():
    entries = [{"name": "certificate-10", "value": "C10"}, {"name": "certificatealias-1", "value": "prod"},
               {"name": "certificate-1", "value": "C1"}, {"name": "certificate-2", "value": "C2"},
               {"name": "other", "value": "x"}]
    assert settings_certificates(entries) == [("prod", "C1"), ("certificate-2", "C2"), ("certificate-10", "C10")]
    with pytest.raises(CertificateError):
        settings_certificates([{"name": "certificate-1"}])


def test_unreadable_expired_and_non_rsa_certificates_fail_naming_their_alias(two_recipients):
    good = pem(two_recipients[0][0])
    expired, _ = make_certificate("old", expired=True)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ec")])
    now = datetime.now(UTC)
    ec_cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(ec_key.public_key())
               .serial_number(1).not_valid_before(now.replace(year=now.year - 1))
               .not_valid_after(now.replace(year=now.year + 1)).sign(ec_key, hashes.SHA256()))
    assert [c.alias for c in validate_certificates([("fine", good)])] == ["fine"]
    for alias, bad, words in [("garbled", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----",
                               "cannot be read"),
                              ("last-year", pem(expired), "expired on"),
                              ("elliptic", pem(ec_cert), "not an RSA certificate")]:
        with pytest.raises(CertificateError) as caught:
            validate_certificates([("fine", good), (alias, bad)])
        assert f"'{alias}'" in str(caught.value) and words in str(caught.value)
        assert "fine" not in str(caught.value).split(":")[0]


def test_never_does_not_validate_and_warns_once_at_start_when_the_site_lists_certificates():
    chosen = output_encryption("never", [("broken", "garbage")])
    assert not chosen.encrypts
    assert "broken" in startup_warning(chosen)
    assert startup_warning(output_encryption("never", [])) == ""
    assert startup_warning(output_encryption("auto", [])) == ""


@pytest.mark.parametrize(("mode", "listed", "sources_encrypted", "encrypt", "warns", "fails"), [
    ("auto", True, False, True, False, False),
    ("auto", True, True, True, False, False),
    ("auto", False, False, False, False, False),
    ("auto", False, True, False, True, False),
    ("always", True, False, True, False, False),
    ("always", False, False, False, False, True),
    ("never", True, True, False, False, False),
])
def test_the_encrypt_output_rule(two_recipients, mode, listed, sources_encrypted, encrypt, warns, fails):
    certs = (SiteCertificate("a", pem(two_recipients[0][0])),) if listed else ()
    decision = call_encryption(OutputEncryption(mode, certs), sources_encrypted)
    assert (decision.encrypt, bool(decision.warning), bool(decision.failure)) == (encrypt, warns, fails)


# ------------------------------------------------------------------------------------- numbering


def test_numbering_counts_encrypted_muxed_files():
    location = {"storage": "webDAV", "path": "http://dav/x"}
    screen = parse_screen_recording({"id": "c1", "mediaFiles": [
        {"mediaId": "c1_screen.mp4", "type": "video/mp4", "startTime": "2026-11-27T08:00:00Z",
         "stopTime": "2026-11-27T08:01:00Z", "originalMediaDescriptor": location},
        {"mediaId": "c1_muxed_2.mp4.bin", "type": "video/mp4", "startTime": "2026-11-27T08:00:00Z",
         "stopTime": "2026-11-27T08:01:00Z", "mediaDescriptor": location, "pkcs7": "PEM"}]})
    assert [m.media_id for m in screen.muxed_files] == ["c1_muxed_2.mp4.bin"]
    assert next_muxed_number(screen) == 3


# ------------------------------------------------------------------------------------- the RWS read

RWS = "http://rws.example:8090/"
SETTINGS_URL = f"{RWS}api/v2/ops/contact-centers/cc1/settings/screen-recording-encryption"


def client() -> RwsClient:
    return RwsClient(HtccSettings(base_uri=RWS, contact_center_id="cc1"),
                     policy=HttpPolicy(retries=0, backoff_factor=0))


@responses.activate
@pytest.mark.parametrize(("status", "body"), [(404, "Not Found"), (403, "Forbidden"),
                                              (200, {"statusCode": 0, "key": "name", "settings": []})])
def test_no_settings_means_the_site_does_not_encrypt(status, body):
    if isinstance(body, dict):
        responses.get(SETTINGS_URL, json=body, status=status)
    else:
        responses.get(SETTINGS_URL, body=body, status=status)
    assert client().screen_recording_certificates() == []


@responses.activate
def test_the_listed_certificates_are_read():
    responses.get(SETTINGS_URL, json={"statusCode": 0, "key": "name", "settings": [
        {"name": "certificatealias-1", "value": "one"}, {"name": "certificate-1", "value": "PEM1"},
        {"name": "certificatealias-2", "value": "two"}, {"name": "certificate-2", "value": "PEM2"}]})
    assert client().screen_recording_certificates() == [("one", "PEM1"), ("two", "PEM2")]


@responses.activate
def test_a_failing_settings_read_is_not_taken_for_a_site_without_encryption():
    responses.get(SETTINGS_URL, body="busy", status=503)
    with pytest.raises(TransientError):
        client().screen_recording_certificates()


# ------------------------------------------------------------------------------------- verify before register


class FakeStorage:
    """Objects in a dict; ``corrupt`` flips one byte of what is uploaded (a storage that mangles)."""

    def __init__(self, corrupt: bool = False):
        self.objects: dict[str, bytes] = {}
        self.corrupt = corrupt

    def upload(self, local, location):
        data = bytearray(Path(local).read_bytes())
        if self.corrupt:
            data[len(data) // 2] ^= 1
        self.objects[location.describe()] = bytes(data)
        return len(data)

    def size(self, location):
        return len(self.objects[location.describe()])

    def download(self, location, dest):
        Path(dest).write_bytes(self.objects[location.describe()])
        return self.size(location)

    def delete(self, location):
        self.objects.pop(location.describe(), None)


class FakeRcs:
    def __init__(self, opener):
        self.opener = opener

    def decrypt_key(self, pem):
        return self.opener(pem)


class FakeRws:
    def __init__(self):
        self.bodies = []

    def write_back(self, call, body):
        self.bodies.append(body)


def _work(tmp_path, encrypted_sources: bool = False):
    from grmux_core.call import CallWork
    from grmux_core.models import parse_call_recording

    times = {"startTime": "2026-11-27T08:00:00Z", "stopTime": "2026-11-27T08:01:00Z"}
    location = {"storage": "webDAV", "path": "http://dav/rec/s.mp4"}
    audio = {"mediaId": "c1_a.mp3", "type": "audio/mp3", **times, "originalMediaDescriptor": location}
    if encrypted_sources:
        audio["pkcs7"] = "-----BEGIN PKCS7-----"
    call = parse_call_recording({"id": "c1", **times, "mediaFiles": [audio]})
    screen = parse_screen_recording({"id": "c1", "mediaFiles": [
        {"mediaId": "c1_s.mp4", "type": "video/mp4", **times, "originalMediaDescriptor": location}]})
    work = CallWork(call, screen, list(call.audio_files), list(screen.source_files), tmp_path)
    output = tmp_path / "muxed.mp4"
    output.write_bytes(b"\0\0\0\x20ftypisom" + os.urandom(5000))
    return work, output


def _publish(tmp_path, storage, rcs, encryption, encrypted_sources=False):
    from types import SimpleNamespace

    from grmux_core.call import publish_and_register
    from grmux_core.config import load_settings

    work, output = _work(tmp_path, encrypted_sources)
    settings = load_settings(text="[htcc]\nbase_uri = http://rws/\ncontact_center_id = 0a\n", environ={})
    services = SimpleNamespace(settings=settings, storage=storage, rcs=rcs, rws=FakeRws())
    plan = SimpleNamespace(duration=60.0, video=[])
    return publish_and_register(work, plan, output, services, encryption=encryption), services, output


@pytest.fixture(scope="module")
def site_keys():
    cert, private = make_certificate("site")
    return OutputEncryption("auto", (SiteCertificate("site", pem(cert)),)), cert, private


def _opener(cert, private):
    def open_(pem_text):
        content = pkcs7.pkcs7_decrypt_pem(pem_text.encode(), cert, private, [])
        return content[:32], content[32:]
    return open_


def test_an_encrypted_output_is_registered_with_its_envelope_and_the_plain_file_is_gone(tmp_path, site_keys):
    encryption, cert, private = site_keys
    storage = FakeStorage()
    outcome, services, output = _publish(tmp_path, storage, FakeRcs(_opener(cert, private)), encryption)
    [body] = services.rws.bodies
    assert outcome.status == "muxed" and body["mediaId"] == "c1_muxed_1.mp4.bin"
    [(name, stored)] = storage.objects.items()
    assert name.endswith("c1_muxed_1.mp4.bin") and stored[4:8] != b"ftyp" and body["size"] == str(len(stored))
    key, iv = _opener(cert, private)(body["pkcs7"])
    assert decrypt_bytes(stored, key, iv)[4:8] == b"ftyp"
    assert not output.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["muxed.mp4.bin"]


@pytest.mark.parametrize("fault", ["storage mangles", "rcs other key", "rcs refuses"])
def test_an_encrypted_output_that_does_not_verify_is_removed_and_not_registered(tmp_path, site_keys, fault):
    from grmux_core.errors import KeyUnavailable, VerificationError

    encryption, cert, private = site_keys

    def refuse(_pem):
        raise KeyUnavailable("RCS has no private key that matches the envelope's recipient (404)")

    opener = {"rcs other key": lambda _pem: new_key(), "rcs refuses": refuse}.get(fault, _opener(cert, private))
    storage = FakeStorage(corrupt=fault == "storage mangles")
    with pytest.raises(VerificationError, match="not registered"):
        _publish(tmp_path, storage, FakeRcs(opener), encryption)
    assert storage.objects == {}


def test_auto_without_certificates_stores_encrypted_sources_plain_with_a_warning(tmp_path):
    storage = FakeStorage()
    outcome, services, _ = _publish(tmp_path, storage, FakeRcs(None), OutputEncryption("auto"), encrypted_sources=True)
    [body] = services.rws.bodies
    assert outcome.status == "muxed" and "plain text" in outcome.reason and "pkcs7" not in body
    assert body["mediaId"] == "c1_muxed_1.mp4" and next(iter(storage.objects.values()))[4:8] == b"ftyp"
