"""State diagrams drawn from the machine's own definition: extract a graph, then render it.

Mermaid text is written here (GitHub renders it inline); SVG and PNG go through DOT and
pygraphviz, whose wheels bundle Graphviz, so no system ``dot`` is needed. A live view of one
conversation highlights its state, marks its last transition and captions its proposal.
"""

from __future__ import annotations

import math
import textwrap
import threading
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from dialog.machine import CONFIRMING, INITIAL, STATES, TRANSITIONS, Node, State, label, public
from dialog.results import Snapshot

FORMATS = ("mermaid", "dot", "svg", "png")
# The chat page shows the SVG about 600 px wide. Drawn left to right with one line per label,
# the graph was ~1,400 pt wide: 10 pt labels came out at ~4 px on screen, and larger fonts only
# widened the graph (4.7 px at 14 pt). Top to bottom, with edge labels wrapped at 24 characters,
# it is ~810 pt wide, so 15 pt labels show at ~11 px there (and the page scrolls the height).
# The live view's caption (tenant/conversation, version, what is pending) is wrapped too, or a
# long conversation id would widen the graph and shrink everything in it.
LABEL_WIDTH = 18
CAPTION_WIDTH = 48
LABEL_SIZE = 15


@dataclass(frozen=True, slots=True)
class Edge:
    source: Node
    dest: Node
    triggers: tuple[str, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Live:
    """What to mark for one conversation: its state, its last transition, a caption."""

    state: State
    last_trigger: str | None = None
    last_source: State | None = None
    caption: str | None = None


def live(snapshot: Snapshot) -> Live:
    """The live view of a stored conversation."""
    if snapshot.proposal is not None:
        p = snapshot.proposal
        caption = f"Pending: a call with {p.lead}, {p.start:%a %d %b %H:%M} ({p.start.tzname()})"
    elif snapshot.event is not None:
        e = snapshot.event
        caption = f"Booked: a call with {e.lead}, {e.start:%a %d %b %H:%M} ({e.start.tzname()})"
    else:
        caption = "Nothing pending"
    title = f"{snapshot.tenant_id}/{snapshot.conversation_id} v{snapshot.version}: {caption}"
    return Live(snapshot.state, snapshot.last_trigger, snapshot.last_source, title)


def edges() -> list[Edge]:
    """Every arrow of the machine; triggers that join the same two states share one arrow."""
    grouped: dict[tuple[Node, Node], list[tuple[str, str]]] = defaultdict(list)
    for spec in TRANSITIONS:
        for source in spec.sources:
            dest = source if spec.dest == "=" else spec.dest
            grouped[(source, dest)].append((spec.trigger.value, label(source, spec.trigger)))
    return [
        Edge(src, dst, tuple(t for t, _ in pairs), tuple(label for _, label in pairs))
        for (src, dst), pairs in grouped.items()
    ]


def mermaid(live: Live | None = None) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL.value}"]
    for edge in edges():
        lines.append(f"    {edge.source} --> {edge.dest}: {_mermaid_label(edge)}")
    if live is not None:
        lines += [
            "    classDef current fill:#ffd54f,stroke:#e65100,stroke-width:3px",
            f"    class {live.state.value} current",
        ]
        if live.caption:
            lines.append(f"    note right of {live.state.value}: {_mermaid_text(live.caption)}")
    return "\n".join(lines) + "\n"


def dot(live: Live | None = None) -> str:
    lines = [
        "digraph dialog {",
        '  graph [rankdir=TB, fontname="Helvetica", fontsize=15, nodesep=0.15, ranksep=0.9, pad=0.3'
        + (f", label={_quote(_caption(live.caption))}, labelloc=b" if live and live.caption else "")
        + "];",
        '  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", color="#35527a", '
        f'fontname="Helvetica", fontsize={LABEL_SIZE}];',
        f'  edge [fontname="Helvetica", fontsize={LABEL_SIZE}, color="#55606e"];',
        '  start [shape=point, width=0.15, label=""];',
        f"  start -> {INITIAL.value};",
    ]
    for state in STATES:
        current = live is not None and live.state == state
        extra = ', fillcolor="#ffd54f", color="#e65100", penwidth=3' if current else ""
        if state == CONFIRMING:  # internal: a recorded "yes" whose calendar call is to settle
            extra += ', style="rounded,filled,dashed", fillcolor="#fff8e1"'
        lines.append(f"  {state} [label={_quote(state)}{extra}];")
    for edge in edges():
        lines.append(
            f"  {edge.source} -> {edge.dest} [label={_quote(_dot_label(edge))}{_mark(edge, live)}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(fmt: str, live: Live | None = None) -> bytes:
    """The diagram as ``fmt``: mermaid, dot, svg or png."""
    if fmt == "mermaid":
        return mermaid(live).encode()
    if fmt == "dot":
        return dot(live).encode()
    if fmt in ("svg", "png"):
        return _graphviz(dot(live), fmt)
    raise ValueError(f"unknown diagram format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _graphviz(source: str, fmt: str) -> bytes:
    import pygraphviz

    _load_fontconfig(Path(pygraphviz.__file__).parent)
    data: bytes = pygraphviz.AGraph(string=source).draw(format=fmt, prog="dot")
    return data


_fontconfig_lock = threading.Lock()
_fontconfig_loaded = False


def _load_fontconfig(package: Path) -> None:
    """Load the bundled fontconfig's configuration ourselves, once, before Graphviz first uses it.

    pygraphviz's Linux wheels bundle fontconfig 2.13, whose own start-up also parses every file in
    its compiled-in template folder /usr/share/fontconfig/conf.avail, only to list them. Where the
    system's fontconfig is newer (Debian 12: 2.14), that folder holds 05-reset-dirs-sample.conf,
    whose ``<reset-dirs/>`` 2.13 does not know: a "Fontconfig warning" on standard error at every
    render, which FONTCONFIG_FILE cannot avoid. Loading the configuration fontconfig would load
    anyway (FONTCONFIG_FILE, else /etc/fonts/fonts.conf) and making it current skips that parse;
    fonts and rendering are unchanged, and nothing in the environment is. Without the bundled
    library (another platform, a system pygraphviz) this does nothing.
    """
    global _fontconfig_loaded
    with _fontconfig_lock:
        if _fontconfig_loaded:
            return
        _fontconfig_loaded = True
        libraries = sorted((package.parent / "pygraphviz.libs").glob("libfontconfig*.so*"))
        if not libraries:
            return
        import ctypes

        try:
            fc = ctypes.CDLL(str(libraries[0]))
            fc.FcConfigCreate.restype = ctypes.c_void_p
            fc.FcConfigParseAndLoad.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
            fc.FcConfigBuildFonts.argtypes = [ctypes.c_void_p]
            fc.FcConfigSetCurrent.argtypes = [ctypes.c_void_p]
            fc.FcConfigDestroy.argtypes = [ctypes.c_void_p]
        except (OSError, AttributeError):
            return
        config = fc.FcConfigCreate()
        if not config:
            return
        # NULL: the file fontconfig itself would load; on failure its own start-up happens as before.
        loaded = fc.FcConfigParseAndLoad(config, None, 1) and fc.FcConfigBuildFonts(config)
        if loaded and fc.FcConfigSetCurrent(config):
            return  # fontconfig owns it now
        fc.FcConfigDestroy(config)


def _mark(edge: Edge, live: Live | None) -> str:
    if live is None or live.last_trigger is None or live.last_source is None:
        return ""
    # stored transitions name public states: a settled confirmation's arrow leaves CONFIRMING
    arrow = (public(edge.source), public(edge.dest))
    if arrow == (live.last_source, live.state) and live.last_trigger in edge.triggers:
        return ', color="#e65100", fontcolor="#e65100", penwidth=3'
    return ""


def _dot_label(edge: Edge) -> str:
    return "\n".join(line for label in edge.labels for line in _wrap(label))


def _caption(caption: str) -> str:
    return "\n".join(_wrap(caption, CAPTION_WIDTH))


def _wrap(label: str, width: int = LABEL_WIDTH) -> list[str]:
    """``label`` in lines of at most ``width`` characters, balanced (no lone word on a last line)."""
    lines = textwrap.wrap(label, width) or [label]
    for narrower in range(math.ceil(len(label) / len(lines)), width):
        balanced = textwrap.wrap(label, narrower)
        if len(balanced) == len(lines):
            return balanced
    return lines


def _mermaid_label(edge: Edge) -> str:
    return _mermaid_text(" / ".join(edge.labels))


def _mermaid_text(text: str) -> str:
    # Mermaid state labels end at a newline and treat ':' and ';' specially.
    return text.replace("\n", " ").replace(":", " -").replace(";", ",").replace('"', "'")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
