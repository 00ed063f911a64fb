"""`grmux mux` / `grmux plan` argument handling (no media needed)."""

from __future__ import annotations

import argparse
from datetime import timedelta

import pytest

from grmux_cli import media_cmd
from grmux_cli.exit_codes import ExitCode


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="grmux")
    media_cmd.register(p.add_subparsers(dest="command", required=True))
    return p


@pytest.mark.parametrize("text", ["a@b.mp3@2026-11-27T16:58:22.000+0000", "a@b.mp3@2026-11-27T16:58:22Z"])
def test_parse_input_splits_on_the_last_at_and_keeps_the_zone(text):
    path, when = media_cmd.parse_input(text)
    assert path == "a@b.mp3" and when.utcoffset() == timedelta(0) and when.second == 22


@pytest.mark.parametrize("text", ["a.mp3", "a.mp3@2026-11-27T16:58:22", "a.mp3@yesterday", "@2026-11-27T16:58:22Z"])
def test_bad_inputs_are_usage_errors(text):
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["plan", "--audio", text, "--screen", "s.mp4@2026-11-27T16:58:22Z"])
    assert exc.value.code == ExitCode.USAGE


def test_missing_file_is_a_media_failure(tmp_path, capsys):
    args = parser().parse_args(["mux", "--audio", f"{tmp_path}/none.mp3@2026-11-27T16:58:22Z",
                                "--screen", f"{tmp_path}/s.mp4@2026-11-27T16:58:22Z", "-o", str(tmp_path / "o.mp4")])
    assert args.func(args) == ExitCode.CALLS_FAILED
    assert "none.mp3" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()
