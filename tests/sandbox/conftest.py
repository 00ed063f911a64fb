from __future__ import annotations

import datetime as dt

import pytest
import requests

from grmux_sandbox.site import Sandbox

START = dt.datetime(2026, 11, 27, 8, 0, 0, tzinfo=dt.UTC)
START_MS = int(START.timestamp() * 1000)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A running sandbox with 250 metadata-only calls (no media) starting at START."""
    sb = Sandbox.start(tmp_path_factory.mktemp("site"))
    sb.seed_metadata(250, seed=3, start=START)
    yield sb
    sb.stop()


@pytest.fixture()
def rws(site):
    """A requests session with RWS credentials; yields (session, base list URL, internal base)."""
    session = requests.Session()
    session.auth = ("ops", "ops")
    yield session
    session.close()


def list_url(sb: Sandbox) -> str:
    return f"{sb.rws_url}api/v2/ops/contact-centers/{sb.contact_center_id}/recordings"


def screens_url(sb: Sandbox) -> str:
    return f"{sb.rws_url}internal-api/contact-centers/{sb.contact_center_id}/screen-recordings"


def csrf(session: requests.Session, sb: Sandbox) -> dict[str, str]:
    r = session.get(sb.rws_url + "api/v2/diagnostics/version")
    r.raise_for_status()
    return {r.headers["X-CSRF-HEADER"]: r.headers["X-CSRF-TOKEN"]}


def list_all(session: requests.Session, sb: Sandbox, **params) -> tuple[list[dict], int]:
    r = session.get(list_url(sb), params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    records, pages = list(body["recordings"]), 1
    while "nextUri" in body:
        r = session.get(body["nextUri"])
        assert r.status_code == 200, r.text
        body = r.json()
        records += body["recordings"]
        pages += 1
    return records, pages
