"""How fast is grmux's mux against a naive re-encode and against a plain remux? Prints, never asserts.

For N calls (default 3) of 5 minutes — 8 kHz mono MP3 call audio, a 1280x720 25 fps H.264 screen
recording that starts 3.3 s into the call and stops 5 s before its end (so lead and tail padding
are needed) — it times, per call, as separate processes (start-up and imports included):

* **grmux**: ``grmux mux`` (probe + plan + run + verify), through ``cli_mux``;
* **naive**: one ffmpeg filter graph re-encoding everything (libx264 veryfast, ``tpad`` padding,
  ``apad`` audio), the obvious way to align without thinking about copy;
* **bound**: a plain remux without alignment, ``-c:v copy -c:a aac`` — grmux cannot beat it.

and prints the medians and the ratios grmux/bound (target ≤ 1.3) and naive/grmux (target ≥ 8).
The media are generated once (that takes a while at 720p) and reused by every call.

    .venv/bin/python benchmarks/mux_speed.py [--calls N] [--minutes 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grmux_sandbox import media

CALL_START = "2026-11-27T16:58:22.000+0000"
SCREEN_START = "2026-11-27T16:58:25.300+0000"  # 3.3 s into the call
LEAD, TAIL = 3.3, 5.0
BOOT = ("import argparse,sys; from grmux_core import cli_mux; p=argparse.ArgumentParser(); "
        "cli_mux.register(p.add_subparsers(dest='c', required=True)); a=p.parse_args(sys.argv[1:]); "
        "sys.exit(a.func(a))")


def timed(argv: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--keep", help="directory for media and outputs (default: a temp dir, removed)")
    args = ap.parse_args()
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(args.keep or tmp)
        d.mkdir(parents=True, exist_ok=True)
        audio, screen = d / "call.mp3", d / "screen.mp4"
        t = time.perf_counter()
        if not audio.exists():
            media.make_audio(audio, 0.0, seconds)
        if not screen.exists():
            media.make_screen(screen, LEAD, seconds - LEAD - TAIL, size=(1280, 720), fps=25, faststart=True)
        print(f"media ready in {time.perf_counter() - t:.1f} s: {seconds:.0f} s call, 1280x720 25 fps H.264 "
              f"screen from {LEAD} s to {seconds - TAIL:.1f} s, 8 kHz MP3")
        runs: dict[str, list[float]] = {"grmux": [], "naive": [], "bound": []}
        for n in range(args.calls):
            runs["grmux"].append(timed([sys.executable, "-c", BOOT, "mux", "--audio", f"{audio}@{CALL_START}",
                                        "--screen", f"{screen}@{SCREEN_START}", "-o", str(d / f"grmux{n}.mp4")]))
            graph = (f"[0:v]tpad=start_duration={LEAD}:stop_duration={TAIL}:start_mode=add:stop_mode=add:"
                     f"color=black[v];[1:a]apad=whole_dur={seconds}[a]")
            runs["naive"].append(timed(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error", "-i", str(screen),
                                        "-i", str(audio), "-filter_complex", graph, "-map", "[v]", "-map", "[a]",
                                        "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", "-t", f"{seconds}",
                                        "-movflags", "+faststart", str(d / f"naive{n}.mp4")]))
            runs["bound"].append(timed(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error", "-i", str(screen),
                                        "-i", str(audio), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac",
                                        str(d / f"bound{n}.mp4")]))
            print(f"call {n + 1}/{args.calls}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in runs.items()))
        med = {k: statistics.median(v) for k, v in runs.items()}
        print(f"\nmedian of {args.calls} calls of {args.minutes:g} min:")
        for k, v in med.items():
            print(f"  {k:<6} {v:7.2f} s")
        print(f"  grmux / bound = {med['grmux'] / med['bound']:.2f}x   (target <= 1.3)")
        print(f"  naive / grmux = {med['naive'] / med['grmux']:.1f}x   (target >= 8)")


if __name__ == "__main__":
    main()
