"""The sandbox's state on disk: one folder that survives restarts.

Layout of ``<state>/``::

    site.json                  contact centre id, bucket, RWS version, irp-muxer settings, CSRF on/off,
                               last ports, id counter
    users.json                 accounts per service (htcc, rcs, webdav, s3)
    keys/                      CA, RCS certificate and private key (see keys.py)
    rws/calls/<id>.json        call recordings (as stored: descriptors use the ${WEBDAV}/${S3} tokens)
    rws/screens/<id>.json      screen recordings RWS serves
    rws/late/<id>.json         screen recordings not delivered yet (deliver_late_screen)
    rws/writebacks.jsonl       every accepted write-back POST, one JSON a line
    generated/<id>.json        what the generator made (scenario, media, expected markers)
    plain/<mediaId>            plaintext copy of every encrypted media file (for byte comparisons)
    webdav/                    the WebDAV root; recordings under webdav/recordings/
    s3/<bucket>/<key>          S3 objects, loaded into moto at start and saved back at stop
    tmp/, log/                 temp_dir and logfile_path of the generated muxer.cfg
    running.json               present while a sandbox runs on this state (URLs, admin URL, pid)

Stored metadata keeps storage locations as tokens — ``${WEBDAV}`` (the WebDAV recordings base URL,
ending in ``/``) and ``${S3}`` (the S3 endpoint) — replaced with the current URLs when served, so a
restart on other ports keeps every record valid.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grmux_sandbox.timeutil import parse_iso, to_ms

WEBDAV_TOKEN = "${WEBDAV}"
S3_TOKEN = "${S3}"

DEFAULT_USERS: dict[str, dict[str, dict[str, Any]]] = {
    "htcc": {"ops": {"password": "ops"}},
    "rcs": {"rcs": {"password": "rcs", "decrypt": True}, "nodecrypt": {"password": "nodecrypt", "decrypt": False}},
    "webdav": {"dav": {"password": "dav"}},
    "s3": {"testing": {"password": "testing"}},
}


def write_json(path: Path, data: Any) -> None:
    """Atomic write (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def substitute(data: Any, mapping: dict[str, str]) -> Any:
    """Replace tokens in every string of a JSON value."""
    if isinstance(data, str):
        for token, value in mapping.items():
            if token in data:
                data = data.replace(token, value)
        return data
    if isinstance(data, list):
        return [substitute(v, mapping) for v in data]
    if isinstance(data, dict):
        return {k: substitute(v, mapping) for k, v in data.items()}
    return data


class Store:
    """Metadata of one sandbox site, in memory and on disk. Thread-safe."""

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.lock = threading.RLock()
        for sub in ("rws/calls", "rws/screens", "rws/late", "generated", "plain", "webdav/recordings",
                    "s3", "tmp", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        site = read_json(self.root / "site.json", {})
        changed = False
        defaults = {
            "contact_center_id": secrets.token_hex(16),
            "rws_version": "8.5.201.14",
            "csrf": True,
            "irp_muxer": {"status": 404, "settings": {}},
            "ports": {},
            "sequence": 0,
        }
        for key, value in defaults.items():
            if key not in site:
                site[key] = value
                changed = True
        if "bucket" not in site:
            site["bucket"] = f"recordings-{site['contact_center_id'][:8]}"
            changed = True
        self.site: dict[str, Any] = site
        if changed:
            write_json(self.root / "site.json", site)
        if not (self.root / "users.json").exists():
            write_json(self.root / "users.json", DEFAULT_USERS)
        self.users: dict[str, dict[str, dict[str, Any]]] = read_json(self.root / "users.json")
        self.reload()

    # ---------------------------------------------------------------- site settings
    def save_site(self) -> None:
        with self.lock:
            write_json(self.root / "site.json", self.site)

    def update_site(self, **changes: Any) -> None:
        with self.lock:
            self.site.update(changes)
            self.save_site()

    @property
    def contact_center_id(self) -> str:
        return self.site["contact_center_id"]

    @property
    def bucket(self) -> str:
        return self.site["bucket"]

    def next_sequence(self, count: int = 1) -> int:
        """Reserve ``count`` generator slots; returns the first."""
        with self.lock:
            first = int(self.site.get("sequence", 0))
            self.site["sequence"] = first + count
            self.save_site()
            return first

    # ---------------------------------------------------------------- users
    def check_user(self, service: str, username: str | None, password: str | None) -> dict[str, Any] | None:
        account = self.users.get(service, {}).get(username or "")
        if account is None or not secrets.compare_digest(str(account.get("password", "")), password or ""):
            return None
        return account

    # ---------------------------------------------------------------- recordings
    def reload(self) -> None:
        """Read every record from disk (after another process seeded this state)."""
        with self.lock:
            self.calls: dict[str, dict[str, Any]] = self._load_dir("rws/calls")
            self.screens: dict[str, dict[str, Any]] = self._load_dir("rws/screens")
            self.late: dict[str, dict[str, Any]] = self._load_dir("rws/late")
            self._sorted: list[tuple[str, str]] | None = None

    def _load_dir(self, sub: str) -> dict[str, dict[str, Any]]:
        out = {}
        for path in sorted((self.root / sub).glob("*.json")):
            out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        return out

    def put_call(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.calls[record["id"]] = record
            self._sorted = None
            write_json(self.root / "rws/calls" / f"{record['id']}.json", record)

    def put_screen(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.screens[record["id"]] = record
            write_json(self.root / "rws/screens" / f"{record['id']}.json", record)

    def put_late(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.late[record["id"]] = record
            write_json(self.root / "rws/late" / f"{record['id']}.json", record)

    def deliver_late(self, call_id: str) -> dict[str, Any]:
        """Move a held-back screen recording into the ones RWS serves (merging with any present)."""
        with self.lock:
            record = self.late.pop(call_id, None)
            if record is None:
                raise KeyError(f"call {call_id} has no screen recording waiting to be delivered")
            current = self.screens.get(call_id)
            if current is not None:
                known = {m["mediaId"] for m in current.get("mediaFiles", [])}
                current["mediaFiles"].extend(m for m in record["mediaFiles"] if m["mediaId"] not in known)
                record = current
            self.put_screen(record)
            (self.root / "rws/late" / f"{call_id}.json").unlink(missing_ok=True)
            return record

    def sorted_call_ids(self) -> list[tuple[int, str]]:
        """``(startTime epoch ms, id)`` of every call, sorted."""
        with self.lock:
            if self._sorted is None:
                self._sorted = sorted((to_ms(parse_iso(c["startTime"])), c["id"]) for c in self.calls.values())
            return self._sorted

    def append_writeback(self, entry: dict[str, Any]) -> None:
        with self.lock, open(self.root / "rws/writebacks.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")

    def writebacks(self) -> list[dict[str, Any]]:
        path = self.root / "rws/writebacks.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    # ---------------------------------------------------------------- generated calls
    def put_generated(self, data: dict[str, Any]) -> None:
        write_json(self.root / "generated" / f"{data['call_id']}.json", data)

    def generated(self) -> Iterator[dict[str, Any]]:
        for path in sorted((self.root / "generated").glob("*.json")):
            yield json.loads(path.read_text(encoding="utf-8"))

    # ---------------------------------------------------------------- storage on disk
    @property
    def webdav_root(self) -> Path:
        return self.root / "webdav"

    @property
    def webdav_recordings(self) -> Path:
        return self.root / "webdav" / "recordings"

    def s3_path(self, key: str, bucket: str | None = None) -> Path:
        return self.root / "s3" / (bucket or self.bucket) / key
