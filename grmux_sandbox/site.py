"""A whole sandbox GIR site: emulated RWS + RCS, real WebDAV and S3, fault injection, generated calls.

    from grmux_sandbox.site import Sandbox
    from grmux_sandbox.faults import FaultSpec

    with Sandbox.start(tmp_path / "site") as sb:
        calls = sb.seed(5, seed=1, scenarios=["normal", "encrypted"], size=(320, 240), duration=(8, 12))
        cfg = sb.write_config(tmp_path / "muxer.cfg")
        sb.set_faults("webdav", FaultSpec(error_rate=0.3, cut_rate=0.1, seed=7))
        ...

Every service listens on its own free ``127.0.0.1`` port (a restart on the same state tries the
ports of the previous run first). All state lives in ``state_dir`` (layout in ``store.py``);
:meth:`Sandbox.open` gives an offline handle on a state (seed without servers).

Accounts: RWS ``ops``/``ops``; RCS ``rcs``/``rcs`` (may decrypt) and ``nodecrypt``/``nodecrypt``
(may not); WebDAV ``dav``/``dav``; S3 ``testing``/``testing`` (moto does not check keys).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from flask import jsonify, request

from grmux_sandbox.faults import SERVICES, FaultInjector, FaultSpec
from grmux_sandbox.keys import KeyStore, foreign_envelope
from grmux_sandbox.rws import RwsState, make_rcs_app, make_rws_app
from grmux_sandbox.servers import CherootServer, WerkzeugServer, make_moto_app, make_webdav_app
from grmux_sandbox.store import S3_TOKEN, WEBDAV_TOKEN, Store, read_json, substitute, write_json

S3_REGION = "us-east-1"
_log = logging.getLogger(__name__)


class Sandbox:
    """One sandbox site on one state folder. Use :meth:`start` (servers) or :meth:`open` (offline)."""

    def __init__(self, state_dir: str | os.PathLike[str]):
        self.state_dir = Path(state_dir).resolve()
        self.store = Store(self.state_dir)
        self.keys = KeyStore(self.state_dir / "keys")
        self._servers: dict[str, Any] = {}
        self._injectors: dict[str, FaultInjector] = {}
        self._pending_faults: dict[str, FaultSpec | None] = {}
        self._rws_live = RwsState()
        self._rcs_live = RwsState()
        self._s3_client: Any = None
        self._seed_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, state_dir: str | os.PathLike[str]) -> Sandbox:
        """An offline handle (no servers): seed, inspect. Media for S3 go to disk, loaded at start."""
        return cls(state_dir)

    @classmethod
    def start(cls, state_dir: str | os.PathLike[str], *, faults: dict[str, FaultSpec] | None = None,
              ports: dict[str, int] | None = None, dialect: str = "strict") -> Sandbox:
        """Start RWS, RCS, WebDAV and S3 on loopback ports and return the running sandbox.

        ``dialect`` is how RWS answers: ``strict`` (the project contract) or ``field`` (the variants
        real RWS answer with; see :mod:`grmux_sandbox.rws`)."""
        sandbox = cls(state_dir)
        sandbox.set_dialect(dialect)
        for service, spec in (faults or {}).items():
            sandbox.set_faults(service, spec)
        sandbox._start(ports or {})
        return sandbox

    def _start(self, ports: dict[str, int]) -> None:
        previous = dict(self.store.site.get("ports") or {})
        previous.update(ports)
        store = self.store
        try:
            rws_app = make_rws_app(store, self._urls, self._delete_media, self._rws_live)
            self._add_admin(rws_app)
            rcs_app = make_rcs_app(store, self.keys, self._rcs_live)
            dav_app = make_webdav_app(store.webdav_root, store.users.get("webdav", {}))
            moto_app, moto_handler = make_moto_app()
            apps = {"rws": rws_app, "rcs": rcs_app, "webdav": dav_app, "s3": moto_app}
            for service in SERVICES:
                self._injectors[service] = FaultInjector(apps[service], service,
                                                         self._pending_faults.get(service))
            for service in ("rws", "rcs", "webdav"):
                self._servers[service] = CherootServer(self._injectors[service], previous.get(service),
                                                       name=f"sandbox-{service}")
            self._servers["s3"] = WerkzeugServer(self._injectors["s3"], previous.get("s3"),
                                                 request_handler=moto_handler, name="sandbox-s3")
            store.update_site(ports={s: srv.port for s, srv in self._servers.items()})
            self._load_s3()
            write_json(self.state_dir / "running.json", {
                "pid": os.getpid(), "rws_url": self.rws_url, "rcs_url": self.rcs_url,
                "webdav_url": self.webdav_url, "s3_endpoint": self.s3_endpoint,
                "admin_url": self.admin_url, "contact_center_id": self.contact_center_id})
        except BaseException:
            self.stop()
            raise

    def set_dialect(self, dialect: str) -> None:
        """Answer RWS requests in ``dialect`` from now on (``strict`` or ``field``)."""
        from grmux_sandbox.rws import DIALECTS

        if dialect not in DIALECTS:
            raise ValueError(f"unknown RWS dialect {dialect!r}; known: {', '.join(DIALECTS)}")
        self.store.update_site(rws_dialect=dialect)

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def stop(self) -> None:
        """Save S3 objects to the state folder and stop every server."""
        if "s3" in self._servers:
            try:
                self._save_s3()
            except Exception as exc:  # noqa: BLE001 - stopping must not fail
                _log.warning("could not save S3 objects to %s: %s", self.state_dir / "s3", exc)
        for service in ("rws", "rcs", "webdav", "s3"):
            server = self._servers.pop(service, None)
            if server is not None:
                server.stop()
        self._s3_client = None
        running = read_json(self.state_dir / "running.json")
        if running and running.get("pid") == os.getpid():
            (self.state_dir / "running.json").unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ URLs and identity
    def _need(self, service: str) -> Any:
        if service not in self._servers:
            raise RuntimeError("the sandbox is not running: use Sandbox.start()")
        return self._servers[service]

    @property
    def rws_url(self) -> str:
        """RWS base URI (``[htcc] base_uri``), ending in ``/``."""
        return self._need("rws").url

    @property
    def rcs_url(self) -> str:
        """RCS base URI (``[rcs] base_uri``), ending in ``/``; the API is under ``/rcs/api/v1``."""
        return self._need("rcs").url

    @property
    def webdav_root_url(self) -> str:
        return self._need("webdav").url

    @property
    def webdav_url(self) -> str:
        """The WebDAV recordings collection (the ``storagePath`` of generated media), ending in ``/``."""
        return self.webdav_root_url + "recordings/"

    @property
    def webdav_host(self) -> str:
        return f"127.0.0.1:{self._need('webdav').port}"

    @property
    def s3_endpoint(self) -> str:
        """S3 endpoint URL (no trailing slash)."""
        return self._need("s3").url

    @property
    def admin_url(self) -> str:
        return self.rws_url + "_sandbox/"

    @property
    def contact_center_id(self) -> str:
        return self.store.contact_center_id

    @property
    def bucket(self) -> str:
        return self.store.bucket

    @property
    def s3_region(self) -> str:
        return S3_REGION

    @property
    def ca_certificate_path(self) -> Path:
        return self.keys.folder / "ca.pem"

    def _urls(self) -> dict[str, str]:
        out = {}
        if "webdav" in self._servers:
            out[WEBDAV_TOKEN] = self.webdav_url
        if "s3" in self._servers:
            out[S3_TOKEN] = self.s3_endpoint
        return out

    # ------------------------------------------------------------------ config
    def config_text(self, **overrides: Any) -> str:
        """A complete muxer.cfg for this sandbox. Keyword arguments override options: a bare name
        (``window_past=60``) for options of [processing], [advanced] and [logfile]; ``section__name``
        (``htcc__password="x"``) for any option."""
        from grmux_core.config import OPTIONS

        temp_dir = self.state_dir / "tmp"
        log_dir = self.state_dir / "log"
        temp_dir.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)
        sections: dict[str, dict[str, str]] = {
            "htcc": {"base_uri": self.rws_url, "contact_center_id": self.contact_center_id,
                     "username": "ops", "password": "ops"},
            "rcs": {"base_uri": self.rcs_url, "username": "rcs", "password": "rcs"},
            "webdav": {"username": "dav", "password": "dav", "allowed_hosts": self.webdav_host},
            "s3": {"endpoint_url": self.s3_endpoint, "region": S3_REGION, "access_key_id": "testing",
                   "secret_access_key": "testing"},
            "processing": {"ffmpeg": "ffmpeg", "ffprobe": "ffprobe", "temp_dir": str(temp_dir),
                           "window_past": "720"},
            "advanced": {"pagination": "100", "canary_location": self.webdav_url + "grmux-canary/"},
            "logfile": {"logfile_path": str(log_dir)},
        }
        unique = {}
        for option in OPTIONS:
            if option.section in ("processing", "advanced", "logfile"):
                unique[option.name] = option.section
        known = {(o.section, o.name) for o in OPTIONS}
        for key, value in overrides.items():
            if "__" in key:
                section, name = key.split("__", 1)
            elif key in unique:
                section, name = unique[key], key
            else:
                raise ValueError(f"unknown option {key!r}: use section__name for options outside "
                                 "[processing]/[advanced]/[logfile]")
            if (section, name) not in known:
                raise ValueError(f"unknown option [{section}] {name}")
            if isinstance(value, bool):
                value = int(value)
            sections.setdefault(section, {})[name] = str(value)
        lines = ["# muxer.cfg written by grmux_sandbox for the sandbox in " + str(self.state_dir)]
        for section, values in sections.items():
            lines.append(f"\n[{section}]")
            lines.extend(f"{name} = {value}" for name, value in values.items())
        return "\n".join(lines) + "\n"

    def write_config(self, path: str | os.PathLike[str], **overrides: Any) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.config_text(**overrides), encoding="utf-8")
        return path

    # ------------------------------------------------------------------ data
    def seed(self, calls: int, *, seed: int = 0, scenarios: Sequence[str] | None = None,
             start: datetime | None = None, duration: tuple[float, float] = (20.0, 60.0),
             size: tuple[int, int] | None = None, fps: int = 25, spacing: tuple[float, float] = (30.0, 300.0),
             ffmpeg: str = "ffmpeg") -> list[Any]:
        """Generate ``calls`` calls with real media (see :mod:`grmux_sandbox.generator`).

        ``scenarios``: names from ``generator.SCENARIOS`` used in turn (None = a seeded mix);
        ``start``: first call's start (default: now - 6 h, whole seconds); ``duration``: call length
        range in seconds; ``size``: screen size (None = real screen sizes); ``spacing``: seconds
        between call starts. Deterministic for a given seed, state and start.
        """
        from grmux_sandbox.generator import generate

        with self._seed_lock:
            return generate(self, calls, seed=seed, scenarios=scenarios, start=start, duration=duration,
                            size=size, fps=fps, spacing=spacing, ffmpeg=ffmpeg)

    def seed_metadata(self, calls: int, *, seed: int = 0, start: datetime | None = None,
                      spacing: tuple[float, float] = (5.0, 60.0), duration: tuple[float, float] = (20.0, 300.0),
                      screen_share: float = 0.8) -> list[str]:
        """Add call (and screen) records **without media**, fast: for paging/filter/bulk tests and
        benchmarks. Returns the new call ids in start order."""
        from grmux_sandbox.generator import metadata_only

        with self._seed_lock:
            return metadata_only(self, calls, seed=seed, start=start, spacing=spacing, duration=duration,
                                 screen_share=screen_share)

    def generated_calls(self) -> list[Any]:
        from grmux_sandbox.generator import GeneratedCall

        return [GeneratedCall.from_dict(d) for d in self.store.generated()]

    def generated_call(self, call_id: str) -> Any:
        from grmux_sandbox.generator import GeneratedCall

        data = read_json(self.state_dir / "generated" / f"{call_id}.json")
        if data is None:
            raise KeyError(call_id)
        return GeneratedCall.from_dict(data)

    def deliver_late_screen(self, call_id: str) -> None:
        """Make a held-back screen recording visible (the 'nightly upload' arrived)."""
        self.store.deliver_late(call_id)
        path = self.state_dir / "generated" / f"{call_id}.json"
        data = read_json(path)
        if data is not None:
            data["screen_delivered"] = True
            write_json(path, data)

    def late_screen_ids(self) -> list[str]:
        return sorted(self.store.late)

    # ------------------------------------------------------------------ inspection
    def call_recording(self, call_id: str) -> dict[str, Any] | None:
        """The call recording as RWS serves it (current URLs)."""
        record = self.store.calls.get(call_id)
        return substitute(record, self._urls()) if record else None

    def screen_recording(self, call_id: str) -> dict[str, Any] | None:
        """The screen recording as RWS serves it, or None (absent or not delivered yet)."""
        record = self.store.screens.get(call_id)
        return substitute(record, self._urls()) if record else None

    def call_ids(self) -> list[str]:
        return [i for _, i in self.store.sorted_call_ids()]

    def write_backs(self) -> list[dict[str, Any]]:
        """Every accepted write-back POST, oldest first: ``{"receivedAt", "id", "body"}``."""
        return self.store.writebacks()

    def media_path(self, descriptor: dict[str, Any]) -> Path:
        """The file on disk behind a descriptor (WebDAV; S3 as saved at the last stop/seed)."""
        if descriptor.get("storage") == "awsS3":
            return self.store.s3_path(descriptor["path"], (descriptor.get("data") or {}).get("bucket"))
        path = descriptor.get("path", "")
        base = (descriptor.get("data") or {}).get("storagePath", "")
        if urlsplit(path).scheme:
            url = path
        elif base:
            url = (base if base.endswith("/") else base + "/") + path.lstrip("/")
        else:
            url = WEBDAV_TOKEN + path.lstrip("/")
        candidates = [(WEBDAV_TOKEN, self.store.webdav_recordings)]
        if self.running:
            candidates += [(self.webdav_url, self.store.webdav_recordings),
                           (self.webdav_root_url, self.store.webdav_root)]
        for prefix, root in candidates:
            if url.startswith(prefix):
                target = (root / url[len(prefix):].lstrip("/")).resolve()
                if self.store.webdav_root != target and self.store.webdav_root not in target.parents:
                    raise ValueError(f"{url} is outside the sandbox WebDAV root")
                return target
        raise ValueError(f"{url} is not on this sandbox's WebDAV server")

    def media_bytes(self, descriptor_or_media: dict[str, Any]) -> bytes:
        """The stored bytes (encrypted if the media is) behind a media file or descriptor."""
        desc = descriptor_or_media.get("originalMediaDescriptor") or descriptor_or_media.get("mediaDescriptor") \
            or descriptor_or_media
        if desc.get("storage") == "awsS3" and self.running:
            bucket = (desc.get("data") or {}).get("bucket") or self.bucket
            return self.s3_client().get_object(Bucket=bucket, Key=desc["path"])["Body"].read()
        return self.media_path(desc).read_bytes()

    def plain_media_bytes(self, media_id: str) -> bytes:
        """The plaintext of an encrypted media file (kept only by the sandbox)."""
        return (self.state_dir / "plain" / media_id).read_bytes()

    @staticmethod
    def sha256(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def envelope(self, key: bytes, iv: bytes) -> str:
        """A PEM envelope RCS can open (for tests)."""
        return self.keys.envelope(key, iv)

    @staticmethod
    def foreign_envelope(key: bytes, iv: bytes) -> str:
        """A PEM envelope for a certificate RCS does not know: RCS answers 404."""
        return foreign_envelope(key, iv)

    def request_counts(self, service: str = "rws") -> dict[str, int]:
        """Requests per ``"METHOD rule"`` seen by RWS or RCS (after fault injection let them through)."""
        live = self._rws_live if service == "rws" else self._rcs_live
        with live.lock:
            return dict(live.counters)

    # ------------------------------------------------------------------ knobs
    def set_faults(self, service: str, spec: FaultSpec | None) -> None:
        """Break a service (rws, rcs, webdav, s3) from now on; None = heal it."""
        if service not in SERVICES:
            raise ValueError(f"service must be one of {', '.join(SERVICES)}, not {service!r}")
        self._pending_faults[service] = spec
        if service in self._injectors:
            self._injectors[service].set(spec)

    def fault_stats(self, service: str | None = None) -> dict[str, Any]:
        """``{"requests", "eligible", "errors", "delayed", "cuts", "statuses"}`` per service."""
        if service is not None:
            return self._injectors[service].stats() if service in self._injectors else {}
        return {s: inj.stats() for s, inj in self._injectors.items()}

    def reset_fault_stats(self) -> None:
        for inj in self._injectors.values():
            inj.reset_stats()

    def set_screen_encryption(self, mode: str) -> None:
        """What RWS serves as the site's screen-recording certificates (live): ``none`` (404, the
        default), ``empty``, ``one``, ``two`` (RCS holds both private keys), ``broken``, ``expired``."""
        self.store.update_site(screen_encryption=self.keys.encryption_settings(mode))

    def set_password(self, service: str, username: str, password: str) -> None:
        """Give an account of ``htcc``, ``rcs`` or ``webdav`` another password (kept in users.json).

        Live for RWS and RCS; the WebDAV server is rebuilt with the new accounts when running.
        Lets a test use passwords of its own (e.g. unique sentinels) instead of the fixed ones.
        """
        if service not in ("htcc", "rcs", "webdav"):
            raise ValueError("service must be htcc, rcs or webdav")
        with self.store.lock:
            account = self.store.users.setdefault(service, {}).setdefault(username, {})
            account["password"] = password
            if service == "rcs":
                account.setdefault("decrypt", True)
            write_json(self.state_dir / "users.json", self.store.users)
        if service == "webdav" and "webdav" in self._injectors:
            self._injectors["webdav"].app = make_webdav_app(self.store.webdav_root, self.store.users["webdav"])

    def set_rws_version(self, version: str) -> None:
        self.store.update_site(rws_version=version)

    def set_irp_muxer(self, status: int, settings: dict[str, Any] | None = None) -> None:
        """What ``GET /api/v2/settings/irp-muxer`` answers: 200 (with ``settings``), 403 or 404."""
        if status not in (200, 403, 404):
            raise ValueError("status must be 200, 403 or 404")
        self.store.update_site(irp_muxer={"status": status, "settings": settings or {}})

    def set_csrf(self, enabled: bool) -> None:
        """CSRF on (default) or off (no headers, POST/DELETE accepted without a token)."""
        self.store.update_site(csrf=bool(enabled))

    def drop_sessions(self) -> None:
        """Forget every CSRF session (as an RWS restart does)."""
        with self._rws_live.lock:
            self._rws_live.sessions.clear()

    def reload(self) -> None:
        """Re-read metadata from disk (after ``grmux sandbox seed`` wrote to this state)."""
        self.store.reload()

    # ------------------------------------------------------------------ storage
    def s3_client(self) -> Any:
        import boto3
        from botocore.config import Config

        if self._s3_client is None:
            self._s3_client = boto3.client(
                "s3", endpoint_url=self.s3_endpoint, region_name=S3_REGION, aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"max_attempts": 10, "mode": "standard"}, s3={"addressing_style": "path"}))
        return self._s3_client

    def put_media(self, descriptor: dict[str, Any], source: Path) -> None:
        """Store a file where a (token) descriptor says (used by the generator)."""
        target = self.media_path(descriptor)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        if descriptor.get("storage") == "awsS3" and self.running:
            bucket = (descriptor.get("data") or {}).get("bucket") or self.bucket
            self._without_faults("s3", lambda: self.s3_client().upload_file(str(target), bucket, descriptor["path"]))

    def _without_faults(self, service: str, action: Any) -> Any:
        injector = self._injectors.get(service)
        spec = injector.spec if injector else None
        if injector and spec:
            injector.set(None)
        try:
            return action()
        finally:
            if injector and spec:
                injector.set(spec)

    def _delete_media(self, descriptor: dict[str, Any]) -> None:
        """Remove stored bytes (RWS DELETE of an original screen media)."""
        try:
            path = self.media_path(descriptor)
        except ValueError:
            return
        path.unlink(missing_ok=True)
        if descriptor.get("storage") == "awsS3" and self.running:
            bucket = (descriptor.get("data") or {}).get("bucket") or self.bucket
            self.s3_client().delete_object(Bucket=bucket, Key=descriptor["path"])

    def _load_s3(self) -> None:
        client = self.s3_client()
        root = self.state_dir / "s3"
        buckets = {p.name for p in root.iterdir() if p.is_dir()} | {self.bucket}

        def load() -> None:
            existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            for bucket in sorted(buckets):
                if bucket not in existing:
                    client.create_bucket(Bucket=bucket)
                for path in sorted((root / bucket).rglob("*")):
                    if path.is_file() and not path.name.startswith("."):
                        client.upload_file(str(path), bucket, path.relative_to(root / bucket).as_posix())

        self._without_faults("s3", load)

    def _save_s3(self) -> None:
        client = self.s3_client()
        root = self.state_dir / "s3"

        def save() -> None:
            for bucket in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
                if not (root / bucket).is_dir() and bucket != self.bucket:
                    continue
                seen = set()
                for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    for obj in page.get("Contents", []):
                        seen.add(obj["Key"])
                        target = root / bucket / obj["Key"]
                        if target.exists() and target.stat().st_size == obj["Size"]:
                            continue
                        target.parent.mkdir(parents=True, exist_ok=True)
                        client.download_file(bucket, obj["Key"], str(target))
                for path in (root / bucket).rglob("*"):
                    if path.is_file() and path.relative_to(root / bucket).as_posix() not in seen:
                        path.unlink()

        self._without_faults("s3", save)

    # ------------------------------------------------------------------ admin endpoints
    def _add_admin(self, app: Any) -> None:
        @app.get("/_sandbox/stats")
        def admin_stats():
            return jsonify({"faults": self.fault_stats(), "rws": self.request_counts("rws"),
                            "rcs": self.request_counts("rcs"), "calls": len(self.store.calls),
                            "screens": len(self.store.screens), "late": sorted(self.store.late)})

        @app.route("/_sandbox/faults/<service>", methods=["PUT", "POST", "DELETE"])
        def admin_faults(service: str):
            try:
                spec = None if request.method == "DELETE" else FaultSpec.from_dict(request.get_json(silent=True))
                self.set_faults(service, spec)
            except (TypeError, ValueError) as exc:
                return jsonify({"error": str(exc)}), 400
            return jsonify({"service": service, "spec": spec.to_dict() if spec else None})

        @app.post("/_sandbox/seed")
        def admin_seed():
            body = request.get_json(silent=True) or {}
            kwargs: dict[str, Any] = {k: body[k] for k in ("seed", "scenarios", "fps") if k in body}
            for key in ("duration", "size", "spacing"):
                if body.get(key) is not None:
                    kwargs[key] = tuple(body[key])
            if body.get("start"):
                from grmux_sandbox.timeutil import parse_iso
                kwargs["start"] = parse_iso(body["start"])
            made = self.seed(int(body.get("calls", 1)), **kwargs)
            return jsonify({"calls": [c.call_id for c in made]})

        @app.post("/_sandbox/deliver/<call_id>")
        def admin_deliver(call_id: str):
            try:
                self.deliver_late_screen(call_id)
            except KeyError as exc:
                return jsonify({"error": str(exc)}), 404
            return jsonify({"delivered": call_id})

        @app.post("/_sandbox/reload")
        def admin_reload():
            self.reload()
            return jsonify({"calls": len(self.store.calls)})


def running_info(state_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``running.json`` of a state whose sandbox process is alive, else None."""
    info = read_json(Path(state_dir) / "running.json")
    if not info:
        return None
    try:
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return info
