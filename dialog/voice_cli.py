"""``dialog voice``: a conversation on the voice channel (spec 4.4), from the keyboard or WAV files.

Each reply is spoken with espeak-ng when it is installed (else only printed; ``--mute``: never
spoken). Each answer is a line typed on the keyboard, or a WAV file recognised by pocketsphinx
(dialog/asr.py) under the grammar the engine exported for the conversation's current state: the
WAV files given with ``--wav`` (files, or directories of ``*.wav`` taken in name order) are the
turns after the ``--first`` line; on the keyboard, a line ``@path.wav`` is heard from that file.
For every WAV the command shows what was heard, its confidence and alternatives, and for every
turn the decision (outcome and state).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from dialog.engine import Engine
from dialog.errors import DialogError
from dialog.results import Reply

if TYPE_CHECKING:
    from dialog.asr import Recogniser

NEEDS_VOICE_EXTRA = "dialog voice: hearing WAV files needs the voice extra: pip install 'durable-dialog[voice]'"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``dialog voice`` on the ``dialog`` command's subparsers."""
    voice = sub.add_parser("voice", help="a spoken conversation: replies spoken, answers typed or from WAV files")
    voice.add_argument("--conversation", default="voice", help="conversation id (default: voice)")
    voice.add_argument("--tenant", default="default", help="tenant id (default: default)")
    voice.add_argument(
        "--wav", action="append", default=[], type=Path, metavar="FILE|DIR",
        help="a WAV file to recognise as one turn, or a directory of them (in name order); repeatable",
    )  # fmt: skip
    voice.add_argument("--first", metavar="TEXT", help="with --wav: a typed first turn (e.g. the request)")
    voice.add_argument("--calibrated", action="store_true", help="the calibrated confidence (dialog/asr.py)")
    voice.add_argument("--mute", action="store_true", help="print the replies, never speak them")
    return voice


def run(engine: Engine, args: argparse.Namespace, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    """The conversation; 0 at the end of the input, 2 when WAV files are given but cannot be heard."""
    wavs = _wav_files(args.wav)
    try:
        recogniser = _recogniser() if wavs else None
    except ModuleNotFoundError:
        print(NEEDS_VOICE_EXTRA, file=sys.stderr)
        return 2
    speaker = None if args.mute else shutil.which("espeak-ng")
    print(
        f"dialog voice: conversation {args.conversation!r}, tenant {args.tenant!r}; replies "
        f"{'spoken by espeak-ng' if speaker else 'printed'}. Type an answer, or @file.wav; Ctrl-D to leave.",
        file=out,
    )
    for source in _turns(args.first, wavs, stdin, out):
        text, confidence, alternatives = source, None, None
        if source.startswith("@") or isinstance(source, _Wav):
            path = Path(source[1:]) if source.startswith("@") else Path(source)
            try:
                if recogniser is None:
                    recogniser = _recogniser()
                jsgf = engine.expectations(args.conversation, tenant_id=args.tenant).jsgf
                heard = recogniser.recognise(path.read_bytes(), jsgf=jsgf, calibrated=args.calibrated)
            except ModuleNotFoundError:
                print(NEEDS_VOICE_EXTRA, file=sys.stderr)
                return 2
            except (OSError, ValueError, subprocess.CalledProcessError) as exc:
                print(f"error: cannot hear {path}: {exc}", file=out)
                continue
            others = ", ".join(f"{t!r} {c:.2f}" for t, c in heard.alternatives) or "none"
            print(f"heard {heard.text!r} in {path.name}: confidence {heard.confidence:.2f}; alternatives: {others}",
                  file=out)  # fmt: skip
            text, confidence, alternatives = heard.text, heard.confidence, heard.alternatives
        try:
            reply = engine.handle(
                args.conversation, text, tenant_id=args.tenant, channel="voice",
                confidence=confidence, alternatives=alternatives,
            )  # fmt: skip
        except DialogError as exc:
            print(f"error: {exc}", file=out)
            continue
        _say(reply, speaker, out)
    return 0


class _Wav(str):
    """A turn to hear from a WAV file (its path)."""

    __slots__ = ()


def _turns(first: str | None, wavs: list[Path], stdin: TextIO, out: TextIO) -> Iterator[str]:
    if wavs:
        if first:
            print(f"you> {first}", file=out)
            yield first
        for wav in wavs:
            yield _Wav(wav)
        return
    interactive = stdin.isatty()
    while True:
        if interactive:
            print("you> ", end="", file=out, flush=True)
        line = stdin.readline()
        if not line:
            return
        if line.strip():
            yield line.strip()


def _wav_files(given: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in given:
        files += sorted(path.glob("*.wav")) if path.is_dir() else [path]
    return files


def _recogniser() -> Recogniser:
    from dialog.asr import Recogniser  # pocketsphinx is imported when a Recogniser is made

    return Recogniser()


def _say(reply: Reply, speaker: str | None, out: TextIO) -> None:
    print(f"dialog> {reply.text}   [{reply.state} / {reply.outcome}]", file=out, flush=True)
    if speaker is not None:
        # no audio device, or a stuck one: the reply is printed anyway
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([speaker, reply.text], capture_output=True, timeout=30, check=False)
