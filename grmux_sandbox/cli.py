"""``grmux sandbox up`` / ``grmux sandbox seed``: the sandbox GIR site from the command line.

``grmux_cli.main`` calls :func:`register` with its subparsers; every parser sets
``func(args) -> int`` with the numbers of ``grmux_cli.exit_codes.ExitCode`` (0 ok, 1 failure,
2 usage error), as plain ints: the sandbox sits beside the layers and does not import the CLI.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import urllib.request
from pathlib import Path

DEFAULT_STATE = ".sandbox"
#: keys.ENCRYPTION_MODES, spelled here so that ``grmux --help`` does not import cryptography
SCREEN_ENCRYPTION = ("none", "empty", "one", "two", "broken", "expired")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError("size must look like 1280x720") from None


def _range(text: str) -> tuple[float, float]:
    try:
        low, _, high = text.partition("-")
        return float(low), float(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError("must look like 20-60 (seconds)") from None


def _seed_options(parser: argparse.ArgumentParser, calls_default: int) -> None:
    parser.add_argument("--calls", type=int, default=calls_default, help="number of calls to generate")
    parser.add_argument("--seed", type=int, default=0, help="random seed (deterministic output)")
    parser.add_argument("--scenario", action="append", dest="scenarios", metavar="NAME",
                        help="scenario to use (repeatable; default: a seeded mix)")
    parser.add_argument("--size", type=_size, default=None, help="screen size WxH (default: real screen sizes)")
    parser.add_argument("--duration", type=_range, default=(20.0, 60.0), help="call length range, s (20-60)")


def register(subparsers: argparse._SubParsersAction) -> None:
    sandbox = subparsers.add_parser("sandbox", help="a local stand-in for a GIR site (RWS, RCS, WebDAV, S3)")
    sub = sandbox.add_subparsers(dest="sandbox_command", required=True)

    up = sub.add_parser("up", help="start RWS, RCS, WebDAV and S3; write muxer.cfg; run until Ctrl-C")
    up.add_argument("--state", default=DEFAULT_STATE, help=f"state folder (default {DEFAULT_STATE})")
    up.add_argument("--config-out", default="muxer.cfg", help="where to write the matching muxer.cfg")
    up.add_argument("--screen-encryption", default=None, choices=SCREEN_ENCRYPTION,
                    help="the screen-recording certificates RWS lists (default: as the state last had it, "
                         "else none = 404)")
    up.add_argument("--rws-dialect", choices=("strict", "field"), default="strict",
                    help="strict: RWS answers the project contract; field: as real RWS do (answers cut at the "
                         "limit without a next link, plain-text errors, write-back answered {status:0}, "
                         "durations in seconds, audio/mpeg3, Z times, absolute media URLs)")
    _seed_options(up, 0)
    up.set_defaults(func=cmd_up)

    seed = sub.add_parser("seed", help="add generated calls to a sandbox state (running or stopped)")
    seed.add_argument("--state", default=DEFAULT_STATE, help=f"state folder (default {DEFAULT_STATE})")
    _seed_options(seed, 10)
    seed.set_defaults(func=cmd_seed)


def _seed_kwargs(args: argparse.Namespace) -> dict:
    return {"seed": args.seed, "scenarios": args.scenarios, "size": args.size, "duration": args.duration}


def cmd_up(args: argparse.Namespace, *, ready: threading.Event | None = None,
           stop: threading.Event | None = None) -> int:
    from grmux_sandbox.site import Sandbox, running_info

    if running_info(args.state):
        print(f"grmux sandbox: a sandbox already runs on {args.state}", file=sys.stderr)
        return 2
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        with Sandbox.start(Path(args.state), dialect=getattr(args, "rws_dialect", "strict")) as site:
            if args.screen_encryption:
                site.set_screen_encryption(args.screen_encryption)
            if args.calls:
                made = site.seed(args.calls, **_seed_kwargs(args))
                print(f"seeded {len(made)} calls")
            cfg = site.write_config(args.config_out)
            print(f"RWS     {site.rws_url}  (ops/ops)  contact centre {site.contact_center_id}  "
                  f"dialect {getattr(args, 'rws_dialect', 'strict')}")
            print(f"RCS     {site.rcs_url}  (rcs/rcs; nodecrypt/nodecrypt has no decrypt permission)")
            print(f"WebDAV  {site.webdav_url}  (dav/dav)")
            print(f"S3      {site.s3_endpoint}  bucket {site.bucket}  (testing/testing)")
            print(f"admin   {site.admin_url}stats")
            listed = site.store.site.get("screen_encryption")
            print(f"screen-recording certificates: {len([e for e in listed if e['name'].startswith('certificate-')])}"
                  if listed is not None else "screen-recording certificates: none (404)")
            print(f"config  {cfg}")
            print(f"{len(site.call_ids())} calls in {site.state_dir}; Ctrl-C to stop", flush=True)
            if ready:
                ready.set()
            stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from grmux_sandbox.site import Sandbox, running_info

    if args.calls < 0:
        print("grmux sandbox seed: --calls must be ≥ 0", file=sys.stderr)
        return 2
    info = running_info(args.state)
    if info:  # ask the running sandbox: it owns the S3 server and the in-memory index
        body = json.dumps({"calls": args.calls, **_seed_kwargs(args)}).encode()
        req = urllib.request.Request(info["admin_url"] + "seed", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=3600) as resp:
            made = json.load(resp)["calls"]
        print(f"seeded {len(made)} calls into the running sandbox at {info['rws_url']}")
        return 0
    site = Sandbox.open(Path(args.state))
    made = site.seed(args.calls, **_seed_kwargs(args))
    print(f"seeded {len(made)} calls into {site.state_dir} (served at the next `grmux sandbox up`)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m grmux_sandbox.cli up ...`` without the main grmux CLI."""
    parser = argparse.ArgumentParser(prog="grmux")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sandbox", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
