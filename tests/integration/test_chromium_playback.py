"""Every kind of output the field-media cases make loads, reports its duration and size, and seeks
in Debian's headless Chromium: one browser run over several files.

The page POSTs its results to a local HTTP server of the test, which waits for them in real time
(``--dump-dom`` with a virtual-time budget gave up on a loaded machine before the media had loaded).

Needs ``chromium`` (``scripts/ensure-system-deps.sh chromium``; ``make test`` installs it when
``CI`` is set). Outside CI a missing browser skips the test with the reason; under ``CI=true`` it
fails instead, so the check cannot silently stop running.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from deployments.demo import start_alert_receiver
from deployments.processes import start_process
from grmux_core.mux import mux_files
from grmux_sandbox import media
from tests.integration.test_mux_alignment import CALL, wall

pytestmark = pytest.mark.slow

PAGE = Path(__file__).with_name("chromium_probe.html")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-component-update",
         "--disable-sync", "--disable-background-networking", "--allow-file-access-from-files",
         "--autoplay-policy=no-user-gesture-required"]
REPORT_WAIT_S = 240


def _browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("chromium is missing under CI: scripts/ensure-system-deps.sh chromium installs it")
    pytest.skip("chromium is not installed (outside CI); scripts/ensure-system-deps.sh chromium installs it")


def _outputs(root: Path) -> dict[str, tuple[float, int, int]]:
    """Mux one call per field case; name -> (duration, width, height) it must report."""
    a = media.make_audio(root / "a.mp3", CALL, 8)
    cases = {
        "vfr_static_lead_pad": ([(media.make_screen(root / "vfr.mp4", 101.5, 5, vfr=True, gop=250), 101.5, 106.5)],
                                (320, 240)),
        "drift_retimed": ([(media.make_screen(root / "drift.mp4", 101.01, 5.05, period=5.05, phase=2.02),
                            101, 106)], (320, 240)),
        "odd_444": ([(media.make_screen(root / "odd.mp4", 101.5, 5, size=(321, 241), pix_fmt="yuv444p"),
                      101.5, 106.5)], (321, 241)),
        "mixed_420_444": ([(media.make_screen(root / "m1.mp4", 100.5, 3, size=(321, 241), pix_fmt="yuv444p"),
                            100.5, 103.5), (media.make_screen(root / "m2.mp4", 103.5, 3), 103.5, 106.5)],
                          (322, 242)),
        "rotated_high_bframes": ([(media.make_screen(root / "rot.mp4", 101.5, 5, preset="medium", bframes=2,
                                                     rotate=90), 101.5, 106.5)], (240, 320)),
    }
    expected = {}
    for name, (screens, (w, h)) in cases.items():
        mux_files([(str(a), wall(CALL), wall(CALL + 8))], [(str(p), wall(s), wall(e)) for p, s, e in screens],
                  root / f"{name}.mp4", workdir=root)
        expected[f"{name}.mp4"] = (8.0, w, h)
    return expected


def test_every_field_case_output_loads_and_seeks_in_chromium(tmp_path, cleanup):
    browser = _browser()
    expected = _outputs(tmp_path)
    report_url, reports = start_alert_receiver(cleanup)  # the page POSTs its results as JSON
    page = tmp_path / "probe.html"
    page.write_text(PAGE.read_text().replace("FILES", json.dumps(sorted(expected)))
                    .replace("REPORT_URL", report_url))
    stderr = tmp_path / "chromium.log"
    with stderr.open("wb") as err:
        proc = cleanup.process(start_process([browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                                              page.as_uri()], stdout=err, stderr=err), grace=5)
    deadline = time.monotonic() + REPORT_WAIT_S
    while not reports and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not reports:
        pytest.fail(f"chromium sent no report in {REPORT_WAIT_S} s (rc {proc.poll()}): "
                    f"{stderr.read_text(errors='replace')[-1500:]}")
    results = reports[0]
    for name, (duration, w, h) in expected.items():
        r = results[name]
        assert "error" not in r, (name, r)
        assert abs(r["duration"] - duration) <= 0.1, (name, r)
        assert (r["width"], r["height"]) == (w, h), (name, r)
        assert abs(r["seeked"] - duration / 2) <= 0.1 and r["ready"] >= 2, (name, r)
