"""Scratch space: call folders of dead processes are removed, the padding-clip cache never is, and
the cache stays bounded (least recently used clips evicted first)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from grmux_core.scratch import (
    LOCK_NAME,
    PAD_CACHE_MAX_FILES,
    STALE_PART_SECONDS,
    UNLOCKED_GRACE_SECONDS,
    WORK_PREFIX,
    CallScratch,
    call_workdir,
    clean_stale_workdirs,
    padding_cache_dir,
    trim_padding_cache,
)

LOCK_AND_WAIT = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def locked_by_child(folder, seconds: float) -> subprocess.Popen:
    """``folder``'s lock held by another process (as an instance in another container would)."""
    folder.mkdir()
    (folder / "x.mp4").write_bytes(b"x")
    child = subprocess.Popen([sys.executable, "-c", LOCK_AND_WAIT, str(folder / LOCK_NAME), str(seconds)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "locked"
    return child


def test_a_folder_is_stale_only_when_nobody_holds_its_lock_and_the_padding_cache_stays(tmp_path):
    # "pid 1" in the name: to an instance in another PID namespace every pid looks dead or foreign;
    # only the lock says whether the folder is in use
    live_folder = tmp_path / f"{WORK_PREFIX}otherhost-1234abcd-4026531836-1-call1"
    live = locked_by_child(live_folder, 60)
    dead = locked_by_child(tmp_path / f"{WORK_PREFIX}otherhost-1234abcd-4026531836-2-call2", 0)
    dead.wait()  # its lock went with it, as after kill -9
    cache = padding_cache_dir(tmp_path)
    cache.mkdir()
    (cache / "x.mp4").write_bytes(b"x")
    creating = tmp_path / f"{WORK_PREFIX}otherhost-1234abcd-4026531836-3-call3"
    creating.mkdir()  # a folder whose lock file is not there yet: being created, kept
    try:
        with CallScratch(tmp_path, "call4") as mine:
            assert clean_stale_workdirs(tmp_path) == 1
            assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
                [live_folder.name, cache.name, creating.name, mine.path.name])
            assert (cache / "x.mp4").exists() and (mine.path / LOCK_NAME).exists()
        assert not mine.path.exists()
        old = time.time() - UNLOCKED_GRACE_SECONDS - 1
        os.utime(creating, (old, old))
        assert clean_stale_workdirs(tmp_path) == 1 and not creating.exists()
    finally:
        live.kill()
        live.wait()
    assert clean_stale_workdirs(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == [cache.name]


def test_the_folder_name_carries_host_boot_and_pid_namespace_beside_the_pid(tmp_path):
    name = call_workdir(tmp_path, "c1").name
    assert name.startswith(WORK_PREFIX) and name.endswith(f"-{os.getpid()}-c1")
    assert str(os.stat("/proc/self/ns/pid").st_ino) in name


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
