"""One logger scheme: every grmux_core module logs under ``grmux.<module>``, so the log file that
``attach_log_file`` hangs on the ``grmux`` logger receives the ffmpeg runner's and the muxer's lines."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import pytest

import grmux_core
from grmux_core import ffmpeg as ff
from grmux_core import logs, mux


@pytest.fixture
def log_file(tmp_path):
    path = logs.attach_log_file(tmp_path)
    yield path
    handler = logs._handlers.pop(path)
    logging.getLogger("grmux").removeHandler(handler)
    handler.close()


def test_the_ffmpeg_runner_and_the_muxer_reach_grmux_log(log_file):
    ff.run([sys.executable, "-c", "pass"], what="a harmless process")  # logs the command line at INFO
    mux.log.info("a line of the muxer")
    for handler in logging.getLogger("grmux").handlers:
        handler.flush()
    text = log_file.read_text()
    assert f"grmux.ffmpeg running: {sys.executable} -c pass" in text
    assert "grmux.mux a line of the muxer" in text


def test_every_core_module_logs_under_grmux():
    names = {}
    for module in pkgutil.iter_modules(grmux_core.__path__):
        loaded = importlib.import_module(f"grmux_core.{module.name}")
        for value in vars(loaded).values():
            if isinstance(value, logging.Logger):
                names[module.name] = value.name
    assert {"ffmpeg", "mux", "call", "rws"} <= set(names)
    assert all(name == "grmux" or name.startswith("grmux.") for name in names.values()), names
