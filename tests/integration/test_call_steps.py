"""One call through ``grmux_core.call.process_call`` against the sandbox, no Prefect: how much
ffprobe/ffmpeg work a call costs (each input probed once; the padding clip encoded once per worker).

ffprobe and ffmpeg are configured as small wrappers (``[processing] ffprobe`` / ``ffmpeg``) that
log each invocation and then run the real program, so every process a call starts is counted.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from grmux_core.call import process_call
from grmux_core.config import load_settings
from grmux_core.models import parse_call_recording
from grmux_core.mux import mp3_fast_probe
from grmux_core.scratch import padding_cache_dir
from grmux_core.services import Services
from grmux_sandbox.site import Sandbox

pytestmark = pytest.mark.slow


def counting_wrapper(folder: Path, program: str) -> tuple[Path, Path]:
    """An executable that appends its argv to a log (one line, one write: probes run side by
    side), then execs ``program``. The test's paths hold no spaces."""
    log = folder / f"{program}.calls"
    wrapper = folder / f"counting-{program}"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{log}"\nexec {program} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper, log


def invocations(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [line.split(" ") for line in log.read_text().splitlines() if line]


@pytest.fixture
def site(tmp_path):
    with Sandbox.start(tmp_path / "site") as sandbox:
        yield sandbox


def run_calls(site: Sandbox, tmp_path: Path, scenarios: list[str], seed: int):
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    generated = site.seed(len(scenarios), seed=seed, scenarios=scenarios, start=start, size=(320, 240),
                          duration=(8.0, 10.0), spacing=(30.0, 40.0))
    ffprobe, probes = counting_wrapper(tmp_path, "ffprobe")
    ffmpeg, encodes = counting_wrapper(tmp_path, "ffmpeg")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    settings = load_settings(site.write_config(tmp_path / "muxer.cfg", temp_dir=str(scratch),
                                               ffprobe=str(ffprobe), ffmpeg=str(ffmpeg)))
    services = Services.from_settings(settings)
    outcomes = []
    try:
        for call in generated:
            outcomes.append(process_call(parse_call_recording(site.call_recording(call.call_id)), services))
    finally:
        services.close()
    return generated, outcomes, invocations(probes), invocations(encodes), scratch


def test_each_input_is_probed_once_per_call(site, tmp_path):
    [call], [outcome], probes, _encodes, _scratch = run_calls(site, tmp_path, ["multi_agent"], seed=71)
    assert outcome.status == "muxed", outcome
    probed = Counter(argv[-1] for argv in probes)
    verifier = probed.pop("pipe:0", 0)
    stored = site.store.webdav_recordings
    header_only = [m for m in call.audio if mp3_fast_probe(stored / m.path) is not None]
    assert verifier == 1  # the output's verification
    assert set(probed.values()) == {1}, probed  # no input file is probed twice
    # every screen file and every audio file without a complete MP3 header is probed, once
    assert len(probed) == len(call.screens) + len(call.audio) - len(header_only), (probed, header_only)
    assert len(call.screens) == 2 and len(call.audio) == 2


def test_the_padding_clip_is_encoded_once_for_two_calls(site, tmp_path):
    _calls, outcomes, _probes, encodes, scratch = run_calls(site, tmp_path, ["late_start", "late_start"], seed=72)
    assert [o.status for o in outcomes] == ["muxed", "muxed"], outcomes
    pads = [argv for argv in encodes if any(a.startswith("color=c=black") for a in argv)]
    assert len(pads) == 1, pads  # the second call found the clip of the first
    cache = padding_cache_dir(scratch)
    assert [p.name for p in cache.iterdir()] == [Path(pads[0][-1]).name.split(".", 2)[1] + ".mp4"]
    assert [p.name for p in scratch.iterdir()] == [cache.name]  # the calls' own folders are gone
    assert all(os.stat(p).st_nlink == 1 for p in cache.iterdir())  # no mux holds a link any more
