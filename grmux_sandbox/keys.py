"""Keys and CMS envelopes of the sandbox RCS.

At first start the sandbox creates, in ``<state>/keys/``:

* ``ca.pem`` / ``ca.key`` — a self-signed RSA-2048 CA ("grmux sandbox CA");
* ``rcs.pem`` / ``rcs.key`` — the RCS recording certificate (RSA-2048, signed by the CA). Its
  private key is what RCS uses to open envelopes; it never leaves the sandbox.
* ``rcs2.pem`` / ``rcs2.key`` — a second site certificate RCS also holds (the "two certificates"
  screen-recording encryption setting), and ``expired.pem`` (a certificate past its end date).

**Screen-recording encryption settings** (what RWS ``settings/screen-recording-encryption``
serves, :meth:`KeyStore.encryption_settings`): ``none`` (404), ``empty`` (an empty list), ``one``
(the RCS certificate), ``two`` (both), ``broken`` (a certificate that is not PEM), ``expired``.

**Envelope layout (what is in a media file's ``pkcs7`` field).** A PEM ``-----BEGIN PKCS7-----``
CMS EnvelopedData made with ``cryptography``'s ``PKCS7EnvelopeBuilder``: one RSA key-transport
recipient (the RCS certificate, PKCS#1 v1.5 key wrap), content encrypted with AES-128-CBC by the
CMS layer, and the enveloped content is exactly **48 bytes: the 32-byte AES-256 media key followed
by the 16-byte IV** (``key || iv``). The media bytes themselves are AES-256-CBC with PKCS#7 padding
under that key and IV. The envelope is "detached" from the media: only it crosses the network.

Clients never parse the envelope: they POST it to RCS ``decrypt-key`` and get
``{"statusCode":0,"algorithm":"aes-256-cbc","key":"<64 hex>","iv":"<32 hex>"}``.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

KEY_BYTES = 32
IV_BYTES = 16
ENCRYPTION_MODES = ("none", "empty", "one", "two", "broken", "expired")


class NoMatchingKey(Exception):
    """No private key of RCS opens this envelope (RCS answers 404)."""


class BadEnvelope(Exception):
    """The text is not a PEM CMS EnvelopedData (RCS answers 400)."""


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "grmux sandbox"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificate(cn: str, issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None = None,
                     *, ca: bool = False, expired: bool = False) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A fresh RSA-2048 key and a certificate for it (self-signed when ``issuer`` is None);
    ``expired`` = valid for ten years until yesterday."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    if expired:
        now -= dt.timedelta(days=3651)
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer_cert.subject if issuer_cert else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=True,
                          data_encipherment=False, key_agreement=False, key_cert_sign=False,
                          crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(path: Path, data: bytes, private: bool = False) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    if private:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def make_envelope(key: bytes, iv: bytes, certificate: x509.Certificate) -> str:
    """PEM CMS EnvelopedData for ``certificate`` carrying ``key || iv``."""
    if len(key) != KEY_BYTES or len(iv) != IV_BYTES:
        raise ValueError("key must be 32 bytes and iv 16 bytes")
    pem = (pkcs7.PKCS7EnvelopeBuilder().set_data(key + iv).add_recipient(certificate)
           .encrypt(serialization.Encoding.PEM, [pkcs7.PKCS7Options.Binary]))
    return pem.decode("ascii")


class KeyStore:
    """The CA, the RCS certificate and the RCS private keys, kept in ``<state>/keys``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        ca_pem, ca_key = self.folder / "ca.pem", self.folder / "ca.key"
        rcs_pem, rcs_key = self.folder / "rcs.pem", self.folder / "rcs.key"
        if not (ca_pem.exists() and ca_key.exists()):
            cert, key = make_certificate("grmux sandbox CA", ca=True)
            _write(ca_key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()), private=True)
            _write(ca_pem, cert.public_bytes(serialization.Encoding.PEM))
        self.ca_certificate = x509.load_pem_x509_certificate(ca_pem.read_bytes())
        self._ca_key = serialization.load_pem_private_key(ca_key.read_bytes(), None)
        if not (rcs_pem.exists() and rcs_key.exists()):
            cert, key = make_certificate("grmux sandbox RCS recording certificate",
                                         (self.ca_certificate, self._ca_key))
            _write(rcs_key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()), private=True)
            _write(rcs_pem, cert.public_bytes(serialization.Encoding.PEM))
        self.certificate = x509.load_pem_x509_certificate(rcs_pem.read_bytes())
        self._keys = [(self.certificate, serialization.load_pem_private_key(rcs_key.read_bytes(), None))]
        self._second: x509.Certificate | None = None
        if (self.folder / "rcs2.pem").exists():
            self.second_certificate  # noqa: B018 - RCS holds the second key from start once it exists

    def _issue(self, stem: str, cn: str, *, expired: bool = False) -> tuple[x509.Certificate, Any]:
        """A certificate (and key) signed by the CA, kept as ``<stem>.pem``/``<stem>.key``."""
        pem_path, key_path = self.folder / f"{stem}.pem", self.folder / f"{stem}.key"
        if not (pem_path.exists() and key_path.exists()):
            cert, key = make_certificate(cn, (self.ca_certificate, self._ca_key), expired=expired)
            _write(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), private=True)
            _write(pem_path, cert.public_bytes(serialization.Encoding.PEM))
        return (x509.load_pem_x509_certificate(pem_path.read_bytes()),
                serialization.load_pem_private_key(key_path.read_bytes(), None))

    @property
    def second_certificate(self) -> x509.Certificate:
        """The second site certificate; RCS holds its private key too (made on first use)."""
        if self._second is None:
            cert, key = self._issue("rcs2", "grmux sandbox second screen-recording certificate")
            self._keys.append((cert, key))
            self._second = cert
        return self._second

    def private_keys(self) -> list[tuple[x509.Certificate, Any]]:
        """Every (certificate, private key) RCS opens envelopes with (for tests: either key alone)."""
        self.second_certificate  # noqa: B018 - loads it
        return list(self._keys)

    def encryption_settings(self, mode: str) -> list[dict[str, str]] | None:
        """The ``settings`` list RWS serves for ``mode`` (see the module docstring); None = 404."""
        def entry(n: int, alias: str, cert: x509.Certificate | str) -> list[dict[str, str]]:
            value = cert if isinstance(cert, str) else cert.public_bytes(serialization.Encoding.PEM).decode()
            return [{"name": f"certificatealias-{n}", "value": alias}, {"name": f"certificate-{n}", "value": value}]

        if mode == "none":
            return None
        if mode == "empty":
            return []
        if mode == "one":
            return entry(1, "sandbox-rcs", self.certificate)
        if mode == "two":
            return entry(1, "sandbox-rcs", self.certificate) + entry(2, "sandbox-rcs-2", self.second_certificate)
        if mode == "broken":
            return entry(1, "sandbox-broken", "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n")
        if mode == "expired":
            return entry(1, "sandbox-expired", self._issue("expired", "grmux sandbox expired", expired=True)[0])
        raise ValueError(f"screen-recording encryption mode must be one of {', '.join(ENCRYPTION_MODES)}")

    @property
    def certificate_path(self) -> Path:
        return self.folder / "rcs.pem"

    def envelope(self, key: bytes, iv: bytes) -> str:
        """An envelope RCS can open."""
        return make_envelope(key, iv, self.certificate)

    def open(self, pem: str) -> tuple[bytes, bytes]:
        """``(key, iv)`` from an envelope; :class:`NoMatchingKey` / :class:`BadEnvelope` otherwise."""
        data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
        if b"-----BEGIN PKCS7-----" not in data:
            raise BadEnvelope("not a PEM PKCS7 envelope (-----BEGIN PKCS7----- missing)")
        for cert, private in self._keys:
            try:
                content = pkcs7.pkcs7_decrypt_pem(data, cert, private, [])
            except ValueError as exc:
                text = str(exc).lower()
                if "recipient" in text or "decrypt" in text:
                    continue
                raise BadEnvelope(f"not a valid CMS EnvelopedData: {exc}") from None
            if len(content) != KEY_BYTES + IV_BYTES:
                raise BadEnvelope(f"envelope content is {len(content)} bytes, expected 48 (key||iv)")
            return content[:KEY_BYTES], content[KEY_BYTES:]
        raise NoMatchingKey("no RCS private key matches the envelope's recipient")


def encrypt_bytes(plain: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-256-CBC with PKCS#7 padding (what GIR stores for an encrypted media file)."""
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()


def decrypt_bytes(cipher: bytes, key: bytes, iv: bytes) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(dec.update(cipher) + dec.finalize()) + unpadder.finalize()


def foreign_envelope(key: bytes, iv: bytes) -> str:
    """An envelope for a certificate RCS does not know (RCS answers 404): for tests."""
    cert, _ = make_certificate("unknown recipient")
    return make_envelope(key, iv, cert)
