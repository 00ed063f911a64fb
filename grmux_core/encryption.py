"""Encryption at rest of the muxed file: the site's certificates, the envelope, streaming AES.

A muxed file holds the call's voice and the agent's screen, so when the site encrypts screen
recordings it is stored the way its sources are (``docs/gir-contract.md``): a fresh AES-256 key
and IV per file, AES-256-CBC with PKCS#7 padding over the whole MP4, stored as ``<name>.mp4.bin``;
``key || iv`` (48 bytes) travels in one detached CMS EnvelopedData (PEM) with one RSA
``KeyTransRecipientInfo`` per listed certificate, which the write-back carries in ``pkcs7``.
RCS opens it with ``decrypt-key`` like any other recording.

``cryptography``'s ``PKCS7EnvelopeBuilder`` makes exactly that envelope (several recipients,
AES-256 content encryption), so no ASN.1 is written here. The media is encrypted in chunks: memory
stays at about one chunk whatever the file size, like the decrypt path of :mod:`grmux_core.crypto`.

Pure decisions (which certificates are usable, whether a call is encrypted) are functions without
I/O; the certificates themselves are read from RWS by :meth:`grmux_core.rws.RwsClient.
screen_recording_certificates`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7

from grmux_core.crypto import BLOCK, CHUNK
from grmux_core.errors import CertificateError, DecryptError

KEY_BYTES = 32
#: What a stored encrypted muxed file's name ends with (after ``.mp4``).
ENCRYPTED_SUFFIX = ".bin"
MODES = ("auto", "always", "never")


@dataclass(frozen=True)
class SiteCertificate:
    """One screen-recording certificate the site lists (public: safe in parameters and logs)."""

    alias: str
    pem: str

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.pem.encode("ascii"))


@dataclass(frozen=True)
class OutputEncryption:
    """What one cycle does with muxed files: the option's mode and the site's certificates.

    Built once per cycle (:func:`output_encryption`) and handed to every call, so every call of a
    cycle encrypts for the same recipients.
    """

    mode: str = "auto"
    certificates: tuple[SiteCertificate, ...] = field(default_factory=tuple)

    @property
    def encrypts(self) -> bool:
        return self.mode != "never" and bool(self.certificates)

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(c.alias for c in self.certificates)


def settings_certificates(settings: Sequence[object]) -> list[tuple[str, str]]:
    """``(alias, pem)`` pairs from RWS's ``settings`` list (``certificatealias-N`` / ``certificate-N``).

    A certificate without an alias is named by its number, so an error can still name it.
    Raises :class:`CertificateError` for entries that are not ``{"name", "value"}`` strings.
    """
    values: dict[str, str] = {}
    for entry in settings:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not isinstance(entry.get("value"), str):
            raise CertificateError("RWS settings/screen-recording-encryption holds an entry that is not "
                                   '{"name": "...", "value": "..."}: fix the screen-recording encryption settings')
        values[entry["name"]] = entry["value"]
    pairs = []
    numbers = sorted({name.rsplit("-", 1)[1] for name in values if name.startswith("certificate-")},
                     key=lambda n: (len(n), n))
    for number in numbers:
        alias = values.get(f"certificatealias-{number}") or f"certificate-{number}"
        pairs.append((alias, values[f"certificate-{number}"]))
    return pairs


def validate_certificates(pairs: Sequence[tuple[str, str]], now: datetime | None = None) -> tuple[SiteCertificate, ...]:
    """Check every listed certificate: PEM X.509, RSA, valid now. Every problem is collected and
    raised as one :class:`CertificateError` naming the aliases, so the cycle fails loudly instead of
    storing a PCI-DSS recording in plain text."""
    moment = now or datetime.now(UTC)
    problems, good = [], []
    for alias, pem in pairs:
        try:
            cert = x509.load_pem_x509_certificate(pem.strip().encode("ascii", "replace"))
        except ValueError as exc:
            problems.append(f"screen-recording certificate {alias!r} cannot be read ({exc})")
            continue
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            problems.append(f"screen-recording certificate {alias!r} is not an RSA certificate (RCS wraps keys with RSA)")
        elif cert.not_valid_after_utc < moment:
            problems.append(f"screen-recording certificate {alias!r} expired on "
                            f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M}Z")
        elif cert.not_valid_before_utc > moment:
            problems.append(f"screen-recording certificate {alias!r} is not valid before "
                            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M}Z")
        else:
            good.append(SiteCertificate(alias, cert.public_bytes(serialization.Encoding.PEM).decode("ascii")))
    if problems:
        raise CertificateError("; ".join(problems) + ": replace it in RWS settings/screen-recording-encryption "
                               "(grmux does not store the muxed files in plain text instead)")
    return tuple(good)


def new_key() -> tuple[bytes, bytes]:
    """A fresh AES-256 key and IV (one pair per file, never reused)."""
    return secrets.token_bytes(KEY_BYTES), secrets.token_bytes(BLOCK)


def make_envelope(key: bytes, iv: bytes, certificates: Sequence[SiteCertificate]) -> str:
    """PEM CMS EnvelopedData carrying ``key || iv``, one RSA recipient per certificate."""
    if len(key) != KEY_BYTES or len(iv) != BLOCK:
        raise ValueError("AES-256-CBC needs a 32-byte key and a 16-byte IV")
    if not certificates:
        raise ValueError("an envelope needs at least one certificate")
    builder = pkcs7.PKCS7EnvelopeBuilder().set_data(key + iv).set_content_encryption_algorithm(algorithms.AES256)
    for cert in certificates:
        builder = builder.add_recipient(cert.certificate())
    return builder.encrypt(serialization.Encoding.PEM, [pkcs7.PKCS7Options.Binary]).decode("ascii")


@dataclass(frozen=True)
class Encrypted:
    """The result of :func:`encrypt_file`: where, how big, and the plain file's SHA-256."""

    path: Path
    size: int
    plain_sha256: str


def encrypt_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], key: bytes, iv: bytes,
                 *, chunk_size: int = CHUNK) -> Encrypted:
    """AES-256-CBC + PKCS#7 ``src`` into a new 0600 file ``dst``, streaming; hashes the plain bytes
    on the way so the verification needs no second read of the plain file. ``dst`` is removed on
    any failure."""
    if len(key) != KEY_BYTES or len(iv) != BLOCK:
        raise ValueError("AES-256-CBC needs a 32-byte key and a 16-byte IV")
    dst_path = Path(dst)
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    padder = padding.PKCS7(128).padder()
    digest = hashlib.sha256()
    fd = os.open(dst_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    size = 0
    try:
        with open(fd, "wb", closefd=True) as out, open(src, "rb") as inp:
            while chunk := inp.read(chunk_size):
                digest.update(chunk)
                data = encryptor.update(padder.update(chunk))
                size += len(data)
                out.write(data)
            tail = encryptor.update(padder.finalize()) + encryptor.finalize()
            size += len(tail)
            out.write(tail)
    except BaseException:
        dst_path.unlink(missing_ok=True)
        raise
    return Encrypted(dst_path, size, digest.hexdigest())


def sha256_of_decrypted(src: str | os.PathLike[str], key: bytes, iv: bytes, *, chunk_size: int = CHUNK) -> str:
    """SHA-256 of the plaintext of AES-256-CBC ``src``, streaming, writing nothing to disk.

    Raises :class:`DecryptError` on bad padding or a length that is not whole blocks.
    """
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    digest = hashlib.sha256()
    total = 0
    with open(src, "rb") as inp:
        while chunk := inp.read(chunk_size):
            total += len(chunk)
            digest.update(unpadder.update(decryptor.update(chunk)))
    if total == 0 or total % BLOCK:
        raise DecryptError(f"the encrypted file is {total} bytes, not a whole number of AES blocks")
    try:
        digest.update(unpadder.update(decryptor.finalize()) + unpadder.finalize())
    except ValueError as exc:
        raise DecryptError("bad padding after decryption: the key does not match the file") from exc
    return digest.hexdigest()


def encrypted_name(path: str) -> str:
    """``…/x_muxed_1.mp4`` → ``…/x_muxed_1.mp4.bin``."""
    return path + ENCRYPTED_SUFFIX



def output_encryption(mode: str, pairs: Sequence[tuple[str, str]], now: datetime | None = None) -> OutputEncryption:
    """The cycle's :class:`OutputEncryption`. ``never`` does not even parse the certificates (the
    operator chose plain output); otherwise every listed certificate must be usable."""
    if mode not in MODES:
        raise ValueError(f"encrypt_output must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "never":
        return OutputEncryption(mode, tuple(SiteCertificate(alias, pem) for alias, pem in pairs))
    return OutputEncryption(mode, validate_certificates(pairs, now))


def startup_warning(encryption: OutputEncryption) -> str:
    """The one warning of a run that stores plain files although the site lists certificates."""
    if encryption.mode == "never" and encryption.certificates:
        return ("encrypt_output = never: the muxed files are stored in plain text although the site lists "
                f"screen-recording certificates ({', '.join(encryption.aliases)})")
    return ""


@dataclass(frozen=True)
class CallEncryption:
    """What to do with one call's muxed file: encrypt it, or store it plain (with a warning), or fail."""

    encrypt: bool
    warning: str = ""
    failure: str = ""


def call_encryption(encryption: OutputEncryption, sources_encrypted: bool) -> CallEncryption:
    """The per-call rule of ``encrypt_output`` (pure)."""
    if encryption.encrypts:
        return CallEncryption(True)
    if encryption.mode == "always":
        return CallEncryption(False, failure="encrypt_output = always but RWS lists no screen-recording certificate "
                                             "(settings/screen-recording-encryption): the muxed file is not stored")
    if encryption.mode == "auto" and sources_encrypted:
        return CallEncryption(False, warning="its sources are encrypted but RWS lists no screen-recording "
                                             "certificate: the muxed file is stored in plain text")
    return CallEncryption(False)
