"""The plan picture (SVG) and table (Markdown): well-formed, to scale, escaped, and telling the reasons."""

from __future__ import annotations

import argparse
import base64
import itertools
import re
import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from grmux_cli import media_cmd
from grmux_cli.exit_codes import ExitCode
from grmux_core.plan import plan_mux
from grmux_core.timeline import plan_markdown, plan_svg
from tests.support.builders import T0, VP8, audio, screen

NS = {"s": "http://www.w3.org/2000/svg"}
ODD = 'odd <name> & "quotes" \'x\'.mp4'


@pytest.fixture
def busy_plan():
    """Head cut between keyframes (re-encode + copy), a 300 ms shift, padding, a VP8 re-encode
    truncated by a large overlap, silence between two audio legs."""
    audios = [audio(0, 70, "agent.mp3"), audio(75, 45, "customer.mp3")]
    screens = [screen(-3.3, 30, "s1.mp4", keyframes=(0.0, 10.0, 20.0)), screen(26.4, 20, "s2.mp4"),
               screen(58, 25, "s3.webm", VP8, fmt="matroska,webm"), screen(80, 30, "s4.mp4")]
    return plan_mux(audios, screens, max_overlap_ms=500, padding_slice_ms=5000)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.encode("utf-8"))


def spans(root: ET.Element, lane: str) -> list[ET.Element]:
    return [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.get("data-lane") == lane]


def scale(root: ET.Element) -> tuple[float, float, float]:
    return float(root.get("data-plot-left")), float(root.get("data-plot-width")), float(root.get("data-duration"))


def test_svg_is_well_formed_with_lanes_axis_and_legend(busy_plan):
    root = parse(plan_svg(busy_plan, title="call 42"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("width") == "1000"
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "call 42" in texts and {"video", "audio"} <= set(texts)
    assert root.find(".//s:g[@data-lane='video']", NS) is not None
    assert root.find(".//s:g[@data-lane='audio']", NS) is not None
    legend = {g.get("data-key") for g in root.iterfind(".//s:g[@class='legend-item']", NS)}
    assert legend == {"audio", "silence", "copy", "reencode", "pad", "shift", "cut"}
    # one rect per span, in plan order
    assert len(spans(root, "video")) == len(busy_plan.video)
    assert len(spans(root, "audio")) == len(busy_plan.audio)


def test_every_span_is_drawn_to_scale(busy_plan):
    width = 1000
    root = parse(plan_svg(busy_plan, width=width))
    left, plot_w, dur = scale(root)
    assert left + plot_w <= width and dur == pytest.approx(busy_plan.duration)
    for lane, plan_spans in (("video", busy_plan.video), ("audio", busy_plan.audio)):
        for rect, s in zip(spans(root, lane), plan_spans, strict=True):
            assert float(rect.get("x")) == pytest.approx(left + s.start / busy_plan.duration * plot_w, abs=1)
            assert float(rect.get("width")) == pytest.approx(s.length / busy_plan.duration * plot_w, abs=1)
            assert float(rect.get("data-start")) == pytest.approx(s.start, abs=1e-6)
    # the spans tile the lane: no pixel gaps between neighbours
    rects = spans(root, "video")
    for a, b in itertools.pairwise(rects):
        assert float(a.get("x")) + float(a.get("width")) == pytest.approx(float(b.get("x")), abs=0.02)


def test_scale_follows_width():
    plan = plan_mux([audio(0, 10)], [screen(2, 5)])
    for width in (400, 1600):
        root = parse(plan_svg(plan, width=width))
        left, plot_w, _ = scale(root)
        rec = next(r for r in spans(root, "video") if r.get("data-action") == "copy")
        assert float(rec.get("x")) == pytest.approx(left + 0.2 * plot_w, abs=1)
        assert float(rec.get("width")) == pytest.approx(0.5 * plot_w, abs=1)
    with pytest.raises(ValueError):
        plan_svg(plan, width=100)


def test_styles_differ_by_action(busy_plan):
    root = parse(plan_svg(busy_plan))
    fills = {r.get("data-action"): r.get("fill") for r in spans(root, "video") + spans(root, "audio")}
    assert set(fills) == {"copy", "reencode", "pad", "audio", "silence"}
    assert len(set(fills.values())) == 5


def test_reasons_are_tooltips(busy_plan):
    root = parse(plan_svg(busy_plan))
    for rect, s in zip(spans(root, "video"), busy_plan.video, strict=True):
        tip = rect.find("s:title", NS)
        assert tip is not None and s.reason in tip.text
    reencode = next(r for r in spans(root, "video") if r.get("data-action") == "reencode")
    assert "not on a keyframe" in reencode.find("s:title", NS).text
    audio_tips = [r.find("s:title", NS).text for r in spans(root, "audio")]
    assert "agent.mp3" in audio_tips[0] and audio_tips[1].startswith("silence")
    # the planner's decisions are listed, each with its full text as a tooltip
    notes = [t.find("s:title", NS).text for t in root.iterfind(".//s:text[@class='note']", NS)]
    assert notes == list(busy_plan.notes)


def test_shift_and_cut_markers(busy_plan):
    root = parse(plan_svg(busy_plan))
    left, plot_w, dur = scale(root)
    marks = [(g.get("data-kind"), float(g.get("data-t")), g.find("s:title", NS).text)
             for g in root.iterfind(".//s:g[@data-kind]", NS)]
    shifts = [m for m in marks if m[0] == "shift"]
    assert [(round(t, 3)) for _, t, _ in shifts] == [26.7]  # s2 placed at 26.7 s, late by 300 ms
    assert "300 ms" in shifts[0][2]
    shift_label = root.find(".//s:g[@data-kind='shift']/s:text", NS)
    assert shift_label.text == "late 300 ms"
    tri = root.find(".//s:g[@data-kind='shift']/s:path", NS).get("d")
    tip_x = float(re.findall(r"L([\d.]+),", tri)[-1])
    assert tip_x == pytest.approx(left + 26.7 / dur * plot_w, abs=1)
    cuts = sorted((round(t, 3), tip) for kind, t, tip in marks if kind == "cut")
    assert cuts[0][0] == 0 and "3.300 s into" in cuts[0][1]  # s1 starts 3.3 s into its file
    assert cuts[1][0] == 80 and "truncated" in cuts[1][1]  # s3 truncated where s4 starts


def test_tail_cut_to_the_call_is_marked():
    plan = plan_mux([audio(0, 20)], [screen(5, 30, "long.mp4")])
    root = parse(plan_svg(plan))
    cuts = [float(g.get("data-t")) for g in root.iterfind(".//s:g[@data-kind='cut']", NS)]
    assert cuts == [pytest.approx(20.0)]


def test_plain_plan_has_no_markers_and_no_notes():
    plan = plan_mux([audio(0, 30)], [screen(0, 30)])
    root = parse(plan_svg(plan))
    assert root.find(".//s:g[@data-kind]", NS) is None
    assert root.find(".//s:g[@class='notes']", NS) is None
    assert [r.get("data-action") for r in spans(root, "video")] == ["copy"]


def test_axis_ticks_in_seconds_and_wall_clock():
    plan = plan_mux([audio(0, 120)], [screen(0, 120)])
    root = parse(plan_svg(plan))
    left, plot_w, dur = scale(root)
    ticks = list(root.iterfind(".//s:g[@class='tick']", NS))
    assert 4 <= len(ticks) <= 12
    labels = [[t.text for t in g.iterfind("s:text", NS)] for g in ticks]
    assert labels[0] == ["0 s", "16:58:22"]
    step = float(ticks[1].get("data-t"))
    assert labels[1] == [f"{step:.0f} s", (T0 + timedelta(seconds=step)).strftime("%H:%M:%S")]
    for g in ticks:
        line = g.find("s:line", NS)
        assert float(line.get("x1")) == pytest.approx(left + float(g.get("data-t")) / dur * plot_w, abs=1)


def test_sub_second_call_gets_fractional_ticks():
    plan = plan_mux([audio(0, 0.8)], [screen(0, 0.8)])
    root = parse(plan_svg(plan))
    labels = [g.find("s:text", NS).text for g in root.iterfind(".//s:g[@class='tick']", NS)]
    assert labels[1] in {"0.1 s", "0.2 s"}
    wall = [g.findall("s:text", NS)[1].text for g in root.iterfind(".//s:g[@class='tick']", NS)]
    assert wall[1].startswith("16:58:22.")


def test_odd_file_names_are_escaped():
    plan = plan_mux([audio(0, 60, 'voice <&> "1".mp3')], [screen(0, 200, ODD), screen(30, 5, "bell\x07.mp4")])
    svg = plan_svg(plan, title='<script>alert("x")</script> & co')
    root = parse(svg)  # well-formed despite <, &, quotes and a control character
    assert "<script>" not in svg
    texts = "".join(root.itertext())
    assert ODD in texts and 'voice <&> "1".mp3' in texts and '<script>alert("x")</script> & co' in texts
    assert "bell\ufffd.mp4" in texts and "\x07" not in svg  # XML 1.0 cannot hold a BEL: replaced


def test_many_notes_are_capped():
    screens = [screen(k * 2.0, 2.5, f"s{k}.mp4") for k in range(20)]  # 20 overlaps of 500 ms
    plan = plan_mux([audio(0, 60)], screens, max_overlap_ms=100)
    assert len(plan.notes) > 12
    root = parse(plan_svg(plan))
    notes = list(root.iterfind(".//s:text[@class='note']", NS))
    assert len(notes) == 12
    assert "more" in "".join(root.find(".//s:g[@class='notes']", NS).itertext())


# --- markdown --------------------------------------------------------------------------------------
def table_rows(md: str) -> list[list[str]]:
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    return [[c.strip() for c in re.split(r"(?<!\\)\|", r)[1:-1]] for r in rows[1:]]


def test_markdown_table_lists_spans_and_folds_padding(busy_plan):
    md = plan_markdown(busy_plan, title="call 42")
    assert md.startswith("### call 42")
    assert "| start (s) | end (s) | lane | action | source | reason |" in md
    rows = table_rows(md)
    assert all(len(r) == 6 for r in rows)
    video = [r for r in rows if r[2] == "video"]
    assert [r[3] for r in video] == ["re-encode", "copy", "copy", "pad", "re-encode", "copy", "pad"]
    assert video[3][:2] == ["46.700", "58.000"] and "3 slices" in video[3][5]
    assert "late by 300 ms" in video[2][5]
    assert [r[3] for r in rows if r[2] == "audio"] == ["audio", "silence", "audio"]
    assert "**Decisions**" in md and "truncated at 80.000 s" in md
    assert "data:image" not in md


def test_markdown_escapes_cells():
    plan = plan_mux([audio(0, 10, "a|b.mp3")], [screen(0, 10, "x <img src=y>|*z*.mp4")])
    md = plan_markdown(plan)
    assert not re.search(r"(?<!\\)[<|]img", md)  # every < is backslash-escaped: no raw HTML
    rows = table_rows(md)
    assert all(len(r) == 6 for r in rows)
    assert rows[0][4] == r"#0 x \<img src=y\>\|\*z\*.mp4"


def test_markdown_embeds_the_svg_as_a_data_uri(busy_plan):
    md = plan_markdown(busy_plan, embed_svg=True, title="call 42")
    m = re.search(r"!\[[^\]]*\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", md)
    assert m, md[-300:]
    svg = base64.b64decode(m.group(1)).decode("utf-8")
    assert svg == plan_svg(busy_plan, title="call 42")
    parse(svg)


# --- grmux plan --out -------------------------------------------------------------------------------
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="grmux")
    media_cmd.register(p.add_subparsers(dest="command", required=True))
    return p


def test_cli_plan_out_writes_svg_and_keeps_text(tmp_path, monkeypatch, capsys, busy_plan):
    from grmux_core import mux

    inputs = ([audio(0, 70, "agent.mp3"), audio(75, 45, "customer.mp3")],
              [screen(-3.3, 30, "s1.mp4", keyframes=(0.0, 10.0, 20.0)), screen(26.4, 20, "s2.mp4"),
               screen(58, 25, "s3.webm", VP8, fmt="matroska,webm"), screen(80, 30, "s4.mp4")])
    monkeypatch.setattr(mux, "probe_inputs", lambda a, s, tools: inputs)
    out = tmp_path / "call.svg"
    args = parser().parse_args(["plan", "--audio", "agent.mp3@2026-11-27T16:58:22Z",
                                "--screen", "s1.mp4@2026-11-27T16:58:18.7Z", "--out", str(out)])
    assert args.func(args) == ExitCode.OK
    printed = capsys.readouterr().out
    assert busy_plan.describe() in printed and f"wrote {out}" in printed
    root = parse(out.read_text(encoding="utf-8"))
    assert len(spans(root, "video")) == len(busy_plan.video)
    assert "grmux plan: agent.mp3" in "".join(root.itertext())


def test_cli_plan_out_must_be_svg():
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["plan", "--audio", "a.mp3@2026-11-27T16:58:22Z",
                             "--screen", "s.mp4@2026-11-27T16:58:22Z", "--out", "call.png"])
    assert exc.value.code == ExitCode.USAGE
