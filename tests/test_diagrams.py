"""Diagrams come from the machine's definition, the committed ones match it, live views mark the state."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dialog import Engine, diagrams
from dialog.machine import CONFIRMING, STATES, TRANSITIONS, State

ROOT = Path(__file__).resolve().parent.parent
SVG_NS = "{http://www.w3.org/2000/svg}"


def svg_content(svg: bytes) -> tuple[list[str], list[str]]:
    """What an SVG says, independent of coordinates: its titles and its texts, in order."""
    tree = ET.fromstring(svg)
    titles = [t.text or "" for t in tree.iter(f"{SVG_NS}title")]
    texts = [t.text or "" for t in tree.iter(f"{SVG_NS}text")]
    return titles, texts


def test_the_committed_mermaid_is_what_the_code_draws_now() -> None:
    assert (ROOT / "diagrams" / "dialog.mmd").read_text() == diagrams.mermaid(), (
        "diagrams/ is stale: run `dialog diagram -o diagrams/dialog.mmd`"
    )


def test_the_committed_svg_says_what_the_code_draws_now() -> None:
    committed = (ROOT / "diagrams" / "dialog.svg").read_bytes()
    assert svg_content(committed) == svg_content(diagrams.render("svg")), (
        "diagrams/ is stale: run `dialog diagram --format svg -o diagrams/dialog.svg`"
    )


def test_the_readme_embeds_the_committed_mermaid() -> None:
    blocks = re.findall(r"```mermaid\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert diagrams.mermaid() in blocks


def test_every_transition_of_the_definition_is_drawn() -> None:
    drawn = {(e.source, e.dest, t) for e in diagrams.edges() for t in e.triggers}
    for spec in TRANSITIONS:
        for source in spec.sources:
            dest = source if spec.dest == "=" else spec.dest
            assert (source, dest, spec.trigger.value) in drawn
    text = diagrams.mermaid()
    assert all(f"{s} -->" in text or f"--> {s}" in text for s in STATES)
    _, lines = svg_content(diagrams.render("svg"))
    drawn_text = " ".join(lines)  # long labels are wrapped over lines
    assert all(label in drawn_text for edge in diagrams.edges() for label in edge.labels)


def test_edge_labels_are_the_rules_cues_not_example_phrases() -> None:
    """Issue 14: the arrows say what the code keys on. A "yes" is recorded first (the internal
    confirming state), then settled by what the calendar did; a move is one arrow."""
    labels = {(e.source, e.dest): " / ".join(e.labels) for e in diagrams.edges()}
    assert labels[(State.AWAITING_CONFIRMATION, CONFIRMING)].startswith("confirm")
    assert labels[(CONFIRMING, State.DONE)].split("\n")[0].startswith("booked")
    assert "reschedule" in labels[(State.AWAITING_CONFIRMATION, State.AWAITING_CONFIRMATION)]
    assert "refuse" in labels[(State.AWAITING_CONFIRMATION, State.DONE)]
    assert not any('"' in label for label in labels.values())


def test_labels_are_readable_at_the_chat_pages_width() -> None:
    """The page draws the SVG ~600 px wide: every text, edge labels included, at 11 px or more there."""
    conversation = "acme/web-6cca206d-2923-4bc3-9c91-83f82f2a4f37 v12"  # the page's ids are UUIDs
    caption = f"{conversation}: Pending: a call with Dana Scully, Mon 30 Nov 11:00 (UTC)"
    svg = diagrams.render("svg", diagrams.Live(State.AWAITING_CONFIRMATION, caption=caption))
    tree = ET.fromstring(svg)
    width = float(tree.attrib["viewBox"].split()[2])
    sizes = [float(t.attrib["font-size"]) for t in tree.iter(f"{SVG_NS}text")]
    assert sizes and min(sizes) * min(600 / width, 1.0) >= 11, (width, min(sizes))


def test_rendering_svg_prints_nothing(tmp_path: Path) -> None:
    """No Fontconfig warning (the bundled fontconfig 2.13 parsing a newer system's conf.avail)."""
    out = tmp_path / "machine.svg"
    result = subprocess.run(
        [sys.executable, "-m", "dialog.cli", "diagram", "--format", "svg", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [f"wrote {out} ({out.stat().st_size:,} bytes)"], result.stderr
    _, texts = svg_content(out.read_bytes())
    assert "awaiting_confirmation" in texts  # text is still drawn


def test_a_live_view_highlights_the_state_and_marks_the_last_transition(engine: Engine) -> None:
    engine.handle("c1", "schedule a call with Dana Scully tomorrow at 10am")
    engine.handle("c1", "can we move it")
    snapshot = engine.snapshot("c1")
    assert snapshot is not None
    view = diagrams.live(snapshot)
    assert (view.state, view.last_trigger, view.last_source) == (
        State.AWAITING_CONFIRMATION,
        "reschedule",
        State.AWAITING_CONFIRMATION,
    )
    assert view.caption is not None and "Dana Scully" in view.caption and "10:30" in view.caption

    assert "class awaiting_confirmation current" in diagrams.mermaid(view)
    source = diagrams.dot(view)
    marked = [line for line in source.splitlines() if "penwidth=3" in line]
    assert any(line.strip().startswith("awaiting_confirmation [") for line in marked)
    assert any(line.strip().startswith("awaiting_confirmation -> awaiting_confirmation") for line in marked)
    assert len(marked) == 2
    _, texts = svg_content(diagrams.render("svg", view))
    assert any("Dana Scully" in t for t in texts)


def test_png_is_a_png() -> None:
    assert diagrams.render("png").startswith(b"\x89PNG\r\n\x1a\n")


def test_unknown_formats_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown diagram format"):
        diagrams.render("gif")


def test_the_cli_draws_a_live_conversation(engine: Engine, redis_url: str, tmp_path: Path) -> None:
    engine.handle("c 1", "schedule a call with Dana Scully tomorrow at 10am", tenant_id="acme")
    out = tmp_path / "live.svg"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dialog.cli",
            "diagram",
            "--format",
            "svg",
            "-o",
            str(out),
            "--conversation",
            "c 1",
            "--tenant",
            "acme",
            "--redis-url",
            redis_url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    _, texts = svg_content(out.read_bytes())
    caption = " ".join(texts[: texts.index("idle")])  # the caption comes first, wrapped over lines
    assert caption.startswith("acme/c 1 v1: Pending: a call with Dana Scully"), texts
    missing = subprocess.run(
        [sys.executable, "-m", "dialog.cli", "diagram", "--conversation", "nope", "--redis-url", redis_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and "no conversation 'nope'" in missing.stderr
