"""RCS, the real storage servers (WebDAV, S3) and fault injection, over real sockets."""

from __future__ import annotations

import contextlib
import os
import time
import xml.etree.ElementTree as ET

import boto3
import pytest
import requests
from botocore.config import Config

from grmux_sandbox.faults import FaultSpec
from grmux_sandbox.keys import decrypt_bytes

from .conftest import list_all


def _rcs(site, pem, auth=("rcs", "rcs"), cc=None):
    return requests.post(f"{site.rcs_url}rcs/api/v1/contact-centers/{cc or site.contact_center_id}/decrypt-key",
                         json={"pkcs7": pem}, auth=auth)


def test_rcs_key_round_trip_and_refusals(site):
    key, iv = os.urandom(32), os.urandom(16)
    r = _rcs(site, site.envelope(key, iv))
    assert r.status_code == 200
    assert r.json() == {"statusCode": 0, "algorithm": "aes-256-cbc", "key": key.hex(), "iv": iv.hex()}
    assert _rcs(site, site.envelope(key, iv), auth=("nodecrypt", "nodecrypt")).status_code == 403
    assert _rcs(site, site.envelope(key, iv), auth=("rcs", "wrong")).status_code == 401
    assert _rcs(site, site.foreign_envelope(key, iv)).status_code == 404
    assert _rcs(site, "garbage").status_code == 400
    assert _rcs(site, site.envelope(key, iv), cc="abcdef").status_code == 404
    bad = requests.post(f"{site.rcs_url}rcs/api/v1/contact-centers/{site.contact_center_id}/decrypt-key",
                        json={"nope": 1}, auth=("rcs", "rcs"))
    assert bad.status_code == 400 and bad.json()["statusCode"] != 0


DAV = ("dav", "dav")


def test_webdav_mkcol_put_propfind_move_get_delete(site):
    base = site.webdav_url
    assert requests.get(base, auth=("dav", "wrong")).status_code == 401
    assert requests.request("MKCOL", base + "t1/", auth=DAV).status_code == 201
    assert requests.request("MKCOL", base + "t1/sub/", auth=DAV).status_code == 201
    data = os.urandom(300_000)
    assert requests.put(base + "t1/sub/file.part", data=data, auth=DAV).status_code in (201, 204)
    r = requests.request("PROPFIND", base + "t1/sub/file.part", headers={"Depth": "0"}, auth=DAV)
    assert r.status_code == 207
    sizes = [e.text for e in ET.fromstring(r.content).iter("{DAV:}getcontentlength")]
    assert sizes == [str(len(data))]
    r = requests.request("MOVE", base + "t1/sub/file.part", auth=DAV,
                         headers={"Destination": base + "t1/sub/file.mp4", "Overwrite": "T"})
    assert r.status_code in (201, 204)
    assert requests.get(base + "t1/sub/file.part", auth=DAV).status_code == 404
    got = requests.get(base + "t1/sub/file.mp4", auth=DAV)
    assert got.status_code == 200 and got.content == data
    assert (site.store.webdav_recordings / "t1/sub/file.mp4").read_bytes() == data  # a folder on disk
    assert requests.delete(base + "t1/sub/file.mp4", auth=DAV).status_code == 204
    assert requests.get(base + "t1/sub/file.mp4", auth=DAV).status_code == 404
    assert requests.put(base + "missing/dir/x", data=b"x", auth=DAV).status_code == 409  # parent missing


def _s3(site):
    return boto3.client("s3", endpoint_url=site.s3_endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 10, "mode": "standard"}))


def test_s3_put_get(site):
    s3 = _s3(site)
    data = os.urandom(200_000)
    s3.put_object(Bucket=site.bucket, Key="muxed/a/b.mp4", Body=data)
    assert s3.get_object(Bucket=site.bucket, Key="muxed/a/b.mp4")["Body"].read() == data
    assert s3.head_object(Bucket=site.bucket, Key="muxed/a/b.mp4")["ContentLength"] == len(data)


def test_fault_injection_really_injects(site, rws):
    url = site.rws_url + "api/v2/diagnostics/version"
    site.reset_fault_stats()
    site.set_faults("rws", FaultSpec(error_rate=0.3, seed=11))
    try:
        codes = [requests.get(url, auth=("ops", "ops")).status_code for _ in range(60)]
    finally:
        site.set_faults("rws", None)
    errors = [c for c in codes if c >= 500]
    assert 8 <= len(errors) <= 30 and set(errors) <= {500, 502, 503}
    stats = site.fault_stats("rws")
    assert stats["errors"] == len(errors) and stats["requests"] == 60
    # the same seed gives the same sequence
    site.set_faults("rws", FaultSpec(error_rate=0.3, seed=11))
    try:
        again = [requests.get(url, auth=("ops", "ops")).status_code for _ in range(60)]
    finally:
        site.set_faults("rws", None)
    assert again == codes
    assert requests.get(url, auth=("ops", "ops")).status_code == 200  # healed


def test_cut_connections_mid_body(site):
    base = site.webdav_url
    data = os.urandom(2_000_000)
    requests.request("MKCOL", base + "cut/", auth=DAV)
    assert requests.put(base + "cut/big.bin", data=data, auth=DAV).status_code in (201, 204)
    site.set_faults("webdav", FaultSpec(cut_rate=1.0, cut_fraction=0.25, seed=1, methods=("GET",)))
    try:
        with pytest.raises(requests.exceptions.RequestException):
            r = requests.get(base + "cut/big.bin", auth=DAV, timeout=10)
            r.raise_for_status()
            assert len(r.content) == len(data)  # unreachable if cut
        # streamed: headers arrive, then the body stops short
        r = requests.get(base + "cut/big.bin", auth=DAV, stream=True, timeout=10)
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(data)
        got = 0
        with pytest.raises(requests.exceptions.RequestException):
            for chunk in r.iter_content(65536):
                got += len(chunk)
        assert 0 < got < len(data)
    finally:
        site.set_faults("webdav", None)
    assert site.fault_stats("webdav")["cuts"] >= 2
    assert requests.get(base + "cut/big.bin", auth=DAV).content == data


def test_cut_upload_and_s3_faults(site):
    site.set_faults("webdav", FaultSpec(cut_rate=1.0, seed=2, methods=("PUT",)))
    try:
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.put(site.webdav_url + "upload.bin", data=os.urandom(1_000_000), auth=DAV, timeout=10)
    finally:
        site.set_faults("webdav", None)
    s3 = _s3(site)
    s3.put_object(Bucket=site.bucket, Key="faulty.bin", Body=b"x" * 100_000)
    site.reset_fault_stats()
    site.set_faults("s3", FaultSpec(error_rate=0.3, cut_rate=0.2, seed=5))
    try:
        # boto3 retries 5xx; a body cut after the headers surfaces from read() (not retried there)
        with contextlib.suppress(Exception):
            for _ in range(10):
                assert s3.get_object(Bucket=site.bucket, Key="faulty.bin")["Body"].read() == b"x" * 100_000
    finally:
        site.set_faults("s3", None)
    stats = site.fault_stats("s3")
    assert stats["errors"] + stats["cuts"] > 0


def test_latency_and_admin_endpoint(site, rws):
    admin = site.admin_url
    r = requests.put(admin + "faults/rcs", json={"latency_ms": 300, "seed": 1})
    assert r.status_code == 200
    t0 = time.monotonic()
    key, iv = os.urandom(32), os.urandom(16)
    assert _rcs(site, site.envelope(key, iv)).status_code == 200
    assert time.monotonic() - t0 >= 0.3
    assert requests.delete(admin + "faults/rcs").status_code == 200
    stats = requests.get(admin + "stats").json()
    assert stats["faults"]["rcs"]["delayed"] >= 1 and stats["calls"] == len(site.call_ids())
    assert requests.put(admin + "faults/rcs", json={"error_rate": 3}).status_code == 400
    with pytest.raises(ValueError):
        site.set_faults("ftp", None)


def test_listing_completes_through_faults_with_retries(site, rws):
    """A client that retries 5xx and cut answers still lists every call."""
    expected, _ = list_all(rws, site, startTime=0)
    site.set_faults("rws", FaultSpec(error_rate=0.3, cut_rate=0.1, seed=9))

    def get(url, **kw):
        for _ in range(30):
            try:
                r = rws.get(url, timeout=10, **kw)
                if r.status_code < 500:
                    return r
            except requests.exceptions.RequestException:
                pass
        raise AssertionError("never got through")

    try:
        body = get(f"{site.rws_url}api/v2/ops/contact-centers/{site.contact_center_id}/recordings",
                   params={"startTime": 0, "limit": 20}).json()
        got = list(body["recordings"])
        while "nextUri" in body:
            body = get(body["nextUri"]).json()
            got += body["recordings"]
    finally:
        site.set_faults("rws", None)
    assert [r["id"] for r in got] == [r["id"] for r in expected]
    stats = site.fault_stats("rws")
    assert stats["errors"] > 0 and stats["cuts"] > 0


def test_encrypted_bytes_decrypt_with_key_from_rcs(site, tmp_path):
    """An envelope made by the sandbox, opened by RCS, decrypts media encrypted with keys.encrypt_bytes."""
    from grmux_sandbox.keys import encrypt_bytes

    key, iv = os.urandom(32), os.urandom(16)
    plain = os.urandom(50_001)
    answer = _rcs(site, site.envelope(key, iv)).json()
    assert decrypt_bytes(encrypt_bytes(plain, key, iv), bytes.fromhex(answer["key"]), bytes.fromhex(answer["iv"])) \
        == plain
