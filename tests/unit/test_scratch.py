"""Scratch space: call folders of dead processes are removed, the padding-clip cache never is, and
the cache stays bounded (least recently used clips evicted first)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from grmux_core.scratch import (
    PAD_CACHE_MAX_FILES,
    STALE_PART_SECONDS,
    WORK_PREFIX,
    call_workdir,
    clean_stale_workdirs,
    padding_cache_dir,
    trim_padding_cache,
)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_call_folders_go_and_the_padding_cache_stays(tmp_path):
    dead = tmp_path / f"{WORK_PREFIX}{dead_pid()}-call1"
    mine = call_workdir(tmp_path, "call2")
    cache = padding_cache_dir(tmp_path)
    for folder in (dead, mine, cache):
        folder.mkdir()
        (folder / "x.mp4").write_bytes(b"x")
    assert clean_stale_workdirs(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, cache.name])
    assert (cache / "x.mp4").exists()


def make_clips(folder, n: int, now: float) -> list[str]:
    """``n`` fake clips, the first the least recently used."""
    folder.mkdir(exist_ok=True)
    names = []
    for k in range(n):
        path = folder / f"pad_h264_{k:03d}.mp4"
        path.write_bytes(b"clip")
        os.utime(path, (now - 1000 + k, now - 1000 + k))
        names.append(path.name)
    return names


def test_the_cap_evicts_the_least_recently_used_clips(tmp_path):
    names = make_clips(tmp_path, PAD_CACHE_MAX_FILES + 5, time.time())
    os.utime(tmp_path / names[0])  # just used: kept although it was made first
    assert trim_padding_cache(tmp_path) == 5
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert len(kept) == PAD_CACHE_MAX_FILES
    assert kept == sorted([names[0], *names[6:]])


def test_under_the_cap_nothing_is_evicted_and_only_dead_writers_parts_go(tmp_path):
    now = time.time()
    names = make_clips(tmp_path, 3, now)
    fresh, stale = tmp_path / ".pad_h264_x.1-2.part.mp4", tmp_path / ".pad_h264_y.3-4.part.mp4"
    fresh.write_bytes(b"half")
    stale.write_bytes(b"half")
    os.utime(stale, (now - STALE_PART_SECONDS - 60, now - STALE_PART_SECONDS - 60))
    assert trim_padding_cache(tmp_path) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names, fresh.name])
