"""The one funnel every ffmpeg/ffprobe goes through (``grmux_core.ffmpeg``): how a run that cannot
start, outlives its timeout, reports progress, or is pre-started and fed later, ends.

Stand-in processes (Python and shell one-liners) play ffmpeg, so each ending is forced exactly;
cancel, failures and a full disk of :func:`run` are in ``test_cancel.py``.
"""

from __future__ import annotations

import sys
import threading
import time

import pytest

from grmux_core import cancel
from grmux_core import ffmpeg as ff
from grmux_core.cancel import StopToken
from grmux_core.errors import Cancelled, MediaError, ScratchError


def test_a_binary_that_cannot_start_is_a_media_error_naming_it(tmp_path):
    missing = str(tmp_path / "no-ffmpeg")
    with pytest.raises(MediaError, match=r"cannot start ffmpeg \(mux\) \(.*no-ffmpeg\)") as caught:
        ff.run([missing, "-i", "x"], what="ffmpeg (mux)")
    assert isinstance(caught.value.__cause__, OSError)
    with pytest.raises(MediaError, match="cannot start ffprobe"):
        ff.Prestarted([missing, "-i", "pipe:0"], what="ffprobe")


def test_a_run_past_its_timeout_is_killed_and_its_error_keeps_the_stderr_tail():
    script = "import sys, time; sys.stderr.write('[mp4 @ 0x1] still writing\\n'); sys.stderr.flush(); time.sleep(30)"
    started = time.monotonic()
    with pytest.raises(MediaError, match=r"ffmpeg \(mux\) did not finish within 0.5 s") as caught:
        ff.run([sys.executable, "-c", script], timeout=0.5, what="ffmpeg (mux)")
    assert "still writing" in caught.value.stderr_tail
    assert time.monotonic() - started < 20  # killed, not waited for (the sleep is 30 s)


def test_progress_lines_reach_the_callback_in_seconds_and_na_is_skipped(tmp_path):
    fake = tmp_path / "fake-ffmpeg"  # ignores the -progress pipe:1 -nostats the runner adds
    fake.write_text("#!/bin/sh\nprintf 'out_time_us=N/A\\nout_time_us=1500000\\nprogress=continue\\n"
                    "out_time_us=3000000\\nprogress=end\\n'\n")
    fake.chmod(0o755)
    seen: list[float] = []
    result = ff.run([str(fake), "-i", "x"], progress=seen.append)
    assert seen == [1.5, 3.0]
    assert result.args[1:3] == ["-progress", "pipe:1"] and "progress=end" in result.stdout


def test_a_prestarted_process_reads_the_file_given_later(tmp_path):
    data = tmp_path / "in.bin"
    data.write_bytes(b"x" * 3_000_000)  # more than one feed chunk
    proc = ff.Prestarted([sys.executable, "-c", "import sys; print(len(sys.stdin.buffer.read()))"], what="counter")
    result = proc.finish(data)
    assert result.returncode == 0 and result.stdout.strip() == "3000000"


def test_a_prestarted_process_past_its_timeout_or_stopped_by_the_run_ends_with_the_right_error(tmp_path):
    data = tmp_path / "in.bin"
    data.write_bytes(b"x")
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(MediaError, match="ffprobe did not finish within 0.5 s"):
        ff.Prestarted(sleeper).finish(data, timeout=0.5)
    token = StopToken()
    threading.Timer(0.3, token.set, args=("the flow run was cancelled",)).start()
    with cancel.stopping(token), pytest.raises(Cancelled, match="ffprobe stopped: the flow run was cancelled"):
        ff.Prestarted(sleeper).finish(data, timeout=30)


def test_a_prestarted_process_that_fails_or_fills_the_disk_raises_like_run(tmp_path):
    data = tmp_path / "in.bin"
    data.write_bytes(b"x")
    script = "import sys; sys.stdin.read(); sys.stderr.write({!r}); sys.exit({})"
    with pytest.raises(MediaError, match=r"exit code 1\): Invalid data found"):
        ff.Prestarted([sys.executable, "-c", script.format("Invalid data found\n", 1)]).finish(data)
    with pytest.raises(ScratchError, match="No space left on device"):
        ff.Prestarted([sys.executable, "-c", script.format("No space left on device\n", 0)]).finish(data)
    kept = ff.Prestarted([sys.executable, "-c", script.format("Invalid data found\n", 1)]).finish(data, check=False)
    assert kept.returncode == 1
