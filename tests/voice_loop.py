"""A real spoken loop for tests and benchmarks (issue 15): espeak-ng speaks, sox resamples to 16 kHz,
pocketsphinx recognises (dialog/asr.py), with or without the grammar the engine exported.

``speak(text)`` gives 16 kHz mono 16-bit little-endian PCM; ``recognise(audio, jsgf=...)`` gives a
``Heard``: the transcript, its confidence and the alternatives, as an ASR service reports them;
``check_jsgf(jsgf)`` raises unless pocketsphinx's JSGF parser takes the grammar and its default
dictionary knows every word. dialog/asr.py says how the recogniser decides and how its confidence
is computed. One ``Recogniser`` per process (``recognise`` makes it on first use).
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
from pathlib import Path

from dialog.asr import (
    ALTERNATIVES_SCALE,
    GARBAGE_PENALTY,
    PCM_OUT,
    SAMPLE_RATE,
    SCALE,
    WEIGHTS,
    Heard,
    Recogniser,
    Scored,
    branches,
    endpoint,
    jsgf_words,
    pcm,
)

__all__ = [
    "ALTERNATIVES_SCALE", "CONFIRMATIONS", "DECLINES", "GARBAGE_PENALTY", "SAMPLE_RATE", "SCALE", "WEIGHTS",
    "Heard", "Recogniser", "Scored", "branches", "check_jsgf", "endpoint", "jsgf_words", "missing_tools", "pcm",
    "recognise", "recogniser", "speak",
]  # fmt: skip

TOOLS = ("espeak-ng", "sox")


def missing_tools() -> list[str]:
    """The programs and packages the loop needs that are not installed (`make voice` installs them)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if importlib.util.find_spec("pocketsphinx") is None:
        missing.append("pocketsphinx")
    return missing


def speak(text: str, *, voice: str = "en-us", speed: int = 160, cache: Path | None = None) -> bytes:
    """``text`` spoken by espeak-ng (``voice``, ``speed`` in words a minute): 16 kHz mono s16le PCM."""
    path = None
    if cache is not None:
        key = hashlib.sha256(f"{voice}\0{speed}\0{text}".encode()).hexdigest()[:24]
        path = cache / f"{key}.raw"
        if path.exists():
            return path.read_bytes()
    spoken = _run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", "--stdin"], text.encode())
    audio = _run(["sox", "-q", "-D", "-t", "wav", "-", *PCM_OUT], spoken)
    if path is not None:
        path.write_bytes(audio)
    return audio


def _run(command: list[str], data: bytes) -> bytes:
    out: bytes = subprocess.run(command, input=data, capture_output=True, check=True).stdout
    return out


def recognise(audio: bytes, *, jsgf: str | None, calibrated: bool = False) -> Heard:
    """What pocketsphinx hears in ``audio`` (raw PCM or WAV): under ``jsgf``, or free-form if None;
    with the loop's confidence, or the calibrated one."""
    return recogniser().recognise(audio, jsgf=jsgf, calibrated=calibrated)


def check_jsgf(jsgf: str) -> None:
    """Raise ValueError unless pocketsphinx parses ``jsgf`` and its default dictionary has every word."""
    recogniser().check_jsgf(jsgf)


_RECOGNISER: Recogniser | None = None


def recogniser() -> Recogniser:
    global _RECOGNISER
    if _RECOGNISER is None:
        _RECOGNISER = Recogniser()
    return _RECOGNISER


# --- what the loop says ---------------------------------------------------------------------------

QUESTION = "Shall I book a call with Dana Scully on Tuesday the 24th at 10 AM?"
# Spoken answers to QUESTION that must never book: refusals and hesitations. The first five are
# issue 15's (heard free-form as "oh yeah", "oh sure", "we do that", "let's do", "go for"); five
# hold a yes-word ("yes but not now", "ok wait", "yeah hold on", "okay let me check", "sure but not yet").
DECLINES: tuple[str, ...] = (
    "not yet", "i'm not sure", "don't do that", "hold on a second", "no thanks", "no", "nope", "nah", "no thank you",
    "not now", "not right now", "wait", "wait a second", "wait a minute", "hold on", "hang on", "hang on a second",
    "hold up", "let me think", "let me think about it", "let me check", "let me check my calendar",
    "i need to think about it", "i need to check", "i need to ask my boss", "give me a minute", "give me a moment",
    "give me a second", "just a moment", "just a second", "one moment", "one second", "one moment please", "maybe",
    "maybe later", "maybe not", "perhaps", "probably not", "i don't know", "i don't think so", "not sure",
    "i'm not certain", "i'm undecided", "don't book it", "don't book it yet", "please don't", "no don't",
    "do not book that", "cancel", "cancel that", "cancel it", "never mind", "forget it", "forget about it",
    "scratch that", "drop it", "call it off", "stop", "no stop", "no way", "absolutely not", "definitely not",
    "certainly not", "not at all", "not really", "no not really", "i'd rather not", "i'll get back to you",
    "i'll let you know", "i'll confirm later", "not today", "i changed my mind", "no i changed my mind",
    "change of plans", "not that one", "skip it", "i'll pass", "negative", "no no no", "no sorry", "sorry no",
    "sorry not now", "hmm", "hmm let me see", "wait no", "no wait", "hold on let me check", "not so fast",
    "slow down", "don't do it", "don't do that yet", "i have to check first", "let's wait", "not for now",
    "no don't book it", "please cancel", "yes but not now", "ok wait", "yeah hold on", "okay let me check",
    "sure but not yet", "i don't know yet", "i'm not ready", "not just yet",
)  # fmt: skip

# Spoken answers to QUESTION that mean yes (each one a confirmation when typed).
CONFIRMATIONS: tuple[str, ...] = (
    "yes", "yes please", "yeah", "yep", "yup", "sure", "sure thing", "ok", "okay", "okay book it", "sounds good",
    "sounds great", "that sounds good", "that works", "that works for me", "works for me", "go ahead",
    "go ahead and book it", "go for it", "book it", "please book it", "yes book it", "yes go ahead",
    "yes that works", "yes that's fine", "that's fine", "fine", "fine by me", "perfect", "perfect thanks", "great",
    "great thanks", "excellent", "absolutely", "definitely", "of course", "certainly", "correct", "right", "alright",
    "confirm", "confirmed", "yes confirm", "please confirm", "do it", "let's do it", "let's do that",
    "yes let's do it", "book the call", "schedule it", "yes schedule it", "yes please book the call",
    "that's perfect", "that would be great", "lovely", "brilliant", "awesome", "cool", "nice", "no problem",
    "no worries", "why not", "sure why not", "i don't mind", "put it in", "pencil it in", "lock it in",
    "see you then", "sounds like a plan", "good for me", "all good", "agreed", "deal", "proceed", "yes proceed",
    "yes thank you", "yes thanks", "okay thanks", "okay great", "okay sounds good", "yeah sure", "yeah that works",
    "yeah go ahead", "yep that's fine", "sure go ahead", "sure book it", "yes absolutely", "yes definitely",
    "yes of course", "that's right", "exactly", "book it please", "go ahead please", "yes do it", "please do",
    "okay go ahead", "alright go ahead", "alright book it", "great book it", "wonderful", "fantastic", "yes perfect",
    "yes that's great", "you bet",
)  # fmt: skip
