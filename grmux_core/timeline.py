"""A call's mux plan as a picture (SVG) and as a Markdown table. PURE: text in, text out.

``plan_svg(plan)`` draws the plan to scale: a video lane (stream-copied recordings, re-encoded parts,
black padding slices), an audio lane (recordings vs silence), markers for content shown late
(``shift``) and for cuts, a time axis in output seconds and wall-clock time, a legend and the
planner's decisions. Every span carries a ``<title>`` (hover tooltip) with its reason, and
``data-lane/data-action/data-start/data-end`` attributes, so tools can read the picture back.

SVG text is written by hand: a few rectangles and labels are simpler, smaller and more testable than
a plotting library, and need no dependency. Everything taken from the plan (file names, reasons) is
escaped; characters XML 1.0 cannot carry at all are replaced by U+FFFD.

``plan_markdown(plan)`` is the same story as a compact Markdown table, for Prefect markdown
artifacts. Prefect's UI does not show inline ``<svg>`` in markdown (raw HTML is sanitised), but it
does show a Markdown image: the Vue UI of Prefect 3 renders an image token as a plain ``<img src>``
and the React UI (ui-v2) explicitly lets ``data:image/…`` through its URL filter, so
``plan_markdown(plan, embed_svg=True)`` appends the picture as a ``data:image/svg+xml;base64`` image.
An SVG shown through ``<img>`` is static: no tooltips there, which is why the table carries the reasons.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import PurePath
from xml.sax.saxutils import escape

from grmux_core.plan import EPS, AudioSpan, MuxPlan, VideoSpan

__all__ = ["plan_markdown", "plan_svg", "span_rows"]

# --- geometry (pixels) -------------------------------------------------------------------------
LEFT = 92  # lane labels live left of this
RIGHT = 24
TITLE_Y = 22
SUBTITLE_Y = 40
MARK_ROWS = (58, 71)  # baselines of the two rows of marker labels
VIDEO_Y, VIDEO_H = 78, 34
AUDIO_Y, AUDIO_H = 120, 22
AXIS_Y = 152
LEGEND_Y = 212
NOTES_Y = 240
LINE_H = 15
CHAR_W = 6.4  # average glyph width at font-size 11 (sans-serif), for fitting labels
MAX_NOTES = 12
#: A data-URI picture larger than this is left out of the markdown (the table still says it all).
MAX_EMBED_BYTES = 400_000

COLORS = {
    "audio": "#2e7d32",
    "silence": "#eeeeee",
    "copy": "#1f6fd1",
    "reencode": "#f08c00",
    "pad": "#1b1b1b",
    "shift": "#d62728",
    "cut": "#8e24aa",
    "grid": "#e3e3e3",
    "text": "#222222",
    "muted": "#6b6b6b",
}
_NICE_STEPS = (0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
               14400, 28800, 86400)
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_TRUNCATED = re.compile(r"screen #(\d+) overlaps screen #(\d+) by \d+ ms \(>[^)]*\): truncated at ([\d.]+) s")
_CUT_TO_CALL = re.compile(r"screen #(\d+) cut to the call: uses ([\d.]+)–([\d.]+) s of the file")


# --- text helpers ------------------------------------------------------------------------------
def _clean(text: object) -> str:
    """Text XML 1.0 can hold: control characters and lone surrogates become U+FFFD."""
    return _XML_BAD.sub("\ufffd", str(text))


def _t(text: object) -> str:
    """Escaped element text."""
    return escape(_clean(text))


def _a(text: object) -> str:
    """Escaped attribute value (for double quotes); newlines kept as character references."""
    return escape(_clean(text), {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def _f(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".") if abs(x) >= 0.005 else "0"


def _base(path: str | None) -> str:
    return PurePath(path).name if path else ""


def _fit(text: str, px: float) -> str | None:
    """``text`` if it fits in ``px`` pixels, else a shortened one with an ellipsis, else None."""
    room = int((px - 8) / CHAR_W)
    if room >= len(text):
        return text
    if room >= 6:
        return text[: room - 1] + "…"
    return None


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _fps(rate: str) -> str:
    try:
        return f"{float(Fraction(rate)):.3g}"
    except (ValueError, ZeroDivisionError):
        return rate


def _call_start(plan: MuxPlan) -> datetime | None:
    try:
        return datetime.fromisoformat(plan.call_start)
    except (TypeError, ValueError):
        return None


# --- what each span says ------------------------------------------------------------------------
def _audio_tip(s: AudioSpan) -> str:
    head = f"audio #{s.source_index} {s.source}" if s.kind == "audio" else "silence: no call audio here"
    return f"{head}\n{s.start:.3f}–{s.end:.3f} s ({s.length:.3f} s)"


def _video_word(s: VideoSpan) -> str:
    return {"copy": "stream copy", "reencode": "re-encode", "pad": "padding"}[s.action]


def _video_tip(s: VideoSpan) -> str:
    lines = []
    if s.kind == "padding":
        lines.append("padding (black frames)")
    else:
        lines.append(f"{_video_word(s)} of screen #{s.source_index} {s.source}")
    lines.append(f"{s.start:.3f}–{s.end:.3f} s ({s.length:.3f} s)")
    if s.kind == "recording":
        lines.append(f"file time {s.src_in:.3f} + {s.src_len:.3f} s")
        if s.shift > EPS:
            lines.append(f"late by {_ms(s.shift)} against its wall clock")
    if s.reason:
        lines.append(s.reason)
    return "\n".join(lines)


@dataclass(frozen=True)
class _Marker:
    kind: str  # "shift" or "cut"
    t: float
    label: str
    tip: str


def _runs(plan: MuxPlan) -> list[list[VideoSpan]]:
    """Consecutive recording spans of the same screen (a head re-encode + its copied rest is one run)."""
    runs: list[list[VideoSpan]] = []
    prev: VideoSpan | None = None
    for s in plan.video:
        if s.kind == "recording":
            if prev is not None and prev.kind == "recording" and prev.source_index == s.source_index \
                    and abs(prev.end - s.start) <= EPS:
                runs[-1].append(s)
            else:
                runs.append([s])
        prev = s
    return runs


def _pad_runs(plan: MuxPlan) -> list[tuple[float, float]]:
    """(start, end) of each run of consecutive padding slices."""
    runs: list[tuple[float, float]] = []
    for s in plan.video:
        if s.kind != "padding":
            continue
        if runs and abs(runs[-1][1] - s.start) <= EPS:
            runs[-1] = (runs[-1][0], s.end)
        else:
            runs.append((s.start, s.end))
    return runs


def _markers(plan: MuxPlan) -> list[_Marker]:
    """Shifts (from the spans), head cuts (from ``src_in``) and end cuts (from the planner's notes)."""
    out: list[_Marker] = []
    runs = _runs(plan)
    for run in runs:
        first = run[0]
        if first.shift > EPS:
            out.append(_Marker("shift", first.start, f"late {_ms(first.shift)}",
                               f"screen #{first.source_index} {first.source} is shown {_ms(first.shift)} "
                               f"later than recorded (it overlapped the previous screen recording)"))
        if first.src_in > EPS:
            out.append(_Marker("cut", first.start, "cut",
                               f"head cut: screen #{first.source_index} {first.source} starts "
                               f"{first.src_in:.3f} s into its file"))
    ends = {}
    for run in runs:
        ends.setdefault(run[0].source_index, run[-1])
    for note in plan.notes:
        if m := _TRUNCATED.search(note):
            out.append(_Marker("cut", float(m.group(3)), "cut", note))
        elif (m := _CUT_TO_CALL.search(note)) and float(m.group(2)) <= EPS:
            last = ends.get(int(m.group(1)))
            if last is not None:  # uses the file from 0, so the note is about its end
                out.append(_Marker("cut", last.end, "cut", note))
    return sorted(out, key=lambda k: (k.t, k.kind))


# --- axis ---------------------------------------------------------------------------------------
def _step(duration: float, plot_w: float) -> float:
    most = max(2, int(plot_w // 95))
    for step in _NICE_STEPS:
        if duration / step <= most:
            return float(step)
    return float(_NICE_STEPS[-1])


def _decimals(step: float) -> int:
    if step >= 1:
        return 0
    return 1 if abs(step * 10 - round(step * 10)) < 1e-9 else 2


# --- the picture --------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layout:
    """The geometry every part of one picture shares: its size and the output-time → x mapping."""

    width: int
    height: int
    plot_w: int
    dur: float  # the call's duration, never 0 (a zero-length plan still gets a scale)

    def x(self, t: float) -> float:
        """Output time → pixels; times outside the call are pinned to its ends."""
        return LEFT + max(0.0, min(t, self.dur)) / self.dur * self.plot_w


def _layout(plan: MuxPlan, width: int) -> _Layout:
    """The picture grows downwards by one line a shown note (capped, plus a "more" line)."""
    notes = plan.notes
    note_lines = min(len(notes), MAX_NOTES) + (1 if len(notes) > MAX_NOTES else 0)
    height = (NOTES_Y + 6 + note_lines * LINE_H) if notes else LEGEND_Y + 16
    return _Layout(width=width, height=height, plot_w=width - LEFT - RIGHT, dur=max(EPS, plan.duration))


def _svg_open(plan: MuxPlan, lay: _Layout, title: str) -> list[str]:
    """The root element (with the scale as ``data-`` attributes, for tools), the fill patterns, a white ground."""
    return [
        '<?xml version="1.0" encoding="UTF-8"?>',
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width}" height="{lay.height}" '
         f'viewBox="0 0 {lay.width} {lay.height}" font-family="DejaVu Sans, Verdana, Arial, sans-serif" '
         f'font-size="11" data-duration="{plan.duration:.6f}" data-plot-left="{LEFT}" '
         f'data-plot-width="{lay.plot_w}">'),
        f"<title>{_t(title or 'grmux mux plan')}</title>",
        ("<defs>"
         '<pattern id="hatch-reencode" width="6" height="6" patternUnits="userSpaceOnUse" '
         'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffc870"/>'
         f'<rect width="2.5" height="6" fill="{COLORS["reencode"]}"/></pattern>'
         '<pattern id="hatch-silence" width="6" height="6" patternUnits="userSpaceOnUse" '
         f'patternTransform="rotate(-45)"><rect width="6" height="6" fill="{COLORS["silence"]}"/>'
         '<rect width="1" height="6" fill="#cfcfcf"/></pattern>'
         "</defs>"),
        f'<rect x="0" y="0" width="{lay.width}" height="{lay.height}" fill="#ffffff"/>',
    ]


def _header(plan: MuxPlan, title: str) -> list[str]:
    """Title and a one-line summary; the summary's tooltip says why the output signature was chosen."""
    sig = plan.signature
    n_re = sum(1 for s in plan.video if s.action == "reencode")
    n_rec = sum(1 for s in plan.video if s.kind == "recording")
    padded = sum(s.length for s in plan.video if s.kind == "padding")
    head = title or (f"call at {plan.call_start}" if plan.call_start else "mux plan")
    sub = (f"{plan.duration:.3f} s from {plan.call_start} · output {sig.codec} {sig.width}x{sig.height} "
           f"{_fps(sig.fps)} fps · {n_re} of {n_rec} recording spans re-encoded · {padded:.1f} s padded")
    return [
        (f'<text class="title" x="{LEFT}" y="{TITLE_Y}" font-size="15" font-weight="bold" '
         f'fill="{COLORS["text"]}">{_t(head)}</text>'),
        (f'<text class="subtitle" x="{LEFT}" y="{SUBTITLE_Y}" fill="{COLORS["muted"]}">'
         f"<title>{_t(plan.signature_reason)}</title>{_t(sub)}</text>"),
    ]


def _zone(t0: datetime) -> str:
    """``UTC+02:00`` for an aware call start, ``local`` for a naive one."""
    zone = t0.strftime("%z") or "local"
    return f"UTC{zone[:3]}:{zone[3:]}" if zone[0] in "+-" else zone


def _tick(t: float, dec: int, t0: datetime | None, lay: _Layout) -> list[str]:
    """One axis tick: output seconds, and the wall-clock time under it when the call start is known."""
    xt = _f(lay.x(t))
    anchor = "start" if t == 0 else ("end" if lay.x(t) + 30 > lay.width else "middle")
    out = [(f'<g class="tick" data-t="{t:.6f}"><line x1="{xt}" y1="{AXIS_Y}" x2="{xt}" y2="{AXIS_Y + 5}" '
            f'stroke="{COLORS["text"]}"/>'),
           f'<text x="{xt}" y="{AXIS_Y + 17}" text-anchor="{anchor}" fill="{COLORS["text"]}">{t:.{dec}f} s</text>']
    if t0 is not None:
        wall = t0 + timedelta(seconds=t)
        label = wall.strftime("%H:%M:%S") + (f".{wall.microsecond // 1000:03d}"[: dec + 1] if dec else "")
        out.append(f'<text class="wall" x="{xt}" y="{AXIS_Y + 30}" text-anchor="{anchor}" '
                   f'fill="{COLORS["muted"]}">{label}</text>')
    out.append("</g>")
    return out


def _grid_and_axis(plan: MuxPlan, lay: _Layout) -> list[str]:
    """Vertical grid lines at round steps, the time axis under the lanes, and the end of the call."""
    step = _step(lay.dur, lay.plot_w)
    dec = _decimals(step)
    ticks = [k * step for k in range(int(lay.dur / step + 1e-9) + 1)]
    t0 = _call_start(plan)
    out = ['<g class="grid">']
    out += [f'<line x1="{_f(lay.x(t))}" y1="{MARK_ROWS[0] - 10}" x2="{_f(lay.x(t))}" y2="{AXIS_Y}" '
            f'stroke="{COLORS["grid"]}" stroke-width="1"/>' for t in ticks]
    out += ["</g>", '<g class="axis">',
            f'<line x1="{LEFT}" y1="{AXIS_Y}" x2="{_f(lay.x(lay.dur))}" y2="{AXIS_Y}" stroke="{COLORS["text"]}"/>',
            f'<text x="{LEFT - 8}" y="{AXIS_Y + 17}" text-anchor="end" fill="{COLORS["text"]}">output s</text>']
    if t0 is not None:
        out.append(f'<text x="{LEFT - 8}" y="{AXIS_Y + 30}" text-anchor="end" fill="{COLORS["muted"]}">'
                   f"{_t(_zone(t0))}</text>")
    for t in ticks:
        out += _tick(t, dec, t0, lay)
    xe = _f(lay.x(lay.dur))
    out += [(f'<line class="end" x1="{xe}" y1="{VIDEO_Y - 4}" x2="{xe}" y2="{AXIS_Y}" stroke="{COLORS["text"]}" '
             f'stroke-dasharray="2,2"><title>end of the call: {plan.duration:.3f} s</title></line>'),
            "</g>"]
    return out


_LANES = {"video": (VIDEO_Y, VIDEO_H), "audio": (AUDIO_Y, AUDIO_H)}  # top, height


def _lane_labels() -> list[str]:
    return [f'<text class="lane-label" x="{LEFT - 8}" y="{top + height / 2 + 4}" text-anchor="end" '
            f'font-weight="bold" fill="{COLORS["text"]}">{lane}</text>' for lane, (top, height) in _LANES.items()]


def _span_rect(lane: str, i: int, action: str, span: AudioSpan | VideoSpan, lay: _Layout, fill: str,
               extra: str, tip: str) -> str:
    """A span's rectangle; its ``data-`` attributes let tools read the plan back from the picture."""
    top, height = _LANES[lane]
    x0, x1 = lay.x(span.start), lay.x(span.end)
    return (f'<rect class="span {action}" data-lane="{lane}" data-index="{i}" data-action="{action}" '
            f'data-start="{span.start:.6f}" data-end="{span.end:.6f}" x="{_f(x0)}" y="{top}" '
            f'width="{_f(x1 - x0)}" height="{height}" fill="{fill}"{extra}>'
            f"<title>{_t(tip)}</title></rect>")


def _span_label(lane: str, x0: float, color: str, label: str) -> str:
    top, height = _LANES[lane]
    return (f'<text x="{_f(x0 + 4)}" y="{top + height / 2 + 4}" fill="{color}" '
            f'pointer-events="none">{_t(label)}</text>')


def _video_span(i: int, s: VideoSpan, lay: _Layout) -> list[str]:
    """One video span: a rectangle styled by its action, with its tooltip and, when it fits, a label."""
    x0, x1 = lay.x(s.start), lay.x(s.end)
    fill = {"copy": COLORS["copy"], "reencode": "url(#hatch-reencode)", "pad": COLORS["pad"]}[s.action]
    stroke = ' stroke="#ffffff" stroke-width="0.8"' if x1 - x0 > 4 else ""
    out = [_span_rect("video", i, s.action, s, lay, fill, stroke, _video_tip(s))]
    if s.kind == "recording":
        word = "copy" if s.action == "copy" else "re-encode"
        label = _fit(f"{word} #{s.source_index} {_base(s.source)}", x1 - x0)
        if label:
            out.append(_span_label("video", x0, "#ffffff" if s.action == "copy" else "#2b1700", label))
    return out


def _video_lane(plan: MuxPlan, lay: _Layout) -> list[str]:
    out = ['<g class="lane" data-lane="video">']
    # one black ground per run of padding: sub-pixel slices of a long call antialias to grey otherwise
    out += [f'<rect class="pad-ground" x="{_f(lay.x(s))}" y="{VIDEO_Y}" width="{_f(lay.x(e) - lay.x(s))}" '
            f'height="{VIDEO_H}" fill="{COLORS["pad"]}"/>' for s, e in _pad_runs(plan)]
    for i, s in enumerate(plan.video):
        out += _video_span(i, s, lay)
    out.append("</g>")
    return out


def _audio_span(i: int, a: AudioSpan, lay: _Layout) -> list[str]:
    """One audio span: call audio solid, silence hatched; a label when it fits."""
    x0, x1 = lay.x(a.start), lay.x(a.end)
    is_audio = a.kind == "audio"
    fill = COLORS["audio"] if is_audio else "url(#hatch-silence)"
    extra = ' fill-opacity="0.85"' if is_audio else ' stroke="#cccccc" stroke-width="0.6"'
    out = [_span_rect("audio", i, a.kind, a, lay, fill, extra, _audio_tip(a))]
    label = _fit(f"#{a.source_index} {_base(a.source)}" if is_audio else "silence", x1 - x0)
    if label:
        out.append(_span_label("audio", x0, "#ffffff" if is_audio else COLORS["muted"], label))
    return out


def _audio_lane(plan: MuxPlan, lay: _Layout) -> list[str]:
    out = ['<g class="lane" data-lane="audio">']
    for i, a in enumerate(plan.audio):
        out += _audio_span(i, a, lay)
    out.append("</g>")
    return out


def _marker_shape(m: _Marker, xm: float) -> str:
    """A shift is a triangle pointing at the lane; a cut is a dashed line across it."""
    color = COLORS[m.kind]
    if m.kind == "shift":
        return (f'<path d="M{_f(xm - 5)},{VIDEO_Y - 8} L{_f(xm + 5)},{VIDEO_Y - 8} L{_f(xm)},{VIDEO_Y} Z" '
                f'fill="{color}"/>')
    return (f'<line x1="{_f(xm)}" y1="{VIDEO_Y - 8}" x2="{_f(xm)}" y2="{VIDEO_Y + VIDEO_H + 4}" '
            f'stroke="{color}" stroke-width="2" stroke-dasharray="3,2"/>')


def _markers_layer(plan: MuxPlan, lay: _Layout) -> list[str]:
    """Markers with two rows of labels: a label that fits in neither is left to its tooltip."""
    out = ['<g class="markers">']
    row_end = [-1e9, -1e9]
    for m in _markers(plan):
        xm = lay.x(m.t)
        out.append(f'<g class="marker {m.kind}" data-kind="{m.kind}" data-t="{m.t:.6f}"><title>{_t(m.tip)}</title>')
        out.append(_marker_shape(m, xm))
        lx = xm + 4
        text_w = len(m.label) * CHAR_W
        for r, baseline in enumerate(MARK_ROWS):
            if lx >= row_end[r] + 4 and lx + text_w <= lay.width - 2:
                row_end[r] = lx + text_w
                out.append(f'<text x="{_f(lx)}" y="{baseline}" fill="{COLORS[m.kind]}" font-size="10">'
                           f'{_t(m.label)}</text>')
                break
        out.append("</g>")
    out.append("</g>")
    return out


_LEGEND = (("audio", COLORS["audio"], "call audio"), ("silence", "url(#hatch-silence)", "silence"),
           ("copy", COLORS["copy"], "stream copy"), ("reencode", "url(#hatch-reencode)", "re-encoded"),
           ("pad", COLORS["pad"], "padding (black)"), ("shift", COLORS["shift"], "shown late (shift)"),
           ("cut", COLORS["cut"], "cut"))


def _legend_swatch(key: str, fill: str, lx: float) -> str:
    """The legend's sample of one style: drawn like the markers for shift and cut, a box otherwise."""
    if key == "shift":
        return f'<path d="M{_f(lx)},-9 L{_f(lx + 12)},-9 L{_f(lx + 6)},1 Z" fill="{fill}"/>'
    if key == "cut":
        return (f'<line x1="{_f(lx + 6)}" y1="-11" x2="{_f(lx + 6)}" y2="3" stroke="{fill}" stroke-width="2" '
                f'stroke-dasharray="3,2"/>')
    return f'<rect x="{_f(lx)}" y="-10" width="18" height="12" fill="{fill}" stroke="#999999" stroke-width="0.5"/>'


def _legend() -> list[str]:
    out = [f'<g class="legend" transform="translate({LEFT},{LEGEND_Y})">']
    lx = 0.0
    for key, fill, text in _LEGEND:
        out += [f'<g class="legend-item" data-key="{key}">', _legend_swatch(key, fill, lx),
                f'<text x="{_f(lx + 23)}" y="0" fill="{COLORS["text"]}">{_t(text)}</text></g>']
        lx += 23 + len(text) * CHAR_W + 18
    out.append("</g>")
    return out


def _decisions(plan: MuxPlan, lay: _Layout) -> list[str]:
    """The planner's notes, one shortened line each (full text in the tooltip), capped at ``MAX_NOTES``."""
    notes = plan.notes
    if not notes:
        return []
    out = [f'<g class="notes" transform="translate({LEFT},{NOTES_Y})">',
           f'<text x="{-8}" y="0" text-anchor="end" font-weight="bold" fill="{COLORS["text"]}">decisions</text>']
    chars = int(lay.plot_w / CHAR_W)
    shown = notes[:MAX_NOTES]
    for k, note in enumerate(shown):
        line = note if len(note) <= chars else note[: chars - 1] + "…"
        out.append(f'<text class="note" x="0" y="{k * LINE_H}" fill="{COLORS["muted"]}">'
                   f"<title>{_t(note)}</title>{_t('• ' + line)}</text>")
    if len(notes) > MAX_NOTES:
        out.append(f'<text x="0" y="{len(shown) * LINE_H}" fill="{COLORS["muted"]}">'
                   f"… {len(notes) - MAX_NOTES} more (see the plan text)</text>")
    out.append("</g>")
    return out


def plan_svg(plan: MuxPlan, *, title: str = "", width: int = 1000) -> str:
    """The plan as a to-scale SVG timeline (a complete, standalone SVG document).

    Drawn in layers, back to front; each part is a helper returning its lines of SVG.
    """
    if width < 400:
        raise ValueError("width must be at least 400 pixels")
    lay = _layout(plan, width)
    parts = (_svg_open(plan, lay, title), _header(plan, title), _grid_and_axis(plan, lay), _lane_labels(),
             _video_lane(plan, lay), _audio_lane(plan, lay), _markers_layer(plan, lay), _legend(),
             _decisions(plan, lay), ["</svg>"])
    return "\n".join(line for part in parts for line in part) + "\n"


# --- the table ----------------------------------------------------------------------------------
def span_rows(plan: MuxPlan) -> list[dict[str, str]]:
    """Video then audio spans as table rows; runs of padding slices are folded into one row."""
    rows: list[dict[str, str]] = []
    video = list(plan.video)
    i = 0
    while i < len(video):
        s = video[i]
        if s.kind == "padding":
            j = i
            while j + 1 < len(video) and video[j + 1].kind == "padding" and abs(video[j + 1].start - video[j].end) <= EPS:
                j += 1
            n, end = j - i + 1, video[j].end
            reason = (f"black, {n} slices of ≤ {plan.padding_slice_ms / 1000:g} s" if n > 1
                      else s.reason or "black")
            rows.append({"start": f"{s.start:.3f}", "end": f"{end:.3f}", "lane": "video", "action": "pad",
                         "source": "", "reason": reason})
            i = j + 1
            continue
        reason = s.reason
        if s.shift > EPS:
            reason = f"late by {_ms(s.shift)}; {reason}"
        rows.append({"start": f"{s.start:.3f}", "end": f"{s.end:.3f}", "lane": "video",
                     "action": "re-encode" if s.action == "reencode" else "copy",
                     "source": f"#{s.source_index} {_base(s.source)}",
                     "reason": f"{reason} (file {s.src_in:.3f} + {s.src_len:.3f} s)"})
        i += 1
    for a in plan.audio:
        rows.append({"start": f"{a.start:.3f}", "end": f"{a.end:.3f}", "lane": "audio",
                     "action": "audio" if a.kind == "audio" else "silence",
                     "source": f"#{a.source_index} {_base(a.source)}" if a.kind == "audio" else "",
                     "reason": "placed at its wall-clock offset" if a.kind == "audio" else "no call audio covers this time"})
    return rows


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def _md(text: str) -> str:
    """Markdown-safe table cell: one line, specials backslash-escaped (no HTML, no broken columns)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(_clean(text).split()))


def plan_markdown(plan: MuxPlan, *, title: str = "", embed_svg: bool = False) -> str:
    """A compact Markdown report of the plan: header, span table, decisions, optionally the picture.

    ``embed_svg=True`` appends :func:`plan_svg` as a ``data:image/svg+xml;base64`` Markdown image,
    which both Prefect 3 UIs display (see the module doc); a picture over ``MAX_EMBED_BYTES`` is
    replaced by a one-line remark.
    """
    sig = plan.signature
    n_re = sum(1 for s in plan.video if s.action == "reencode")
    out = [f"### {_md(title)}" if title else "### Mux plan", "",
           _md(f"Call start {plan.call_start}, output {plan.duration:.3f} s; video {sig.codec} "
               f"{sig.width}x{sig.height} {_fps(sig.fps)} fps ({plan.signature_reason}); "
               f"{n_re} span(s) re-encoded."), "",
           "| start (s) | end (s) | lane | action | source | reason |",
           "|---:|---:|---|---|---|---|"]
    for r in span_rows(plan):
        out.append("| " + " | ".join(_md(r[k]) for k in ("start", "end", "lane", "action", "source", "reason"))
                   + " |")
    if plan.notes:
        out += ["", "**Decisions**", ""]
        out += [f"- {_md(n)}" for n in plan.notes]
    if embed_svg:
        data = base64.b64encode(plan_svg(plan, title=title).encode("utf-8")).decode("ascii")
        out.append("")
        if len(data) <= MAX_EMBED_BYTES:
            out.append(f"![timeline of the mux plan](data:image/svg+xml;base64,{data})")
        else:
            out.append(f"_(timeline picture left out: {len(data) // 1000} kB)_")
    return "\n".join(out) + "\n"
