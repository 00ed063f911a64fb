"""The fault campaign, shared by ``tests/reliability/test_faults.py`` and ``scripts/fault_campaign.py``.

One campaign = one sandbox site seeded with a window of small calls (normal, encrypted, s3, holds),
faults injected on every service (RWS, RCS, WebDAV, S3: a share of 5xx answers, added latency and
cut connections), then the real ``grmux`` flow run against it — again, as the next polling cycle
would, while calls are left that failed for a transient reason — and finally an audit with the
faults healed:

* muxed: calls whose screen recording holds a muxed file covering every source, whose bytes exist
  in storage with the registered size;
* duplicates: write-backs beyond one per call, plus muxed media files beyond one per call;
* originals changed: original media whose stored bytes no longer match the generator's checksum;
* orphans: files under the output folder (WebDAV and S3) that no write-back registered, and any
  temporary upload (``.part-``) name left in storage;
* scratch left: entries in ``[processing] temp_dir`` after the run.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from grmux_core.scratch import PAD_CACHE_NAME
from grmux_sandbox.faults import SERVICES, FaultSpec
from grmux_sandbox.site import Sandbox
from tests.support.flows import run_flow

SCENARIOS = ("normal", "encrypted", "s3", "holds")


def fault_spec(seed: int, *, error_rate: float = 0.2, cut_rate: float = 0.05, latency_ms: float = 10.0,
               jitter_ms: float = 40.0) -> FaultSpec:
    return FaultSpec(error_rate=error_rate, cut_rate=cut_rate, latency_ms=latency_ms, jitter_ms=jitter_ms,
                     seed=seed)


def seed_window(sandbox: Sandbox, calls: int, *, seed: int = 5, scenarios=SCENARIOS) -> list[Any]:
    """``calls`` short calls with small screens, one to two minutes apart, ending an hour ago."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=60 + 2 * calls)
    return sandbox.seed(calls, seed=seed, scenarios=list(scenarios), start=start, size=(320, 240),
                        duration=(6.0, 9.0), spacing=(60.0, 110.0))


def small_site(cleanup: Any, folder: Path, calls: int, seed: int) -> tuple[Sandbox, list[Any], Path]:
    """A sandbox (stopped by ``cleanup``) with ``calls`` short "normal" calls ending two hours ago,
    and an empty scratch folder for ``[processing] temp_dir``."""
    sandbox = cleanup.enter_context(Sandbox.start(folder / "site"))
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    seeded = sandbox.seed(calls, seed=seed, scenarios=["normal"], start=start, size=(320, 240),
                          duration=(6.0, 8.0), spacing=(60.0, 90.0))
    scratch = folder / "scratch"
    scratch.mkdir()
    return sandbox, seeded, scratch


def set_faults(sandbox: Sandbox, seed: int | None, **kw: Any) -> None:
    for index, service in enumerate(SERVICES):
        sandbox.set_faults(service, None if seed is None else fault_spec(seed * 10 + index, **kw))


# ------------------------------------------------------------------------------------------ audit


def muxed_files(screen: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [m for m in (screen or {}).get("mediaFiles", []) if "_muxed_" in m.get("mediaId", "")]


def originals_changed(sandbox: Sandbox, calls: list[Any]) -> list[str]:
    """Media ids of originals whose stored bytes differ from what the generator stored (or vanished)."""
    changed = []
    for call in calls:
        for media in [*call.audio, *call.screens]:
            descriptor = {"storage": media.storage, "path": media.path}
            if media.storage == "webDAV":
                descriptor["data"] = {"storagePath": sandbox.webdav_url}
            try:
                data = sandbox.media_bytes(descriptor)
            except Exception:  # noqa: BLE001 - a missing original counts as changed
                changed.append(media.media_id)
                continue
            if Sandbox.sha256(data) != media.sha256:
                changed.append(media.media_id)
    return changed


def storage_listing(sandbox: Sandbox) -> dict[str, list[str]]:
    """Every stored name (WebDAV files relative to the recordings root; S3 keys)."""
    root = sandbox.store.webdav_recordings
    webdav = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    client = sandbox.s3_client()
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=sandbox.bucket):
        keys.extend(obj["Key"] for obj in page.get("Contents", []))
    return {"webdav": webdav, "s3": sorted(keys)}


def registered_paths(sandbox: Sandbox) -> dict[str, set[str]]:
    """Paths of every muxed file a write-back registered, per storage."""
    out: dict[str, set[str]] = {"webdav": set(), "s3": set()}
    for wb in sandbox.write_backs():
        for media_file in wb["body"].get("mediaFiles", []):
            desc = media_file.get("mediaDescriptor") or {}
            path = str(desc.get("path", ""))
            if desc.get("storage") == "awsS3":
                out["s3"].add(path)
            else:
                base = str((desc.get("data") or {}).get("storagePath", ""))
                url = path if "://" in path else base.rstrip("/") + "/" + path.lstrip("/")
                prefix = sandbox.webdav_url
                out["webdav"].add(url.removeprefix(prefix))
    return out


def orphans(sandbox: Sandbox) -> list[str]:
    """Temporary upload names, and muxed files no write-back registered."""
    listing = storage_listing(sandbox)
    registered = registered_paths(sandbox)
    found = []
    for kind, names in listing.items():
        for name in names:
            base = name.rsplit("/", 1)[-1]
            if ".part-" in base or base.endswith((".tmp", ".part")):
                found.append(f"{kind}:{name} (temporary upload)")
            elif "_muxed_" in base and name not in registered[kind]:
                found.append(f"{kind}:{name} (not registered)")
    return found


@dataclass
class Audit:
    calls: int
    muxable: int
    muxed: int
    duplicates: int
    originals_changed: list[str]
    orphans: list[str]
    scratch_left: list[str]
    missing: list[str] = field(default_factory=list)  # muxable calls not muxed
    bad_outputs: list[str] = field(default_factory=list)  # registered but bytes missing / wrong size

    @property
    def ok(self) -> bool:
        return (self.muxed == self.muxable and not self.duplicates and not self.originals_changed
                and not self.orphans and not self.scratch_left and not self.missing and not self.bad_outputs)


def scratch_leftovers(scratch: Path) -> list[str]:
    """What runs left in ``[processing] temp_dir``: anything but the padding-clip cache, which is
    kept on purpose (and holds black one-frame clips only, no call data: checked here too)."""
    if not scratch.exists():
        return []
    left = sorted(p.name for p in scratch.iterdir() if p.name != PAD_CACHE_NAME)
    cache = scratch / PAD_CACHE_NAME
    if cache.is_dir():
        left += sorted(f"{PAD_CACHE_NAME}/{p.name}" for p in cache.iterdir()
                       if not (p.name.startswith("pad_") and p.suffix == ".mp4"))
    return left


def audit(sandbox: Sandbox, calls: list[Any], scratch: Path, *, muxable: set[str] | None = None) -> Audit:
    """The window's end state, read with faults healed."""
    set_faults(sandbox, None)
    muxable = muxable if muxable is not None else {c.call_id for c in calls}
    posts = Counter(wb["id"] for wb in sandbox.write_backs())
    duplicates = sum(n - 1 for n in posts.values() if n > 1)
    muxed, missing, bad = 0, [], []
    for call in calls:
        files = muxed_files(sandbox.screen_recording(call.call_id))
        duplicates += max(0, len(files) - 1)
        if not files:
            if call.call_id in muxable:
                missing.append(call.call_id)
            continue
        muxed += 1
        media_file = files[-1]
        try:
            data = sandbox.media_bytes(media_file)
        except Exception as exc:  # noqa: BLE001
            bad.append(f"{call.call_id}: {type(exc).__name__}")
            continue
        if len(data) != int(media_file["size"]):
            bad.append(f"{call.call_id}: {len(data)} bytes stored, {media_file['size']} registered")
        sources = {m.media_id for m in [*call.audio, *call.screens]}
        if set(media_file["parameters"]["muxed_mediaIds"]) != sources:
            bad.append(f"{call.call_id}: muxed_mediaIds differ from the sources")
    scratch_left = scratch_leftovers(scratch)
    return Audit(calls=len(calls), muxable=len(muxable), muxed=muxed, duplicates=duplicates,
                 originals_changed=originals_changed(sandbox, calls), orphans=orphans(sandbox),
                 scratch_left=scratch_left, missing=missing, bad_outputs=bad)


# ------------------------------------------------------------------------------------------ runs


def task_retries(flow_run_id: Any) -> tuple[int, list[str]]:
    """Task-level retries Prefect made in one flow run (sum of run_count - 1 over its task runs),
    and the messages of the states that led to them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterTaskRunId

    total, reasons = 0, []
    with get_client(sync_client=True) as client:
        offset = 0
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                         limit=200, offset=offset)
            for run in runs:
                if (run.run_count or 0) > 1:
                    total += run.run_count - 1
                    logs = client.read_logs(LogFilter(task_run_id=LogFilterTaskRunId(any_=[run.id])))
                    reasons += [f"{run.name}: {log.message.splitlines()[0][:400]}" for log in logs
                                if "Retry" in log.message or "retry" in log.message]
            if len(runs) < 200:
                return total, reasons
            offset += 200


@dataclass
class CampaignResult:
    calls: int
    muxed: int
    runs: int
    faults_injected: int  # 5xx answers + cut connections, all services (each one a retry somewhere)
    faults_by_service: dict[str, dict[str, int]]
    task_retries: int
    retry_reasons: list[str]
    duplicates: int
    originals_changed: int
    orphans: int
    scratch_empty: bool
    seconds: float
    audit: Audit

    @property
    def ok(self) -> bool:
        return self.audit.ok

    def table(self) -> str:
        rows = [
            ("calls", self.calls),
            ("muxed", self.muxed),
            ("flow runs (cycles)", self.runs),
            ("faults injected (5xx + cuts)", self.faults_injected),
            ("task retries (Prefect)", self.task_retries),
            ("duplicates (must be 0)", self.duplicates),
            ("originals changed (must be 0)", self.originals_changed),
            ("orphan / temporary files in storage", self.orphans),
            ("temp dir empty", "yes" if self.scratch_empty else "NO"),
        ]
        for service, stats in self.faults_by_service.items():
            rows.append((f"  {service}: requests / 5xx / cuts",
                         f"{stats['requests']} / {stats['errors']} / {stats['cuts']}"))
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        return out


def run_campaign(workdir: Path, *, calls: int, fault_seed: int = 1, data_seed: int = 5,
                 worker_threads: int = 2, max_runs: int = 3, **fault_kw: Any) -> CampaignResult:
    """Seed, break every service, run cycles until nothing is left to do (≤ ``max_runs``), audit.

    Needs a Prefect API (a test harness or a server); the caller provides it.
    """
    started = time.monotonic()
    with Sandbox.start(workdir / "site") as sandbox:
        generated = seed_window(sandbox, calls, seed=data_seed)
        scratch = workdir / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        config = sandbox.write_config(workdir / "muxer.cfg", worker_threads=worker_threads,
                                      temp_dir=str(scratch), window_past=60 + 2 * calls + 60)
        sandbox.reset_fault_stats()
        set_faults(sandbox, fault_seed, **fault_kw)
        runs = retries = 0
        retry_reasons: list[str] = []
        for _ in range(max_runs):
            state, summary = run_flow(config)
            runs += 1
            more, why = task_retries(state.state_details.flow_run_id)
            retries += more
            retry_reasons.extend(why)
            if not summary["counts"]["failed"]:
                break
        stats = sandbox.fault_stats()
        result = audit(sandbox, generated, scratch)
    faults = {s: {k: int(v) for k, v in st.items() if k in ("requests", "errors", "cuts")} for s, st in stats.items()}
    return CampaignResult(
        calls=len(generated), muxed=result.muxed, runs=runs,
        faults_injected=sum(v["errors"] + v["cuts"] for v in faults.values()), faults_by_service=faults,
        task_retries=retries, retry_reasons=retry_reasons, duplicates=result.duplicates, originals_changed=len(result.originals_changed),
        orphans=len(result.orphans), scratch_empty=not result.scratch_left,
        seconds=round(time.monotonic() - started, 1), audit=result)


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default
