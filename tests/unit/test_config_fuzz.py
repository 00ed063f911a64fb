"""Fuzzing the muxer.cfg parser: any text gives Settings or a ConfigError, never another exception."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grmux_core.config import OPTIONS, Settings, load_settings
from grmux_core.errors import ConfigError

SECTIONS = sorted({o.section for o in OPTIONS})
NAMES = sorted({o.name for o in OPTIONS})
BASE = "[htcc]\nbase_uri = https://rws.example:8090\ncontact_center_id = 0a1b\n"

# values that hit the validators' edges: wrong types, signs, huge numbers, empty, odd characters
values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "0", "1", "-1", "yes", "no", "on", "off", "true", "maybe", "720", "1439", "1440",
                     "99999999999999999999", "1e3", "0x10", "http://", "https://h:99999/", "ftp://x/", "{date}",
                     "{nope}", "../..", "/nonexistent/dir", "%(x)s", "\x00", "  ", "primary", "backup", "å"]),
)


def ini(sections: list[tuple[str, list[tuple[str, str]]]]) -> str:
    lines = []
    for section, items in sections:
        lines.append(f"[{section}]")
        lines += [f"{name} = {value}" for name, value in items]
    return "\n".join(lines) + "\n"


structured = st.lists(
    st.tuples(st.sampled_from([*SECTIONS, "unknown", "HTCC"]),
              st.lists(st.tuples(st.sampled_from([*NAMES, "typo_option"]),
                                 values.map(lambda v: v.replace("\n", " ").replace("\r", " "))), max_size=6)),
    max_size=5,
).map(ini)


def outcome(text: str) -> Settings | ConfigError:
    try:
        return load_settings(text=text, environ={})
    except ConfigError as exc:
        return exc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_any_text_gives_settings_or_a_config_error(text):
    assert isinstance(outcome(text), Settings | ConfigError)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structured)
def test_any_ini_gives_settings_or_a_config_error_naming_each_problem(text):
    result = outcome(BASE + text)
    assert isinstance(result, Settings | ConfigError)
    if isinstance(result, ConfigError):
        assert result.problems and all(isinstance(p, str) and p.strip() for p in result.problems)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([o for o in OPTIONS if o.section != "htcc" or o.name not in ("base_uri", "contact_center_id")]),
       values)
def test_one_bad_value_is_an_error_naming_its_section_and_option(option, value):
    value = value.replace("\n", " ").replace("\r", " ")
    result = outcome(BASE + ini([(option.section, [(option.name, value)])]))
    if isinstance(result, ConfigError):
        # the option itself, or (a cross rule it switched on, e.g. split_window_enabled) the options
        # that rule concerns, each named as "[section] option"
        assert any(option.section in p and option.name in p for p in result.problems) or \
            all(re.search(r"\[[a-z0-9]+\] [a-z_]+", p) for p in result.problems), result.problems


def test_wrong_types_and_out_of_range_values_are_listed_together():
    text = BASE + ini([("advanced", [("worker_threads", "many"), ("pagination", "1000")]),
                       ("processing", [("window_past", "-5"), ("delete_original", "perhaps")])])
    result = outcome(text)
    assert isinstance(result, ConfigError)
    joined = "\n".join(result.problems)
    for name in ("worker_threads", "pagination", "window_past", "delete_original"):
        assert name in joined
