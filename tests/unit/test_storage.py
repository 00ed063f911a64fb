"""Storage backends: WebDAV protocol logic on `responses` mocks, S3 on moto's in-process mock."""

from __future__ import annotations

import os
import re

import pytest
import requests
import responses

from grmux_core.config import S3Settings, SecretStr, WebdavSettings
from grmux_core.errors import AuthError, NotFoundError, StorageHostRefused, TransientError
from grmux_core.http import HttpPolicy
from grmux_core.models import AWS_S3, WEBDAV, MediaLocation
from grmux_core.storage import S3Storage, StorageRouter, WebDavStorage

DAV = "http://dav.example:8080/rec/"
FAST = HttpPolicy(backoff_factor=0, retries=2, body_retries=0)


def dav(allowed: tuple[str, ...] = ()) -> WebDavStorage:
    return WebDavStorage(WebdavSettings(username="dav", password=SecretStr("davpw"), allowed_hosts=allowed),
                         policy=FAST, chunk_size=4)


def loc(path: str, base: str = DAV) -> MediaLocation:
    return MediaLocation(WEBDAV, path, base=base)


def propfind_xml(size: int) -> str:
    return ('<?xml version="1.0"?><D:multistatus xmlns:D="DAV:"><D:response><D:href>/x</D:href><D:propstat>'
            f'<D:prop><D:getcontentlength>{size}</D:getcontentlength></D:prop>'
            '<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>')


@responses.activate
def test_host_not_allowed_is_refused_before_any_request(tmp_path):
    store = dav(("dav.example:8080",))
    with pytest.raises(StorageHostRefused, match="allowed_hosts") as info:
        store.download(loc("a.mp3", "http://other.example:8080/rec/"), tmp_path / "a.mp3")
    assert "other.example:8080" in str(info.value)
    assert len(responses.calls) == 0
    with pytest.raises(StorageHostRefused):
        store.upload(__file__, loc("x", "http://other.example:8080/"))
    assert len(responses.calls) == 0
    assert not (tmp_path / "a.mp3.part").exists()


@responses.activate
def test_allowed_host_default_port_and_credentials(tmp_path):
    responses.get("http://dav.example/rec/a.mp3", body=b"0123456789")
    store = dav(("dav.example:80",))
    assert store.download(loc("a.mp3", "http://dav.example/rec/"), tmp_path / "a.mp3") == 10
    assert (tmp_path / "a.mp3").read_bytes() == b"0123456789"
    assert responses.calls[0].request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_redirect_to_another_host_is_refused(tmp_path):
    responses.get(f"{DAV}a.mp3", status=302, headers={"Location": "http://evil.example/a.mp3"})
    with pytest.raises(StorageHostRefused, match="never follows"):
        dav().download(loc("a.mp3"), tmp_path / "a.mp3")
    assert len(responses.calls) == 1


@responses.activate
def test_redirect_on_the_same_host_is_followed(tmp_path):
    responses.get(f"{DAV}a.mp3", status=301, headers={"Location": "/rec/b.mp3"})
    responses.get(f"{DAV}b.mp3", body=b"abc")
    assert dav().download(loc("a.mp3"), tmp_path / "a.mp3") == 3


@responses.activate
def test_download_resumes_with_range_after_a_short_body(tmp_path):
    data = b"0123456789"
    responses.get(f"{DAV}a.mp3", body=data[:6], headers={"Content-Range": "bytes 0-9/10"}, status=206)
    responses.get(f"{DAV}a.mp3", body=data[6:], headers={"Content-Range": "bytes 6-9/10"}, status=206,
                  match=[responses.matchers.header_matcher({"Range": "bytes=6-"})])
    assert dav().download(loc("a.mp3"), tmp_path / "a.mp3") == 10
    assert (tmp_path / "a.mp3").read_bytes() == data


@responses.activate
def test_download_survives_connection_errors(tmp_path):
    responses.get(f"{DAV}a.mp3", body=requests.exceptions.ChunkedEncodingError("cut"))
    responses.get(f"{DAV}a.mp3", body=b"payload")
    assert dav().download(loc("a.mp3"), tmp_path / "a.mp3") == 7


@responses.activate
def test_download_gives_up_as_transient_and_leaves_no_part(tmp_path):
    responses.get(f"{DAV}a.mp3", body=requests.exceptions.ConnectionError("down"))
    with pytest.raises(TransientError):
        dav().download(loc("a.mp3"), tmp_path / "a.mp3")
    assert not list(tmp_path.iterdir())


@responses.activate
@pytest.mark.parametrize("status, error", [(404, NotFoundError), (401, AuthError)])
def test_download_errors(tmp_path, status, error):
    responses.get(f"{DAV}a.mp3", status=status)
    with pytest.raises(error):
        dav().download(loc("a.mp3"), tmp_path / "a.mp3")
    assert not list(tmp_path.iterdir())


@responses.activate
def test_upload_creates_collections_then_moves_into_place(tmp_path):
    src = tmp_path / "out.mp4"
    src.write_bytes(b"x" * 1234)
    target = f"{DAV}muxed/2026-11-27/c1_muxed_1.mp4"
    temp_put = responses.put(re.compile(rf"{DAV}muxed/2026-11-27/\.c1_muxed_1\.mp4\.part-\w+"),
                             status=409)
    responses.add(responses.Response("PROPFIND", f"{DAV}muxed/2026-11-27/", status=404))
    responses.add(responses.Response("PROPFIND", f"{DAV}muxed/", status=404))
    responses.add(responses.Response("PROPFIND", DAV, status=207, body=propfind_xml(0)))
    responses.add(responses.Response("MKCOL", f"{DAV}muxed/", status=201))
    responses.add(responses.Response("MKCOL", f"{DAV}muxed/2026-11-27/", status=201))
    responses.put(re.compile(rf"{DAV}muxed/2026-11-27/\.c1_muxed_1\.mp4\.part-\w+"), status=201)
    responses.add(responses.Response("PROPFIND", re.compile(r".*\.part-\w+$"), status=207,
                                     body=propfind_xml(1234)))
    responses.add(responses.Response("MOVE", re.compile(r".*\.part-\w+$"), status=201))
    assert dav().upload(src, loc("muxed/2026-11-27/c1_muxed_1.mp4")) == 1234
    methods = [c.request.method for c in responses.calls]
    # then one Depth-1 PROPFIND of the folder looks for temporary uploads of dead runs
    assert methods == ["PUT", "PROPFIND", "PROPFIND", "PROPFIND", "MKCOL", "MKCOL", "PUT", "PROPFIND", "MOVE",
                       "PROPFIND"]
    assert responses.calls[-1].request.headers["Depth"] == "1"
    move = responses.calls[-2].request
    assert move.headers["Destination"] == target and move.headers["Overwrite"] == "T"
    assert temp_put.call_count == 1


@responses.activate
def test_upload_size_mismatch_removes_the_temp_file(tmp_path):
    src = tmp_path / "out.mp4"
    src.write_bytes(b"x" * 100)
    part = re.compile(r".*\.part-\w+$")
    responses.put(part, status=201)
    responses.add(responses.Response("PROPFIND", part, status=207, body=propfind_xml(50)))
    responses.add(responses.Response("DELETE", part, status=204))
    with pytest.raises(TransientError, match="50 of 100"):
        dav().upload(src, loc("m/out.mp4"))
    assert responses.calls[-1].request.method == "DELETE"


@responses.activate
def test_size_exists_and_delete():
    responses.add(responses.Response("PROPFIND", f"{DAV}a.mp3", status=207, body=propfind_xml(42)))
    responses.add(responses.Response("PROPFIND", f"{DAV}b.mp3", status=404))
    responses.add(responses.Response("DELETE", f"{DAV}b.mp3", status=404))
    store = dav()
    assert store.size(loc("a.mp3")) == 42
    assert store.exists(loc("a.mp3")) and not store.exists(loc("b.mp3"))
    store.delete(loc("b.mp3"))  # absent: fine
    assert responses.calls[0].request.headers["Depth"] == "0"


# ------------------------------------------------------------------ S3 (moto in-process)


@pytest.fixture
def s3_env(monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        import boto3

        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="rec")
        yield


def test_s3_round_trip_with_multipart(tmp_path, s3_env):
    store = S3Storage(S3Settings(region="us-east-1"), multipart_threshold=5 * 1024 * 1024,
                      multipart_chunksize=5 * 1024 * 1024)
    data = os.urandom(11 * 1024 * 1024)
    src = tmp_path / "big.mp4"
    src.write_bytes(data)
    where = MediaLocation(AWS_S3, "muxed/big.mp4", bucket="rec")
    assert store.upload(src, where) == len(data)
    assert store.size(where) == len(data)
    keys = [o["Key"] for o in store._client(where).list_objects_v2(Bucket="rec")["Contents"]]
    assert keys == ["muxed/big.mp4"]  # the temporary key is gone
    assert store.download(where, tmp_path / "back.mp4") == len(data)
    assert (tmp_path / "back.mp4").read_bytes() == data
    store.delete(where)
    assert not store.exists(where)
    store.delete(where)  # absent: fine


def test_botocore_streaming_body_still_wraps_the_urllib3_response_s3_downloads_read1_from():
    """Contract: S3 downloads read ``StreamingBody._raw_stream.read1`` (private to botocore) so the
    minimum-rate rule sees a trickle; fail loudly if botocore or urllib3 changes it."""
    import io

    import urllib3
    from botocore.response import StreamingBody

    raw = io.BytesIO(b"abc")
    assert StreamingBody(raw, 3)._raw_stream is raw
    assert callable(getattr(urllib3.response.HTTPResponse, "read1", None))


def test_s3_download_resumes_with_range_after_a_cut(tmp_path, s3_env, monkeypatch):
    from grmux_core import storage

    store = S3Storage(S3Settings(region="us-east-1"), chunk_size=64 * 1024)
    data = os.urandom(300 * 1024)
    where = MediaLocation(AWS_S3, "rec/cut.mp4", bucket="rec")
    store._client(where).put_object(Bucket="rec", Key="rec/cut.mp4", Body=data)
    real, cuts = storage._chunks, []

    def cut_once(read, close, size, stop):
        for n, chunk in enumerate(real(read, close, size, stop)):
            if n == 2 and not cuts:
                cuts.append(n)
                raise OSError("connection reset by peer")
            yield chunk

    monkeypatch.setattr(storage, "_chunks", cut_once)
    assert store.download(where, tmp_path / "cut.mp4") == len(data)
    assert cuts and (tmp_path / "cut.mp4").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.mp4"]


def test_s3_missing_object_and_bucket(tmp_path, s3_env):
    store = S3Storage(S3Settings(region="us-east-1"))
    with pytest.raises(NotFoundError):
        store.download(MediaLocation(AWS_S3, "nope", bucket="rec"), tmp_path / "x")
    with pytest.raises(NotFoundError):
        store.size(MediaLocation(AWS_S3, "nope", bucket="no-such-bucket"))
    assert not list(tmp_path.iterdir())


def test_s3_foreign_endpoint_is_refused():
    store = S3Storage(S3Settings(endpoint_url="http://127.0.0.1:9000/", access_key_id="k",
                                 secret_access_key=SecretStr("s")))
    with pytest.raises(StorageHostRefused, match="not the configured"):
        store.size(MediaLocation(AWS_S3, "a", bucket="b", endpoint="http://evil.example:9000"))
    aws = S3Storage(S3Settings())
    with pytest.raises(StorageHostRefused, match="endpoint_url is empty"):
        aws.size(MediaLocation(AWS_S3, "a", bucket="b", endpoint="http://minio.local:9000"))


def test_router_chooses_the_backend():
    router = StorageRouter(WebdavSettings(), S3Settings(region="us-east-1"))
    assert isinstance(router.backend(MediaLocation(WEBDAV, "a", base=DAV)), WebDavStorage)
    assert isinstance(router.backend(MediaLocation(AWS_S3, "a", bucket="b")), S3Storage)
    held = StorageRouter(WebdavSettings(), S3Settings(region="us-east-1"), min_rate=8192.0)
    assert held.backend(MediaLocation(AWS_S3, "a", bucket="b")).min_rate == 8192.0  # both backends
    assert held.backend(MediaLocation(WEBDAV, "a", base=DAV)).min_rate == 8192.0
