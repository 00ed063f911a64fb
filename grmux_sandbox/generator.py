"""Generator of realistic GIR calls with real media (made by :mod:`grmux_sandbox.media`).

Every call lives on one *marker clock* = epoch seconds: audio carries 1 kHz beeps and screen video
white flashes at the epoch instants ``phase + k*period`` (default 2 + 5k). A :class:`GeneratedCall`
records, per media file and for the whole call, the expected marker instants (epoch seconds), so a
test can decode the muxed output and check alignment: in the output (which starts at the call's
first audio start) a marker at epoch ``t`` must appear at ``t - call.start_epoch``.

Scenarios (:data:`SCENARIOS`):

==============  ==============================================================================
normal          one audio file, one H.264 MP4 screen file covering the call
holds           audio in two segments with a hold gap between them; screen covers the call
overlap         two screen files overlapping by 0.2–2 s
gap             two screen files with a 2–5 s gap
late_start      the screen starts 2–5 s after the call
early_end       the screen ends 2–5 s before the call
outside         the screen starts 2 s before the call and ends 2 s after it
long_gop        the screen has a 10 s GOP and B-frames
webm            the screen is WebM (VP8)
encrypted       audio and screen AES-256-CBC encrypted, ``pkcs7`` envelopes set
late_screen     the screen recording metadata is held back until ``deliver_late_screen``
corrupt         the screen file is truncated (moov missing: unreadable)
no_screen       no screen recording and no ``SRSScreenRecordingStateStarted`` (audio only)
multi_agent     a transfer: two audio segments and two screen files, one per agent
s3              like normal, media stored in S3 (``awsS3`` descriptors)
==============  ==============================================================================
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import random
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grmux_sandbox import media
from grmux_sandbox.keys import encrypt_bytes
from grmux_sandbox.store import S3_TOKEN, WEBDAV_TOKEN
from grmux_sandbox.timeutil import UTC, iso_ms, parse_iso

if TYPE_CHECKING:
    from grmux_sandbox.site import Sandbox

SCENARIOS: tuple[str, ...] = (
    "normal", "holds", "overlap", "gap", "late_start", "early_end", "outside", "long_gop", "webm",
    "encrypted", "late_screen", "corrupt", "no_screen", "multi_agent", "s3",
)
_MIX_WEIGHTS = {"normal": 6, "holds": 2, "no_screen": 2}
SCREEN_STATE = "SRSScreenRecordingStateStarted"
REAL_SIZES: tuple[tuple[int, int], ...] = ((1280, 720), (1366, 768), (1600, 900), (1920, 1080))
AGENTS: tuple[tuple[str, str, str], ...] = (
    ("agent1@cc", "Alice", "Ng"), ("agent2@cc", "Bob", "Martin"), ("agent3@cc", "Carla", "Diaz"),
    ("agent4@cc", "Dmitri", "Olsen"), ("agent5@cc", "Emma", "Tanaka"), ("agent6@cc", "Farid", "Haddad"),
)
PERIOD = 5.0
PHASE = 2.0


@dataclass
class GeneratedMedia:
    media_id: str
    kind: str  # "audio" or "screen"
    type: str  # MIME type
    start_epoch: float
    stop_epoch: float
    storage: str  # "webDAV" or "awsS3"
    path: str  # WebDAV path relative to the recordings base, or S3 key
    user_name: str
    encrypted: bool = False
    corrupt: bool = False
    size: int = 0  # stored bytes
    sha256: str = ""  # of the stored bytes
    plain_sha256: str = ""  # of the media before encryption (== sha256 when not encrypted)
    markers: list[float] = field(default_factory=list)  # epoch seconds of beeps / flashes in the file
    codec: str = ""
    width: int = 0
    height: int = 0
    fps: int = 0
    gop: int = 0

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.start_epoch, UTC)

    @property
    def stop(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.stop_epoch, UTC)


@dataclass
class GeneratedCall:
    call_id: str
    scenario: str
    start_epoch: float
    stop_epoch: float
    agents: list[str]
    caller: str
    dialed: str
    audio: list[GeneratedMedia]
    screens: list[GeneratedMedia]
    screen_recording_started: bool  # SRSScreenRecordingStateStarted in eventHistory
    screen_delivered: bool  # screen metadata visible in RWS
    period: float = PERIOD
    phase: float = PHASE

    @property
    def start(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.start_epoch, UTC)

    @property
    def stop(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.stop_epoch, UTC)

    @property
    def duration(self) -> float:
        return self.stop_epoch - self.start_epoch

    @property
    def beeps(self) -> list[float]:
        """Expected beep instants (epoch s) of the call audio."""
        return sorted({t for m in self.audio if not m.corrupt for t in m.markers})

    @property
    def flashes(self) -> list[float]:
        """Expected flash instants (epoch s) of the readable screen media."""
        return sorted({t for m in self.screens if not m.corrupt for t in m.markers})

    def expected_offsets(self, kind: str = "beeps") -> list[float]:
        """Marker instants as seconds from the call start (where they should be in the muxed output)."""
        return [round(t - self.start_epoch, 3) for t in getattr(self, kind)]

    def media(self, media_id: str) -> GeneratedMedia:
        for m in [*self.audio, *self.screens]:
            if m.media_id == media_id:
                return m
        raise KeyError(media_id)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratedCall:
        data = dict(data)
        data["audio"] = [GeneratedMedia(**m) for m in data["audio"]]
        data["screens"] = [GeneratedMedia(**m) for m in data["screens"]]
        return cls(**data)


# ------------------------------------------------------------------------------------ planning


@dataclass
class _Seg:
    offset: float  # s from call start
    length: float
    agent: int
    codec: str = "h264"
    gop_s: float = 2.0
    bframes: int = 0


def _plan(scenario: str, rng: random.Random, dur: float) -> tuple[list[_Seg], list[_Seg]]:
    """(audio segments, screen segments) of a scenario for a call of ``dur`` seconds."""
    full = [_Seg(0.0, dur, 0)]
    half = round(dur / 2, 3)
    if scenario in ("normal", "encrypted", "late_screen", "corrupt", "s3"):
        return full, [_Seg(0.0, dur, 0)]
    if scenario == "holds":
        first = round(dur * rng.uniform(0.3, 0.5), 3)
        hold = round(min(rng.uniform(3.0, 6.0), dur / 4), 3)
        return [_Seg(0.0, first, 0), _Seg(first + hold, round(dur - first - hold, 3), 0)], [_Seg(0.0, dur, 0)]
    if scenario == "overlap":
        over = round(rng.uniform(0.2, 2.0), 3)
        return full, [_Seg(0.0, half + over, 0), _Seg(half, round(dur - half, 3), 0)]
    if scenario == "gap":
        gap = round(min(rng.uniform(2.0, 5.0), dur / 4), 3)
        return full, [_Seg(0.0, half, 0), _Seg(half + gap, round(dur - half - gap, 3), 0)]
    if scenario == "late_start":
        late = round(min(rng.uniform(2.0, 5.0), dur / 3), 3)
        return full, [_Seg(late, round(dur - late, 3), 0)]
    if scenario == "early_end":
        early = round(min(rng.uniform(2.0, 5.0), dur / 3), 3)
        return full, [_Seg(0.0, round(dur - early, 3), 0)]
    if scenario == "outside":
        return full, [_Seg(-2.0, dur + 4.0, 0)]
    if scenario == "long_gop":
        return full, [_Seg(0.0, dur, 0, gop_s=10.0, bframes=2)]
    if scenario == "webm":
        return full, [_Seg(0.0, dur, 0, codec="vp8")]
    if scenario == "no_screen":
        return full, []
    if scenario == "multi_agent":
        cut = round(dur * rng.uniform(0.35, 0.65), 3)
        return ([_Seg(0.0, cut, 0), _Seg(cut, round(dur - cut, 3), 1)],
                [_Seg(0.0, cut, 0), _Seg(cut, round(dur - cut, 3), 1)])
    raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")


def _stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d_%H-%M-%S")


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _descriptor(m: GeneratedMedia, bucket: str) -> dict[str, Any]:
    if m.storage == "awsS3":
        return {"storage": "awsS3", "path": m.path,
                "data": {"bucket": bucket, "region": "us-east-1", "endpoint": S3_TOKEN}}
    return {"storage": "webDAV", "path": m.path, "data": {"storagePath": WEBDAV_TOKEN}}


def _media_record(m: GeneratedMedia, bucket: str, pkcs7: str | None, agent_id: str) -> dict[str, Any]:
    params: dict[str, Any] = {"agentId": agent_id}
    if m.kind == "screen":
        params["contact"] = {"userName": m.user_name}
    record: dict[str, Any] = {
        "mediaId": m.media_id, "type": m.type,
        "startTime": iso_ms(m.start), "stopTime": iso_ms(m.stop),
        "duration": str(round((m.stop_epoch - m.start_epoch) * 1000)), "size": str(m.size),
        "parameters": params, "originalMediaDescriptor": _descriptor(m, bucket),
    }
    if pkcs7:
        record["pkcs7"] = pkcs7
    return record


# ------------------------------------------------------------------------------------ generation


def _one_call(sandbox: Sandbox, index: int, scenario: str, start_epoch: float, *, seed: int,
              duration: tuple[float, float], size: tuple[int, int] | None, fps: int, ffmpeg: str,
              workdir: Path) -> GeneratedCall:
    rng = random.Random(f"grmux-sandbox:{seed}:{index}")
    call_id = f"{rng.getrandbits(128):032x}"
    dur = round(rng.uniform(*duration), 3)
    stop_epoch = round(start_epoch + dur, 3)
    audio_plan, screen_plan = _plan(scenario, rng, dur)
    first = rng.randrange(len(AGENTS))
    agents = [AGENTS[(first + k) % len(AGENTS)] for k in range(1 + max((s.agent for s in audio_plan + screen_plan),
                                                                        default=0))]
    screen_size = size or rng.choice(REAL_SIZES)
    storage = "awsS3" if scenario == "s3" else "webDAV"
    encrypted = scenario == "encrypted"
    caller = f"555{rng.randrange(10000):04d}"
    dialed = f"800{rng.randrange(10)}"
    day = dt.datetime.fromtimestamp(start_epoch, UTC).strftime("%Y-%m-%d")
    made: list[GeneratedMedia] = []
    records: dict[str, list[dict[str, Any]]] = {"audio": [], "screen": []}
    tmp = Path(tempfile.mkdtemp(prefix=f"{call_id[:8]}-", dir=workdir))
    try:
        for kind, plan in (("audio", audio_plan), ("screen", screen_plan)):
            for seq, seg in enumerate(plan, start=1):
                m_start = round(start_epoch + seg.offset, 3)
                m_stop = round(m_start + seg.length, 3)
                user = agents[seg.agent][0]
                if kind == "audio":
                    ext, mime = ".mp3", "audio/mp3"
                    media_id = f"{call_id}_{_stamp(m_start)}-{seq:04d}{ext}"
                    folder = "voice"
                else:
                    ext, mime = (".webm", "video/webm") if seg.codec == "vp8" else (".mp4", "video/mp4")
                    media_id = f"{call_id}_screen_{_stamp(m_start)}-{seq:04d}{ext}"
                    folder = "screen"
                local = tmp / media_id
                gm = GeneratedMedia(media_id=media_id, kind=kind, type=mime, start_epoch=m_start,
                                    stop_epoch=m_stop, storage=storage, path=f"{folder}/{day}/{media_id}",
                                    user_name=user, encrypted=encrypted)
                if kind == "audio":
                    media.make_audio(local, m_start, seg.length, period=PERIOD, phase=PHASE, ffmpeg=ffmpeg)
                    gm.codec = "mp3"
                else:
                    gop = max(1, round(seg.gop_s * fps))
                    media.make_screen(local, m_start, seg.length, size=screen_size, fps=fps, gop=gop,
                                      bframes=seg.bframes, codec=seg.codec, period=PERIOD, phase=PHASE,
                                      faststart=scenario != "corrupt", ffmpeg=ffmpeg)
                    gm.codec, gm.width, gm.height, gm.fps, gm.gop = seg.codec, *screen_size, fps, gop
                if kind == "screen" and scenario == "corrupt":
                    data = local.read_bytes()
                    local.write_bytes(data[: max(1, int(len(data) * 0.4))])
                    gm.corrupt = True
                gm.markers = [round(t, 3) for t in media.marker_times(m_start, m_stop, period=PERIOD, phase=PHASE)]
                gm.plain_sha256 = _sha(local)
                pkcs7 = None
                if encrypted:
                    key, iv = rng.randbytes(32), rng.randbytes(16)
                    plain = local.read_bytes()
                    (sandbox.state_dir / "plain" / media_id).write_bytes(plain)
                    local.write_bytes(encrypt_bytes(plain, key, iv))
                    pkcs7 = sandbox.keys.envelope(key, iv)
                gm.size = local.stat().st_size
                gm.sha256 = _sha(local)
                desc = _descriptor(gm, sandbox.bucket)
                sandbox.put_media(desc, local)
                made.append(gm)
                records[kind].append(_media_record(gm, sandbox.bucket, pkcs7, user.split("@")[0]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    sr_started = bool(screen_plan)
    segment = rng.choice(["gold", "silver", "bronze"])
    events: list[dict[str, Any]] = [{
        "occurredAt": iso_ms(dt.datetime.fromtimestamp(start_epoch, UTC)), "event": "Joined",
        "contact": {"phoneNumber": caller}, "data": {"CustomerSegment": segment}}]
    for k, (user, firstname, lastname) in enumerate(agents):
        seg_start = min((s.offset for s in audio_plan if s.agent == k), default=0.0)
        data: dict[str, Any] = {"AgentGroup": "Support" if k == 0 else "Escalations"}
        if sr_started:
            data["GRECORD_SCREEN"] = SCREEN_STATE
        events.append({"occurredAt": iso_ms(dt.datetime.fromtimestamp(start_epoch + seg_start, UTC)),
                       "event": "Joined", "contact": {"userName": user, "firstName": firstname,
                                                      "lastName": lastname}, "data": data})
    events.append({"occurredAt": iso_ms(dt.datetime.fromtimestamp(stop_epoch, UTC)), "event": "Left",
                   "contact": {"phoneNumber": caller}, "data": {}})
    base = {"id": call_id, "callerPhoneNumber": caller, "dialedPhoneNumber": dialed,
            "startTime": iso_ms(dt.datetime.fromtimestamp(start_epoch, UTC)),
            "stopTime": iso_ms(dt.datetime.fromtimestamp(stop_epoch, UTC)),
            "region": "us", "callType": "Inbound", "eventHistory": events}
    sandbox.store.put_call({**base, "mediaFiles": records["audio"]})
    delivered = False
    if records["screen"]:
        screen = {**base, "mediaFiles": records["screen"]}
        if scenario == "late_screen":
            sandbox.store.put_late(screen)
        else:
            sandbox.store.put_screen(screen)
            delivered = True
    call = GeneratedCall(
        call_id=call_id, scenario=scenario, start_epoch=start_epoch, stop_epoch=stop_epoch,
        agents=[a[0] for a in agents], caller=caller, dialed=dialed,
        audio=[m for m in made if m.kind == "audio"], screens=[m for m in made if m.kind == "screen"],
        screen_recording_started=sr_started, screen_delivered=delivered)
    sandbox.store.put_generated(call.to_dict())
    return call


def generate(sandbox: Sandbox, calls: int, *, seed: int = 0, scenarios: Sequence[str] | None = None,
             start: dt.datetime | None = None, duration: tuple[float, float] = (20.0, 60.0),
             size: tuple[int, int] | None = None, fps: int = 25, spacing: tuple[float, float] = (30.0, 300.0),
             ffmpeg: str = "ffmpeg", workers: int = 2) -> list[GeneratedCall]:
    """Generate ``calls`` calls into ``sandbox`` (running or offline). See :meth:`Sandbox.seed`."""
    if calls < 0:
        raise ValueError("calls must be ≥ 0")
    for name in scenarios or ():
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    if duration[0] < 6 or duration[1] < duration[0]:
        raise ValueError("duration must be (min, max) seconds with 6 ≤ min ≤ max")
    first_index = sandbox.store.next_sequence(calls)
    plan_rng = random.Random(f"grmux-sandbox-plan:{seed}:{first_index}")
    if start is None:
        now = dt.datetime.now(UTC).replace(microsecond=0)
        start = now - dt.timedelta(hours=6)
    t = start.timestamp()
    jobs = []
    mix = [s for s in SCENARIOS]
    weights = [_MIX_WEIGHTS.get(s, 1) for s in mix]
    for k in range(calls):
        scenario = scenarios[k % len(scenarios)] if scenarios else plan_rng.choices(mix, weights)[0]
        jobs.append((first_index + k, scenario, round(t, 3)))
        t += plan_rng.uniform(*spacing)
    workdir = sandbox.state_dir / "tmp" / "generator"
    workdir.mkdir(parents=True, exist_ok=True)

    def run(job: tuple[int, str, float]) -> GeneratedCall:
        index, scenario, start_epoch = job
        return _one_call(sandbox, index, scenario, start_epoch, seed=seed, duration=duration, size=size,
                         fps=fps, ffmpeg=ffmpeg, workdir=workdir)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(run, jobs))


def _missing_media(call: dict[str, Any], user: str, kind: str, ext: str, mime: str) -> dict[str, Any]:
    begin, end = parse_iso(call["startTime"]), parse_iso(call["stopTime"])
    media_id = f"{call['id']}_{'screen_' if kind == 'screen' else ''}{_stamp(begin.timestamp())}-0001{ext}"
    params: dict[str, Any] = {"agentId": user.split("@")[0]}
    if kind == "screen":
        params["contact"] = {"userName": user}
    return {"mediaId": media_id, "type": mime, "startTime": call["startTime"], "stopTime": call["stopTime"],
            "duration": str(round((end - begin).total_seconds() * 1000)), "size": "0", "parameters": params,
            "originalMediaDescriptor": {"storage": "webDAV", "path": f"{kind}/missing/{media_id}",
                                        "data": {"storagePath": WEBDAV_TOKEN}}}


def metadata_only(sandbox: Sandbox, calls: int, *, seed: int = 0, start: dt.datetime | None = None,
                  spacing: tuple[float, float] = (5.0, 60.0), duration: tuple[float, float] = (20.0, 300.0),
                  screen_share: float = 0.8) -> list[str]:
    """Add ``calls`` call records (and screen records for ``screen_share`` of them) **without media**
    — fast, for paging, filter and bulk-read tests and benchmarks. Descriptors point at files that do
    not exist. Returns the call ids in start order."""
    first_index = sandbox.store.next_sequence(calls)
    rng = random.Random(f"grmux-sandbox-meta:{seed}:{first_index}")
    if start is None:
        start = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(hours=6)
    t = start.timestamp()
    ids = []
    for k in range(calls):
        call_id = f"{rng.getrandbits(128):032x}"
        dur = round(rng.uniform(*duration), 3)
        begin, end = dt.datetime.fromtimestamp(t, UTC), dt.datetime.fromtimestamp(t + dur, UTC)
        user, first, last = rng.choice(AGENTS)
        caller, dialed = f"555{rng.randrange(10000):04d}", f"800{rng.randrange(10)}"
        has_screen = rng.random() < screen_share
        data = {"AgentGroup": "Support"}
        if has_screen:
            data["GRECORD_SCREEN"] = SCREEN_STATE
        events = [{"occurredAt": iso_ms(begin), "event": "Joined",
                   "contact": {"userName": user, "firstName": first, "lastName": last}, "data": data}]
        base = {"id": call_id, "callerPhoneNumber": caller, "dialedPhoneNumber": dialed,
                "startTime": iso_ms(begin), "stopTime": iso_ms(end), "region": "us", "callType": "Inbound",
                "eventHistory": events}

        sandbox.store.put_call({**base, "mediaFiles": [_missing_media(base, user, "voice", ".mp3", "audio/mp3")]})
        if has_screen:
            sandbox.store.put_screen({**base, "mediaFiles": [_missing_media(base, user, "screen", ".mp4",
                                                                            "video/mp4")]})
        ids.append(call_id)
        t += rng.uniform(*spacing)
    return ids
