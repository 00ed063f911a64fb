"""The planner's inputs, built by hand: audio legs and screen recordings at seconds from ``T0``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from grmux_core.plan import AudioInput, ScreenInput
from grmux_core.probe import VideoInfo

T0 = datetime(2026, 11, 27, 16, 58, 22, tzinfo=UTC)
H264 = VideoInfo("h264", 1280, 720, "yuv420p", "1/12800", "High", 31, 0, "25/1", "25/1", 0.0, 0.0)
VP8 = VideoInfo("vp8", 1280, 720, "yuv420p", "1/1000", None, None, 0, "25/1", "25/1", 0.0, 0.0)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def audio(start: float, dur: float, name: str = "a.mp3") -> AudioInput:
    return AudioInput(name, at(start), dur)


def screen(start: float, dur: float, name: str = "s.mp4", video: VideoInfo = H264, keyframes=None,
           fmt: str = "mov,mp4") -> ScreenInput:
    return ScreenInput(name, at(start), dur, video, fmt, keyframes)
