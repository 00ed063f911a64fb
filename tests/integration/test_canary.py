"""The sync canary against the sandbox's real WebDAV and RCS, with real ffmpeg: green, and red with
the right step when ffmpeg shifts the audio, storage refuses writes or RCS refuses the key. Every
case also checks that no canary object is left in storage."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from grmux_core.canary import run_canary
from grmux_core.config import load_settings
from grmux_core.encryption import SiteCertificate
from grmux_core.services import Services
from grmux_sandbox.faults import FaultSpec
from grmux_sandbox.site import Sandbox

pytestmark = pytest.mark.slow

SHIFT_AUDIO = """#!{python}
# ffmpeg that delays the audio of the final mux by 200 ms (what a broken upgrade could do)
import os, sys
args = sys.argv[1:]
if "-filter_complex" in args:
    i = args.index("-filter_complex") + 1
    args[i] = args[i].replace("apad=whole_dur", "adelay=all=1:delays=200,apad=whole_dur")
os.execvp("ffmpeg", ["ffmpeg", *args])
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    sandbox = Sandbox.start(tmp_path_factory.mktemp("canary-site"))
    yield sandbox
    sandbox.stop()


def canary_objects(site: Sandbox) -> list[Path]:
    """Files under the canary collection (the collection itself may stay)."""
    root = site.store.webdav_recordings / "grmux-canary"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def sandbox_certificate(site: Sandbox) -> list[SiteCertificate]:
    return [SiteCertificate("sandbox", site.keys.certificate_path.read_text())]


def run(site: Sandbox, tmp_path: Path, *, certificates="given", **overrides):
    """One canary run; ``certificates``: "given" (the sandbox RCS certificate), a list, or None (the
    site's listed ones, read from RWS settings)."""
    config = site.write_config(tmp_path / "muxer.cfg", **overrides)
    services = Services.from_settings(load_settings(config))
    report = run_canary(services, certificates=sandbox_certificate(site) if certificates == "given" else certificates)
    services.close()
    assert canary_objects(site) == [], "canary objects left behind"
    assert not report.left_behind
    return report


def test_green_with_a_segment_encrypted_to_the_sites_certificate(site, tmp_path, cleanup):
    site.set_screen_encryption("one")
    cleanup.callback(site.set_screen_encryption, "none")
    rws_before, rcs_before = site.request_counts("rws"), sum(site.request_counts("rcs").values())
    report = run(site, tmp_path, certificates=None)
    added = {k: v - rws_before.get(k, 0) for k, v in site.request_counts("rws").items() if v != rws_before.get(k, 0)}
    assert list(added) and all("encryption" in k for k in added), added  # the settings only: no record
    assert sum(site.request_counts("rcs").values()) == rcs_before + 1  # one envelope opened
    assert report.ok, report.headline()
    assert report.encrypted_segments == 1
    kinds = [m.kind for m in report.markers]
    assert kinds.count("beep") == 8 and kinds.count("flash") == 7  # the flash at 11 s falls in the gap
    assert kinds.count("padding start") == 1 and kinds.count("padding end") == 1
    assert all(abs(m.offset_ms) <= 40 for m in report.markers)
    # the second screen file overlaps the first by 200 ms (<= max_overlap_allowed): shifted by 200 ms
    assert [round(m.expected_s, 1) for m in report.markers if m.kind == "flash"] == [1, 3, 5, 7.2, 9.2, 13, 15]
    assert {"storage write", "storage read", "rcs", "ffmpeg", "alignment", "cleanup"} <= set(report.step_seconds)


def test_red_at_alignment_when_ffmpeg_shifts_audio(site, tmp_path):
    wrapper = tmp_path / "ffmpeg-shifted"
    wrapper.write_text(SHIFT_AUDIO.format(python=sys.executable))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    report = run(site, tmp_path, certificates=[], ffmpeg=str(wrapper))
    assert report.failed_step == "alignment", report.headline()
    beeps = [m for m in report.markers if m.kind == "beep"]
    assert beeps and all(180 <= m.offset_ms <= 240 for m in beeps), [m.offset_ms for m in beeps]
    assert all(m.ok for m in report.markers if m.kind == "flash")
    assert "alignment offset +2" in report.reason


def test_red_at_storage_write_when_storage_refuses_writes(site, tmp_path, cleanup):
    site.set_faults("webdav", FaultSpec(error_rate=1.0, error_statuses=(507,), methods=("PUT",)))
    cleanup.callback(site.set_faults, "webdav", None)
    report = run(site, tmp_path, certificates=[])
    assert report.failed_step == "storage write", report.headline()
    assert "507" in report.reason


def test_red_at_rcs_when_rcs_refuses_the_key(site, tmp_path):
    report = run(site, tmp_path, rcs__username="nodecrypt", rcs__password="nodecrypt")
    assert report.failed_step == "rcs", report.headline()
    assert "403" in report.reason
    assert "alignment" not in report.step_seconds  # it stopped at the failing step


def test_red_at_configuration_without_a_canary_location(site, tmp_path):
    report = run(site, tmp_path, certificates=[], canary_location="")
    assert report.failed_step == "configuration" and "canary_location" in report.reason
