"""The client against the sandbox's ``field`` RWS: a 260-call window listed exactly once, red backfills,
field records parsed, plain-text errors, and the write-back answered ``{status:0}``."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from grmux_core.call import process_call
from grmux_core.config import load_settings
from grmux_core.contract import write_back_media_file
from grmux_core.errors import ListingIncomplete
from grmux_core.http import HttpPolicy
from grmux_core.listing import list_calls
from grmux_core.models import MediaLocation, is_already_muxed
from grmux_core.outcome import Status
from grmux_core.rws import RwsClient
from grmux_core.services import Services
from grmux_core.triage import triage
from grmux_core.windows import Window, split_window

pytest.importorskip("grmux_sandbox.site")
from grmux_sandbox.site import Sandbox

FAST = HttpPolicy(backoff_factor=0, retries=2, body_retries=1)
START = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
CALLS = 260
LIST = "GET /api/v2/ops/contact-centers/<cc>/recordings"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with Sandbox.start(tmp_path_factory.mktemp("field"), dialect="field") as sb:
        ids = sb.seed_metadata(CALLS, seed=12, start=START, spacing=(0.0, 40.0), duration=(20.0, 300.0),
                               screen_share=0.8)
        yield sb, ids


def client(sb: Sandbox, **overrides) -> RwsClient:
    settings = load_settings(text=sb.config_text(call_recording_extra_query_string="disable", **overrides),
                             environ={})
    return RwsClient(settings.htcc, settings.advanced, settings.processing, policy=FAST)


def window() -> Window:
    return Window(START - timedelta(minutes=1), START + timedelta(hours=26))


@pytest.mark.parametrize("pagination", [100, 3])
def test_every_call_of_a_260_call_window_is_listed_exactly_once(site, pagination):
    sb, ids = site
    before = sb.request_counts("rws").get(LIST, 0)
    listing = list_calls(client(sb, pagination=pagination), window=window())
    sent = sb.request_counts("rws")[LIST] - before
    assert [c.id for c in listing.calls] == ids and listing.bad_records == []
    assert listing.stats.requests == sent and listing.stats.narrowings == sent - 1
    print(f"\nfield RWS, {CALLS} calls, pagination = {pagination}: {sent} list requests")


def test_every_listed_call_ends_pending_or_failed_with_a_reason(site, tmp_path):
    """Metadata-only calls (their media do not exist): each ends with exactly one outcome and a reason."""
    sb, ids = site
    settings = load_settings(text=sb.config_text(call_recording_extra_query_string="disable", pagination=100,
                                                 temp_dir=str(tmp_path)), environ={})
    services = Services.from_settings(settings)
    try:
        listing = list_calls(services.rws, window=window())
        screens = services.rws.screen_recordings([c.id for c in listing.calls])
        decided = triage(listing, screens, rejected={})
        outcomes = decided.outcomes + [process_call(call, services) for call, _key in decided.to_mux]
    finally:
        services.close()
    assert sorted(o.call_id for o in outcomes) == sorted(ids)
    assert {o.status for o in outcomes} == {Status.PENDING, Status.FAILED}
    assert all(o.reason for o in outcomes)
    print(f"\nfield RWS, {CALLS} calls: {listing.stats.requests} list requests; "
          + ", ".join(f"{n} {s}" for s, n in sorted(Counter(o.status.value for o in outcomes).items())))


def test_split_mode_lists_every_call_once_too(site):
    sb, ids = site
    pieces = split_window(window(), 720, 240)
    listing = list_calls(client(sb, pagination=100), window=window(), pieces=pieces)
    assert sorted(c.id for c in listing.calls) == sorted(ids)


def test_a_backfill_without_times_that_hits_a_full_page_fails_red_naming_the_query(site):
    sb, _ids = site
    with pytest.raises(ListingIncomplete) as info:
        list_calls(client(sb, pagination=100), window=None, query="userData=SRSScreenRecordingStateStarted")
    text = str(info.value)
    assert "userData=SRSScreenRecordingStateStarted" in text and "add startTime=" in text


def test_field_records_parse_and_a_plain_text_404_is_absent(site):
    sb, ids = site
    rws = client(sb)
    call = next(c for c in list_calls(rws, window=window()).calls if c.id == ids[0])
    audio = call.media_files[0]
    assert audio.type == "audio/mpeg3" and audio.is_audio
    assert audio.location.base == "" and audio.location.path.startswith("http://")
    assert audio.duration_ms == round((audio.stop - audio.start).total_seconds() * 1000)
    with_screen = [i for i in ids[:10] if sb.screen_recording(i)]
    screens = rws.screen_recordings(ids[:10])
    assert set(screens) == set(with_screen) and all(not isinstance(v, Exception) for v in screens.values())
    assert rws.screen_recording("0" * 32) is None  # 404 answered in plain text


def test_a_write_back_answered_with_text_status_0_is_accepted_after_a_read_back(site):
    sb, _ids = site
    rws = client(sb)
    call = next(c for c in list_calls(rws, window=window()).calls if sb.screen_recording(c.id))
    screen = rws.screen_recording(call.id)
    first = screen.source_files[0]
    location = first.location.sibling(f"muxed/{call.id}_muxed_1.mp4")
    assert isinstance(location, MediaLocation) and "/screen/" in location.url  # beside the screen file
    body = write_back_media_file(call, screen, f"{call.id}_muxed_1.mp4", location, start=call.start,
                                 duration_s=10.0, size=100)
    rws.write_back(call, body)  # RWS answers 200 '{status:0}': accepted only after the read-back
    assert is_already_muxed(call, rws.screen_recording(call.id))
