"""``make demo``: the main job, end to end, on this machine.

Starts the sandbox GIR site (emulated RWS + RCS, real WebDAV and S3) with generated calls, a
Prefect server (SQLite), deploys the deployments with the alert automations notifying a local
webhook receiver, starts a process worker, runs ``prefect deployment run grmux/backfill --param
query=...`` and the sync canary ``grmux/canary`` and waits for them, then prints where the muxed
files are, the alerts received, ``grmux status`` and the UI address. Interactive: keeps everything running until Ctrl-C.
State lives in ``var/demo/`` (delete it to start over).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deployments.local_server import (
    PrefectCommandError,
    free_port,
    prefect_json,
    prefect_server,
    run_deployment,
    wait_for_flow_runs,
)
from deployments.processes import start_process, stop_process

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ["normal", "holds", "overlap", "gap", "late_start", "encrypted", "webm", "multi_agent", "s3", "corrupt",
             "late_screen"]


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1440,1200", "--virtual-time-budget=20000"]


def screenshot_targets(env: dict[str, str], port: int, run_id: str, first: Path) -> list[tuple[str, Path]]:
    """The flow-run page (→ ``first``), then the latest summary, counts, data-quality and canary artifacts."""
    base = f"http://127.0.0.1:{port}"
    targets = [(f"{base}/runs/flow-run/{run_id}", first)]
    for name, key in (("summary", "grmux-backfill-summary"), ("counts", "grmux-backfill-counts"),
                      ("quality", "grmux-backfill-quality"), ("canary", "grmux-canary")):
        latest = prefect_json(env, "artifact", "inspect", key, "--limit", "1", "--output", "json")[0]["id"]
        targets.append((f"{base}/artifacts/artifact/{latest}", first.with_name(f"{first.stem}-{name}{first.suffix}")))
    return targets


ALERT_BLOCK = "custom-webhook/grmux-demo-alerts"


def start_alert_receiver(stack: contextlib.ExitStack) -> tuple[str, list[dict]]:
    """A local webhook receiver standing in for the operator's chat or pager; returns its URL and
    the list the JSON bodies it receives are appended to. ``stack`` is anything with
    ``ExitStack.callback`` (the tests' ``Cleanup`` too), which stops the server."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stack.callback(server.server_close)
    stack.callback(server.shutdown)
    return f"http://127.0.0.1:{server.server_address[1]}/alert", received


def save_alert_block(env: dict[str, str], url: str) -> None:
    """The notification block the automations send to (a custom webhook posting subject and body)."""
    code = ("from prefect.blocks.notifications import CustomWebhookNotificationBlock\n"
            f"CustomWebhookNotificationBlock(name='grmux-demo', url={url!r}, method='POST', "
            "json_data={'subject': '{{subject}}', 'body': '{{body}}'}).save('grmux-demo-alerts', overwrite=True)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stdout + done.stderr)


def wait_for_alerts(received: list[dict], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not received and time.monotonic() < deadline:
        time.sleep(1)
    for alert in received:
        print(f"  alert received: {alert.get('subject')} — {alert.get('body')}")
    if not received:
        print("  (no alert arrived within a minute)")


def screenshot(url: str, target: Path, profile: Path) -> None:
    """Open ``url`` in Debian's headless Chromium, as a person would, and save what it shows."""
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium is not installed: run `make ui-check` (it installs it) or apt-get install chromium")
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={target}", url],
                          capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0 or not target.exists():
        raise SystemExit(f"chromium could not take the screenshot:\n{done.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state", default=str(ROOT / "var" / "demo"), help="demo state folder")
    parser.add_argument("--port", type=int, default=4200, help="Prefect server port (another is used if taken)")
    parser.add_argument("--keep-running", choices=("auto", "yes", "no"), default="auto",
                        help="keep servers up after the run (auto: when run from a terminal)")
    parser.add_argument("--fresh", action="store_true", help="delete the state folder first")
    parser.add_argument("--screenshot", metavar="PNG",
                        help="save a headless-Chromium screenshot of the flow-run page (make ui-check)")
    args = parser.parse_args(argv)
    from grmux_sandbox.site import Sandbox

    state = Path(args.state).resolve()
    if args.fresh:
        import shutil

        shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True, exist_ok=True)
    port = free_port(args.port)
    with contextlib.ExitStack() as stack:
        sandbox = Sandbox.start(state / "site")
        stack.callback(sandbox.stop)
        try:
            return run_demo(args, state, port, sandbox, stack)
        except PrefectCommandError as exc:
            raise SystemExit(str(exc)) from None


def run_demo(args: argparse.Namespace, state: Path, port: int, sandbox, stack: contextlib.ExitStack) -> int:
    """Everything after the sandbox is up; ``stack`` stops what is started, in reverse order."""
    print(f"sandbox: RWS {sandbox.rws_url}  WebDAV {sandbox.webdav_url}  S3 {sandbox.s3_endpoint}")
    if not sandbox.call_ids():
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)
        calls = sandbox.seed(len(SCENARIOS), seed=1, scenarios=SCENARIOS, start=start, size=(640, 360),
                             duration=(20.0, 40.0), spacing=(120.0, 300.0))
        print(f"seeded {len(calls)} calls: " + ", ".join(c.scenario for c in calls))
    scratch = state / "scratch"
    scratch.mkdir(exist_ok=True)
    config = sandbox.write_config(state / "muxer.cfg", temp_dir=str(scratch))
    env = stack.enter_context(prefect_server(state / "prefect-home", log_path=state / "prefect-server.log",
                                             port=port, ui=True, log_level="INFO"))
    print(f"Prefect server: http://127.0.0.1:{port}  (log {state / 'prefect-server.log'})")
    alert_url, alerts = start_alert_receiver(stack)
    save_alert_block(env, alert_url)
    setup = subprocess.run([sys.executable, "-m", "deployments.setup", "--config", str(config), "--deploy",
                            "--notify-block", ALERT_BLOCK], cwd=ROOT, env=env, capture_output=True, text=True,
                           check=False)
    if setup.returncode != 0:
        raise SystemExit(setup.stdout + setup.stderr)
    print("deployed grmux/primary, grmux/backup, grmux/backfill, grmux/nightly-sr-alignment, grmux/canary")
    print(f"alert automations notify {ALERT_BLOCK} -> local receiver {alert_url}")
    worker_log = stack.enter_context(open(state / "worker.log", "a"))  # noqa: SIM115 (the stack closes it)
    worker = start_process([sys.executable, "-m", "prefect", "worker", "start", "--pool", "grmux"],
                           cwd=ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT)
    stack.callback(stop_process, worker)
    query = "userData=SRSScreenRecordingStateStarted"
    print(f"$ prefect deployment run grmux/backfill --param query={query}")
    run_id = run_deployment(env, "grmux/backfill", query=query)
    [run] = wait_for_flow_runs(env, [run_id], timeout=1200)
    print(f"flow run {run.get('name')}: {run['state']['type']} — {run['state'].get('message')}")
    print(f"  http://127.0.0.1:{port}/runs/flow-run/{run_id}")
    if run["state"]["type"] == "FAILED":
        print("  (expected: the demo includes a corrupt recording, which fails alone; the others go on)")
    for wb in sandbox.write_backs():
        descriptor = wb["body"]["mediaFiles"][0]["mediaDescriptor"]
        where = sandbox.media_path(descriptor) if descriptor["storage"] == "webDAV" else (
            f"s3://{descriptor['data']['bucket']}/{descriptor['path']}")
        print(f"  muxed call {wb['id']}: {where}")
    print(f"log file: {state / 'site' / 'log' / 'grmux.log'}")
    print("$ prefect deployment run grmux/canary (one segment encrypted to the sandbox's RCS certificate)")
    canary_id = run_deployment(env, "grmux/canary", certificate=str(sandbox.keys.certificate_path))
    [canary] = wait_for_flow_runs(env, [canary_id], timeout=600)
    print(f"canary: {canary['state']['type']} — {canary['state'].get('message')}")
    print("alerts (the corrupt call made the backfill run Failed):")
    wait_for_alerts(alerts)
    status = subprocess.run([sys.executable, "-m", "grmux_cli", "status", "--limit", "5"], cwd=ROOT,
                            env=env | {"COLUMNS": "200"}, capture_output=True, text=True, check=False)
    print(status.stdout + status.stderr)
    if args.screenshot:
        for page, target in screenshot_targets(env, port, run_id, Path(args.screenshot)):
            screenshot(page, target, state / "chromium")
            print(f"screenshot of {page}: {target}")
    keep = args.keep_running == "yes" or (args.keep_running == "auto" and sys.stdin.isatty())
    if keep:
        print(f"\nUI: http://127.0.0.1:{port}  — press Ctrl-C to stop the sandbox, server and worker")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0 if run.get("state", {}).get("type") in ("COMPLETED", "FAILED") else 1


if __name__ == "__main__":
    sys.exit(main())
