"""RCS key request and streaming AES-256-CBC decryption.

Only the small ``pkcs7`` envelope crosses the network: RCS unwraps the per-file AES key with its
private key and answers ``key``/``iv`` (hex). The media is then decrypted *here*, in chunks, so a
2 GB recording needs about one chunk of memory (the legacy muxer shelled out to ``openssl``; we
use the ``cryptography`` package, so ``[processing] openssl`` is ignored).

Errors, each distinct so the operator knows who acts:

* empty ``[rcs] base_uri`` → :class:`KeyUnavailable` ("configure [rcs] base_uri");
* 401/403 → :class:`AuthError` (wrong RCS password / missing media-decrypt permission);
* 404 → :class:`KeyUnavailable` (no private key in RCS matches the envelope's recipient);
* bad padding (wrong key, corrupt file) → :class:`DecryptError`; a ciphertext whose length is
  not a multiple of 16 → :class:`DecryptError` naming truncation.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from grmux_core.config import RcsSettings
from grmux_core.errors import AuthError, DecryptError, KeyUnavailable, ProtocolError
from grmux_core.http import (
    DEFAULT_POLICY,
    IDEMPOTENT_METHODS,
    HttpPolicy,
    build_session,
    check_status,
    json_body,
    send,
)
from grmux_core.models import MediaFile

log = logging.getLogger("grmux.crypto")

SERVICE = "RCS"
DECRYPT_KEY_PATH = "rcs/api/v1/contact-centers/{cc}/decrypt-key"  # project contract
CHUNK = 1024 * 1024
BLOCK = 16


class RcsClient:
    """Asks RCS for the AES key of an envelope.

    ``decrypt-key`` is a POST but has no side effect (it is a pure function of the envelope), so
    unlike RWS write-back it *is* retried on 5xx/connection errors.
    """

    def __init__(
        self,
        rcs: RcsSettings,
        contact_center_id: str,
        *,
        pool_size: int = 4,
        policy: HttpPolicy = DEFAULT_POLICY,
    ):
        self.rcs = rcs
        self.contact_center_id = contact_center_id
        self.policy = policy
        self.session = None
        if rcs.base_uri:
            self.session = build_session(
                username=rcs.username,
                password=rcs.password,
                verify=rcs.requests_verify,
                pool_size=pool_size,
                policy=policy,
                retry_methods=IDEMPOTENT_METHODS | {"POST"},
            )

    @property
    def configured(self) -> bool:
        return bool(self.rcs.base_uri)

    def decrypt_key(self, pkcs7_pem: str) -> tuple[bytes, bytes]:
        """``(key, iv)`` for one envelope (32-byte key, 16-byte IV)."""
        if self.session is None:
            raise KeyUnavailable(
                "this recording is encrypted but [rcs] base_uri is empty: configure [rcs] base_uri, "
                "username and password (an RCS user with the media-decrypt permission)"
            )
        base = self.rcs.base_uri if self.rcs.base_uri.endswith("/") else self.rcs.base_uri + "/"
        url = base + DECRYPT_KEY_PATH.format(cc=self.contact_center_id)
        what = "the key of an encrypted recording"
        response = send(self.session, "POST", url, service=SERVICE, what=what, policy=self.policy,
                        json={"pkcs7": pkcs7_pem}, headers={"Accept": "application/json"})
        if response.status_code == 403:
            raise AuthError(
                "RCS denied the key (403): give the RCS user [rcs] username the media-decrypt "
                "permission (or check [rcs] password / RCS_PASSWORD)",
                status=403,
            )
        if response.status_code == 404:
            raise KeyUnavailable(
                "RCS has no private key that matches the envelope's recipient (404): the recording was "
                "encrypted with a certificate RCS does not hold; import that certificate's key into RCS"
            )
        check_status(response, service=SERVICE, what=what, account_hint="[rcs] username/password (or RCS_PASSWORD)")
        body = json_body(response, service=SERVICE, what=what)
        algorithm = str(body.get("algorithm", "aes-256-cbc")).lower()
        if algorithm != "aes-256-cbc":
            raise ProtocolError(f"RCS answered algorithm {algorithm!r}; grmux decrypts aes-256-cbc only")
        try:
            key = bytes.fromhex(str(body["key"]))
            iv = bytes.fromhex(str(body["iv"]))
        except (KeyError, ValueError) as exc:
            raise ProtocolError("RCS answered without a hex 'key' and 'iv'") from exc
        if len(key) != 32 or len(iv) != BLOCK:
            raise ProtocolError(f"RCS answered a {len(key)}-byte key / {len(iv)}-byte IV; AES-256-CBC needs 32/16")
        return key, iv

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def _create_private(path: Path) -> int:
    """Create ``path`` with mode 0600, failing if it exists (no symlink or race surprises)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)


def decrypt_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], key: bytes, iv: bytes,
                 *, chunk_size: int = CHUNK) -> Path:
    """Decrypt AES-256-CBC ``src`` into a new file ``dst`` (mode 0600), streaming.

    Memory stays at about ``chunk_size`` whatever the file size. The PKCS#7 padding is checked
    at the end; on any failure ``dst`` is removed so no half-decrypted media is left behind.
    """
    if len(key) != 32 or len(iv) != BLOCK:
        raise DecryptError(f"AES-256-CBC needs a 32-byte key and a 16-byte IV, got {len(key)}/{len(iv)}")
    src_path, dst_path = Path(src), Path(dst)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    fd = _create_private(dst_path)
    total = 0
    try:
        with open(fd, "wb", closefd=True) as out, open(src_path, "rb") as inp:
            while chunk := inp.read(chunk_size):
                total += len(chunk)
                out.write(unpadder.update(decryptor.update(chunk)))
            if total == 0 or total % BLOCK:
                raise DecryptError(
                    f"{src_path.name}: the encrypted file is {total} bytes, not a whole number of AES "
                    "blocks: it is truncated or not encrypted; download it again"
                )
            try:
                out.write(unpadder.update(decryptor.finalize()) + unpadder.finalize())
            except ValueError as exc:
                raise DecryptError(
                    f"{src_path.name}: bad padding after decryption: the key does not match this file "
                    "(wrong envelope/key) or the file is corrupt"
                ) from exc
    except BaseException:
        dst_path.unlink(missing_ok=True)
        raise
    return dst_path


def decrypt_to_temp(src: str | os.PathLike[str], key: bytes, iv: bytes, *, temp_dir: str | os.PathLike[str],
                    suffix: str = "") -> Path:
    """Decrypt into a fresh private file in ``temp_dir`` (``[processing] temp_dir``); returns its path."""
    fd, name = tempfile.mkstemp(prefix="grmux-dec-", suffix=suffix, dir=temp_dir)  # 0600, O_EXCL
    os.close(fd)
    os.unlink(name)  # decrypt_file creates it again exclusively, so we keep one code path
    return decrypt_file(src, name, key, iv)


def decrypt_stored(media: MediaFile, dest: str | os.PathLike[str], *, storage: Any, rcs: RcsClient,
                   temp_dir: str | os.PathLike[str]) -> Path:
    """Download one stored media file and write its plaintext to a new 0600 ``dest`` (for an
    operator checking a recording by hand: ``grmux decrypt``). A plain file is copied as it is.

    The ciphertext is kept only in a private temporary file of ``temp_dir``, removed afterwards.
    """
    fd, name = tempfile.mkstemp(prefix="grmux-get-", suffix=".bin", dir=temp_dir)
    os.close(fd)
    stored = Path(name)
    try:
        storage.download(media.location, stored)
        if not media.encrypted:
            with open(_create_private(Path(dest)), "wb", closefd=True) as out, open(stored, "rb") as inp:
                shutil.copyfileobj(inp, out, CHUNK)
            return Path(dest)
        key, iv = rcs.decrypt_key(media.pkcs7 or "")
        return decrypt_file(stored, dest, key, iv)
    finally:
        stored.unlink(missing_ok=True)
