"""Streaming AES-256-CBC decryption round trip and the RCS key request errors."""

from __future__ import annotations

import os
import stat

import pytest
import responses
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from grmux_core.config import RcsSettings, SecretStr
from grmux_core.crypto import RcsClient, decrypt_file, decrypt_to_temp
from grmux_core.errors import AuthError, DecryptError, KeyUnavailable, ProtocolError
from grmux_core.http import HttpPolicy

RCS = "http://rcs.example:8095/"
KEY_URL = f"{RCS}rcs/api/v1/contact-centers/cc1/decrypt-key"


def encrypt(plain: bytes, key: bytes, iv: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 3 * 1024 * 1024 + 5])
def test_round_trip_streaming(tmp_path, size):
    key, iv = os.urandom(32), os.urandom(16)
    plain = os.urandom(size)
    src = tmp_path / "media.enc"
    src.write_bytes(encrypt(plain, key, iv))
    out = decrypt_file(src, tmp_path / "media.mp3", key, iv, chunk_size=64 * 1024 + 3)  # odd chunks
    assert out.read_bytes() == plain
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_decrypt_to_temp_is_private(tmp_path):
    key, iv = os.urandom(32), os.urandom(16)
    src = tmp_path / "a.enc"
    src.write_bytes(encrypt(b"hello" * 1000, key, iv))
    out = decrypt_to_temp(src, key, iv, temp_dir=tmp_path, suffix=".mp3")
    assert out.parent == tmp_path and out.suffix == ".mp3"
    assert out.read_bytes() == b"hello" * 1000
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_wrong_key_is_a_decrypt_error_and_leaves_nothing(tmp_path):
    key, iv = os.urandom(32), os.urandom(16)
    src = tmp_path / "a.enc"
    src.write_bytes(encrypt(os.urandom(100_000), key, iv))
    dst = tmp_path / "a.mp3"
    # a wrong key gives bad padding with probability ~255/256 per trial; try keys until it does
    for _ in range(20):
        try:
            decrypt_file(src, dst, os.urandom(32), iv)
        except DecryptError as exc:
            assert "key does not match" in str(exc)
            break
        dst.unlink()
    else:  # pragma: no cover
        pytest.fail("20 wrong keys all produced valid padding")
    assert not dst.exists()


def test_truncated_ciphertext_is_a_distinct_decrypt_error(tmp_path):
    key, iv = os.urandom(32), os.urandom(16)
    src = tmp_path / "a.enc"
    src.write_bytes(encrypt(os.urandom(1000), key, iv)[:-5])
    with pytest.raises(DecryptError, match="truncated"):
        decrypt_file(src, tmp_path / "a.mp3", key, iv)
    assert not (tmp_path / "a.mp3").exists()


def test_existing_destination_is_never_overwritten(tmp_path):
    key, iv = os.urandom(32), os.urandom(16)
    src = tmp_path / "a.enc"
    src.write_bytes(encrypt(b"x", key, iv))
    dst = tmp_path / "a.mp3"
    dst.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        decrypt_file(src, dst, key, iv)
    assert dst.read_bytes() == b"keep"


# ------------------------------------------------------------------ RCS


def rcs_client(base: str = RCS) -> RcsClient:
    settings = RcsSettings(base_uri=base, username="rcs", password=SecretStr("pw"))
    return RcsClient(settings, "cc1", policy=HttpPolicy(backoff_factor=0, retries=2, body_retries=0))


@responses.activate
def test_decrypt_key_answer():
    key, iv = os.urandom(32), os.urandom(16)
    responses.post(KEY_URL, json={"statusCode": 0, "algorithm": "aes-256-cbc", "key": key.hex(), "iv": iv.hex()},
                   match=[responses.matchers.json_params_matcher({"pkcs7": "PEM"})])
    assert rcs_client().decrypt_key("PEM") == (key, iv)


@responses.activate
def test_decrypt_key_is_retried_on_5xx():
    key, iv = os.urandom(32), os.urandom(16)
    responses.post(KEY_URL, status=503)
    responses.post(KEY_URL, json={"statusCode": 0, "key": key.hex(), "iv": iv.hex()})
    assert rcs_client().decrypt_key("PEM") == (key, iv)


@responses.activate
def test_403_names_the_permission():
    responses.post(KEY_URL, status=403, json={"statusCode": 403})
    with pytest.raises(AuthError, match="media-decrypt permission"):
        rcs_client().decrypt_key("PEM")


@responses.activate
def test_404_means_no_matching_private_key():
    responses.post(KEY_URL, status=404, json={"statusCode": 404})
    with pytest.raises(KeyUnavailable, match="no private key"):
        rcs_client().decrypt_key("PEM")


def test_unconfigured_rcs():
    with pytest.raises(KeyUnavailable, match=r"configure \[rcs\] base_uri"):
        rcs_client("").decrypt_key("PEM")


@responses.activate
def test_bad_key_length_is_a_protocol_error():
    responses.post(KEY_URL, json={"statusCode": 0, "key": "00" * 16, "iv": "00" * 16})
    with pytest.raises(ProtocolError, match="32/16"):
        rcs_client().decrypt_key("PEM")
