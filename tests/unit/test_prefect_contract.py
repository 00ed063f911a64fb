"""The Prefect internals ``tasks/locking.py`` builds on: fail loudly, naming the member, when they change.

``OwnedFileLocks`` subclasses Prefect's ``FileSystemLockManager`` and reaches into it: the lock
cache ``_locks``, ``_lock_path_for_key``, ``_ensure_lock_files_directory_exists``,
``_get_lock_info`` (and the ``ValueError`` it raises on a partial file), ``wait_for_lock``, the
JSON lock-file layout and the expiry done by ``is_locked``. None of this is public API, so a Prefect
upgrade may change it silently; these tests say which member moved. The behaviour (acquire,
release, expiry, dead owner, a SERIALIZABLE transaction) is exercised through the subclass itself.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect.filesystems import LocalFileSystem
from prefect.locking.filesystem import FileSystemLockManager
from prefect.locking.protocol import LockManager
from prefect.results import ResultStore
from prefect.transactions import IsolationLevel, transaction
from prefect_redis.locking import RedisLockManager

from tasks.locking import OwnedFileLocks

#: member of FileSystemLockManager → the parameters tasks/locking.py calls (or overrides) it with
CONTRACT: dict[str, list[str]] = {
    "__init__": ["self", "lock_files_directory"],
    "_ensure_lock_files_directory_exists": ["self"],
    "_lock_path_for_key": ["self", "key"],
    "_get_lock_info": ["self", "key", "use_cache"],
    "is_locked": ["self", "key", "use_cache"],
    "is_lock_holder": ["self", "key", "holder"],
    "wait_for_lock": ["self", "key", "timeout"],
    "release_lock": ["self", "key", "holder"],
    "acquire_lock": ["self", "key", "holder", "acquire_timeout", "hold_timeout"],
    "aacquire_lock": ["self", "key", "holder", "acquire_timeout", "hold_timeout"],
}
ACQUIRE = CONTRACT["acquire_lock"]


def parameters(owner: type, name: str) -> list[str]:
    member = inspect.getattr_static(owner, name, None)
    assert member is not None, f"{owner.__module__}.{owner.__qualname__}.{name} is gone; tasks/locking.py relies on it"
    return list(inspect.signature(member).parameters)


@pytest.mark.parametrize("name", CONTRACT)
def test_file_lock_manager_members_keep_their_names_and_parameters(name):
    found = parameters(FileSystemLockManager, name)
    assert found == CONTRACT[name], (
        f"prefect FileSystemLockManager.{name} now takes ({', '.join(found)}); "
        f"tasks/locking.py (OwnedFileLocks) expects ({', '.join(CONTRACT[name])})")


@pytest.mark.parametrize("owner, name", [
    (LockManager, "acquire_lock"), (LockManager, "aacquire_lock"),
    (OwnedFileLocks, "acquire_lock"), (OwnedFileLocks, "aacquire_lock"),
    (RedisLockManager, "acquire_lock"), (RedisLockManager, "aacquire_lock"),
])
def test_acquire_keeps_the_parameters_prefect_calls_and_our_overrides_pass_on(owner, name):
    """Prefect's ResultStore calls ``acquire_lock(key, holder, timeout)`` positionally; our overrides
    (the file locks, and the Redis subclass in ``lock_manager()``) pass ``hold_timeout`` fourth."""
    assert parameters(owner, name) == ACQUIRE, f"{owner.__qualname__}.{name} changed its parameters"
    is_async = inspect.iscoroutinefunction(inspect.getattr_static(owner, name))
    assert is_async == name.startswith("aa"), f"{owner.__qualname__}.{name} changed sync/async"


def test_the_lock_cache_path_and_file_layout(tmp_path):
    locks = FileSystemLockManager(tmp_path / "locks")
    assert locks._locks == {} and isinstance(locks._locks, dict), "FileSystemLockManager._locks is no longer a dict"
    path = locks._lock_path_for_key("call-a")
    assert path == (tmp_path / "locks" / "call-a.lock").resolve(), f"_lock_path_for_key now gives {path}"
    locks._ensure_lock_files_directory_exists()
    assert path.parent.is_dir(), "_ensure_lock_files_directory_exists no longer creates the directory"

    # the lock file OwnedFileLocks writes: Prefect's fields, the expiration as str(datetime), plus ours
    expiration = datetime.now(UTC) + timedelta(hours=1)
    path.write_text(json.dumps({"holder": "txn", "expiration": str(expiration), "host": "h1", "pid": 7}))
    info = locks._get_lock_info("call-a", use_cache=False)
    assert info is not None, "_get_lock_info no longer reads the lock file"
    assert (info["holder"], info["host"], info["pid"], Path(info["path"])) == ("txn", "h1", 7, path), (
        f"_get_lock_info no longer keeps every field of the file and its path: {info}")
    assert abs((info["expiration"] - expiration).total_seconds()) < 1e-3, "_get_lock_info: expiration not parsed"
    assert locks._locks["call-a"] is info, "_get_lock_info no longer caches into _locks"

    path.write_text("")  # another writer's file, caught between create and write
    with pytest.raises(ValueError):  # OwnedFileLocks.is_locked catches exactly this
        locks._get_lock_info("call-a", use_cache=False)

    path.write_text(json.dumps({"holder": "txn", "expiration": str(datetime.now(UTC) - timedelta(seconds=1))}))
    assert not locks.is_locked("call-a"), "is_locked no longer treats an expired lock as free"
    assert not path.exists() and "call-a" not in locks._locks, "is_locked no longer removes an expired lock"


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_acquire_wait_release_expiry_and_dead_owner_through_the_subclass(tmp_path):
    locks, other = OwnedFileLocks(tmp_path, hold_timeout=3600), OwnedFileLocks(tmp_path, hold_timeout=3600)
    assert locks.acquire_lock("k", "txn-1")
    assert locks.is_lock_holder("k", "txn-1") and other.is_locked("k")
    assert not other.acquire_lock("k", "txn-2", acquire_timeout=0.3)  # wait_for_lock gives up

    releaser = threading.Timer(0.3, locks.release_lock, args=("k", "txn-1"))
    releaser.start()
    assert other.acquire_lock("k", "txn-2", acquire_timeout=30)  # wait_for_lock sees the release
    releaser.join()
    assert other.is_lock_holder("k", "txn-2") and not locks.is_lock_holder("k", "txn-1")
    other.release_lock("k", "txn-2")
    assert not (tmp_path / "k.lock").exists() and "k" not in other._locks

    assert locks.acquire_lock("k", "txn-3", hold_timeout=0.3)  # expiry: super().is_locked frees it
    time.sleep(0.6)
    assert other.acquire_lock("k", "txn-4", acquire_timeout=1)

    info = json.loads((tmp_path / "k.lock").read_text())
    assert (info["host"], info["pid"]) == (socket.gethostname(), os.getpid())
    (tmp_path / "k.lock").write_text(json.dumps(info | {"pid": dead_pid()}))  # its owner was killed -9
    assert locks.acquire_lock("k", "txn-5", acquire_timeout=1)


def test_a_serializable_transaction_takes_our_lock_and_releases_it(tmp_path):
    locks = OwnedFileLocks(tmp_path / "locks", hold_timeout=3600)
    store = ResultStore(lock_manager=locks, result_storage=LocalFileSystem(basepath=str(tmp_path / "results")),
                        metadata_storage=LocalFileSystem(basepath=str(tmp_path / "records")))
    with transaction(key="call-t", store=store, isolation_level=IsolationLevel.SERIALIZABLE) as txn:
        info = json.loads((tmp_path / "locks" / "call-t.lock").read_text())
        assert info["pid"] == os.getpid(), "the transaction did not take the lock through OwnedFileLocks"
        txn.stage({"status": "muxed"})
    assert not (tmp_path / "locks" / "call-t.lock").exists(), "the transaction did not release the lock"
    with transaction(key="call-t", store=store, isolation_level=IsolationLevel.SERIALIZABLE) as again:
        assert again.is_committed(), "a second transaction on the key does not find the first one's record"
    assert store.acquire_lock("call-u", holder="h", timeout=0.5)  # ResultStore's positional call
    assert store.is_lock_holder("call-u", holder="h")
    store.release_lock("call-u", holder="h")
    assert not (tmp_path / "locks" / "call-u.lock").exists()


def test_a_transaction_whose_body_raises_commits_no_record_and_releases_its_lock(tmp_path):
    """A cancelled call's task raises (``tasks.call.CallCancelled``) instead of returning its outcome:
    that is what keeps Prefect from caching it as done; a returned outcome would be committed."""
    locks = OwnedFileLocks(tmp_path / "locks", hold_timeout=3600)
    store = ResultStore(lock_manager=locks, result_storage=LocalFileSystem(basepath=str(tmp_path / "results")),
                        metadata_storage=LocalFileSystem(basepath=str(tmp_path / "records")))
    with pytest.raises(RuntimeError), \
            transaction(key="call-c", store=store, isolation_level=IsolationLevel.SERIALIZABLE) as txn:
        txn.stage({"status": "cancelled"})
        raise RuntimeError("cancelled while it ran")
    assert not (tmp_path / "locks" / "call-c.lock").exists(), "the rolled-back transaction kept its lock"
    with transaction(key="call-c", store=store, isolation_level=IsolationLevel.SERIALIZABLE) as again:
        assert not again.is_committed(), "a transaction that raised left a record: the rerun would skip the call"
