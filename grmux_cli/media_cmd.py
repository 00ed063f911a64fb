"""``grmux mux`` and ``grmux plan``: align local files by hand.

    grmux mux  --audio A.mp3@2026-11-27T16:58:22.000+0000 [--audio ...] \\
               --screen S.mp4@2026-11-27T16:58:25Z [--screen ...] -o out.mp4
    grmux plan (same inputs) [--json] [--out call.svg]

START is the recording's wall-clock start (ISO-8601 with a time zone); stop times come from the
probed durations. A media failure prints the MediaError message and returns
``ExitCode.CALLS_FAILED``. The engine is imported only when a command runs, so ``grmux --help``
stays light.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from datetime import datetime

from grmux_cli.exit_codes import ExitCode


def parse_input(text: str) -> tuple[str, datetime]:
    """``PATH@START`` → (path, tz-aware start). The last ``@`` splits, so paths may contain ``@``."""
    path, sep, start = text.rpartition("@")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: expected PATH@START, e.g. a.mp3@2026-11-27T16:58:22.000+0000")
    try:
        when = datetime.fromisoformat(start.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{start!r} is not an ISO-8601 time (e.g. 2026-11-27T16:58:22.000Z)") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{start!r} has no time zone: add Z or +0000")
    return path, when


def _svg_path(text: str) -> str:
    if not text.lower().endswith(".svg"):
        raise argparse.ArgumentTypeError(f"{text!r}: the timeline is written as SVG, name it *.svg")
    return text


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--audio", action="append", required=True, type=parse_input, metavar="FILE@START",
                   help="call audio recording and its wall-clock start (repeatable)")
    p.add_argument("--screen", action="append", required=True, type=parse_input, metavar="FILE@START",
                   help="screen recording and its wall-clock start (repeatable)")
    p.add_argument("--max-overlap-ms", type=int, default=500,
                   help="[advanced] max_overlap_allowed: overlaps up to this shift the later screen (default 500)")
    p.add_argument("--padding-slice-ms", type=int, default=5000,
                   help="[advanced] video_padding_slice_length_ms (default 5000)")
    p.add_argument("--ffmpeg", default="ffmpeg", help="ffmpeg executable ([processing] ffmpeg)")
    p.add_argument("--ffprobe", default="ffprobe", help="ffprobe executable ([processing] ffprobe)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every ffmpeg command")


def _setup(args: argparse.Namespace):
    from grmux_core.mux import MuxTools

    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.max_overlap_ms < 0 or args.padding_slice_ms <= 0:
        print("grmux: --max-overlap-ms must be ≥ 0 and --padding-slice-ms > 0", file=sys.stderr)
        return None
    return MuxTools(ffmpeg=args.ffmpeg, ffprobe=args.ffprobe)


def _plan(args: argparse.Namespace) -> ExitCode:
    from grmux_core.errors import MediaError
    from grmux_core.mux import probe_inputs
    from grmux_core.plan import plan_mux

    tools = _setup(args)
    if tools is None:
        return ExitCode.USAGE
    try:
        audios, screens = probe_inputs(args.audio, args.screen, tools)
        plan = plan_mux(audios, screens, max_overlap_ms=args.max_overlap_ms, padding_slice_ms=args.padding_slice_ms)
    except MediaError as exc:
        print(f"grmux plan: {exc}", file=sys.stderr)
        return ExitCode.CALLS_FAILED
    print(json.dumps(plan.to_dict(), indent=2) if args.json else plan.describe())
    if args.out:
        return _write_picture(plan, args)
    return ExitCode.OK


def _write_picture(plan, args: argparse.Namespace) -> ExitCode:
    """``--out``: the plan's timeline as SVG (the text output above is kept)."""
    from pathlib import Path

    from grmux_core.timeline import plan_svg

    out = Path(args.out)
    title = "grmux plan: " + ", ".join(Path(p).name for p, _ in args.audio)
    try:
        out.write_text(plan_svg(plan, title=title), encoding="utf-8")
    except OSError as exc:
        print(f"grmux plan: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return ExitCode.CALLS_FAILED
    print(f"wrote {out}", file=sys.stderr if args.json else sys.stdout)
    return ExitCode.OK


@contextlib.contextmanager
def _progress_bar() -> Iterator[Callable[[float], None] | None]:
    """A rich progress line (seconds of output written) on a terminal; nothing when piped, so
    scripts and the benchmark pay no import for it."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("muxing: {task.fields[seconds]:.1f} s of output"),
                  TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task("mux", total=None, seconds=0.0)
        yield lambda seconds: bar.update(task, seconds=seconds)


def _mux(args: argparse.Namespace) -> ExitCode:
    from grmux_core.errors import MediaError
    from grmux_core.mux import mux_files

    tools = _setup(args)
    if tools is None:
        return ExitCode.USAGE
    with _progress_bar() as progress:
        try:
            plan, info = mux_files(args.audio, args.screen, args.output, max_overlap_ms=args.max_overlap_ms,
                                   padding_slice_ms=args.padding_slice_ms, tools=tools, workdir=args.temp_dir,
                                   progress=progress)
        except MediaError as exc:
            print(f"grmux mux: {exc}", file=sys.stderr)
            return ExitCode.CALLS_FAILED
    print(plan.describe())
    print(f"wrote {args.output}: {info.duration:.3f} s, verified (1 video + 1 audio stream, starts at 0)")
    return ExitCode.OK


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mux`` and ``plan`` to the grmux command line."""
    mux = subparsers.add_parser("mux", help="align and mux local audio + screen files into one MP4")
    _common(mux)
    mux.add_argument("-o", "--output", required=True, help="output MP4 (written only if verified)")
    mux.add_argument("--temp-dir", default=None, help="scratch directory ([processing] temp_dir)")
    mux.set_defaults(func=_mux)
    plan = subparsers.add_parser("plan", help="print the alignment plan for local files (probes, renders nothing)")
    _common(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument("--out", metavar="FILE.svg", type=_svg_path, default=None,
                      help="also write the plan as a to-scale SVG timeline (open it in a browser: hover a "
                           "span for its reason)")
    plan.set_defaults(func=_plan)
