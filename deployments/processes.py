"""Start and stop the helper processes the demo, the tests and the benchmarks run (a Prefect server,
workers, flow processes), one way.

Each process is started in a session of its own, so that its process group holds it and every
child it starts (a worker's flow-run processes, their ffmpeg), and nothing else. Stopping is a
bounded escalation on that group: SIGTERM, a grace period, SIGKILL, a last bounded wait. A slow
process never makes the caller wait forever and never raises: :func:`stop_process` says how the
process ended, and logs a warning when it had to be killed.

A Prefect worker stops on SIGTERM by sending itself SIGINT. A program started in the background by
a non-interactive shell (a CI script, ``nohup``, ``make test &``) inherits SIGINT *ignored* and
passes that on to every child, so such a worker would never stop on SIGTERM: :func:`start_process`
first gives its caller Python's default SIGINT handler (a handler, unlike an ignore, is reset to
the default when the child execs).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("grmux.processes")

GRACE_S = 30.0  # SIGTERM → SIGKILL
KILL_WAIT_S = 10.0  # SIGKILL → giving up
POLL_S = 0.1


@dataclass(frozen=True)
class Stopped:
    """How :func:`stop_process` ended a process."""

    pid: int
    how: str  # "exited" (before SIGTERM), "terminated" (on SIGTERM), "killed" (SIGKILL), "unkillable"
    returncode: int | None
    seconds: float  # from the stop request to the end

    @property
    def escalated(self) -> bool:
        """SIGTERM was not enough."""
        return self.how in ("killed", "unkillable")


def start_process(argv: Sequence[str], **popen: Any) -> subprocess.Popen:
    """``subprocess.Popen`` in a new session (the process leads a group of its own), with SIGINT
    at its default disposition (see :func:`handle_sigint`)."""
    handle_sigint()
    return subprocess.Popen(list(argv), start_new_session=True, **popen)


def handle_sigint() -> None:
    """Give this process Python's default SIGINT handler if it inherited SIGINT ignored, so the
    children it starts from now on do not inherit the ignore. Main thread only; a no-op elsewhere."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def stop_process(proc: subprocess.Popen, *, grace: float = GRACE_S, kill_wait: float = KILL_WAIT_S,
                 exit_wait: float = 0.0) -> Stopped:
    """End ``proc`` and its process group: SIGTERM, ``grace`` seconds, SIGKILL, ``kill_wait`` seconds.

    ``exit_wait``: seconds to let a process that was already asked to exit (its stdin closed, say)
    do so before the SIGTERM. The group is signalled only when ``proc`` leads one of its own (see
    :func:`start_process`); otherwise only ``proc`` is. The group's stragglers get the SIGKILL
    even when the leader exited in time. Never raises for a process that will not die.
    """
    started = time.monotonic()
    if proc.returncode is not None:  # reaped already: its pid, hence its group id, may be another's now
        return Stopped(proc.pid, "exited", proc.returncode, 0.0)
    how = "exited"
    if not _wait_exit(proc, exit_wait):
        how = "terminated"
        _signal_group(proc, signal.SIGTERM)
        if not _wait_exit(proc, grace):
            how = "killed"
    _signal_group(proc, signal.SIGKILL)  # the leader if it is still there, and the group's stragglers
    if how == "killed" and not _wait_exit(proc, kill_wait):
        seconds = time.monotonic() - started
        log.error("process %s (%s) still runs %.0f s after SIGKILL", proc.pid, _name(proc), seconds)
        return Stopped(proc.pid, "unkillable", None, seconds)
    returncode = proc.wait()  # it has exited: this only reaps it
    stopped = Stopped(proc.pid, how, returncode, time.monotonic() - started)
    if stopped.escalated:
        log.warning("process %s (%s) ignored SIGTERM for %.0f s: killed", proc.pid, _name(proc), grace)
    else:
        log.info("process %s (%s) %s in %.1f s", proc.pid, _name(proc), how, stopped.seconds)
    return stopped


def run_process(argv: Sequence[str], *, timeout: float, grace: float = GRACE_S,
                **popen: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(..., timeout=...)`` with the whole group stopped on timeout (not just the
    direct child, whose children would otherwise outlive it), then ``TimeoutExpired`` raised.

    Output is captured when ``capture_output=True`` or ``stdout``/``stderr`` are given, as with
    ``subprocess.run``; ``text`` and ``input`` are passed through.
    """
    stdin_data = popen.pop("input", None)
    if popen.pop("capture_output", False):
        popen["stdout"] = popen["stderr"] = subprocess.PIPE
    if stdin_data is not None:
        popen["stdin"] = subprocess.PIPE
    proc = start_process(argv, **popen)
    try:
        out, err = proc.communicate(stdin_data, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        stop_process(proc, grace=grace)
        out, err = proc.communicate()  # what it wrote, for the error; the pipes are at EOF now
        raise subprocess.TimeoutExpired(exc.cmd, timeout, out, err) from None
    except BaseException:
        stop_process(proc, grace=grace)
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _wait_exit(proc: subprocess.Popen, seconds: float) -> bool:
    """Whether ``proc`` exits within ``seconds``, without reaping it: while it is a zombie its pid
    (and so its group id) cannot be given to another process."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
        except ChildProcessError:  # reaped by someone else
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_S)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        group = os.getpgid(proc.pid)
        if group == proc.pid:
            os.killpg(group, sig)
        else:  # not started by start_process: never signal a group we may belong to
            os.kill(proc.pid, sig)
    except (ProcessLookupError, PermissionError):  # already gone
        pass


def _name(proc: subprocess.Popen) -> str:
    args = proc.args if isinstance(proc.args, list | tuple) else [proc.args]
    return " ".join(str(a) for a in args)[:120]
