"""The GIR clients against the sandbox, over real sockets.

Records are written straight into the sandbox store (not through the media generator) so each test
controls exactly the fields it checks; media bytes go through the real WebDAV / S3 servers.
The 50 MB memory tests run the sandbox in a *child process*, so the servers' own buffers do not
count in the measured memory of this (client) process.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from grmux_core.config import Settings, load_settings
from grmux_core.contract import media_descriptor
from grmux_core.crypto import RcsClient, decrypt_to_temp
from grmux_core.errors import AuthError, KeyUnavailable, ProtocolError, RecordError, StorageHostRefused
from grmux_core.http import HttpPolicy
from grmux_core.models import (
    AWS_S3,
    WEBDAV,
    CallRecording,
    MediaLocation,
    ScreenRecording,
    format_time,
    is_already_muxed,
    muxed_media_id,
    next_muxed_number,
    parse_call_recording,
    source_media_ids,
)
from grmux_core.rws import RwsClient
from grmux_core.storage import S3Storage, StorageRouter, WebDavStorage

pytest.importorskip("grmux_sandbox.site")
from deployments.processes import start_process
from grmux_sandbox.faults import FaultSpec
from grmux_sandbox.site import Sandbox
from grmux_sandbox.store import S3_TOKEN, WEBDAV_TOKEN
from tests.support.cleanup import Cleanup

pytestmark = pytest.mark.slow

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
FAST = HttpPolicy(backoff_factor=0.01, backoff_max=0.2)
MB = 1024 * 1024


# ------------------------------------------------------------------ record builders


def webdav_desc(path: str) -> dict:
    return {"storage": WEBDAV, "path": path, "data": {"storagePath": WEBDAV_TOKEN}}


def media(media_id: str, mime: str, start: datetime, seconds: float, desc: dict, **extra) -> dict:
    return {"mediaId": media_id, "type": mime, "startTime": format_time(start),
            "stopTime": format_time(start + timedelta(seconds=seconds)), "duration": str(int(seconds * 1000)),
            "originalMediaDescriptor": desc, **extra}


def call_record(i: int, *, user: str = "agent1@cc", first: str = "Alice", last: str = "Ng",
                caller: str = "5551000", dialed: str = "8001", data_value: str = "SRSScreenRecordingStateStarted",
                start: datetime | None = None) -> dict:
    start = start or T0 + timedelta(minutes=i)
    call_id = f"c{i:05d}"
    return {
        "id": call_id, "callerPhoneNumber": caller, "dialedPhoneNumber": dialed,
        "startTime": format_time(start), "stopTime": format_time(start + timedelta(seconds=30)),
        "region": "us", "callType": "Inbound",
        "eventHistory": [{"occurredAt": format_time(start), "event": "Joined",
                          "contact": {"userName": user, "firstName": first, "lastName": last},
                          "data": {"GRECORD_SCREEN": data_value}}],
        "mediaFiles": [media(f"{call_id}_a1.mp3", "audio/mp3", start, 30, webdav_desc(f"voice/{call_id}.mp3"))],
    }


def screen_record(call: dict, n_files: int = 1) -> dict:
    start = datetime.fromisoformat(call["startTime"].replace("+0000", "+00:00"))
    files = [media(f"{call['id']}_s{k}.mp4", "video/mp4", start + timedelta(seconds=k), 20,
                   webdav_desc(f"screen/{call['id']}_{k}.mp4"), parameters={"contact": {"userName": "agent1@cc"}})
             for k in range(1, n_files + 1)]
    return {"id": call["id"], "mediaFiles": files}


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with Sandbox.start(tmp_path_factory.mktemp("site")) as sb:
        yield sb


def settings_for(sb: Sandbox, **overrides) -> Settings:
    return load_settings(text=sb.config_text(**overrides), environ={})


def rws(sb: Sandbox, **overrides) -> RwsClient:
    s = settings_for(sb, **overrides)
    return RwsClient(s.htcc, s.advanced, s.processing, policy=FAST)


@pytest.fixture(autouse=True)
def healed(sandbox):
    for service in ("rws", "rcs", "webdav", "s3"):
        sandbox.set_faults(service, None)
    sandbox.set_csrf(True)
    yield
    for service in ("rws", "rcs", "webdav", "s3"):
        sandbox.set_faults(service, None)


@pytest.fixture(scope="module")
def calls(sandbox):
    """23 calls one minute apart, with varied phone numbers, agents and user data; screens for most."""
    users = [("agent1@cc", "Alice", "Ng"), ("agent2@cc", "Bob", "Tomkins"), ("sup@cc", "Tom", "Ann")]
    made = []
    for i in range(23):
        user, first, last = users[i % 3]
        record = call_record(i, user=user, first=first, last=last, caller=f"555{i % 4}{i:03d}",
                             dialed="8001" if i % 2 else "8002X",
                             data_value="SRSScreenRecordingStateStarted" if i % 5 else "Other")
        sandbox.store.put_call(record)
        if i % 7:
            sandbox.store.put_screen(screen_record(record, n_files=1 + i % 2))
        made.append(record)
    return made


def ids(records) -> list[str]:
    return [r.id if isinstance(r, CallRecording) else r["id"] for r in records]


WINDOW = (T0 - timedelta(minutes=1), T0 + timedelta(hours=1))

# ------------------------------------------------------------------ listing, paging, filters


def test_paging_over_several_pages(sandbox, calls):
    client = rws(sandbox, pagination=5, call_recording_extra_query_string="disable")
    before = sandbox.request_counts("rws").get("GET /api/v2/ops/contact-centers/<cc>/recordings", 0)
    out = list(client.list_recordings(*WINDOW))
    assert ids(out) == ids(calls)
    after = sandbox.request_counts("rws")["GET /api/v2/ops/contact-centers/<cc>/recordings"]
    assert after - before == 5  # 5+5+5+5+3


def test_window_bounds_start_and_end(sandbox, calls):
    client = rws(sandbox, call_recording_extra_query_string="disable")
    start = T0 + timedelta(minutes=3)
    end = T0 + timedelta(minutes=6, seconds=30)  # call 6 ends at 6:30 → included; call 7 not
    assert ids(client.list_recordings(start, end)) == ["c00003", "c00004", "c00005", "c00006"]


def test_default_filter_is_userdata_on_new_rws(sandbox, calls):
    sandbox.set_rws_version("8.5.201.14")
    out = ids(rws(sandbox, pagination=4).list_recordings(*WINDOW))
    assert out == [c["id"] for i, c in enumerate(calls) if i % 5]
    sandbox.set_rws_version("8.5.100.01")
    try:
        assert ids(rws(sandbox).list_recordings(*WINDOW)) == ids(calls)
    finally:
        sandbox.set_rws_version("8.5.201.14")


@pytest.mark.parametrize(
    "query, expected",
    [
        ("userName=agent2@cc", lambda i: i % 3 == 1),
        ("userName=TOM*", lambda i: i % 3 in (1, 2)),  # Tomkins, Tom: case-insensitive wildcard
        ("userName=alice bob", lambda i: i % 3 in (0, 1)),  # several words = any
        ("userName=tom AND ann", lambda i: i % 3 == 2),  # AND = all
        ("callerPhoneNumber=5552*", lambda i: i % 4 == 2),
        ("dialedPhoneNumber=8002X", lambda i: i % 2 == 0),
        ("dialedPhoneNumber=8002x", lambda i: False),  # case-sensitive
        ("dialedPhoneNumber=800*", lambda i: True),
        ("userData=Oth*", lambda i: i % 5 == 0),
        ("userData=Other SRSScreenRecordingStateStarted", lambda i: True),
        ("userName=agent1@cc&callerPhoneNumber=5550*", lambda i: i % 3 == 0 and i % 4 == 0),
    ],
)
def test_every_filter(sandbox, calls, query, expected):
    client = rws(sandbox, pagination=7, call_recording_extra_query_string=query)
    assert ids(client.list_recordings(*WINDOW)) == [c["id"] for i, c in enumerate(calls) if expected(i)]


def test_backfill_query_without_window(sandbox, calls):
    client = rws(sandbox, pagination=3, call_recording_query_string="userName=sup@cc")
    assert ids(client.list_by_query()) == [c["id"] for i, c in enumerate(calls) if i % 3 == 2]


# ------------------------------------------------------------------ screen reads


@pytest.mark.parametrize("bulk", [1, 0])
def test_screen_reads_across_slices(sandbox, calls, bulk):
    client = rws(sandbox, query_slice_size=4, batch_read_screen_recording_metadata=bulk)
    key = "GET /internal-api/contact-centers/<cc>/screen-recordings" + ("" if bulk else "/<call_id>")
    before = sandbox.request_counts("rws").get(key, 0)
    out = client.screen_recordings(ids(calls))
    expected = [c["id"] for i, c in enumerate(calls) if i % 7]
    assert sorted(out) == expected  # calls 0, 7, 14, 21 have none: absent, not errors
    assert all(isinstance(v, ScreenRecording) for v in out.values())
    assert len(out["c00001"].media_files) == 2 and len(out["c00002"].media_files) == 1
    spent = sandbox.request_counts("rws")[key] - before
    assert spent == (6 if bulk else 23)  # ceil(23 / 4) bulk requests, or one per call


# ------------------------------------------------------------------ CSRF, write-back, delete


def test_post_without_token_is_refused_and_the_client_recovers(sandbox, calls):
    url = f"{sandbox.rws_url}internal-api/contact-centers/{sandbox.contact_center_id}/screen-recordings"
    raw = requests.post(url, json={"id": "c00003", "mediaFiles": []}, auth=("ops", "ops"), timeout=10)
    assert raw.status_code == 403

    client = rws(sandbox)
    call = parse_call_recording(sandbox.call_recording("c00003"))
    screen = client.screen_recordings(["c00003"])["c00003"]
    client.handshake()
    sandbox.drop_sessions()  # an RWS restart: the client's token is now stale
    n = next_muxed_number(screen)
    muxed_loc = screen.media_files[0].location.sibling(f"muxed/{call.id}_muxed_{n}.mp4")
    entry = {
        "mediaId": muxed_media_id(call.id, n), "type": "video/mp4",
        "startTime": format_time(call.start), "stopTime": format_time(call.stop),
        "duration": str(call.duration_ms), "size": "1234",
        "parameters": {"muxed_mediaIds": sorted(source_media_ids(call, screen)),
                       "contact": {"userName": "agent1@cc"}, "region": "us"},
        "mediaDescriptor": media_descriptor(muxed_loc),
    }
    posts = sandbox.request_counts("rws").get("POST /internal-api/contact-centers/<cc>/screen-recordings", 0)
    client.write_back(call, entry)
    assert sandbox.request_counts("rws")["POST /internal-api/contact-centers/<cc>/screen-recordings"] - posts == 2
    last = sandbox.write_backs()[-1]
    assert last["id"] == "c00003" and last["body"]["mediaFiles"][0]["mediaId"] == "c00003_muxed_1.mp4"

    again = client.screen_recordings(["c00003"])["c00003"]
    assert is_already_muxed(call, again)
    assert next_muxed_number(again) == 2
    assert again.muxed_files[0].location == muxed_loc


def test_delete_original(sandbox, calls):
    client = rws(sandbox)
    before = client.screen_recording("c00004")
    client.delete_original("c00004", before.media_files[0].media_id)
    after = client.screen_recording("c00004")
    assert [m.media_id for m in after.media_files] == [m.media_id for m in before.media_files[1:]]
    client.delete_original("c00004", before.media_files[0].media_id)  # already gone: fine


# ------------------------------------------------------------------ storage and decryption


def test_webdav_round_trip_and_mkcol(sandbox, tmp_path):
    s = settings_for(sandbox)
    store = StorageRouter.from_settings(s)
    data = os.urandom(3 * MB + 17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    where = MediaLocation(WEBDAV, "muxed/new/deeper/x_muxed_1.mp4", base=sandbox.webdav_url)
    assert not store.exists(where)
    assert store.upload(src, where) == len(data)
    assert store.size(where) == len(data)
    on_disk = sandbox.store.webdav_recordings / "muxed/new/deeper"
    assert [p.name for p in on_disk.iterdir()] == ["x_muxed_1.mp4"]  # no temp file left
    assert store.download(where, tmp_path / "back.bin") == len(data)
    assert (tmp_path / "back.bin").read_bytes() == data
    store.upload(src, where)  # overwrite in place
    store.delete(where)
    assert not store.exists(where)


def test_s3_round_trip(sandbox, tmp_path):
    s = settings_for(sandbox)
    store = StorageRouter.from_settings(s)
    data = os.urandom(2 * MB + 5)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    where = MediaLocation(AWS_S3, "muxed/x_muxed_1.mp4", bucket=sandbox.bucket, endpoint=sandbox.s3_endpoint)
    store.upload(src, where)
    assert store.size(where) == len(data)
    store.download(where, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == data
    keys = [o["Key"] for o in sandbox.s3_client().list_objects_v2(Bucket=sandbox.bucket, Prefix="muxed/")["Contents"]]
    assert keys == ["muxed/x_muxed_1.mp4"]


def test_decrypt_an_encrypted_recording_byte_for_byte(sandbox, tmp_path):
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    plain = os.urandom(MB + 123)
    key, iv = os.urandom(32), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    cipher = enc.update(padder.update(plain) + padder.finalize()) + enc.finalize()
    enc_file = tmp_path / "enc.mp3"
    enc_file.write_bytes(cipher)
    record = call_record(900, start=T0 + timedelta(days=2))
    record["mediaFiles"][0]["pkcs7"] = sandbox.envelope(key, iv)
    sandbox.put_media(record["mediaFiles"][0]["originalMediaDescriptor"], enc_file)
    sandbox.store.put_call(record)

    s = settings_for(sandbox)
    call = parse_call_recording(sandbox.call_recording("c00900"))
    audio = call.media_files[0]
    assert audio.encrypted
    StorageRouter.from_settings(s).download(audio.location, tmp_path / "dl.enc")
    rcs = RcsClient(s.rcs, s.htcc.contact_center_id, policy=FAST)
    got_key, got_iv = rcs.decrypt_key(audio.pkcs7)
    out = decrypt_to_temp(tmp_path / "dl.enc", got_key, got_iv, temp_dir=s.processing.temp_dir, suffix=".mp3")
    assert out.read_bytes() == plain
    assert oct(out.stat().st_mode & 0o777) == "0o600"

    with pytest.raises(KeyUnavailable, match="no private key"):
        rcs.decrypt_key(sandbox.foreign_envelope(key, iv))
    no_perm = settings_for(sandbox, rcs__username="nodecrypt", rcs__password="nodecrypt")
    with pytest.raises(AuthError, match="media-decrypt permission"):
        RcsClient(no_perm.rcs, s.htcc.contact_center_id, policy=FAST).decrypt_key(audio.pkcs7)


# ------------------------------------------------------------------ faults


def test_a_trickling_s3_download_fails_with_the_rate_and_leaves_no_part(sandbox, tmp_path, cleanup):
    """The sandbox S3 sending 1 KiB every 0.1 s of a 2 MiB object: below the minimum rate the
    download fails at once (not after the read timeout) with bytes of expected."""
    from grmux_core.errors import TransferTooSlow

    where = MediaLocation(AWS_S3, "rec/slow.mp4", bucket=sandbox.bucket, endpoint=sandbox.s3_endpoint)
    sandbox.s3_client().put_object(Bucket=sandbox.bucket, Key=where.key, Body=os.urandom(2 * MB))
    cleanup.callback(sandbox.set_faults, "s3", None)
    sandbox.set_faults("s3", FaultSpec(methods=("GET",), path_regex="slow.mp4", trickle_bytes=1024,
                                       trickle_every_s=0.1))
    store = S3Storage(settings_for(sandbox).s3, min_rate=64 * 1024, rate_grace_s=1.0)
    with pytest.raises(TransferTooSlow, match=rf"s3://{sandbox.bucket}/rec/slow.mp4: .* of {2 * MB} bytes"):
        store.download(where, tmp_path / "slow.mp4")
    assert list(tmp_path.iterdir()) == []


def test_listing_and_downloads_survive_30_percent_faults(sandbox, calls, tmp_path):
    data = os.urandom(4 * MB + 1)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    dav_loc = {"storage": WEBDAV, "path": "faulty/f.bin", "data": {"storagePath": WEBDAV_TOKEN}}
    sandbox.put_media(dav_loc, src)
    s3_loc = {"storage": AWS_S3, "path": "faulty/f.bin", "data": {"bucket": sandbox.bucket, "endpoint": S3_TOKEN}}
    sandbox.put_media(s3_loc, src)

    for service, seed in (("rws", 11), ("webdav", 12), ("s3", 13)):
        sandbox.set_faults(service, FaultSpec(error_rate=0.3, cut_rate=0.1, seed=seed))
    sandbox.reset_fault_stats()
    s = settings_for(sandbox, pagination=3, call_recording_extra_query_string="disable")
    client = RwsClient(s.htcc, s.advanced, s.processing, policy=FAST)
    for _ in range(2):
        assert ids(client.list_recordings(*WINDOW)) == ids(calls)
    assert sorted(client.screen_recordings(ids(calls))) == [c["id"] for i, c in enumerate(calls) if i % 7]

    store = StorageRouter.from_settings(s)
    digest = hashlib.sha256(data).hexdigest()
    for n in range(3):
        for desc in (dav_loc, s3_loc):
            target = tmp_path / f"dl-{desc['storage']}-{n}"
            location = MediaLocation(WEBDAV, desc["path"], base=sandbox.webdav_url) if desc["storage"] == WEBDAV \
                else MediaLocation(AWS_S3, desc["path"], bucket=sandbox.bucket, endpoint=sandbox.s3_endpoint)
            store.download(location, target)
            assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    stats = sandbox.fault_stats()
    assert stats["rws"]["errors"] > 0 and stats["rws"]["cuts"] > 0
    assert stats["webdav"]["errors"] + stats["webdav"]["cuts"] > 0


def test_webdav_uploads_survive_faults(sandbox, tmp_path):
    data = os.urandom(2 * MB + 3)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    sandbox.set_faults("webdav", FaultSpec(error_rate=0.3, cut_rate=0.1, seed=21))
    store = WebDavStorage(settings_for(sandbox).webdav, policy=FAST)
    for n in range(4):
        where = MediaLocation(WEBDAV, f"faulty-up/{n}/out.mp4", base=sandbox.webdav_url)
        assert store.upload(src, where) == len(data)
    sandbox.set_faults("webdav", None)
    for n in range(4):
        folder = sandbox.store.webdav_recordings / f"faulty-up/{n}"
        assert [p.name for p in folder.iterdir()] == ["out.mp4"]  # no temporary file left behind
        assert (folder / "out.mp4").read_bytes() == data


# ------------------------------------------------------------------ bad input


class _Garbage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{"statusCode": 0, "recordings": [{"id": "x", '  # cut JSON
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_malformed_json_is_a_protocol_error(sandbox):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = rws(sandbox, htcc__base_uri=f"http://127.0.0.1:{server.server_port}/",
                     call_recording_extra_query_string="disable")
        with pytest.raises(ProtocolError, match="not JSON"):
            list(client.list_recordings(*WINDOW))
    finally:
        server.shutdown()


def test_record_missing_a_start_time_fails_alone(sandbox, calls):
    # The sandbox indexes calls by their startTime, so the missing one is a media file's startTime.
    start = T0 + timedelta(days=3)
    good, bad = call_record(950, start=start), call_record(951, start=start + timedelta(minutes=1))
    del bad["mediaFiles"][0]["startTime"]
    sandbox.store.put_call(good)
    sandbox.store.put_call(bad)
    client = rws(sandbox, call_recording_extra_query_string="disable")
    out = list(client.list_recordings(start, start + timedelta(hours=1)))
    assert ids(r for r in out if isinstance(r, CallRecording)) == ["c00950"]
    errors = [r for r in out if isinstance(r, RecordError)]
    assert len(errors) == 1 and errors[0].call_id == "c00951" and errors[0].field == "mediaFiles[0].startTime"
    assert "c00951" in str(errors[0]) and "startTime" in str(errors[0])


def test_media_on_a_host_not_allowed_is_refused_without_connecting(sandbox, tmp_path):
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(5)
    trap.setblocking(False)
    port = trap.getsockname()[1]
    try:
        record = call_record(960, start=T0 + timedelta(days=4))
        record["mediaFiles"][0]["originalMediaDescriptor"] = {
            "storage": WEBDAV, "path": f"http://127.0.0.1:{port}/recordings/voice/x.mp3"}
        sandbox.store.put_call(record)
        s = settings_for(sandbox)
        call = parse_call_recording(sandbox.call_recording("c00960"))
        with pytest.raises(StorageHostRefused, match="allowed_hosts"):
            StorageRouter.from_settings(s).download(call.media_files[0].location, tmp_path / "x.mp3")
        with pytest.raises(BlockingIOError):
            trap.accept()  # nobody connected: no credentials could have been sent
        assert not list(tmp_path.iterdir())
        # the allowed host keeps working
        test_ok = MediaLocation(WEBDAV, "voice/ok.bin", base=sandbox.webdav_url)
        (tmp_path / "ok.bin").write_bytes(b"ok")
        StorageRouter.from_settings(s).upload(tmp_path / "ok.bin", test_ok)
    finally:
        trap.close()


def test_wrong_passwords_give_auth_errors(sandbox, calls, tmp_path):
    bad_rws = rws(sandbox, htcc__password="Xyzzy-pw-42", call_recording_extra_query_string="disable")
    with pytest.raises(AuthError, match=r"\[htcc\] username/password") as info:
        list(bad_rws.list_recordings(*WINDOW))
    assert "Xyzzy-pw-42" not in str(info.value)
    bad_dav = settings_for(sandbox, webdav__password="wrong")
    (tmp_path / "x").write_bytes(b"x")
    with pytest.raises(AuthError, match=r"\[webdav\] username/password"):
        WebDavStorage(bad_dav.webdav, policy=FAST).upload(tmp_path / "x", MediaLocation(WEBDAV, "x", base=sandbox.webdav_url))
    # nothing else broke: the right password still works
    assert ids(rws(sandbox, call_recording_extra_query_string="disable").list_recordings(*WINDOW))[:1] == ["c00000"]


# ------------------------------------------------------------------ 50 MB with memory checked

_CHILD = """
import sys
from grmux_sandbox.site import Sandbox
sb = Sandbox.start(sys.argv[1])
sb.write_config(sys.argv[2])
print("ready", sb.bucket, flush=True)
sys.stdin.read()
sb.stop()
"""


@pytest.fixture(scope="module")
def remote_sandbox(tmp_path_factory):
    """A sandbox in a child process: only the client's memory is in this process."""
    root = tmp_path_factory.mktemp("remote")
    cfg = root / "muxer.cfg"
    with Cleanup() as cleanup:
        proc = start_process([sys.executable, "-c", _CHILD, str(root / "site"), str(cfg)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        # closing its stdin asks it to stop; SIGTERM, then SIGKILL, if it has not within 60 s
        cleanup.process(proc, exit_wait=60)
        cleanup.callback(proc.stdin.close)
        line = proc.stdout.readline().split()
        assert line and line[0] == "ready", "the sandbox child did not start"
        yield load_settings(cfg, environ={}), line[1]


def _big_file(path: Path, size: int = 50 * MB) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(size // MB):
            block = os.urandom(MB)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as inp:
        while block := inp.read(MB):
            digest.update(block)
    return digest.hexdigest()


def _peak(action) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.mark.parametrize("kind", [WEBDAV, AWS_S3])
def test_50mb_round_trip_in_constant_memory(remote_sandbox, tmp_path, kind):
    settings, bucket = remote_sandbox
    src = tmp_path / "big.bin"
    digest = _big_file(src)
    if kind == WEBDAV:
        host = settings.webdav.allowed_hosts[0]
        where = MediaLocation(WEBDAV, f"big/{kind}.bin", base=f"http://{host}/recordings/")
        store = WebDavStorage(settings.webdav)
    else:
        where = MediaLocation(AWS_S3, f"big/{kind}.bin", bucket=bucket)
        store = S3Storage(settings.s3)
    assert not store.exists(where)  # warm up first: botocore loads its service models once (~15 MiB)
    rss_before = _rss()
    up = _peak(lambda: store.upload(src, where))
    down = _peak(lambda: store.download(where, tmp_path / "back.bin"))
    rss_delta = _rss() - rss_before
    assert _sha(tmp_path / "back.bin") == digest
    assert store.size(where) == 50 * MB
    assert up < 12 * MB, f"upload peaked at {up / MB:.1f} MiB of Python memory"
    assert down < 12 * MB, f"download peaked at {down / MB:.1f} MiB of Python memory"
    assert rss_delta < 40 * MB, f"RSS grew by {rss_delta / MB:.1f} MiB"
    print(f"{kind}: upload peak {up / MB:.2f} MiB, download peak {down / MB:.2f} MiB, RSS +{rss_delta / MB:.1f} MiB")
