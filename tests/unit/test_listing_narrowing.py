"""Listing never drops or duplicates a call: next links, answers cut at the limit, narrowing, red failures."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grmux_core.config import AdvancedSettings, HtccSettings, SecretStr
from grmux_core.errors import ListingIncomplete
from grmux_core.listing import list_calls
from grmux_core.rws import ListQuery, ListStats, RwsClient, list_pages
from grmux_core.windows import SubInterval, Window
from tests.support.fake_rws_list import FakeList, record

BASE = "http://rws.example:8090/"
LIST = f"{BASE}api/v2/ops/contact-centers/cc1/recordings"


def follow(link, _seen):
    return link


def listed(fake: FakeList, start: int, end: int, limit: int) -> tuple[list[str], ListStats]:
    stats = ListStats()
    query = ListQuery.parse(f"startTime={start}&endTime={end}&limit={limit}")
    return [item["id"] for item in list_pages(fake, query, limit=limit, absolute=follow, stats=stats)], stats


@st.composite
def windows(draw):
    instants = sorted(draw(st.lists(st.integers(0, 20_000), min_size=1, max_size=30)))
    count = draw(st.integers(0, 60))
    records = [record(f"c{i:03d}", instants[draw(st.integers(0, len(instants) - 1))], draw(st.integers(1, 5_000)))
               for i in range(count)]
    limit = draw(st.integers(1, 8))
    end = draw(st.integers(5_000, 30_000))
    links = draw(st.lists(st.booleans(), min_size=0, max_size=40))
    return records, limit, end, links


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(windows())
def test_random_densities_and_truncation_points_never_drop_or_duplicate_a_call(case):
    records, limit, end, links = case
    fake = FakeList(records, links=lambda n: n <= len(links) and links[n - 1])
    expected = {r["id"] for r in fake.selected(0, end)}
    crowded = max(Counter(r["_start"] for r in fake.selected(0, end)).values(), default=0) >= limit
    try:
        ids, stats = listed(fake, 0, end, limit)
    except ListingIncomplete as exc:
        assert crowded, "narrowing gave up although no instant holds `limit` calls"
        assert "one instant" in str(exc) and "pagination" in str(exc)
        return
    assert len(ids) == len(set(ids)), "a call was listed twice"
    assert set(ids) == expected, "a call was lost"
    assert stats.requests == fake.requests


def test_an_answer_cut_at_the_limit_is_narrowed_from_its_last_start_time():
    records = [record(f"c{i:02d}", 1000 * (i // 2), 500) for i in range(10)]  # two calls a second
    fake = FakeList(records)
    ids, stats = listed(fake, 0, 60_000, 3)
    assert ids == [f"c{i:02d}" for i in range(10)]
    assert [q["startTime"] for q in fake.queries] == ["0", "1000", "2000", "3000", "4000"]
    assert stats.narrowings == 4 and stats.requests == 5


def test_a_page_with_a_next_link_is_followed_not_narrowed():
    fake = FakeList([record(f"c{i}", i, 1) for i in range(7)], links=lambda _n: True)
    ids, stats = listed(fake, 0, 60_000, 3)
    assert ids == [f"c{i}" for i in range(7)] and stats.narrowings == 0 and stats.requests == 3


def test_more_than_limit_calls_at_one_instant_fail_naming_the_query():
    fake = FakeList([record(f"c{i}", 5000, 10) for i in range(4)])
    with pytest.raises(ListingIncomplete) as info:
        listed(fake, 0, 60_000, 3)
    text = str(info.value)
    assert "1970-01-01T00:00:05.000+0000" in text and "startTime=1970-01-01T00:00:00.000+0000" in text
    assert "raise [advanced] pagination" in text


def test_an_unsorted_full_answer_fails_because_a_cursor_could_skip_calls():
    def unsorted(_target):
        return {"statusCode": 0, "recordings": [record("b", 2000, 1), record("a", 1000, 1), record("c", 3000, 1)]}

    with pytest.raises(ListingIncomplete, match="not sorted by startTime"):
        list(list_pages(unsorted, ListQuery.parse("startTime=0&limit=3"), limit=3, absolute=follow, stats=ListStats()))


def test_a_backfill_without_times_that_hits_a_full_page_fails_red():
    fake = FakeList([record(f"c{i}", i * 1000, 10) for i in range(5)])
    query = ListQuery.parse("userName=agent1&limit=3")
    with pytest.raises(ListingIncomplete) as info:
        list(list_pages(fake, query, limit=3, absolute=follow, stats=ListStats()))
    assert "userName=agent1" in str(info.value) and "add startTime=" in str(info.value)
    assert fake.requests == 1


def test_a_full_last_page_without_a_link_is_never_trusted_even_from_an_rws_that_pages():
    """6 calls at limit 3 from an RWS that pages with next links: the second page is full and has no
    link (nothing follows). A cut answer looks the same, so a query without times fails red (the
    operator adds times) rather than trust it; a query with times costs one more request."""
    fake = FakeList([record(f"c{i}", i * 1000, 10) for i in range(6)], links=lambda _n: True)
    with pytest.raises(ListingIncomplete):
        list(list_pages(fake, ListQuery.parse("userName=agent1&limit=3"), limit=3, absolute=follow,
                        stats=ListStats()))
    ids, stats = listed(FakeList(fake.records, links=lambda _n: True), 0, 60_000, 3)
    assert ids == [f"c{i}" for i in range(6)] and stats.requests == 3 and stats.narrowings == 1


def test_a_backfill_with_times_is_narrowed_like_a_window():
    fake = FakeList([record(f"c{i}", i * 1000, 10) for i in range(5)])
    query = ListQuery.parse("userName=agent1&startTime=0&endTime=99999&limit=2")
    ids = [i["id"] for i in list_pages(fake, query, limit=2, absolute=follow, stats=ListStats())]
    assert ids == [f"c{i}" for i in range(5)]
    assert all(q["userName"] == "agent1" and q["endTime"] == "99999" for q in fake.queries)


def test_next_link_shapes():
    from grmux_core.contract import next_link

    assert next_link({"nextUri": "a"}) == "a"
    assert next_link({"next": "b"}) == "b"
    assert next_link({"links": {"next": "c"}}) == "c"
    assert next_link({"_links": {"next": {"href": "d"}}}) == "d"
    assert next_link({"nextUri": "", "links": {"prev": "x"}}) is None


# ------------------------------------------------------------------ through the client and every mode


def client(pagination: int, time_format: str = "epoch_ms") -> RwsClient:
    htcc = HtccSettings(base_uri=BASE, contact_center_id="cc1", username="ops", password=SecretStr("x"),
                        list_time_format=time_format)
    return RwsClient(htcc, AdvancedSettings(pagination=pagination, call_recording_extra_query_string="disable"))


def serve(fake: FakeList, sent: list[str]) -> None:
    from grmux_core.contract import query_time_ms

    def answer(request):
        params = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        sent.append(params["startTime"])
        for key in ("startTime", "endTime"):
            if key in params:
                params[key] = str(query_time_ms(params[key]))
        import json
        from urllib.parse import urlencode

        return 200, {}, json.dumps(fake("?" + urlencode(params)))

    responses.add_callback(responses.GET, LIST, callback=answer)


T0 = datetime(2026, 11, 27, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


@pytest.mark.parametrize("time_format", ["epoch_ms", "iso"])
@responses.activate
def test_window_split_and_backfill_modes_list_every_call_once(time_format):
    # 40 calls, 3 a minute apart-ish, cut at pagination = 3 without next links
    fake = FakeList([record(f"c{i:02d}", T0_MS + 20_000 * i, 5_000) for i in range(40)])
    sent: list[str] = []
    serve(fake, sent)
    rws = client(3, time_format)
    window = Window(T0, datetime(2026, 11, 27, 1, tzinfo=UTC))
    every = [f"c{i:02d}" for i in range(40)]

    whole = list_calls(rws, window=window)
    assert [c.id for c in whole.calls] == every and whole.stats.requests >= 40 // 3
    assert all(("T" in value) is (time_format == "iso") for value in sent)

    half = datetime(2026, 11, 27, 0, 6, tzinfo=UTC)
    pieces = [SubInterval(T0, half, T0, window.end), SubInterval(half, window.end, half, window.end, last=True)]
    split = list_calls(rws, window=window, pieces=pieces)
    assert sorted(c.id for c in split.calls) == every

    backfill = list_calls(rws, window=None, query=f"startTime={T0_MS}&endTime={T0_MS + 3_600_000}")
    assert [c.id for c in backfill.calls] == every and backfill.stats.narrowings > 0


def test_a_record_without_id_at_the_cursor_instant_is_reported_once():
    idless = {k: v for k, v in record("x", 1000, 10).items() if k in ("startTime", "stopTime")}
    pages = {"0": [record("c0", 0, 10), idless], "1000": [idless]}

    def fetch(target):
        start = parse_qs(urlsplit(target).query)["startTime"][0]
        return {"statusCode": 0, "recordings": [{k: v for k, v in r.items() if not k.startswith("_")}
                                                for r in pages[start]]}

    out = list(list_pages(fetch, ListQuery.parse("startTime=0&limit=2"), limit=2, absolute=follow, stats=ListStats()))
    assert [r.get("id") for r in out] == ["c0", None]
