"""Scratch space under ``[processing] temp_dir``: one private folder per call, one shared clip cache.

* ``grmux-work-<host>-<boot id>-<pid namespace>-<pid>-<call id>/`` — a call's downloads, decrypted
  copies and output (:class:`CallScratch`); removed when the call ends, whatever happened, and by
  :func:`clean_stale_workdirs` when its process died. A live process holds an OS lock
  (``flock``) on the folder's ``.lock`` file for as long as the folder exists, so "dead" means
  "nobody holds the lock" — not "this pid is not running here": an instance in another PID
  namespace (a container on the same host, a temp_dir shared over NFS) sees the other's pids as
  dead, but not its locks. The kernel drops the lock when the process dies, kill -9 included.
* ``grmux-pad-cache/`` — the one-frame padding clips (black frames, no call data), shared by every
  process that uses this temp dir, so a worker encodes each output signature's clip once, not once
  per call. Clips are written under a unique name and renamed into place (a reader never sees a
  partial clip); a mux works on its own hard link of the clip, so eviction never pulls a clip from
  under a running mux. At most :data:`PAD_CACHE_MAX_FILES` clips are kept (least recently used
  evicted): a clip is a few kilobytes, and a site has a handful of screen formats.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import socket
import time
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Self

log = logging.getLogger("grmux.scratch")

WORK_PREFIX = "grmux-work-"
PAD_CACHE_NAME = "grmux-pad-cache"
#: Most padding clips kept in the cache; beyond it the least recently used are deleted.
PAD_CACHE_MAX_FILES = 64
#: A half-written clip (``.pad_*.part.mp4``) older than this belongs to a dead process.
STALE_PART_SECONDS = 3600.0
#: The file of each call folder that its live process keeps locked.
LOCK_NAME = ".lock"
#: A call folder without its lock file is being created (mkdir, then lock) unless older than this.
UNLOCKED_GRACE_SECONDS = 60.0


@cache
def instance_id() -> str:
    """``<host>-<boot id>-<pid namespace>-<pid>``: unique among every process that may share a
    temp_dir (two containers on one host can have the same pid, never the same namespace)."""
    host = re.sub(r"[^A-Za-z0-9.]", "", socket.gethostname())[:32] or "host"
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:8]
    except OSError:
        boot = "noboot"
    try:
        namespace = str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        namespace = "0"
    return f"{host}-{boot}-{namespace}-{os.getpid()}"


def call_workdir(temp_dir: str | os.PathLike[str], call_id: str) -> Path:
    """The call's private scratch folder (one per process, so two instances never share one)."""
    return Path(temp_dir) / f"{WORK_PREFIX}{instance_id()}-{call_id}"


class CallScratch:
    """A call's scratch folder, created and locked on entry, removed (then unlocked) on exit."""

    def __init__(self, temp_dir: str | os.PathLike[str], call_id: str):
        self.path = call_workdir(temp_dir, call_id)
        self._fd: int | None = None

    def __enter__(self) -> Self:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_NAME, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock, after the folder is gone
            self._fd = None


def padding_cache_dir(temp_dir: str | os.PathLike[str]) -> Path:
    """Where padding clips are cached under ``temp_dir`` (kept across calls and runs)."""
    return Path(temp_dir) / PAD_CACHE_NAME


def trim_padding_cache(folder: str | os.PathLike[str], keep: int = PAD_CACHE_MAX_FILES) -> int:
    """Delete the least recently used clips beyond ``keep``, and dead writers' partial files.

    Safe while other processes use the folder: a clip being read is a hard link elsewhere too,
    and a clip that vanished meanwhile (another process trimmed it) is simply skipped.
    """
    clips = []
    for path in Path(folder).glob("pad_*.mp4"):
        try:
            clips.append((path.stat().st_mtime, path.name, path))
        except FileNotFoundError:
            continue
    clips.sort(reverse=True)
    for _, _, path in clips[keep:]:
        path.unlink(missing_ok=True)
    now = time.time()
    for part in Path(folder).glob(".pad_*.part.mp4"):
        try:
            if now - part.stat().st_mtime > STALE_PART_SECONDS:
                part.unlink(missing_ok=True)
        except FileNotFoundError:
            continue
    return max(0, len(clips) - keep)


def clean_stale_workdirs(temp_dir: str | os.PathLike[str], logger: logging.Logger | None = None) -> int:
    """Remove call folders left by dead processes (kill -9, power loss). Returns how many.

    Only ``grmux-work-*`` folders are candidates, and only when nobody holds their lock: the
    padding-clip cache is never removed, a live instance's folder never (whatever its pid).
    """
    removed = 0
    for path in Path(temp_dir).glob(f"{WORK_PREFIX}*"):
        if _remove_if_unlocked(path):
            removed += 1
    if removed:
        (logger or log).info("removed %d stale scratch folder(s) of dead runs from %s", removed, temp_dir)
    return removed


def _remove_if_unlocked(path: Path) -> bool:
    """Remove ``path`` when no process holds its lock (taking the lock meanwhile). True if removed."""
    try:
        fd = os.open(path / LOCK_NAME, os.O_RDWR)
    except FileNotFoundError:  # being created (mkdir before lock), being removed, or a pre-lock folder
        with contextlib.suppress(FileNotFoundError):
            if time.time() - path.stat().st_mtime > UNLOCKED_GRACE_SECONDS:
                shutil.rmtree(path, ignore_errors=True)
                return True
        return False
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: a live process works in it
        os.close(fd)
        return False
    try:
        shutil.rmtree(path, ignore_errors=True)
    finally:
        os.close(fd)
    return True


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]
