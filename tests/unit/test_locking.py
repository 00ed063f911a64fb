"""Per-call locks die with their owner and expire: a kill -9 never blocks later runs for good."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from deployments.processes import start_process
from tasks.locking import OwnedFileLocks, owner_is_gone


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def wait_until_exited(child: subprocess.Popen, timeout: float = 60) -> None:
    """Until ``child`` has exited, without reaping it (it stays a zombie)."""
    deadline = time.monotonic() + timeout
    while os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        assert time.monotonic() < deadline, "the killed child did not exit"
        time.sleep(0.01)


def test_the_lock_file_names_its_owner_and_a_dead_owner_frees_it(tmp_path):
    locks = OwnedFileLocks(tmp_path, hold_timeout=3600)
    assert locks.acquire_lock("call-a", holder="txn-1")
    info = json.loads((tmp_path / "call-a.lock").read_text())
    assert (info["holder"], info["host"], info["pid"]) == ("txn-1", socket.gethostname(), os.getpid())
    assert info["expiration"] is not None
    assert locks.is_locked("call-a")
    assert not locks.acquire_lock("call-a", holder="txn-2", acquire_timeout=0.3)
    info["pid"] = dead_pid()  # as if a process killed with -9 had taken it
    (tmp_path / "call-a.lock").write_text(json.dumps(info))
    assert not locks.is_locked("call-a")
    assert locks.acquire_lock("call-a", holder="txn-2", acquire_timeout=1)
    assert locks.is_lock_holder("call-a", "txn-2")


def test_another_hosts_lock_is_trusted_until_it_expires(tmp_path):
    locks = OwnedFileLocks(tmp_path, hold_timeout=0.5)
    assert locks.acquire_lock("call-b", holder="txn-3")
    info = json.loads((tmp_path / "call-b.lock").read_text()) | {"host": "elsewhere.example", "pid": dead_pid()}
    (tmp_path / "call-b.lock").write_text(json.dumps(info))
    assert not owner_is_gone(info)  # a pid on another host cannot be checked
    assert locks.is_locked("call-b")
    time.sleep(0.8)
    assert not locks.is_locked("call-b")  # the hold timeout frees it


def test_a_killed_but_unreaped_owner_counts_as_gone(tmp_path, cleanup):
    locks = OwnedFileLocks(tmp_path, hold_timeout=3600)
    child = cleanup.process(start_process([sys.executable, "-c", "import time; time.sleep(60)"]))  # reaped after
    assert locks.acquire_lock("call-z", holder="txn-z")
    info = json.loads((tmp_path / "call-z.lock").read_text()) | {"pid": child.pid}
    (tmp_path / "call-z.lock").write_text(json.dumps(info))
    assert locks.is_locked("call-z")  # its owner runs
    child.kill()
    wait_until_exited(child)  # killed, not yet waited for: a zombie
    assert not locks.is_locked("call-z")


def test_an_empty_lock_file_blocks_briefly_then_counts_as_abandoned(tmp_path):
    locks = OwnedFileLocks(tmp_path, hold_timeout=3600)
    (tmp_path / "call-e.lock").write_text("")
    assert locks.is_locked("call-e")
    old = time.time() - 120
    os.utime(tmp_path / "call-e.lock", (old, old))
    assert not locks.is_locked("call-e")
    assert locks.acquire_lock("call-e", holder="txn-e", acquire_timeout=1)
