"""Time formats of the GIR wire contract."""

from __future__ import annotations

import datetime as dt
import re

UTC = dt.UTC
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})$"
)


def iso_ms(value: dt.datetime) -> str:
    """``2026-11-27T16:58:22.000+0000`` (UTC, milliseconds)."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_iso(text: str) -> dt.datetime:
    """ISO-8601 with a numeric offset (``+0000``, ``+00:00``) or ``Z``; raises ValueError."""
    match = _ISO.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f"not an ISO-8601 time with offset: {text!r}")
    y, mo, d, h, mi, s, frac, tz = match.groups()
    micro = int((frac or "0").ljust(6, "0"))
    if tz == "Z":
        offset = dt.timedelta(0)
    else:
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro,
                       tzinfo=dt.timezone(offset)).astimezone(UTC)


def to_ms(value: dt.datetime) -> int:
    return round(value.timestamp() * 1000)


def parse_query_time(text: str) -> int:
    """A query-parameter time: epoch milliseconds, or ISO (accepted by the sandbox too) → epoch ms."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return to_ms(parse_iso(text))
