"""Stopping work: the stop token, ffmpeg stopped by it, downloads held to a minimum rate and
stopped by it, the reasons ffmpeg failures and a full temp_dir give, and the per-call budgets."""

from __future__ import annotations

import http.server
import re
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from grmux_core import cancel
from grmux_core import ffmpeg as ff
from grmux_core.call import call_deadline_s, free_space_problem, scratch_error, space_needed
from grmux_core.cancel import StopToken, TransferRate
from grmux_core.config import S3Settings, SecretStr, WebdavSettings
from grmux_core.errors import Cancelled, MediaError, ScratchError, StorageFull, TransferTooSlow
from grmux_core.http import HttpPolicy
from grmux_core.models import AWS_S3, WEBDAV, MediaFile, MediaLocation
from grmux_core.storage import S3Storage, WebDavStorage

BANNER = """ffmpeg version 6.1.1 Copyright (c) 2000-2023 the FFmpeg developers
  built with gcc 13
  configuration: --prefix=/usr --enable-libx264
  libavutil      58. 29.100 / 58. 29.100
Input #0, mp3, from 'a.mp3':
[mp4 @ 0x55] Invalid data found when processing input
Error opening output file muxed.mp4.
"""


def test_a_token_keeps_its_first_reason_runs_callbacks_once_and_its_children_follow():
    token, seen = StopToken(), []
    token.on_stop(seen.append)
    child = token.child()
    assert token.set("first") and not token.set("second")
    assert seen == ["first"] and token.reason == "first" and child.is_set() and child.reason == "first"
    with pytest.raises(Cancelled, match="first"):
        token.raise_if_stopped()
    token.on_stop(seen.append)  # registered late: called at once
    assert seen == ["first", "first"]
    alone = StopToken().child()
    assert alone.set("deadline") and not cancel.current().is_set()


def test_a_deadline_stops_the_block_with_a_reason_naming_what_and_leaves_the_parent_alone():
    parent = StopToken()
    with cancel.deadline(parent, 0.05, "call c1") as stop:
        assert cancel.current() is stop
        assert stop.wait(5)
    assert "call c1 exceeded its deadline" in stop.reason and not parent.is_set()


def test_ffmpeg_is_killed_when_the_token_is_set_and_the_error_is_not_a_media_error():
    token = StopToken()
    threading.Timer(0.3, token.set, args=("the flow run was cancelled",)).start()
    started = time.monotonic()
    with cancel.stopping(token), pytest.raises(Cancelled, match="ffmpeg .mux. stopped: the flow run was cancelled"):
        ff.run([sys.executable, "-c", "import time; time.sleep(30)"], what="ffmpeg (mux)")
    print(f"ffmpeg stopped {time.monotonic() - started:.2f} s after start (cancel at 0.3 s)")
    with cancel.stopping(token), pytest.raises(Cancelled):  # and nothing starts once it is set
        ff.run([sys.executable, "-c", "pass"])


def test_an_ffmpeg_failure_keeps_its_meaningful_line_and_no_space_fails_even_at_exit_0():
    assert ff.meaningful_line(BANNER) == "[mp4 @ 0x55] Invalid data found when processing input"
    assert ff.meaningful_line(BANNER + "av_interleaved_write_frame(): No space left on device\n") \
        == "av_interleaved_write_frame(): No space left on device"
    script = "import sys; sys.stderr.write({!r}); sys.exit({})"
    with pytest.raises(MediaError, match=r"exit code 1\): \[mp4 @ 0x55\] Invalid data"):
        ff.run([sys.executable, "-c", script.format(BANNER, 1)], what="ffmpeg (mux)")
    with pytest.raises(ScratchError, match="No space left on device in temp_dir"):
        ff.run([sys.executable, "-c", script.format("[out] No space left on device\n", 0)], what="ffmpeg (mux)")


def media(media_id: str, size: int | None, seconds: float, encrypted: bool = False) -> MediaFile:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return MediaFile(media_id=media_id, type="audio/mp3", start=start, stop=start + timedelta(seconds=seconds),
                     location=MediaLocation(WEBDAV, f"/{media_id}"), size=size,
                     pkcs7="x" if encrypted else None)


def test_space_and_deadline_budgets_of_a_call():
    files = [media("a1", 10 << 20, 60), media("s1", 30 << 20, 60, encrypted=True), media("s2", None, 30)]
    assert space_needed(files) == 2 * (40 << 20) + (30 << 20) + (16 << 20)
    assert free_space_problem(200 << 20, 126 << 20) == ""
    assert free_space_problem(5 << 20, 126 << 20).startswith("temp_dir has 5 MB free, this call needs ~126 MB")
    assert call_deadline_s(files, 0) is None
    assert call_deadline_s(files, 1024 * 1024) == pytest.approx(80 + 120 + 300)


def test_an_os_error_names_the_path_relative_to_temp_dir(tmp_path):
    error = OSError(28, "No space left on device")
    found = scratch_error(error, tmp_path / "grmux-work-x" / "01.mp4", tmp_path, "downloading media s1")
    assert str(found).startswith("downloading media s1: No space left on device at temp_dir/grmux-work-x/01.mp4")


def test_the_rate_rule_waits_for_its_grace_then_names_bytes_of_expected_and_the_rate():
    rule = TransferRate(8 * 1024, grace_s=10, started=100.0)
    assert rule.too_slow(10, 1000, 105.0) == ""
    assert rule.too_slow(200 * 1024, 1000, 120.0) == ""
    slow = rule.too_slow(3000, 21_000_000, 120.0)
    assert "3000 of 21000000 bytes received in 20 s (0.15 KiB/s, below the minimum 8 KiB/s" in slow
    assert TransferRate(0).too_slow(0, None, 1e9) == ""


class Trickle(http.server.BaseHTTPRequestHandler):
    """1 KiB of a 1 MiB body every 0.1 s: never idle long enough for a read timeout."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        try:
            for _ in range(1024):
                self.wfile.write(b"x" * 1024)
                self.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def trickle_url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def trickle_store(min_rate: float) -> WebDavStorage:
    return WebDavStorage(WebdavSettings(username="u", password=SecretStr("p")), min_rate=min_rate,
                         rate_grace_s=0.5, policy=HttpPolicy(backoff_factor=0, retries=0, body_retries=0))


def test_a_trickling_download_fails_at_once_with_the_rate_and_leaves_no_part(tmp_path, trickle_url):
    with pytest.raises(TransferTooSlow, match=r"bytes received in .* KiB/s, below the minimum 64 KiB/s") as info:
        trickle_store(64 * 1024).download(MediaLocation(WEBDAV, "s1.mp4", base=trickle_url), tmp_path / "s1.mp4")
    assert f"of {1 << 20} bytes" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_cancel_ends_a_download_at_once(tmp_path, trickle_url):
    token = StopToken()
    threading.Timer(0.3, token.set, args=("stopped by SIGTERM",)).start()
    with cancel.stopping(token), pytest.raises(Cancelled, match="SIGTERM"):
        trickle_store(0).download(MediaLocation(WEBDAV, "s1.mp4", base=trickle_url), tmp_path / "s1.mp4")
    assert list(tmp_path.iterdir()) == []


def trickle_s3(url: str, min_rate: float) -> S3Storage:
    """The trickling server as the S3 endpoint: a GET of any key answers 200 and trickles the body."""
    settings = S3Settings(endpoint_url=url, region="us-east-1", access_key_id="k", secret_access_key=SecretStr("s"))
    return S3Storage(settings, min_rate=min_rate, rate_grace_s=0.5, retries=1)


def test_a_trickling_s3_download_fails_with_the_rate_and_leaves_no_part(tmp_path, trickle_url):
    with pytest.raises(TransferTooSlow, match=r"bytes received in .* KiB/s, below the minimum 64 KiB/s") as info:
        trickle_s3(trickle_url, 64 * 1024).download(MediaLocation(AWS_S3, "s1.mp4", bucket="rec"), tmp_path / "s1.mp4")
    assert f"of {1 << 20} bytes" in str(info.value) and "s3://rec/s1.mp4" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_cancel_ends_an_s3_download_at_once(tmp_path, trickle_url):
    token = StopToken()
    threading.Timer(0.3, token.set, args=("stopped by SIGTERM",)).start()
    started = time.monotonic()
    with cancel.stopping(token), pytest.raises(Cancelled, match="SIGTERM"):
        trickle_s3(trickle_url, 0).download(MediaLocation(AWS_S3, "s1.mp4", bucket="rec"), tmp_path / "s1.mp4")
    print(f"S3 download stopped {time.monotonic() - started - 0.3:.2f} s after the cancel (the body takes 100 s)")
    assert list(tmp_path.iterdir()) == []


def test_507_is_storage_full_not_transient():
    import responses

    with responses.RequestsMock() as mock:
        mock.add(responses.PUT, re.compile(r"http://dav.example/rec/.*"), status=507)
        mock.add(responses.DELETE, re.compile(r"http://dav.example/rec/.*"), status=204)
        store = WebDavStorage(WebdavSettings(username="u", password=SecretStr("p")),
                              policy=HttpPolicy(backoff_factor=0, retries=2, body_retries=0))
        with pytest.raises(StorageFull, match="storage full"):
            store.upload(__file__, MediaLocation(WEBDAV, "x.mp4", base="http://dav.example/rec/"))
        assert sum(call.request.method == "PUT" for call in mock.calls) == 1


def test_calls_kept_from_starting_are_cancelled_or_deferred_and_a_cancelled_run_exits_4():
    from prefect.states import Cancelled as CancelledState

    from flows.grmux import not_started
    from grmux_cli.exit_codes import ExitCode, exit_codes_help
    from grmux_cli.run_cmd import cycle_exit_code

    calls = [SimpleNamespace(id=f"c{k}") for k in range(2)]  # only the id is read
    deferred = not_started(calls, StopToken())
    assert [(o.call_id, o.status, o.reason) for o in deferred] == [
        ("c0", "pending", "deferred: cycle deadline reached, left for the next cycle"),
        ("c1", "pending", "deferred: cycle deadline reached, left for the next cycle")]
    token = StopToken()
    token.set("stopped by SIGTERM")
    assert {(o.status, o.reason) for o in not_started(calls, token)} == {("cancelled", "stopped by SIGTERM before it started")}
    assert cycle_exit_code(CancelledState()) == ExitCode.CANCELLED == 4
    assert "4  CANCELLED" in exit_codes_help()


def test_ffmpeg_dying_of_the_sigterm_that_stops_the_run_is_a_cancel_not_a_media_error():
    token = StopToken()  # a worker's cancel: SIGTERM to the whole group, ffmpeg dies before the handler runs
    threading.Timer(0.2, token.set, args=("stopped by SIGTERM",)).start()
    with cancel.stopping(token), pytest.raises(Cancelled, match="stopped by SIGTERM"):
        ff.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"], what="ffmpeg (mux)")
    with pytest.raises(MediaError, match="exit code -15"):  # no stop: still a failure, after a short wait
        ff.run([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"], what="ffmpeg (mux)")
