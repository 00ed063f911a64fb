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
                          check=False, capture_output=True, text=True, cwd=ROOT)


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


# --- exit codes -------------------------------------------------------------------------------------
def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_code_is_listed_once_in_the_help(capsys):
    assert main(["--help"]) == ExitCode.OK
    out = capsys.readouterr().out
    for code in ExitCode:
        assert out.count(f"{code.value}  {code.name}:") == 1


def test_commands_return_exit_code_members_never_bare_ints(tmp_path):
    assert type(main(["config", "check", str(write(tmp_path, GOOD))])) is ExitCode
    assert type(main(["config", "reference"])) is ExitCode
    assert type(main(["sandbox", "seed", "--calls", "-1", "--state", str(tmp_path)])) is ExitCode  # plain int inside
    assert type(legacy.main(["--no-such-flag"])) is ExitCode


def test_legacy_usage_error_exits_2():
    assert legacy.main(["--no-such-flag"]) == ExitCode.USAGE


def test_run_reports_a_config_error_as_usage(tmp_path, capsys):
    path = write(tmp_path, "[processing]\nwindow_past = soon\n")
    assert main(["run", "--config", str(path)]) == ExitCode.USAGE
    assert "[processing] window_past = 'soon'" in capsys.readouterr().err


def test_a_finished_cycle_state_maps_to_its_exit_code():
    import asyncio

    from prefect.states import Completed, Failed, exception_to_failed_state

    from grmux_cli.run_cmd import cycle_exit_code
    from grmux_core.errors import AuthError, ConfigError, TransientError

    def raised(error: BaseException):
        return asyncio.run(exception_to_failed_state(error))

    assert cycle_exit_code(Completed(data={"counts": {}})) == ExitCode.OK
    assert cycle_exit_code(Failed(message="1 of 2 calls failed", data={"counts": {"failed": 1}})) \
        == ExitCode.CALLS_FAILED
    assert cycle_exit_code(raised(TransientError("RWS could not be reached"))) == ExitCode.UNAVAILABLE
    assert cycle_exit_code(raised(ConfigError("[htcc] base_uri is wrong"))) == ExitCode.USAGE
    assert cycle_exit_code(raised(AuthError("RWS answered 401"))) == ExitCode.CALLS_FAILED


def test_an_unreachable_service_is_found_through_the_exception_chain():
    import httpx

    from grmux_cli.exit_codes import exit_code_for

    try:
        try:
            raise httpx.ConnectError("All connection attempts failed")
        except httpx.ConnectError as inner:
            raise RuntimeError("Failed to reach API at http://127.0.0.1:1/api/") from inner
    except RuntimeError as wrapped:
        assert exit_code_for(wrapped) == ExitCode.UNAVAILABLE
    assert exit_code_for(RuntimeError("a bug")) == ExitCode.CALLS_FAILED


def test_status_with_an_unreachable_api_is_unavailable_not_usage(capsys):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = f"http://127.0.0.1:{closed_port()}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        assert main(["status"]) == ExitCode.UNAVAILABLE
    out = capsys.readouterr().out
    assert f"cannot read runs from the Prefect API at {url}" in out and "Start the server" in out


def test_run_with_an_unreachable_prefect_api_is_unavailable(tmp_path, capsys):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = f"http://127.0.0.1:{closed_port()}/api"
    with temporary_settings(updates={PREFECT_API_URL: url}):
        assert main(["run", "--config", str(write(tmp_path, GOOD))]) == ExitCode.UNAVAILABLE
    assert "the flow run could not start" in capsys.readouterr().err
