"""Recording storage: one :class:`Storage` interface, a WebDAV and an S3 backend, and a router.

Why these rules:

* **Constant memory.** Media can be gigabytes; every transfer streams in chunks (WebDAV and S3 GETs
  read in chunks, PUT from an open file, S3 uploads via boto3's managed, multipart transfers).
* **Every download can be stopped and is held to a minimum rate** (``[advanced]
  min_transfer_rate_kbps``): the run's stop token ends it at its next chunk; a trickle fails as
  :class:`TransferTooSlow`, naming bytes received of expected and the rate.
* **Atomic publish.** An upload goes to a temporary name first and is published by ``MOVE``
  (WebDAV, ``Overwrite: T``) or copy + delete (S3), after its size was checked. A reader never sees a
  half-written muxed file, and a crash leaves only a ``.part-*`` file, which the next successful
  upload of the same name removes. An existing file under the final name is overwritten: grmux
  numbers muxed files from the *registered* ones, so an unregistered file there is the leftover of
  a crashed attempt at the same mux (see docs/guarantees.md).
* **Credentials go only to the configured storage.** WebDAV credentials are sent per request, only
  after the host passed ``[webdav] allowed_hosts`` (empty = any), and redirects are never followed
  to another host. The S3 client only ever talks to the configured endpoint (or AWS), never to an
  endpoint named by RWS data that differs from it.
* **Downloads survive cut connections** by resuming with ``Range`` (or restarting when the server
  ignores it), and are written to ``<dest>.part`` and renamed when complete and of the right size.
"""

from __future__ import annotations

import abc
import contextlib
import functools
import logging
import os
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import requests
import urllib3

from grmux_core import cancel
from grmux_core.config import S3Settings, Settings, WebdavSettings
from grmux_core.errors import (
    AuthError,
    GrmuxError,
    NotFoundError,
    ProtocolError,
    ServiceError,
    StorageHostRefused,
    TransferTooSlow,
    TransientError,
)
from grmux_core.http import DEFAULT_POLICY, HttpPolicy, build_session, check_status, host_port, safe_url, send
from grmux_core.models import MediaLocation

log = logging.getLogger("grmux.storage")

CHUNK = 1024 * 1024
#: Seconds a download may start slowly (TLS, a cold disk) before the minimum transfer rate applies.
RATE_GRACE_S = 10.0
DOWNLOAD_ATTEMPTS = 6


def _part_prefix(name: str) -> str:
    """What every temporary upload name of ``name`` starts with (never the final name itself)."""
    return f".{name}.part-"


def _part_name(name: str) -> str:
    return f"{_part_prefix(name)}{uuid.uuid4().hex[:12]}"


class Storage(abc.ABC):
    """What the per-call steps need from recording storage."""

    @abc.abstractmethod
    def download(self, location: MediaLocation, dest_path: str | os.PathLike[str]) -> int:
        """Stream the file to ``dest_path`` (created or replaced atomically); returns its size."""

    @abc.abstractmethod
    def upload(self, local_path: str | os.PathLike[str], location: MediaLocation) -> int:
        """Upload under a temporary name, check the size, publish atomically; returns the size."""

    @abc.abstractmethod
    def size(self, location: MediaLocation) -> int:
        """The stored size in bytes; :class:`NotFoundError` when absent."""

    @abc.abstractmethod
    def delete(self, location: MediaLocation) -> None:
        """Delete the file; deleting an absent file is not an error."""

    def exists(self, location: MediaLocation) -> bool:
        try:
            self.size(location)
        except NotFoundError:
            return False
        return True

    def close(self) -> None:  # pragma: no cover - trivial
        """Release connections."""


# --------------------------------------------------------------------------------------------
# WebDAV

_PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<D:propfind xmlns:D="DAV:"><D:prop><D:getcontentlength/><D:resourcetype/></D:prop></D:propfind>'
)


class WebDavStorage(Storage):
    """WebDAV (RFC 4918) over requests, with Basic auth only towards allowed hosts."""

    SERVICE = "WebDAV"

    def __init__(self, webdav: WebdavSettings, *, pool_size: int = 4, policy: HttpPolicy = DEFAULT_POLICY,
                 chunk_size: int = CHUNK, min_rate: float = 0.0, rate_grace_s: float = RATE_GRACE_S):
        self.settings = webdav
        self.min_rate, self.rate_grace_s = min_rate, rate_grace_s
        self.policy = policy
        self.chunk_size = chunk_size
        self.session = build_session(verify=webdav.requests_verify, pool_size=pool_size, policy=policy,
                                     session_auth=False)
        self.session.trust_env = False  # no .netrc credentials or proxies picked up behind our back
        self._auth = (webdav.username, webdav.password.get()) if webdav.username else None
        self._account = "[webdav] username/password (or WEBDAV_PASSWORD)"

    # -------------------------------------------------------------------- host policy

    def check_host(self, url: str) -> None:
        """Refuse a URL whose scheme is not http(s) or whose host:port is not allowed — before any
        request, so credentials never reach it."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StorageHostRefused(f"media URL {safe_url(url)!r} is not an http(s) URL with a host")
        allowed = self.settings.allowed_hosts
        if allowed and host_port(url) not in allowed:
            raise StorageHostRefused(
                f"media URL host {host_port(url)} is not in [webdav] allowed_hosts "
                f"({', '.join(allowed)}); no request was sent. If it is a genuine storage host of this "
                "site, add it to allowed_hosts"
            )

    def _request(self, method: str, url: str, *, what: str, **kwargs: Any) -> requests.Response:
        """A request to an allowed host; a redirect is followed only to the same host:port."""
        for _hop in range(5):
            self.check_host(url)
            response = send(self.session, method, url, service=self.SERVICE, what=what, policy=self.policy,
                            auth=self._auth, **kwargs)
            if response.status_code not in (301, 302, 303, 307, 308) or "Location" not in response.headers:
                return response
            target = urljoin(url, response.headers["Location"])
            response.close()
            if host_port(target) != host_port(url):
                raise StorageHostRefused(
                    f"{self.SERVICE} redirected {what} from {host_port(url)} to {host_port(target)}; grmux "
                    "never follows a redirect to another host (credentials would travel there)"
                )
            url = target
        raise ProtocolError(f"{self.SERVICE}: too many redirects for {what} at {safe_url(url)}")

    def _check(self, response: requests.Response, what: str, *, not_found_ok: bool = False):
        return check_status(response, service=self.SERVICE, what=what, account_hint=self._account,
                            not_found_ok=not_found_ok)

    # -------------------------------------------------------------------- operations

    def download(self, location: MediaLocation, dest_path: str | os.PathLike[str]) -> int:
        url = location.url
        what = f"download of {safe_url(url)}"
        dest = Path(dest_path)
        part = dest.with_name(dest.name + ".part")
        try:
            written = self._download_to(url, what, part)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, dest)
        return written

    def _download_to(self, url: str, what: str, part: Path) -> int:
        stop = cancel.current()

        @contextlib.contextmanager
        def body(written: int, expected: int | None) -> Iterator[Body | None]:
            headers = {"Range": f"bytes={written}-"} if written else {}
            response = self._request("GET", url, what=what, stream=True, headers=headers)
            with response:
                restarted = bool(written) and response.status_code == 200  # the server ignored Range
                if response.status_code == 416 and expected is not None and written == expected:
                    yield None  # nothing left to read
                    return
                if not restarted:
                    self._check(response, what)
                read = functools.partial(response.raw.read1, decode_content=True)
                yield Body(_total_length(response), restarted, _chunks(read, response.close, self.chunk_size, stop))

        interruptions = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError,
                         requests.exceptions.Timeout, urllib3.exceptions.HTTPError, OSError, TransientError)
        rate = cancel.TransferRate(self.min_rate, grace_s=self.rate_grace_s, started=time.monotonic())
        return _resumable_download(part, what, rate, body, interruptions, "check the storage server and the network")

    def upload(self, local_path: str | os.PathLike[str], location: MediaLocation) -> int:
        url = location.url
        self.check_host(url)
        local = Path(local_path)
        size = local.stat().st_size
        parts = urlsplit(url)
        directory, _, name = parts.path.rpartition("/")
        temp_url = urlunsplit((parts.scheme, parts.netloc, f"{directory}/{_part_name(name)}", "", ""))
        what = f"upload to {safe_url(url)}"
        try:
            response = self._put(local, temp_url, what)
            if response.status_code == 409:  # a parent collection is missing
                self._mkcol_parents(temp_url)
                response = self._put(local, temp_url, what)
            self._check(response, what)
            stored = self._propfind_size(temp_url, what)
            if stored != size:
                raise TransientError(f"{what}: the server stored {stored} of {size} bytes; retry the upload")
            self._publish(temp_url, url, size, what)
        except BaseException:
            self._delete_quietly(temp_url)
            raise
        self._remove_stale_parts(url, name)
        return size

    def _remove_stale_parts(self, url: str, name: str) -> None:
        """Delete temporary uploads of ``name`` left by dead attempts (kill -9 between PUT and MOVE).

        Best effort, after our own publish: a leftover is harmless (its name starts with a dot and
        ends in ``.part-<hex>``, never the final name) and the next upload of the name tries again.
        """
        parts = urlsplit(url)
        directory = parts.path.rpartition("/")[0] + "/"
        coll = urlunsplit((parts.scheme, parts.netloc, directory, "", ""))
        prefix = _part_prefix(name)
        try:
            response = self._request("PROPFIND", coll, what=f"listing of {safe_url(coll)}", data=_PROPFIND_BODY,
                                     headers={"Depth": "1", "Content-Type": "application/xml"})
            if response.status_code != 207:
                return
            root = ET.fromstring(response.content)
            stale = []
            for href in root.iter("{DAV:}href"):
                path = urlsplit((href.text or "").strip()).path
                if unquote(path.rstrip("/").rpartition("/")[2]).startswith(prefix):
                    stale.append(urlunsplit((parts.scheme, parts.netloc, path, "", "")))
        except (GrmuxError, ET.ParseError) as exc:
            log.info("could not list %s for stale temporary uploads: %s", safe_url(coll), exc)
            return
        for stale_url in stale:
            log.info("removing a temporary upload left by an interrupted run: %s", safe_url(stale_url))
            self._delete_quietly(stale_url)

    def _publish(self, temp_url: str, url: str, size: int, what: str, attempts: int = 4) -> None:
        """MOVE the temporary file onto its final name.

        MOVE is not retried by urllib3 (a repeated MOVE whose first try landed finds no source), so
        it is retried here: on 5xx/transport errors try again, and a 404 for the source after a
        failed try counts as success when the destination already has the expected size.
        """
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                move = self._request("MOVE", temp_url, what=what, headers={"Destination": url, "Overwrite": "T"})
                if move.status_code == 404 and attempt and self._propfind_size(url, what) == size:
                    return
                self._check(move, what)
                return
            except TransientError as exc:
                last = exc
                log.info("%s: MOVE failed (attempt %d/%d): %s", what, attempt + 1, attempts, exc)
        raise TransientError(f"{what}: publishing (MOVE) failed {attempts} times; retry the upload") from last

    def _put(self, local: Path, url: str, what: str) -> requests.Response:
        # urllib3 rewinds the file body when it retries a PUT (body_pos), so retries stay correct.
        with open(local, "rb") as body:
            return self._request("PUT", url, what=what, data=body,
                                 headers={"Content-Type": "application/octet-stream"})

    def _mkcol_parents(self, url: str) -> None:
        """Create the missing collections above ``url``, top-down from the first missing one."""
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/")[:-1] if s]
        missing: list[str] = []
        for depth in range(len(segments), 0, -1):
            coll = urlunsplit((parts.scheme, parts.netloc, "/" + "/".join(segments[:depth]) + "/", "", ""))
            response = self._request("PROPFIND", coll, what=f"check of {safe_url(coll)}",
                                     data=_PROPFIND_BODY, headers={"Depth": "0", "Content-Type": "application/xml"})
            if response.status_code == 404:
                missing.append(coll)
                continue
            break
        for coll in reversed(missing):
            response = self._request("MKCOL", coll, what=f"creation of collection {safe_url(coll)}")
            if response.status_code not in (201, 405):  # 405: it exists (created concurrently)
                self._check(response, f"creation of collection {safe_url(coll)}")

    def _propfind_size(self, url: str, what: str) -> int:
        response = self._request("PROPFIND", url, what=what, data=_PROPFIND_BODY,
                                 headers={"Depth": "0", "Content-Type": "application/xml"})
        self._check(response, what)
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise ProtocolError(f"{self.SERVICE}: PROPFIND of {safe_url(url)} answered invalid XML") from exc
        for element in root.iter("{DAV:}getcontentlength"):
            if element.text and element.text.strip().isdigit():
                return int(element.text.strip())
        raise ProtocolError(f"{self.SERVICE}: PROPFIND of {safe_url(url)} gave no getcontentlength (a collection?)")

    def size(self, location: MediaLocation) -> int:
        return self._propfind_size(location.url, f"size of {safe_url(location.url)}")

    def delete(self, location: MediaLocation) -> None:
        what = f"deletion of {safe_url(location.url)}"
        self._check(self._request("DELETE", location.url, what=what), what, not_found_ok=True)

    def _delete_quietly(self, url: str) -> None:
        try:
            self._request("DELETE", url, what=f"clean-up of {safe_url(url)}")
        except GrmuxError as exc:
            log.warning("could not remove the temporary upload %s: %s", safe_url(url), exc)

    def close(self) -> None:
        self.session.close()


class Body(NamedTuple):
    """One GET's answer to a (ranged) download: the resource's full size, whether the server
    ignored ``Range`` (the file starts over), and the chunks as they arrive."""

    total: int | None
    restarted: bool
    chunks: Iterator[bytes]


def _resumable_download(part: Path, what: str, rate: cancel.TransferRate,
                        open_body: Callable[[int, int | None], contextlib.AbstractContextManager[Body | None]],
                        interruptions: tuple[type[BaseException], ...], hint: str) -> int:
    """Write a download to ``part``, resuming from the bytes received after each interruption
    (``open_body(written, expected)`` sends the GET; None: nothing was left to read), held to
    ``rate``; the one loop of both backends."""
    expected: int | None = None
    written = 0
    last: BaseException | None = None
    with open(part, "wb") as out:
        for attempt in range(DOWNLOAD_ATTEMPTS):
            try:
                with open_body(written, expected) as body:
                    if body is None:
                        break
                    if body.restarted:
                        out.seek(0)
                        out.truncate()
                        written = 0
                    if expected is None:
                        expected = body.total
                    for chunk in body.chunks:
                        out.write(chunk)
                        written += len(chunk)
                        slow = rate.too_slow(written, expected, time.monotonic())
                        if slow:
                            raise TransferTooSlow(f"{what}: {slow}")
                if expected is None or written == expected:
                    break
                last = TransientError(f"{what}: connection ended after {written} of {expected} bytes")
            except interruptions as exc:
                last = exc
            log.info("%s interrupted at %d bytes (attempt %d/%d): %s", what, written, attempt + 1,
                     DOWNLOAD_ATTEMPTS, type(last).__name__)
        else:
            raise TransientError(
                f"{what} failed {DOWNLOAD_ATTEMPTS} times ({type(last).__name__}); it will be retried "
                f"later — {hint}"
            ) from last
    return written


def _chunks(read: Callable[[int], bytes], close: Callable[[], None], size: int,
            stop: cancel.StopToken) -> Iterator[bytes]:
    """A response body as it arrives (``read`` is a ``read1``: whatever is there, at most ``size``),
    so the rate rule sees a trickle; a cancel or deadline closes the response (``close``) and ends the
    read at once."""
    unregister = stop.on_stop(lambda _reason: close())
    try:
        while True:
            stop.raise_if_stopped()
            try:
                data = read(size)
            except Exception:
                stop.raise_if_stopped()  # the read ended because the token closed the response
                raise
            if not data:
                stop.raise_if_stopped()
                return
            yield data
    finally:
        unregister()


def _total_length(response: requests.Response) -> int | None:
    """The full size of the resource from ``Content-Range`` (206) or ``Content-Length`` (200)."""
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and not response.headers.get("Content-Encoding"):
        return int(length)
    return None


# --------------------------------------------------------------------------------------------
# S3


class S3Storage(Storage):
    """S3 (or an S3-compatible store) through boto3 managed transfers.

    Credentials: ``[s3] access_key_id/secret_access_key`` when set, else the standard AWS chain.
    Endpoint: ``[s3] endpoint_url`` (empty = AWS). A location whose ``data.endpoint`` names another
    endpoint is refused (:class:`StorageHostRefused`): credentials go only to the configured store.
    """

    SERVICE = "S3"

    def __init__(self, s3: S3Settings, *, pool_size: int = 4, multipart_threshold: int = 8 * 1024 * 1024,
                 multipart_chunksize: int = 8 * 1024 * 1024, max_concurrency: int = 4, retries: int = 5,
                 chunk_size: int = 256 * 1024, min_rate: float = 0.0, rate_grace_s: float = RATE_GRACE_S):
        import boto3  # local: boto3 import is slow and only S3 sites need it
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self.settings = s3
        self.chunk_size, self.min_rate, self.rate_grace_s = chunk_size, min_rate, rate_grace_s
        self._boto3 = boto3
        self._config = Config(
            retries={"max_attempts": retries, "mode": "standard"},
            max_pool_connections=max(pool_size * max_concurrency, 10),
            connect_timeout=DEFAULT_POLICY.connect_timeout,
            read_timeout=DEFAULT_POLICY.read_timeout,
            s3={"addressing_style": "path"} if s3.endpoint_url else {},
        )
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
            io_chunksize=256 * 1024,
            max_io_queue=16,  # bounds download memory: queue × io_chunksize ≈ 4 MiB
            use_threads=True,
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, location: MediaLocation) -> Any:
        endpoint = self.settings.endpoint_url or None
        if location.endpoint:
            wanted = location.endpoint
            if endpoint is None and not _is_aws(wanted):
                raise StorageHostRefused(
                    f"the recording names S3 endpoint {host_port(wanted)} but [s3] endpoint_url is empty "
                    "(AWS); set [s3] endpoint_url to that endpoint if it is this site's storage"
                )
            if endpoint is not None and host_port(wanted) != host_port(endpoint):
                raise StorageHostRefused(
                    f"the recording names S3 endpoint {host_port(wanted)}, not the configured [s3] "
                    f"endpoint_url {host_port(endpoint)}; no request was sent"
                )
        region = location.region or self.settings.region or None
        cache_key = f"{endpoint}|{region}"
        with self._lock:
            if cache_key not in self._clients:
                kwargs: dict[str, Any] = {
                    "endpoint_url": endpoint,
                    "region_name": region,
                    "config": self._config,
                    "verify": self.settings.requests_verify,
                }
                if self.settings.access_key_id:
                    kwargs["aws_access_key_id"] = self.settings.access_key_id
                    kwargs["aws_secret_access_key"] = self.settings.secret_access_key.get()
                self._clients[cache_key] = self._boto3.session.Session().client("s3", **kwargs)
            return self._clients[cache_key]

    def _translate(self, exc: Exception, what: str) -> GrmuxError:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            return AuthError(f"S3: no credentials for {what}: set [s3] access_key_id/secret_access_key or "
                             "configure the standard AWS credential chain")
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
                return NotFoundError(f"S3: {what}: not found ({code})", status=404)
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch") or status in (401, 403):
                return AuthError(f"S3 denied {what} ({code}): check [s3] access_key_id/secret_access_key and "
                                 "the bucket policy", status=status or 403)
            if status >= 500 or status == 429 or code in ("SlowDown", "RequestTimeout", "InternalError"):
                return TransientError(f"S3 answered {code or status} for {what} after retries; retried later")
            return ServiceError(f"S3 refused {what}: {code}: {exc}", status=status or None)
        if isinstance(exc, S3UploadFailedError):
            text = str(exc)
            if "AccessDenied" in text or "403" in text:
                return AuthError(f"S3 denied {what}: {text}; check the [s3] credentials and bucket policy")
            if "NoSuchBucket" in text:
                return NotFoundError(f"S3: {what}: no such bucket")
            return TransientError(f"S3: {what} failed: {text}")
        if isinstance(exc, BotoCoreError):
            return TransientError(f"S3: {what} failed ({type(exc).__name__}); check that the S3 endpoint is "
                                  "reachable")
        if isinstance(exc, OSError):
            return TransientError(f"S3: {what} failed: {exc}")
        return ServiceError(f"S3: {what} failed: {type(exc).__name__}: {exc}")

    def _errors(self):
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        return (ClientError, BotoCoreError, S3UploadFailedError, ConnectionError)

    def download(self, location: MediaLocation, dest_path: str | os.PathLike[str]) -> int:
        client = self._client(location)
        what = f"download of {location.describe()}"
        dest = Path(dest_path)
        part = dest.with_name(dest.name + ".part")
        try:
            written = self._download_to(client, location, what, part)
        except self._errors() as exc:
            part.unlink(missing_ok=True)
            raise self._translate(exc, what) from exc
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        os.replace(part, dest)
        return written

    def _download_to(self, client: Any, location: MediaLocation, what: str, part: Path) -> int:
        """One streamed GET (resumed with ``Range`` after a cut), not boto3's managed download: its
        reads cannot be stopped by the run's token, and its progress callback sees a trickle only
        once a whole ``io_chunksize`` arrived."""
        from botocore.exceptions import BotoCoreError

        stop = cancel.current()

        @contextlib.contextmanager
        def body(written: int, _expected: int | None) -> Iterator[Body]:
            ranged = {"Range": f"bytes={written}-"} if written else {}
            answer = client.get_object(Bucket=location.bucket, Key=location.key, **ranged)
            with contextlib.closing(answer["Body"]) as stream:
                # read1 of the urllib3 response under botocore's StreamingBody (whose read(n) waits
                # for n bytes, hiding a trickle): contract-tested in tests/unit/test_storage.py
                yield Body(_s3_total(answer), bool(written) and "ContentRange" not in answer,
                           _chunks(stream._raw_stream.read1, stream.close, self.chunk_size, stop))

        rate = cancel.TransferRate(self.min_rate, grace_s=self.rate_grace_s, started=time.monotonic())
        # a cut mid-body (the GET itself was retried by botocore)
        interruptions = (BotoCoreError, OSError, urllib3.exceptions.HTTPError)
        return _resumable_download(part, what, rate, body, interruptions, "check the S3 endpoint and the network")

    def upload(self, local_path: str | os.PathLike[str], location: MediaLocation) -> int:
        client = self._client(location)
        what = f"upload to {location.describe()}"
        size = Path(local_path).stat().st_size
        directory, _, name = location.key.rpartition("/")
        temp_key = f"{directory}/{_part_name(name)}" if directory else _part_name(name)
        try:
            client.upload_file(str(local_path), location.bucket, temp_key, Config=self.transfer)
            stored = int(client.head_object(Bucket=location.bucket, Key=temp_key)["ContentLength"])
            if stored != size:
                raise TransientError(f"{what}: S3 stored {stored} of {size} bytes; retry the upload")
            client.copy({"Bucket": location.bucket, "Key": temp_key}, location.bucket, location.key,
                        Config=self.transfer)
        except self._errors() as exc:
            self._delete_quietly(client, location.bucket, temp_key)
            raise self._translate(exc, what) from exc
        except BaseException:
            self._delete_quietly(client, location.bucket, temp_key)
            raise
        self._delete_quietly(client, location.bucket, temp_key)
        self._remove_stale_parts(client, location.bucket,
                                 f"{directory}/{_part_prefix(name)}" if directory else _part_prefix(name))
        return size

    def _remove_stale_parts(self, client: Any, bucket: str, prefix: str) -> None:
        """Delete temporary uploads (``<dir>/.<name>.part-*``) left by dead attempts; best effort."""
        try:
            listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        except self._errors() as exc:
            log.info("could not list s3://%s/%s* for stale temporary uploads: %s", bucket, prefix, type(exc).__name__)
            return
        for obj in listed.get("Contents", []):
            log.info("removing a temporary upload left by an interrupted run: s3://%s/%s", bucket, obj["Key"])
            self._delete_quietly(client, bucket, obj["Key"])

    def _delete_quietly(self, client: Any, bucket: str, key: str) -> None:
        try:
            client.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - best-effort clean-up
            log.warning("could not remove the temporary S3 object s3://%s/%s: %s", bucket, key, type(exc).__name__)

    def size(self, location: MediaLocation) -> int:
        client = self._client(location)
        try:
            return int(client.head_object(Bucket=location.bucket, Key=location.key)["ContentLength"])
        except self._errors() as exc:
            raise self._translate(exc, f"size of {location.describe()}") from exc

    def delete(self, location: MediaLocation) -> None:
        client = self._client(location)
        try:
            client.delete_object(Bucket=location.bucket, Key=location.key)
        except self._errors() as exc:
            error = self._translate(exc, f"deletion of {location.describe()}")
            if not isinstance(error, NotFoundError):
                raise error from exc

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def _s3_total(answer: dict[str, Any]) -> int | None:
    """The object's full size: from ``ContentRange`` (a ranged GET) or ``ContentLength``."""
    content_range = str(answer.get("ContentRange", ""))
    if "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = answer.get("ContentLength")
    return int(length) if length is not None else None


def _is_aws(endpoint: str) -> bool:
    host = (urlsplit(endpoint).hostname or "").lower()
    return host.endswith(".amazonaws.com") or host == "amazonaws.com"


# --------------------------------------------------------------------------------------------
# Router


class StorageRouter(Storage):
    """Chooses the backend from each :class:`MediaLocation` (``webDAV`` or ``awsS3``).

    Backends are created on first use, so a WebDAV-only site never imports boto3.
    """

    def __init__(self, webdav: WebdavSettings, s3: S3Settings, *, pool_size: int = 4, min_rate: float = 0.0):
        self._webdav_settings, self._s3_settings, self._pool_size = webdav, s3, pool_size
        self._min_rate = min_rate
        self._webdav: WebDavStorage | None = None
        self._s3: S3Storage | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, pool_size: int | None = None) -> StorageRouter:
        return cls(settings.webdav, settings.s3, pool_size=pool_size or settings.advanced.worker_threads,
                   min_rate=settings.advanced.min_transfer_rate_kbps * 1024.0)

    def backend(self, location: MediaLocation) -> Storage:
        with self._lock:
            if location.is_webdav:
                if self._webdav is None:
                    self._webdav = WebDavStorage(self._webdav_settings, pool_size=self._pool_size,
                                                 min_rate=self._min_rate)
                return self._webdav
            if location.is_s3:
                if self._s3 is None:
                    self._s3 = S3Storage(self._s3_settings, pool_size=self._pool_size, min_rate=self._min_rate)
                return self._s3
        raise ProtocolError(f"unknown storage {location.storage!r}: grmux supports webDAV and awsS3")

    def download(self, location: MediaLocation, dest_path: str | os.PathLike[str]) -> int:
        return self.backend(location).download(location, dest_path)

    def upload(self, local_path: str | os.PathLike[str], location: MediaLocation) -> int:
        return self.backend(location).upload(local_path, location)

    def size(self, location: MediaLocation) -> int:
        return self.backend(location).size(location)

    def delete(self, location: MediaLocation) -> None:
        self.backend(location).delete(location)

    def exists(self, location: MediaLocation) -> bool:
        return self.backend(location).exists(location)

    def close(self) -> None:
        for backend in (self._webdav, self._s3):
            if backend is not None:
                backend.close()


def open_storage(settings: Settings, *, pool_size: int | None = None) -> StorageRouter:
    """The storage factory of the composition root (:class:`~grmux_core.services.Services`)."""
    return StorageRouter.from_settings(settings, pool_size=pool_size)
