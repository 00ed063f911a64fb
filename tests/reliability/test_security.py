"""Security: TLS verified by default, passwords never leave the process, decrypted media stays private.

* TLS: an HTTPS server with a private CA is refused by the RWS, RCS and WebDAV clients until that CA is given
  as ``ca_bundle`` (``verify`` defaults to on).
* Passwords: a window runs (in a subprocess, as a worker would) with unique sentinel passwords for
  RWS (in the file), RCS and WebDAV (environment; the file holds other sentinels that lose), and an
  S3 secret key (file), on a site that encrypts muxed files; then every log file, the process
  output, every artifact, the flow run parameters, the Prefect home (result and cache records) and
  the server's SQLite files are searched for each sentinel, for the AES key of every muxed file
  (raw, hex, base64) and for a run of plain muxed bytes from each.
* WebDAV credentials go only to allowed hosts: tests/unit/test_storage.py
  (``test_host_not_allowed_is_refused_before_any_request``, ``test_redirect_to_another_host_is_refused``)
  and tests/integration/test_clients_sandbox.py
  (``test_media_on_a_host_not_allowed_is_refused_without_connecting``).
* Decrypted media is 0600 in a 0700 folder and gone after the call, also when the call fails.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import os
import ssl
import stat
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployments.processes import run_process
from grmux_core.config import HtccSettings, RcsSettings, SecretStr, WebdavSettings, load_settings
from grmux_core.crypto import RcsClient
from grmux_core.errors import MediaError, ServiceError
from grmux_core.models import MediaLocation
from grmux_core.rws import RwsClient
from grmux_core.storage import WebDavStorage
from grmux_sandbox.site import Sandbox
from tests.support import ROOT
from tests.support.flows import flow_cycle_argv

# ------------------------------------------------------------------------------------------ TLS


def self_signed(folder: Path) -> tuple[Path, Path, Path]:
    """A private CA (not in any system store) and a server certificate for 127.0.0.1 it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def build(subject, issuer, public, signer, *, ca: bool, issuer_public):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public),
                                  critical=False)
                   .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                                key_encipherment=False, data_encipherment=False,
                                                key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                                                encipher_only=False, decipher_only=False), critical=True))
        if not ca:
            builder = (builder.add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "grmux test CA")])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    ca = build(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True, issuer_public=ca_key.public_key())
    cert = build(name, ca_name, key.public_key(), ca_key, ca=False, issuer_public=ca_key.public_key())
    ca_path, cert_path, key_path = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return ca_path, cert_path, key_path


class _Answers(http.server.BaseHTTPRequestHandler):
    def _send(self, body: bytes, ctype: str = "application/json", status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.endswith("/version"):
            self._send(b'{"statusCode":0,"version":"8.5.201.14"}')
        else:
            self._send(b"media bytes", "application/octet-stream")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(json.dumps({"statusCode": 0, "algorithm": "aes-256-cbc", "key": "00" * 32,
                               "iv": "11" * 16}).encode())

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def https_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    ca, cert, key = self_signed(folder)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_port}/", ca
    server.shutdown()


def test_tls_verification_is_on_by_default():
    settings = load_settings(text="[htcc]\nbase_uri = https://rws.example/\ncontact_center_id = 0a\n", environ={})
    for section in (settings.htcc, settings.rcs, settings.webdav, settings.s3):
        assert section.verify is True and section.requests_verify is True


def _clients(url: str, ca_bundle: str):
    rws = RwsClient(HtccSettings(base_uri=url, contact_center_id="0a", ca_bundle=ca_bundle))
    rcs = RcsClient(RcsSettings(base_uri=url, username="rcs", password=SecretStr("x"), ca_bundle=ca_bundle), "0a")
    dav = WebDavStorage(WebdavSettings(username="dav", password=SecretStr("y"), ca_bundle=ca_bundle))
    return rws, rcs, dav


def test_a_self_signed_server_is_refused_without_ca_bundle(https_server, tmp_path):
    url, _ = https_server
    rws, rcs, dav = _clients(url, "")
    location = MediaLocation(storage="webDAV", path=url + "recordings/a.mp4")
    for attempt in (rws.handshake, lambda: rcs.decrypt_key("pem"), lambda: dav.download(location, tmp_path / "a")):
        with pytest.raises(ServiceError, match="TLS failed"):
            attempt()
    assert not (tmp_path / "a").exists()


def test_a_self_signed_server_is_accepted_with_its_ca_bundle(https_server, tmp_path, monkeypatch):
    import certifi

    # the section's ca_bundle wins over a CA bundle named by the environment (requests would prefer it)
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(name, certifi.where())
    url, cert = https_server
    rws, rcs, dav = _clients(url, str(cert))
    assert rws.handshake() == "8.5.201.14"
    assert rcs.decrypt_key("pem") == (bytes(32), bytes([0x11]) * 16)
    location = MediaLocation(storage="webDAV", path=url + "recordings/a.mp4")
    assert dav.download(location, tmp_path / "a") == len(b"media bytes")


# ------------------------------------------------------------------------------------------ passwords


@pytest.mark.slow
def test_sentinel_passwords_reach_no_log_artifact_parameter_or_database(prefect_api, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_HOME, PREFECT_SERVER_DATABASE_CONNECTION_URL

    sentinels = {name: f"Sentinel{name}{uuid.uuid4().hex}" for name in
                 ("Htcc", "RcsEnv", "RcsFile", "DavEnv", "DavFile", "S3Secret")}
    with Sandbox.start(tmp_path / "site") as sandbox:
        sandbox.set_password("htcc", "ops", sentinels["Htcc"])
        sandbox.set_password("rcs", "rcs", sentinels["RcsEnv"])
        sandbox.set_password("webdav", "dav", sentinels["DavEnv"])
        sandbox.set_screen_encryption("two")
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        sandbox.seed(4, seed=51, scenarios=["encrypted", "normal", "s3", "corrupt"], start=start, size=(320, 240),
                     duration=(6.0, 8.0), spacing=(60.0, 90.0))
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        config = sandbox.write_config(tmp_path / "muxer.cfg", worker_threads=2, temp_dir=str(scratch),
                                      htcc__password=sentinels["Htcc"], rcs__password=sentinels["RcsFile"],
                                      webdav__password=sentinels["DavFile"],
                                      s3__secret_access_key=sentinels["S3Secret"])
        env = os.environ | {"PREFECT_API_URL": prefect_api, "RCS_PASSWORD": sentinels["RcsEnv"],
                            "WEBDAV_PASSWORD": sentinels["DavEnv"], "PREFECT_LOGGING_LEVEL": "DEBUG"}
        run = run_process(flow_cycle_argv(config), cwd=ROOT, env=env, capture_output=True, timeout=400)
        output = run.stdout + run.stderr
        # the window really ran with these passwords: three calls muxed, the corrupt one failed
        assert run.returncode == 1, output.decode()[-3000:]
        assert len(sandbox.write_backs()) == 3, output.decode()[-3000:]
        secrets = sentinels | muxed_secrets(sandbox)

        places: dict[str, bytes] = {"process output": output}
        for folder in (sandbox.state_dir / "log", scratch, Path(PREFECT_HOME.value())):
            for path in folder.rglob("*"):
                if path.is_file():
                    places[str(path)] = path.read_bytes()
        db_url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
        db_file = Path(db_url.split("///", 1)[1])
        assert db_file.exists()
        for path in db_file.parent.glob(db_file.name + "*"):  # the database, its -wal and -shm
            places[str(path)] = path.read_bytes()
        with get_client(sync_client=True) as client:
            artifacts = client.read_artifacts()
            places["artifacts"] = json.dumps([a.model_dump(mode="json") for a in artifacts]).encode()
            runs = client.read_flow_runs()
            places["flow runs"] = json.dumps([r.model_dump(mode="json") for r in runs]).encode()
            logs = client.read_logs()
            places["logs in the API"] = json.dumps([entry.message for entry in logs]).encode()
        assert artifacts and logs and any(r.parameters.get("config_path") == str(config) for r in runs)
        assert any(name.endswith("grmux.log") for name in places)
        leaks = [(label, place) for label, secret in secrets.items() for place, data in places.items()
                 if (secret if isinstance(secret, bytes) else secret.encode()) in data]
        assert leaks == []


def muxed_secrets(sandbox: Sandbox) -> dict[str, str | bytes]:
    """Per muxed file: its AES key (raw, hex, base64; opened with the sandbox RCS's key) and 64 plain
    bytes from the middle of the decrypted MP4 (compressed media: unique to that file)."""
    import base64

    from grmux_sandbox.keys import decrypt_bytes

    found: dict[str, str | bytes] = {}
    for n, write_back in enumerate(sandbox.write_backs()):
        media_file = write_back["body"]["mediaFiles"][0]
        stored = sandbox.media_bytes(media_file)
        assert stored[4:8] != b"ftyp"
        key, iv = sandbox.keys.open(media_file["pkcs7"])
        plain = decrypt_bytes(stored, key, iv)
        middle = len(plain) // 2
        found |= {f"key{n}": key, f"key{n}hex": key.hex(), f"key{n}HEX": key.hex().upper(),
                  f"key{n}b64": base64.b64encode(key).decode(), f"plain{n}": plain[middle:middle + 64]}
    return found


# ------------------------------------------------------------------------------------------ decrypted media


@pytest.mark.slow
def test_decrypted_media_is_private_and_removed_even_when_the_call_fails(tmp_path, monkeypatch):
    from grmux_core import call as call_steps
    from grmux_core.models import parse_call_recording
    from grmux_core.services import Services

    with Sandbox.start(tmp_path / "site") as sandbox:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        [call] = sandbox.seed(1, seed=61, scenarios=["encrypted"], start=start, size=(320, 240),
                              duration=(6.0, 8.0))
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        settings = load_settings(sandbox.write_config(tmp_path / "muxer.cfg", temp_dir=str(scratch)))
        seen: dict[str, int] = {}

        def failing_mux(audios, screens, output, **kwargs):
            for path in [item.path for item in [*audios, *screens]]:
                seen[path] = stat.S_IMODE(os.stat(path).st_mode)
            seen["folder"] = stat.S_IMODE(os.stat(Path(output).parent).st_mode)
            raise MediaError("ffmpeg failed (simulated)")

        monkeypatch.setattr(call_steps, "mux_inputs", failing_mux)
        services = Services.from_settings(settings)
        try:
            outcome = call_steps.process_call(parse_call_recording(sandbox.call_recording(call.call_id)), services)
        finally:
            services.close()
    assert outcome.status == "failed" and "simulated" in outcome.reason
    assert seen.pop("folder") == 0o700
    assert len(seen) == len(call.audio) + len(call.screens)
    assert set(seen.values()) == {0o600}, seen
    assert not any(Path(p).exists() for p in seen)
    assert list(scratch.iterdir()) == []
