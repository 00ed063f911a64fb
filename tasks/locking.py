"""Exactly-once per call across instances: Prefect transactions with SERIALIZABLE isolation.

The per-call task's cache key is the call id plus its sorted source media ids
(:func:`grmux_core.triage.work_key`). With SERIALIZABLE isolation Prefect takes a lock on that
key before the task body runs and commits the result record before releasing it, so a second
instance working on an overlapping window or shard waits, then finds the record and does nothing.
The task body also re-reads the screen recording after the lock is taken.

Where the locks live:

* one host (default): file locks in ``$PREFECT_HOME/grmux-locks``, shared by every worker process
  on the host (:class:`OwnedFileLocks`);
* several hosts: set ``GRMUX_REDIS_URL=redis://host:6379/0`` and Prefect-redis's
  ``RedisLockManager`` is used. The cache *records* must then be shared too: point
  ``PREFECT_RESULTS_LOCAL_STORAGE_PATH`` at a shared folder or set a default result storage block.

A lock never outlives its owner for long: Prefect asks for locks without a hold timeout, so a
process killed with -9 in the middle of a call would keep its lock forever and every later run
would wait on that call. Every lock therefore gets a hold timeout (``GRMUX_LOCK_HOLD_SECONDS``,
default 2 hours, longer than any call takes), and a file lock whose owner was a process of this
host that is gone is released at once.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy
from prefect.locking.filesystem import FileSystemLockManager
from prefect.settings import PREFECT_HOME

from grmux_core.scratch import pid_alive

#: How long a finished call's record keeps a rerun from doing it again (covers the nightly run's
#: two days, with margin); after that the RWS "already muxed" check alone decides.
CACHE_EXPIRATION = timedelta(days=7)


class CallWorkPolicy(CachePolicy):
    """Cache key = the ``work_key`` parameter of the per-call task (call id + its sources)."""

    def compute_key(self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        return inputs.get("work_key")


def hold_seconds() -> float:
    return float(os.environ.get("GRMUX_LOCK_HOLD_SECONDS", "") or 2 * 3600)


def pid_namespace() -> str:
    """This process's PID namespace: a pid means something only inside its own namespace."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def owner_is_gone(info: dict[str, Any]) -> bool:
    """Whether a lock file's owner was a process of this host *and PID namespace* that no longer
    exists (a container sharing the host and its hostname sees other pids, not the owner's)."""
    pid = info.get("pid")
    if info.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False
    if info.get("pidns", pid_namespace()) != pid_namespace():
        return False
    return not pid_alive(pid)


class OwnedFileLocks(FileSystemLockManager):
    """File locks that expire after a hold timeout and die with their owner process.

    Prefect's holder string is a transaction id, so the lock file also names the owner's host and
    pid. The file is created with its whole content in one step (written aside, then hard-linked
    into place), so a process killed at any instant leaves either no lock or a complete one.
    """

    #: an unreadable lock file (from another writer) older than this is treated as abandoned
    UNREADABLE_GRACE_SECONDS = 30.0

    def __init__(self, lock_files_directory: Path, hold_timeout: float):
        super().__init__(lock_files_directory)
        self.hold_timeout = hold_timeout

    def acquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                     hold_timeout: float | None = None) -> bool:
        hold = hold_timeout or self.hold_timeout
        self._ensure_lock_files_directory_exists()
        path = Path(self._lock_path_for_key(key))
        if (self.is_locked(key) and not self.is_lock_holder(key, holder)
                and not self.wait_for_lock(key, acquire_timeout)):
            return False
        expiration = datetime.now(UTC) + timedelta(seconds=hold)
        info = {"holder": holder, "expiration": str(expiration), "host": socket.gethostname(), "pid": os.getpid(),
                "pidns": pid_namespace()}
        aside = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        aside.write_text(json.dumps(info))
        try:
            os.link(aside, path)
        except FileExistsError:
            if not self.is_lock_holder(key, holder):
                return self.acquire_lock(key, holder, acquire_timeout, hold)
            os.replace(aside, path)  # already ours: refresh its expiration
        finally:
            aside.unlink(missing_ok=True)
        self._locks[key] = {"holder": holder, "expiration": expiration, "path": path}
        return True

    async def aacquire_lock(self, key: str, holder: str, acquire_timeout: float | None = None,
                            hold_timeout: float | None = None) -> bool:
        return self.acquire_lock(key, holder, acquire_timeout, hold_timeout)

    def is_locked(self, key: str, use_cache: bool = False) -> bool:
        try:
            locked = super().is_locked(key, use_cache=use_cache)
        except ValueError:  # an empty or partial file written by another lock manager
            path = Path(self._lock_path_for_key(key))
            try:
                age = time.time() - path.stat().st_mtime
            except FileNotFoundError:
                return False
            if age < self.UNREADABLE_GRACE_SECONDS:
                return True
            path.unlink(missing_ok=True)
            self._locks.pop(key, None)
            return False
        if not locked:
            return False
        info = self._get_lock_info(key, use_cache=False)
        if info is not None and owner_is_gone(dict(info)):
            Path(info["path"]).unlink(missing_ok=True)
            self._locks.pop(key, None)
            return False
        return True


def lock_manager() -> Any:
    url = os.environ.get("GRMUX_REDIS_URL", "").strip()
    if url:
        from prefect_redis.locking import RedisLockManager

        class ExpiringRedisLocks(RedisLockManager):
            """Redis locks with the same hold timeout (a dead host's lock expires)."""

            def acquire_lock(self, key, holder, acquire_timeout=None, hold_timeout=None):  # type: ignore[override]
                return super().acquire_lock(key, holder, acquire_timeout, hold_timeout or hold_seconds())

            async def aacquire_lock(self, key, holder, acquire_timeout=None, hold_timeout=None):  # type: ignore[override]
                return await super().aacquire_lock(key, holder, acquire_timeout, hold_timeout or hold_seconds())

        return ExpiringRedisLocks(connection_url=url)
    return OwnedFileLocks(Path(PREFECT_HOME.value()) / "grmux-locks", hold_seconds())


def call_cache_policy() -> CachePolicy:
    return CallWorkPolicy().configure(isolation_level="SERIALIZABLE", lock_manager=lock_manager())
