"""Check a muxed file against the markers the sandbox generator put into its sources.

The generator puts beeps (audio) and white flashes (screen) at the same epoch instants. In the
muxed output, time 0 is the call's first audio start, so a marker at epoch ``t`` must decode at
``t - first_audio_start``.
"""

from __future__ import annotations

import math
from pathlib import Path

from grmux_sandbox import media

FRAME = 0.040  # one frame at 25 fps
EDGE = 0.6  # markers this close to a screen boundary may be cut with it
BEEP_EDGE = 0.15  # a beep this close to the start or end of the audio cannot be detected


def _near(t: float, candidates: list[float], tolerance: float) -> bool:
    return any(abs(t - c) <= tolerance for c in candidates)


def shown_at(instant: float, screen) -> float:
    """Epoch time of the first frame of ``screen`` at or after ``instant``."""
    fps = screen.fps or 25
    frames = math.ceil((instant - screen.start_epoch - 1e-4) * fps)
    return screen.start_epoch + frames / fps


def check_alignment(path: Path, call, *, max_overlap_s: float = 0.5) -> list[str]:
    """Problems found (empty = aligned). ``call`` is a sandbox ``GeneratedCall``."""
    problems: list[str] = []
    t0 = min(m.start_epoch for m in call.audio)
    end = max(m.stop_epoch for m in call.audio) - t0
    beeps = media.detect_beeps(path)
    # every beep of the output must be a marker; every marker must be heard, except within
    # BEEP_EDGE of either end, where the 100 ms beep has no silence around it to be detected
    markers = [t - t0 for t in call.beeps if -FRAME <= t - t0 <= end]
    for t in markers:
        if BEEP_EDGE <= t <= end - BEEP_EDGE and not _near(t, beeps, FRAME):
            problems.append(f"beep expected at {t:.3f} s not found (found {beeps})")
    for t in beeps:
        if not _near(t, markers, FRAME):
            problems.append(f"unexpected beep at {t:.3f} s")

    screens = [m for m in call.screens if not m.corrupt]
    coverage = [(max(m.start_epoch - t0, 0.0), min(m.stop_epoch - t0, end)) for m in screens]
    shifted = call.scenario == "overlap"
    tolerance = FRAME + (max_overlap_s if shifted else 0.0)
    # a flash shows on the first frame at or after its instant: up to one frame late in the source
    expected_flashes = sorted({shown_at(t, m) - t0 for m in screens for t in m.markers if 0 <= t - t0 <= end})
    flashes = media.detect_flashes(path)
    for t in flashes:
        if not _near(t, expected_flashes, tolerance):
            problems.append(f"flash at {t:.3f} s matches no screen marker (±{tolerance * 1000:.0f} ms)")
    for t in expected_flashes:
        inside = any(a + EDGE <= t <= b - EDGE for a, b in coverage)
        if inside and not _near(t, flashes, tolerance):
            problems.append(f"flash expected at {t:.3f} s not found")
    if not flashes and any(b - a > 5 for a, b in coverage):
        problems.append("no flash found at all")
    for start, stop in media.detect_black(path, min_duration=0.5):
        for a, b in coverage:
            if start + EDGE < b and stop - EDGE > a and (min(stop, b) - max(start, a)) > 2 * EDGE:
                problems.append(f"black {start:.2f}-{stop:.2f} s inside screen coverage {a:.2f}-{b:.2f} s")
    errors = media.decode_errors(path)
    if errors.strip():
        problems.append("decode errors: " + errors.strip()[:300])
    return problems
