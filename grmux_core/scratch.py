"""Scratch space under ``[processing] temp_dir``: one private folder per call, one shared clip cache.

* ``grmux-work-<pid>-<call id>/`` — a call's downloads, decrypted copies and output; removed when
  the call ends, whatever happened, and by :func:`clean_stale_workdirs` when its process died.
* ``grmux-pad-cache/`` — the one-frame padding clips (black frames, no call data), shared by every
  process that uses this temp dir, so a worker encodes each output signature's clip once, not once
  per call. Clips are written under a unique name and renamed into place (a reader never sees a
  partial clip); a mux works on its own hard link of the clip, so eviction never pulls a clip from
  under a running mux. At most :data:`PAD_CACHE_MAX_FILES` clips are kept (least recently used
  evicted): a clip is a few kilobytes, and a site has a handful of screen formats.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

log = logging.getLogger("grmux.scratch")

WORK_PREFIX = "grmux-work-"
PAD_CACHE_NAME = "grmux-pad-cache"
#: Most padding clips kept in the cache; beyond it the least recently used are deleted.
PAD_CACHE_MAX_FILES = 64
#: A half-written clip (``.pad_*.part.mp4``) older than this belongs to a dead process.
STALE_PART_SECONDS = 3600.0


def call_workdir(temp_dir: str | os.PathLike[str], call_id: str) -> Path:
    """The call's private scratch folder (one per process, so two instances never share one)."""
    return Path(temp_dir) / f"{WORK_PREFIX}{os.getpid()}-{call_id}"


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

    Only ``grmux-work-*`` folders are candidates: the padding-clip cache is never removed.
    """
    removed = 0
    for path in Path(temp_dir).glob(f"{WORK_PREFIX}*"):
        pid_text = path.name[len(WORK_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit() and pid_alive(int(pid_text)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    if removed:
        (logger or log).info("removed %d stale scratch folder(s) of dead runs from %s", removed, temp_dir)
    return removed


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
