"""muxer.cfg parsing: every option, every validation rule, overrides and secrets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from grmux_core.config import OPTIONS, SecretStr, load_settings, public_dict
from grmux_core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
BASE = "[htcc]\nbase_uri = https://rws.example:8090\ncontact_center_id = 0a1b\n"


def load(extra: str = "", environ: dict[str, str] | None = None, **overrides):
    return load_settings(text=BASE + extra, environ=environ or {}, overrides=overrides or None)


def problems_of(text: str, **kw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(text=text, environ=kw.pop("environ", {}), **kw)
    return info.value.problems


def test_defaults_match_the_spec_table():
    s = load()
    assert s.htcc.base_uri == "https://rws.example:8090/"
    assert (s.htcc.username, s.htcc.password.get()) == ("ops", "ops")
    assert s.rcs.base_uri == "" and not s.rcs.password
    assert s.webdav.allowed_hosts == ()
    assert s.processing.ffmpeg == "ffmpeg" and s.processing.ffprobe == "ffprobe"
    assert s.processing.window_past == 720 and s.processing.window_past_older_than == 0
    assert s.processing.min_poll_interval == 5
    assert (s.processing.muxer_id, s.processing.total_muxers, s.processing.muxer_type) == (-1, 1, "primary")
    assert s.processing.split_window_enabled is False
    assert (s.processing.max_interval_minutes, s.processing.interval_buffer_minutes) == (720, 240)
    assert s.processing.bulk_read and s.processing.query_slice_size == 100
    assert s.processing.delete_original is False
    assert s.processing.output_path == "muxed/{date}/{call_id}_muxed_{n}.mp4"
    assert (s.advanced.worker_threads, s.advanced.pagination) == (4, 100)
    assert (s.advanced.max_overlap_allowed, s.advanced.video_padding_slice_length_ms) == (500, 5000)
    assert s.advanced.call_recording_extra_query_string == "" and not s.advanced.backfill
    assert Path(s.logfile.logfile_path).is_dir() and Path(s.processing.temp_dir).is_dir()
    assert s.htcc.requests_verify is True and s.warnings == ()


@pytest.mark.parametrize(
    ("section", "option", "raw", "attr", "expected"),
    [
        ("processing", "window_past", "60", "window_past", 60),
        ("processing", "window_past_older_than", "", "window_past_older_than", 0),
        ("processing", "window_past_older_than", "30", "window_past_older_than", 30),
        ("processing", "muxer_id", "", "muxer_id", -1),
        ("processing", "muxer_type", "BACKUP", "muxer_type", "backup"),
        ("processing", "split_window_enabled", "1\nwindow_past = 1440", "split_window_enabled", True),
        ("processing", "delete_original", "yes", "delete_original", True),
        ("processing", "batch_read_screen_recording_metadata", "0", "bulk_read", False),
        ("processing", "batch_read_screen_recording_metadata", "7", "bulk_read", False),
        ("processing", "query_slice_size", "25", "query_slice_size", 25),
        ("processing", "openssl", "/usr/bin/openssl", "openssl", "/usr/bin/openssl"),
        ("processing", "output_path", "out/{call_id}-{n}.mp4", "output_path", "out/{call_id}-{n}.mp4"),
        ("advanced", "worker_threads", "8", "worker_threads", 8),
        ("advanced", "pagination", "1", "pagination", 1),
        ("advanced", "max_overlap_allowed", "0", "max_overlap_allowed", 0),
        ("advanced", "video_padding_slice_length_ms", "2000", "video_padding_slice_length_ms", 2000),
        ("advanced", "call_recording_extra_query_string", "?userName=alice", "call_recording_extra_query_string",
         "userName=alice"),
        ("advanced", "call_recording_query_string", "callerPhoneNumber=555*", "backfill", True),
        ("webdav", "allowed_hosts", "Dav1.example:8080, 10.0.0.2:443", "allowed_hosts",
         ("dav1.example:8080", "10.0.0.2:443")),
        ("s3", "endpoint_url", "http://127.0.0.1:9000", "endpoint_url", "http://127.0.0.1:9000/"),
        ("rcs", "verify", "0", "requests_verify", False),
    ],
)
def test_each_option_parses(section, option, raw, attr, expected):
    s = load(f"[{section}]\n{option} = {raw}\n")
    assert getattr(getattr(s, section), attr) == expected


@pytest.mark.parametrize(
    ("section", "option", "raw", "allowed"),
    [
        ("htcc", "base_uri", "ftp://x", "http:// or https:// URI"),
        ("htcc", "contact_center_id", "zz-top", "hexadecimal"),
        ("processing", "window_past", "abc", "integer ≥ 1"),
        ("processing", "window_past", "0", "integer ≥ 1"),
        ("processing", "window_past_older_than", "-5", "integer ≥ 0"),
        ("processing", "min_poll_interval", "0", "integer ≥ 1"),
        ("processing", "muxer_id", "-2", "integer ≥ -1"),
        ("processing", "total_muxers", "0", "integer ≥ 1"),
        ("processing", "muxer_type", "secondary", "one of primary, backup"),
        ("processing", "split_window_enabled", "2", "0 or 1"),
        ("processing", "delete_original", "maybe", "0 or 1"),
        ("processing", "query_slice_size", "0", "from 1 to 100"),
        ("processing", "query_slice_size", "101", "from 1 to 100"),
        ("processing", "batch_read_screen_recording_metadata", "x", "an integer"),
        ("processing", "temp_dir", "/no/such/dir", "existing directory"),
        ("processing", "output_path", "/abs/{call_id}_{n}.mp4", "relative path template"),
        ("processing", "output_path", "muxed/{call_id}.mp4", "{call_id} and {n}"),
        ("processing", "output_path", "muxed/{agent}_{call_id}_{n}.mp4", "only {date}, {call_id} and {n}"),
        ("advanced", "worker_threads", "0", "from 1 to 64"),
        ("advanced", "pagination", "500", "from 1 to 100"),
        ("advanced", "max_overlap_allowed", "-1", "integer ≥ 0"),
        ("advanced", "video_padding_slice_length_ms", "10", "integer ≥ 40"),
        ("webdav", "allowed_hosts", "dav.example", "host:port"),
        ("webdav", "verify", "perhaps", "0 or 1"),
        ("s3", "ca_bundle", "/no/such/ca.pem", "CA bundle file"),
        ("logfile", "logfile_path", "/no/such/logs", "existing directory"),
    ],
)
def test_a_wrong_value_names_section_option_value_and_what_is_allowed(section, option, raw, allowed):
    text = BASE + f"[{section}]\n{option} = {raw}\n" if section != "htcc" else (
        "[htcc]\nbase_uri = https://rws.example:8090\ncontact_center_id = 0a1b\n".replace(
            f"{option} = ", f"{option}_old = ") + f"{option} = {raw}\n"
    )
    problems = problems_of(text)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"[{section}] {option} = {raw!r}")
    assert allowed in problems[0]


def test_missing_required_options_are_listed_at_once_with_other_problems():
    problems = problems_of("[processing]\nwindow_past = x\n[advanced]\npagination = 0\n")
    assert problems[0] == "missing required options: [htcc] base_uri, [htcc] contact_center_id"
    assert len(problems) == 3


def test_empty_required_value_counts_as_missing():
    problems = problems_of("[htcc]\nbase_uri =\ncontact_center_id = 0a\n")
    assert problems == ["missing required options: [htcc] base_uri"]


def test_unknown_options_and_sections_give_one_warning_naming_them():
    s = load("[processing]\nwindow_pats = 10\n[extra]\nfoo = 1\n")
    unknown = [w for w in s.warnings if w.startswith("unknown options")]
    assert len(unknown) == 1
    assert "[processing] window_pats" in unknown[0] and "[extra] foo" in unknown[0]


def test_openssl_is_accepted_and_ignored_with_a_warning():
    s = load("[processing]\nopenssl = /usr/bin/openssl\n")
    assert any("openssl is ignored" in w for w in s.warnings)


def test_cross_rules_window_and_shard():
    problems = problems_of(BASE + "[processing]\nwindow_past = 60\nwindow_past_older_than = 60\n")
    assert "below window_past (60)" in problems[0]
    problems = problems_of(BASE + "[processing]\nmuxer_id = 4\ntotal_muxers = 4\n")
    assert "[processing] muxer_id = 4" in problems[0] and "0 to total_muxers - 1 = 3" in problems[0]


def test_split_rules_are_checked_only_when_split_is_on():
    assert load("[processing]\nmax_interval_minutes = 10\n").processing.max_interval_minutes == 10
    problems = problems_of(BASE + "[processing]\nsplit_window_enabled = 1\nwindow_past = 1000\n")
    assert len(problems) == 1 and "720 ≤ max_interval_minutes ≤ window/2 = 500" in problems[0]
    problems = problems_of(
        BASE + "[processing]\nsplit_window_enabled = 1\nwindow_past = 2880\ninterval_buffer_minutes = 720\n"
    )
    assert problems == [
        ("[processing] interval_buffer_minutes = 720 is not valid: allowed is "
         "1 ≤ interval_buffer_minutes < max_interval_minutes (720)")
    ]
    ok = load("[processing]\nsplit_window_enabled = 1\nwindow_past = 2880\n")
    assert ok.processing.split_window_enabled


def test_environment_passwords_win_over_the_file():
    s = load(
        "[htcc]\npassword = file\n[rcs]\npassword = file\n[webdav]\npassword = file\n",
        environ={"HTCC_PASSWORD": "e1", "RCS_PASSWORD": "e2", "WEBDAV_PASSWORD": "e3"},
    )
    assert (s.htcc.password.get(), s.rcs.password.get(), s.webdav.password.get()) == ("e1", "e2", "e3")


def test_empty_environment_password_does_not_erase_the_file_value():
    s = load("[webdav]\npassword = file\n", environ={"WEBDAV_PASSWORD": ""})
    assert s.webdav.password.get() == "file"


def test_command_line_overrides_win_and_are_validated():
    s = load("[processing]\nmuxer_id = 0\ntotal_muxers = 2\n", muxer_type="backup", muxer_id=1, total_muxers=3)
    assert (s.processing.muxer_type, s.processing.muxer_id, s.processing.total_muxers) == ("backup", 1, 3)
    with pytest.raises(ConfigError) as info:
        load(muxer_id=5, total_muxers=2)
    assert "[processing] muxer_id = 5" in str(info.value)
    assert load(muxer_id=None).processing.muxer_id == -1


def test_secrets_never_show_their_value(caplog):
    secret = "s3cr3t-sentinel"
    s = load(f"[htcc]\npassword = {secret}\n[s3]\nsecret_access_key = {secret}\n")
    logging.getLogger("grmux.test").warning("settings: %s %r %s", s, s, s.htcc.password)
    texts = [repr(s), str(s), f"{s.htcc.password}", f"{s.htcc.password:>20}", caplog.text,
             json.dumps(public_dict(s))]
    assert all(secret not in t for t in texts)
    assert "********" in caplog.text
    with pytest.raises(TypeError):
        json.dumps(s.htcc.password)
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s.htcc.password)
    assert s.htcc.password.get() == secret
    assert repr(SecretStr("")) == "SecretStr('')"


def test_a_bad_password_value_is_not_echoed_in_errors():
    # a password cannot be "wrong" by type, but the masking path of the message must not leak it
    s = load("[rcs]\npassword = p@ss\n")
    assert "p@ss" not in repr(s.rcs)


def test_invalid_ini_and_missing_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.cfg", environ={})
    with pytest.raises(ConfigError, match="not a valid INI file"):
        load_settings(text="base_uri = x\n", environ={})


def test_the_shipped_muxer_cfg_documents_every_option_and_loads():
    text = (ROOT / "muxer.cfg").read_text()
    sections: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[] ")
        sections[current] = sections.get(current, "") + line + "\n"
    for option in OPTIONS:
        assert f"\n{option.name} =" in "\n" + sections.get(option.section, ""), (option.section, option.name)
    s = load_settings(ROOT / "muxer.cfg", environ={})
    assert s.warnings == ()


def test_configuration_doc_table_is_current():
    from grmux_core.config import reference_markdown

    assert reference_markdown() in (ROOT / "docs" / "configuration.md").read_text()


def test_section_option_overrides_are_validated_like_the_file():
    s = load(**{"processing.window_past": 60, "processing.split_window_enabled": False})
    assert s.processing.window_past == 60 and s.processing.split_window_enabled is False
    with pytest.raises(ConfigError, match=r"\[advanced\] worker_threads = '0'"):
        load(**{"advanced.worker_threads": 0})
    with pytest.raises(ConfigError, match="unknown override"):
        load(window_past=5)
