"""The only module of grmux_core that starts ffmpeg or ffprobe.

Why one runner: every media failure an operator sees must carry the exact command and the last
lines ffmpeg printed, every call must have a timeout (a stuck decoder must not hang a worker), and
the same code path is used by the CLI, the per-call steps, the tests and the benchmarks.

Argument lists are built with ffmpeg-python's ``.compile()`` where it fits (filter graphs, stream
mapping) and by hand where it does not. ffmpeg-python is *not* used to run anything: its ``run()``
has no timeout and its ``probe()`` drops stderr, the one thing an operator needs. Global options
(``-hide_banner``, ``-nostdin``, ``-progress``) are inserted right after the executable by
:func:`compile_stream`, because ffmpeg-python's ``global_args()`` puts them after the output file.

Executables are parameters (they come from ``[processing] ffmpeg`` / ``ffprobe``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from grmux_core import cancel
from grmux_core.errors import Cancelled, MediaError, ScratchError

log = logging.getLogger("grmux.ffmpeg")

#: Lines of stderr kept for error messages.
STDERR_TAIL_LINES = 25
#: Default timeout of one ffmpeg run (seconds): far above any real mux, so only a stuck process hits it.
DEFAULT_TIMEOUT = 600.0
#: Default timeout of one ffprobe run (seconds).
DEFAULT_PROBE_TIMEOUT = 60.0

GLOBAL_ARGS: tuple[str, ...] = ("-hide_banner", "-nostdin", "-y")

ProgressCallback = Callable[[float], None]
"""Called with the output time reached so far, in seconds (from ``-progress pipe:1``)."""


@dataclass(frozen=True)
class RunResult:
    """What one finished process produced. ``stderr`` is complete (detectors parse it)."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def compile_stream(stream: Any, executable: str = "ffmpeg", global_args: Sequence[str] = GLOBAL_ARGS) -> list[str]:
    """Compile an ffmpeg-python output node to argv, with global options *before* the inputs.

    ffmpeg-python's ``global_args()`` would place them after the output (issue #106), and
    ``overwrite_output`` appends ``-y`` at the very end; both are avoided here.
    """
    args = list(stream.compile(cmd=executable))
    return [args[0], *global_args, *args[1:]]


#: Lines of ffmpeg's stderr that say what went wrong (the first one found goes into the reason).
MEANINGFUL = ("no space left", "error", "invalid", "could not", "cannot", "permission denied",
              "not found", "unable")


def meaningful_line(stderr: str) -> str:
    """The line of ffmpeg's stderr an operator needs: "No space left" first, else the first line
    that says Error/Invalid/..., skipping the banner and configuration lines. "" when none."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("ffmpeg version", "ffprobe version", "built with",
                                                           "configuration:", "lib"))]
    for words in (MEANINGFUL[:1], MEANINGFUL):
        for line in lines:
            if any(word in line.lower() for word in words):
                return line
    return ""


def no_space_left(stderr: str) -> bool:
    """Whether ffmpeg reported ENOSPC (it may still exit 0 after failing to write its trailer)."""
    return "no space left on device" in stderr.lower()


def _wait(proc: subprocess.Popen, timeout: float, stop: cancel.StopToken | None = None) -> str:
    """Wait for ``proc``; kill it after ``timeout`` s or when ``stop`` is set.

    Returns "" if it ended by itself, else "timeout" or "stopped". A timer thread (and the token's
    callback) do the killing so the wait itself is a blocking ``waitpid``, which returns the
    moment the process exits. ``Popen.wait(timeout=...)`` instead polls with growing sleeps, a
    delay added to every short ffprobe/ffmpeg run (``benchmarks/mux_speed.py`` prints the stages).
    """
    why: list[str] = []

    def kill(reason: str) -> None:
        why.append(reason)
        with contextlib.suppress(OSError):
            proc.kill()

    timer = threading.Timer(timeout, kill, args=("timeout",))
    timer.daemon = True
    timer.start()
    unregister = (stop or cancel.current()).on_stop(lambda _reason: kill("stopped"))
    try:
        proc.wait()
    finally:
        timer.cancel()
        unregister()
    return why[0] if why else ""


#: Signals a stop sends to a whole process group (a worker's cancel, Ctrl-C): ffmpeg, in the
#: group, may die of it before the token is set by the handler in the main thread.
STOP_SIGNALS = (-15, -2)
STOP_SIGNAL_WAIT_S = 2.0


def _signalled_by_stop(returncode: int | None, stop: cancel.StopToken) -> bool:
    """Whether the process died of SIGTERM/SIGINT sent to stop the run (then it is no media error)."""
    return returncode in STOP_SIGNALS and stop.wait(STOP_SIGNAL_WAIT_S)


def _failed(what: str, returncode: int, stderr: str, argv: list[str]) -> Exception:
    """The error of a finished run that failed: out of space, or the media, with ffmpeg's own words."""
    said = meaningful_line(stderr)
    if no_space_left(stderr):
        return ScratchError(f"{what} failed: No space left on device in temp_dir while writing its output")
    text = f"{what} failed (exit code {returncode})" + (f": {said}" if said else "")
    return MediaError(text, stderr_tail=_tail(stderr), command=argv)


def run(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    logger: logging.Logger | None = None,
    progress: ProgressCallback | None = None,
    check: bool = True,
    what: str = "ffmpeg",
) -> RunResult:
    """Run one ffmpeg/ffprobe command and return its output.

    * logs the exact command (shell-quoted, copy-pasteable) at INFO on ``logger``;
    * kills the process after ``timeout`` seconds and raises :class:`MediaError`;
    * with ``progress``, adds ``-progress pipe:1 -nostats`` and calls it with seconds of output
      written so far (stdout is then consumed by the runner);
    * stdout and stderr are drained on threads so a chatty ffmpeg never blocks on a full pipe;
    * a non-zero exit raises :class:`MediaError` with the stderr tail (unless ``check=False``).
    """
    logger = logger or log
    argv = [str(a) for a in args]
    if progress is not None:
        argv = [argv[0], "-progress", "pipe:1", "-nostats", *argv[1:]]
    stop = cancel.current()
    stop.raise_if_stopped()
    logger.info("running: %s", shlex.join(argv))
    started = time.monotonic()
    proc = _start(argv, what, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                  text=True, errors="replace")
    pipes = _TextPipes(proc, progress)
    ended = _wait(proc, timeout, stop)
    pipes.join(timeout=5 if ended else None)
    _raise_if_cut_short(ended, proc.returncode, stop, what=what, timeout=timeout, argv=argv, stderr=pipes.stderr)
    result = RunResult(argv, proc.returncode, pipes.stdout(), pipes.stderr(), time.monotonic() - started)
    logger.debug("%s finished rc=%s in %.2f s", what, proc.returncode, result.seconds)
    return _checked(result, what, check)


def _start(argv: list[str], what: str, **popen: Any) -> subprocess.Popen:
    """``subprocess.Popen``; a start failure (no such binary, no memory) is a :class:`MediaError`."""
    try:
        return subprocess.Popen(argv, **popen)
    except OSError as exc:
        raise MediaError(f"cannot start {what} ({argv[0]}): {exc}", command=argv) from exc


class _TextPipes:
    """The stdout and stderr of a running process drained on threads, so a chatty ffmpeg never
    blocks on a full pipe; ``-progress`` lines of stdout are passed on to ``progress``."""

    def __init__(self, proc: subprocess.Popen, progress: ProgressCallback | None) -> None:
        self._out: list[str] = []
        self._err: list[str] = []
        self._progress = progress
        self._threads = [threading.Thread(target=self._read_stdout, args=(proc.stdout,), daemon=True),
                         threading.Thread(target=self._err.extend, args=(proc.stderr,), daemon=True)]
        for t in self._threads:
            t.start()

    def _read_stdout(self, stream: Any) -> None:
        for line in stream:
            self._out.append(line)
            if self._progress is not None and line.startswith("out_time_us="):
                try:
                    self._progress(int(line.split("=", 1)[1]) / 1e6)
                except ValueError:  # "N/A" before the first packet
                    pass

    def join(self, timeout: float | None = None) -> None:
        for t in self._threads:
            t.join(timeout)

    def stdout(self) -> str:
        return "".join(self._out)

    def stderr(self) -> str:
        return "".join(self._err)


def _raise_if_cut_short(ended: str, returncode: int | None, stop: cancel.StopToken, *, what: str,
                        timeout: float, argv: list[str], stderr: Callable[[], str]) -> None:
    """How a run that did not end by itself ends: :class:`Cancelled` when the run's token stopped it
    (here, or by a signal to the whole group), :class:`MediaError` when it outlived ``timeout``."""
    if ended == "stopped" or (not ended and _signalled_by_stop(returncode, stop)):
        raise Cancelled(f"{what} stopped: {stop.reason}")
    if ended:
        raise MediaError(f"{what} did not finish within {timeout:g} s and was stopped",
                         stderr_tail=_tail(stderr()), command=argv)


def _checked(result: RunResult, what: str, check: bool) -> RunResult:
    """``result``, or with ``check`` the error of a non-zero exit or of a full disk (even at exit 0)."""
    if check and (result.returncode != 0 or no_space_left(result.stderr)):
        raise _failed(what, result.returncode, result.stderr, result.args)
    return result


def probe(
    path: str | os.PathLike[str],
    *,
    ffprobe: str = "ffprobe",
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    logger: logging.Logger | None = None,
    first_packets: int = 4,
    every_packet: bool = False,
) -> dict[str, Any]:
    """ffprobe JSON of ``path``: format, streams and the first ``first_packets`` packets.

    The first packets give the B-frame reorder delay (first PTS − first DTS) in the same process,
    which the concat join needs. ``every_packet`` lists every packet instead (time, duration and
    keyframe flag only; read, not decoded): what a screen recording's checks and head cuts need,
    still in one process. An empty or unreadable file raises :class:`MediaError`.
    """
    p = os.fspath(path)
    if not os.path.exists(p):
        raise MediaError(f"media file not found: {p}")
    if os.path.getsize(p) == 0:
        raise MediaError(f"media file is empty (0 bytes): {p}")
    argv = probe_args(p, ffprobe, first_packets, every_packet=every_packet)
    result = run(argv, timeout=timeout, logger=logger, check=False, what="ffprobe")
    if result.returncode != 0:
        raise MediaError(f"cannot read media file {p} (corrupt, truncated or not media)",
                         stderr_tail=_tail(result.stderr), command=result.args)
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise MediaError(f"ffprobe printed no JSON for {p}", stderr_tail=_tail(result.stderr),
                         command=result.args) from exc
    if not data.get("streams"):
        raise MediaError(f"media file has no audio or video stream: {p}",
                         stderr_tail=_tail(result.stderr), command=result.args)
    return data


def decoded_duration(
    path: str | os.PathLike[str],
    *,
    ffmpeg: str = "ffmpeg",
    timeout: float = DEFAULT_TIMEOUT,
    logger: logging.Logger | None = None,
) -> float:
    """Duration of the first audio stream as *decoded* (seconds).

    Needed for an MP3 without a gapless header: ffprobe's duration counts the encoder delay and
    padding frames, which can be more than the output may differ from the call. Decoding
    telephone-rate audio is cheap next to the mux.
    """
    reached: list[float] = []
    run([ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-i", os.fspath(path), "-map", "0:a:0",
         "-f", "null", "-"], timeout=timeout, logger=logger, progress=reached.append,
        what="ffmpeg (audio duration)")
    if not reached or reached[-1] <= 0:
        raise MediaError(f"audio file {path} decodes to nothing")
    return reached[-1]


class Prestarted:
    """An ffmpeg/ffprobe process started *before* its input exists, reading it from stdin later.

    Why: a Debian ffmpeg/ffprobe spends a noticeable time in the dynamic loader (hundreds of
    shared libraries) before it reads a byte. Verifying the muxed file needs one more ffprobe after the mux; started
    with ``-i pipe:0`` while the mux runs, its start-up overlaps the mux and only the parse is left
    when the file is complete. :meth:`finish` streams the file in (stopping when the process has
    read enough and exits) and returns a :class:`RunResult` like :func:`run`; :meth:`cancel` ends
    it when the file never comes. Same logging, timeout and stderr-tail rules as :func:`run`.
    """

    def __init__(self, args: Sequence[str], *, logger: logging.Logger | None = None, what: str = "ffprobe"):
        self.logger = logger or log
        self.argv = [str(a) for a in args]
        self.what = what
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self.proc = _start(self.argv, what, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.started = time.monotonic()
        self._readers = [threading.Thread(target=self._drain, args=(s, b), daemon=True)
                         for s, b in ((self.proc.stdout, self._out), (self.proc.stderr, self._err))]
        for t in self._readers:
            t.start()

    @staticmethod
    def _drain(stream: Any, chunks: list[bytes]) -> None:
        chunks.extend(iter(lambda: stream.read(65536), b""))

    def _feed(self, path: str) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    stdin.write(chunk)
        except (BrokenPipeError, ConnectionResetError, ValueError):
            pass  # the reader had enough (it read the header and exited), or was stopped
        except OSError as exc:
            self.logger.warning("feeding %s to %s: %s", path, self.what, exc)
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def finish(self, path: str | os.PathLike[str], *, timeout: float = DEFAULT_PROBE_TIMEOUT,
               check: bool = True) -> RunResult:
        """Stream ``path`` into the process, wait for it (≤ ``timeout`` s) and return its output."""
        p = os.fspath(path)
        self.logger.info("running: %s < %s", shlex.join(self.argv), shlex.quote(p))
        fed = time.monotonic()
        writer = threading.Thread(target=self._feed, args=(p,), daemon=True)
        writer.start()
        stop = cancel.current()
        ended = _wait(self.proc, timeout, stop)
        if ended:
            self.cancel()
        else:
            writer.join()
            for t in self._readers:
                t.join()
        _raise_if_cut_short(ended, self.proc.returncode, stop, what=self.what, timeout=timeout, argv=self.argv,
                            stderr=lambda: self._text(self._err))
        stdout, stderr = self._text(self._out), self._text(self._err)
        self.logger.debug("%s finished rc=%s in %.2f s (%.2f s after its input was ready)", self.what,
                          self.proc.returncode, time.monotonic() - self.started, time.monotonic() - fed)
        return _checked(RunResult(self.argv, self.proc.returncode, stdout, stderr, time.monotonic() - fed),
                        self.what, check)

    def cancel(self) -> None:
        """Stop the process (if still running) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    @staticmethod
    def _text(chunks: list[bytes]) -> str:
        return b"".join(chunks).decode("utf-8", errors="replace")


def probe_args(path: str, ffprobe: str = "ffprobe", first_packets: int = 4, *,
               every_packet: bool = False) -> list[str]:
    """The ffprobe argv of :func:`probe` (``path`` may be ``pipe:0``)."""
    argv = [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams"]
    if every_packet:
        argv += ["-show_entries", "packet=stream_index,pts_time,dts_time,duration_time,flags"]
    elif first_packets:
        argv += ["-show_packets", "-read_intervals", f"%+#{first_packets}"]
    return [*argv, path]
