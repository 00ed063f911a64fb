"""The padding-clip cache shared by processes: racing writers leave one valid clip, and a mux keeps
its own link to the clip, so a trim of the cache by another process cannot pull it away."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grmux_core.mux import MuxTools, own_padding_clip, padding_clip, probe_file
from grmux_core.probe import VideoSignature

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SIG = VideoSignature("h264", 320, 240, "yuv420p", 12800, "25/1", "High", 13)

RACER = """
import json, sys, time
from pathlib import Path
from grmux_core.mux import MuxTools, padding_clip
from grmux_core.probe import VideoSignature
go, cache = Path(sys.argv[1]), Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
print(padding_clip(VideoSignature(*json.loads(sys.argv[3])), cache, MuxTools()))
"""


def test_processes_racing_for_one_clip_leave_one_valid_clip(tmp_path):
    go, cache = tmp_path / "go", tmp_path / "cache"
    sig = json.dumps([SIG.codec, SIG.width, SIG.height, SIG.pix_fmt, SIG.timescale, SIG.fps, SIG.profile, SIG.level])
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(go), str(cache), sig], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True) for _ in range(3)]
    time.sleep(1.0)  # all three are waiting: they start together and all find the cache empty
    go.touch()
    paths = {racer.communicate(timeout=120)[0].strip() for racer in racers}
    assert [racer.returncode for racer in racers] == [0, 0, 0]
    assert len(paths) == 1
    clip = Path(paths.pop())
    assert [p.name for p in cache.iterdir()] == [clip.name]  # no partial file left behind
    info = probe_file(clip, every_packet=True)
    assert (info.video.codec, info.video.width, info.video.height, info.video.pix_fmt) == ("h264", 320, 240, "yuv420p")
    assert info.video.timescale == SIG.timescale and len(info.keyframes) == 1


def test_a_mux_keeps_its_clip_when_the_cache_is_trimmed(tmp_path):
    cache, work = tmp_path / "cache", tmp_path / "work"
    work.mkdir()
    own = own_padding_clip(SIG, cache, work, MuxTools())
    cached = padding_clip(SIG, cache, MuxTools())
    assert own.parent == work and os.path.samefile(own, cached)
    cached.unlink()  # what a trim by another process does
    assert probe_file(own).video.width == 320
