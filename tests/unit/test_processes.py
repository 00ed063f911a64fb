"""The bounded stop every test, the demo and the benchmarks use: SIGTERM, grace, SIGKILL of the group."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deployments.processes import run_process, start_process, stop_process

#: a parent that ignores SIGTERM, with a child that ignores it too; prints the child's pid
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
                          "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
print(child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Running (a zombie, killed and waiting for its parent, does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def gone_soon(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_process_that_exits_on_sigterm_is_terminated():
    proc = start_process([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"],
                         stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "up\n"
    stopped = stop_process(proc, grace=30)
    assert stopped.how == "terminated" and not stopped.escalated
    assert stopped.returncode == -15 and proc.returncode == -15


def test_a_group_that_ignores_sigterm_is_killed_after_the_grace_period():
    proc = start_process([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    assert alive(child)
    stopped = stop_process(proc, grace=1.0)
    assert stopped.how == "killed" and stopped.escalated and stopped.returncode == -9
    assert stopped.seconds >= 1.0
    assert gone_soon(child), "the child in the same group must get the SIGKILL too"


def test_stragglers_of_a_leader_that_exited_in_time_are_killed():
    code = ("import subprocess, sys; child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
            " print(child.pid, flush=True); sys.stdin.read()")
    proc = start_process([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    proc.stdin.close()  # asked to exit: it does, leaving its child behind
    stopped = stop_process(proc, exit_wait=30)
    assert stopped.how == "exited" and stopped.returncode == 0
    assert gone_soon(child)


def test_a_process_outside_its_own_group_is_signalled_alone():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # in the test's group
    assert os.getpgid(proc.pid) == os.getpgid(0)
    stopped = stop_process(proc, grace=30)
    assert stopped.how == "terminated"  # and this test process is still here to say so


def test_a_reaped_process_is_left_alone():
    proc = start_process([sys.executable, "-c", "pass"])
    proc.wait(timeout=60)
    assert stop_process(proc).how == "exited"


def test_run_process_stops_the_whole_group_on_timeout():
    with pytest.raises(subprocess.TimeoutExpired) as info:
        run_process([sys.executable, "-c", STUBBORN], timeout=5, grace=1.0, capture_output=True, text=True)
    child = int(info.value.stdout)
    assert gone_soon(child)


def test_run_process_returns_like_subprocess_run():
    done = run_process([sys.executable, "-c", "import sys; print(sys.stdin.read().upper()); sys.exit(3)"],
                       timeout=60, input="abc", capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, "ABC\n", "")


def test_children_do_not_inherit_an_ignored_sigint():
    """Started in the background by a non-interactive shell, the tests (or the demo) inherit SIGINT
    ignored; a Prefect worker started from there would turn SIGTERM into an ignored SIGINT."""
    report = "import signal; print(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)"
    parent = f"""
import signal, subprocess, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
from deployments.processes import start_process
plain = subprocess.run([sys.executable, "-c", {report!r}], capture_output=True, text=True).stdout.strip()
ours = start_process([sys.executable, "-c", {report!r}], stdout=subprocess.PIPE, text=True).communicate()[0].strip()
print(plain, ours)
"""
    done = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=60, check=False,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.split() == ["True", "False"], done.stdout + done.stderr
