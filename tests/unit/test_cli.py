"""The command lines: `grmux config check`, exit codes, and the legacy `muxer_process.py`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grmux_cli import legacy
from grmux_cli.exit_codes import ExitCode
from grmux_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
GOOD = "[htcc]\nbase_uri = http://127.0.0.1:1/\ncontact_center_id = ab\npassword = hunter2-sentinel\n"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "muxer.cfg"
    path.write_text(text)
    return path


def test_config_check_prints_effective_config_with_secrets_masked(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HTCC_PASSWORD", raising=False)
    assert main(["config", "check", str(write(tmp_path, GOOD + "typo_option = 1\n"))]) == ExitCode.OK
    out, err = capsys.readouterr()
    assert "base_uri = http://127.0.0.1:1/" in out and "password = ********" in out
    assert "window_past = 720" in out and "split_window_enabled = 0" in out
    assert "hunter2-sentinel" not in out + err
    assert "[htcc] typo_option" in err


def test_config_check_exits_2_with_every_problem(tmp_path, capsys):
    path = write(tmp_path, "[processing]\nwindow_past = soon\nmuxer_type = tertiary\n")
    assert main(["config", "check", str(path)]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "missing required options: [htcc] base_uri, [htcc] contact_center_id" in err
    assert "[processing] window_past = 'soon'" in err and "[processing] muxer_type = 'tertiary'" in err


def test_config_check_applies_sharding_overrides(tmp_path, capsys):
    assert main(["config", "check", str(write(tmp_path, GOOD)), "--muxer-id", "1", "--total-muxers", "2"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert "muxer_id = 1" in out and "total_muxers = 2" in out


def test_usage_error_exits_2(capsys):
    assert main(["config", "frobnicate"]) == ExitCode.USAGE


def run_legacy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "muxer_process.py"), *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_legacy_command_line_turns_flags_into_flow_parameters(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(legacy, "run_cycle", lambda params: seen.append(params) or ExitCode.CALLS_FAILED)
    path = write(tmp_path, GOOD + "[processing]\nmuxer_id = 0\ntotal_muxers = 4\n")
    code = legacy.main([f"--config-file={path}", "--muxer-type=backup", "--muxer-id=3", "--once"])
    assert code == ExitCode.CALLS_FAILED  # the cycle's exit code (1 = some calls failed) is the process's
    assert seen == [{"mode": "backup", "config_path": str(path), "muxer_id": 3}]


def test_legacy_loop_polls_every_min_poll_interval_and_backfill_runs_once(tmp_path, monkeypatch):
    cycles, sleeps = [], []
    monkeypatch.setattr(legacy, "run_cycle", lambda params: cycles.append(params["mode"]) or ExitCode.OK)

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    path = write(tmp_path, GOOD + "[processing]\nmin_poll_interval = 7\n")
    with pytest.raises(KeyboardInterrupt):
        legacy.main([f"--config-file={path}"], sleep=sleep)
    assert cycles == ["primary", "primary"] and all(400 < s <= 420 for s in sleeps)
    cycles.clear()
    backfill = write(tmp_path, GOOD + "[advanced]\ncall_recording_query_string = userName=alice\n")
    assert legacy.main([f"--config-file={backfill}"], sleep=sleep) == ExitCode.OK
    assert cycles == ["backfill"]


def test_legacy_command_line_reports_config_errors_with_exit_2(tmp_path):
    done = run_legacy(f"--config-file={write(tmp_path, GOOD)}", "--muxer-id=9", "--total-muxers=2")
    assert done.returncode == ExitCode.USAGE
    assert "[processing] muxer_id = 9" in done.stderr
