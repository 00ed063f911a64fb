"""The emulated RWS over real sockets answers the GIR wire contract (docs/gir-contract.md)."""

from __future__ import annotations

import copy

import requests

from grmux_sandbox.timeutil import parse_iso, to_ms

from .conftest import START_MS, csrf, list_all, list_url, screens_url


def _key(rec):
    return (to_ms(parse_iso(rec["startTime"])), rec["id"])


def test_version_and_csrf_handshake(site, rws):
    r = rws.get(site.rws_url + "api/v2/diagnostics/version")
    assert r.status_code == 200
    assert r.json() == {"statusCode": 0, "version": "8.5.201.14"}
    assert r.headers["X-CSRF-HEADER"] == "X-CSRF-TOKEN"
    assert r.headers["X-CSRF-TOKEN"]
    assert r.cookies.get("JSESSIONID")
    again = rws.get(site.rws_url + "api/v2/diagnostics/version")  # same session keeps its token
    assert again.headers["X-CSRF-TOKEN"] == r.headers["X-CSRF-TOKEN"]


def test_wrong_password_is_401_everywhere(site):
    for url in (site.rws_url + "api/v2/diagnostics/version", list_url(site) + "?startTime=0",
                screens_url(site) + "/x"):
        r = requests.get(url, auth=("ops", "wrong"))
        assert r.status_code == 401
        assert r.json()["statusCode"] != 0 and r.json()["statusMessage"]
        assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(site.rws_url + "api/v2/diagnostics/version").status_code == 401


def test_paging_follows_absolute_next_uri(site, rws):
    records, pages = list_all(rws, site, startTime=0, limit=100)
    assert len(records) == 250 and pages == 3
    assert len({r["id"] for r in records}) == 250
    assert [_key(r) for r in records] == sorted(_key(r) for r in records)
    first = rws.get(list_url(site), params={"startTime": 0, "limit": 100}).json()
    assert first["nextUri"].startswith("http://127.0.0.1:")
    assert len(first["recordings"]) == 100 and first["statusCode"] == 0
    records7, pages7 = list_all(rws, site, startTime=0, limit=7)
    assert [r["id"] for r in records7] == [r["id"] for r in records] and pages7 == 36


def test_last_page_has_no_next_uri_and_limit_is_capped(site, rws):
    body = rws.get(list_url(site), params={"startTime": 0, "limit": 500}).json()
    assert len(body["recordings"]) == 100 and "nextUri" in body
    body = rws.get(list_url(site), params={"startTime": 0, "limit": 250}).json()
    assert len(body["recordings"]) == 100
    everything = rws.get(list_url(site), params={"startTime": 0, "endTime": START_MS + 1}).json()
    assert everything["recordings"] == [] and "nextUri" not in everything
    for bad in ("0", "-1", "ten"):
        assert rws.get(list_url(site), params={"startTime": 0, "limit": bad}).status_code == 400


def test_list_without_start_or_filter_is_400(site, rws):
    r = rws.get(list_url(site))
    assert r.status_code == 400 and r.json()["statusCode"] != 0
    assert rws.get(list_url(site), params={"endTime": 0}).status_code == 400
    r = rws.get(list_url(site), params={"userData": "SRSScreenRecordingStateStarted"})
    assert r.status_code == 200 and r.json()["recordings"]
    assert rws.get(list_url(site), params={"startTime": "yesterday"}).status_code == 400


def test_start_and_end_time_semantics(site, rws):
    everything, _ = list_all(rws, site, startTime=0)
    mid = everything[120]
    start_ms = to_ms(parse_iso(mid["startTime"]))
    after, _ = list_all(rws, site, startTime=start_ms)
    assert after[0]["id"] == mid["id"] and len(after) == 130  # start >= startTime
    stop_ms = to_ms(parse_iso(mid["stopTime"]))
    before, _ = list_all(rws, site, startTime=0, endTime=stop_ms)
    assert all(to_ms(parse_iso(r["stopTime"])) <= stop_ms for r in before)
    assert mid["id"] in {r["id"] for r in before}  # stop == endTime is included
    expected = [r["id"] for r in everything if to_ms(parse_iso(r["stopTime"])) <= stop_ms]
    assert [r["id"] for r in before] == expected
    iso, _ = list_all(rws, site, startTime=mid["startTime"], endTime=mid["stopTime"].replace("+0000", "Z"))
    want = [r["id"] for r in everything
            if to_ms(parse_iso(r["startTime"])) >= start_ms and to_ms(parse_iso(r["stopTime"])) <= stop_ms]
    assert [r["id"] for r in iso] == want and want[0] == mid["id"]


def test_filters_over_http(site, rws):
    everything, _ = list_all(rws, site, startTime=0)
    sr, _ = list_all(rws, site, startTime=0, userData="SRSScreenRecordingStateStarted")
    want = [r["id"] for r in everything
            if any("SRSScreenRecordingStateStarted" in (e.get("data") or {}).values() for e in r["eventHistory"])]
    assert [r["id"] for r in sr] == want and 0 < len(sr) < 250
    wild, _ = list_all(rws, site, startTime=0, userData="SRSScreen*")
    assert [r["id"] for r in wild] == want
    alice, _ = list_all(rws, site, startTime=0, userName="ALICE")
    assert alice and all(r["eventHistory"][0]["contact"]["firstName"] == "Alice" for r in alice)
    both, _ = list_all(rws, site, startTime=0, userName="alice bob")
    assert len(both) == len(alice) + len(list_all(rws, site, startTime=0, userName="bob")[0])
    assert list_all(rws, site, startTime=0, userName="alice AND martin")[0] == []
    assert len(list_all(rws, site, startTime=0, userName="alice AND ng")[0]) == len(alice)
    caller = everything[5]["callerPhoneNumber"]
    exact, _ = list_all(rws, site, startTime=0, callerPhoneNumber=caller)
    assert everything[5]["id"] in {r["id"] for r in exact}
    assert all(r["callerPhoneNumber"] == caller for r in exact)
    prefix, _ = list_all(rws, site, startTime=0, callerPhoneNumber=caller[:5] + "*")
    assert all(r["callerPhoneNumber"].startswith(caller[:5]) for r in prefix) and len(prefix) >= len(exact)
    dialed, _ = list_all(rws, site, startTime=0, dialedPhoneNumber="8003")
    assert dialed and all(r["dialedPhoneNumber"] == "8003" for r in dialed)
    assert rws.get(list_url(site), params={"startTime": 0, "userName": "alice AND"}).status_code == 400


def test_single_recording_and_404(site, rws):
    call_id = site.call_ids()[0]
    r = rws.get(f"{list_url(site)}/{call_id}")
    assert r.status_code == 200 and r.json()["statusCode"] == 0
    rec = r.json()["recording"]
    assert rec["id"] == call_id and rec["mediaFiles"][0]["type"] == "audio/mp3"
    assert rec["mediaFiles"][0]["originalMediaDescriptor"]["data"]["storagePath"] == site.webdav_url
    missing = rws.get(f"{list_url(site)}/nope")
    assert missing.status_code == 404 and missing.json()["statusCode"] != 0
    wrong_cc = rws.get(list_url(site).replace(site.contact_center_id, "abcdef") + "?startTime=0")
    assert wrong_cc.status_code == 404


def test_screen_recordings_single_and_bulk(site, rws):
    ids = site.call_ids()
    with_screen = [i for i in ids if site.screen_recording(i)]
    without = [i for i in ids if not site.screen_recording(i)]
    assert with_screen and without
    r = rws.get(f"{screens_url(site)}/{with_screen[0]}")
    assert r.status_code == 200 and r.json()["recording"]["mediaFiles"][0]["parameters"]["contact"]["userName"]
    assert rws.get(f"{screens_url(site)}/{without[0]}").status_code == 404
    asked = ids[:100]
    r = rws.get(screens_url(site), params={"ids": ",".join(asked)})
    assert r.status_code == 200
    got = [rec["id"] for rec in r.json()["recordings"]]
    assert got == [i for i in asked if i in set(with_screen)]  # only the existing ones
    assert rws.get(screens_url(site), params={"ids": ",".join(ids[:101])}).status_code == 400
    assert rws.get(screens_url(site)).status_code == 400
    assert rws.get(screens_url(site), params={"ids": "unknown"}).json()["recordings"] == []


def _write_back_body(site, call_id, n=1, sources=("a.mp3",)):
    call = site.call_recording(call_id)
    return {"id": call_id, "startTime": call["startTime"], "stopTime": call["stopTime"],
            "mediaFiles": [{"mediaId": f"{call_id}_muxed_{n}.mp4", "type": "video/mp4",
                            "startTime": call["startTime"], "stopTime": call["stopTime"],
                            "duration": "1000", "size": "2000",
                            "parameters": {"muxed_mediaIds": list(sources), "contact": {"userName": "agent1@cc"},
                                           "region": "us"},
                            "mediaDescriptor": {"storage": "webDAV", "path": f"muxed/{call_id}_muxed_{n}.mp4",
                                                "data": {"storagePath": site.webdav_url}}}]}


def test_csrf_refusal_then_accepted_write_back(site, rws):
    ids = site.call_ids()
    call_id = next(i for i in ids if site.screen_recording(i))
    body = _write_back_body(site, call_id)
    fresh = requests.Session()
    fresh.auth = ("ops", "ops")
    refused = fresh.post(screens_url(site), json=body)  # no token, no cookie
    assert refused.status_code == 403 and refused.json()["statusCode"] != 0
    headers = csrf(rws, site)
    cookie_only = rws.post(screens_url(site), json=body)
    assert cookie_only.status_code == 403
    wrong = rws.post(screens_url(site), json=body, headers={"X-CSRF-TOKEN": "wrong"})
    assert wrong.status_code == 403
    token_only = requests.post(screens_url(site), json=body, headers=headers, auth=("ops", "ops"))
    assert token_only.status_code == 403
    before = len(site.write_backs())
    r = rws.post(screens_url(site), json=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"statusCode": 0}
    assert len(site.write_backs()) == before + 1
    # a restart forgets sessions: the old token is refused until the client re-handshakes
    site.drop_sessions()
    assert rws.post(screens_url(site), json=body, headers=headers).status_code == 403
    assert rws.post(screens_url(site), json=body, headers=csrf(rws, site)).status_code == 200


def test_csrf_off(site, rws):
    site.set_csrf(False)
    try:
        r = rws.get(site.rws_url + "api/v2/diagnostics/version")
        assert "X-CSRF-HEADER" not in r.headers
        call_id = site.call_ids()[3]
        assert requests.post(screens_url(site), json=_write_back_body(site, call_id),
                             auth=("ops", "ops")).status_code == 200
    finally:
        site.set_csrf(True)


def test_write_back_merges_into_screen_recording(site, rws):
    call_id = next(i for i in site.call_ids()[10:] if site.screen_recording(i))
    original = copy.deepcopy(site.screen_recording(call_id))
    sources = [m["mediaId"] for m in site.call_recording(call_id)["mediaFiles"] + original["mediaFiles"]]
    headers = csrf(rws, site)
    assert rws.post(screens_url(site), json=_write_back_body(site, call_id, 1, sources), headers=headers).ok
    merged = rws.get(f"{screens_url(site)}/{call_id}").json()["recording"]
    ids = [m["mediaId"] for m in merged["mediaFiles"]]
    assert ids == [m["mediaId"] for m in original["mediaFiles"]] + [f"{call_id}_muxed_1.mp4"]
    muxed = merged["mediaFiles"][-1]
    assert muxed["parameters"]["muxed_mediaIds"] == sources
    assert muxed["mediaDescriptor"]["data"]["storagePath"] == site.webdav_url
    # posting the same media again replaces it; a new n is appended
    assert rws.post(screens_url(site), json=_write_back_body(site, call_id, 1, sources), headers=headers).ok
    assert rws.post(screens_url(site), json=_write_back_body(site, call_id, 2, sources), headers=headers).ok
    merged = rws.get(f"{screens_url(site)}/{call_id}").json()["recording"]
    assert [m["mediaId"] for m in merged["mediaFiles"]][-2:] == [f"{call_id}_muxed_1.mp4", f"{call_id}_muxed_2.mp4"]
    assert len(merged["mediaFiles"]) == len(original["mediaFiles"]) + 2
    # a call with no screen recording yet gets one
    bare = next(i for i in site.call_ids() if not site.screen_recording(i))
    assert rws.post(screens_url(site), json=_write_back_body(site, bare), headers=headers).ok
    assert rws.get(f"{screens_url(site)}/{bare}").status_code == 200


def test_bad_write_backs_are_400_or_404(site, rws):
    headers = csrf(rws, site)
    call_id = site.call_ids()[20]
    good = _write_back_body(site, call_id)
    r = rws.post(screens_url(site), data="{not json", headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 400
    bad = copy.deepcopy(good)
    bad["mediaFiles"][0]["duration"] = 1000
    r = rws.post(screens_url(site), json=bad, headers=headers)
    assert r.status_code == 400 and "duration" in r.json()["statusMessage"]
    bad = copy.deepcopy(good)
    del bad["mediaFiles"][0]["mediaDescriptor"]
    assert rws.post(screens_url(site), json=bad, headers=headers).status_code == 400
    assert rws.post(screens_url(site), json={**good, "id": "unknown"}, headers=headers).status_code == 404


def test_delete_original_screen_media(site, rws, tmp_path):
    # a real file behind the media: put it where the descriptor points
    call_id = next(i for i in site.call_ids()[30:] if site.screen_recording(i))
    media = site.screen_recording(call_id)["mediaFiles"][0]
    path = site.media_path(media["originalMediaDescriptor"])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"screen bytes")
    url = f"{screens_url(site)}/{call_id}/content/{media['mediaId']}"
    assert requests.delete(url, auth=("ops", "ops")).status_code == 403  # CSRF
    r = rws.delete(url, headers=csrf(rws, site))
    assert r.status_code == 200 and r.json()["statusCode"] == 0
    assert not path.exists()
    left = rws.get(f"{screens_url(site)}/{call_id}").json()["recording"]["mediaFiles"]
    assert media["mediaId"] not in {m["mediaId"] for m in left}
    assert rws.delete(url, headers=csrf(rws, site)).status_code == 404


def test_irp_muxer_settings_modes(site, rws):
    url = site.rws_url + "api/v2/settings/irp-muxer"
    assert rws.get(url).status_code == 404
    site.set_irp_muxer(403)
    assert rws.get(url).status_code == 403
    site.set_irp_muxer(200, {"max_overlap_allowed": 300})
    r = rws.get(url)
    assert r.status_code == 200 and r.json() == {"statusCode": 0, "settings": {"max_overlap_allowed": 300}}
    site.set_irp_muxer(404)


def test_version_is_configurable(site, rws):
    site.set_rws_version("8.5.200.01")
    try:
        assert rws.get(site.rws_url + "api/v2/diagnostics/version").json()["version"] == "8.5.200.01"
    finally:
        site.set_rws_version("8.5.201.14")


def test_the_field_dialect_answers_the_field_way(site, rws):
    site.set_dialect("field")
    try:
        body = rws.get(list_url(site), params={"startTime": 0, "limit": 100}).json()
        assert len(body["recordings"]) == 100 and "nextUri" not in body  # cut at the limit, no next link
        again = rws.get(list_url(site), params={"startTime": 0, "limit": 100, "after": "1_x", "offset": 100}).json()
        assert [r["id"] for r in again["recordings"]] == [r["id"] for r in body["recordings"]]  # paging ignored
        record = body["recordings"][0]
        assert record["startTime"].endswith("Z") and "+0000" not in record["startTime"]
        media = record["mediaFiles"][0]
        assert media["type"] == "audio/mpeg3" and "." in media["duration"]
        assert media["originalMediaDescriptor"]["path"].startswith(site.webdav_url)
        assert "storagePath" not in media["originalMediaDescriptor"]["data"]
        missing = rws.get(f"{screens_url(site)}/{'0' * 32}")
        assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("text/plain")
        assert rws.get(list_url(site)).status_code == 400
        call_id = record["id"]
        headers = csrf(rws, site)
        posted = rws.post(screens_url(site), json=_write_back_body(site, call_id, n=7), headers=headers)
        assert posted.status_code == 200 and posted.text == "{status:0}"
    finally:
        site.set_dialect("strict")
    strict = rws.get(list_url(site), params={"startTime": 0, "limit": 100}).json()
    assert "nextUri" in strict and strict["recordings"][0]["startTime"].endswith("+0000")
