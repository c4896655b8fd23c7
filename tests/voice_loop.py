"""A real spoken loop for tests and benchmarks (issue 15): espeak-ng speaks, sox resamples to 16 kHz,
pocketsphinx recognises, with or without the grammar the engine exported.

``speak(text)`` gives 16 kHz mono 16-bit little-endian PCM; ``recognise(audio, jsgf=...)`` gives a
``Heard``: the transcript, its confidence and the alternatives, as an ASR service reports them;
``check_jsgf(jsgf)`` raises unless pocketsphinx's JSGF parser takes the grammar and its default
dictionary knows every word.

How the recogniser decides (each choice measured on espeak-ng speech: the phrases below, 2 voices,
2 speeds; benchmarks/voice.py):

- Endpointing: the quiet before and after the speech is cut (``endpoint``), and grammars are
  decoded without pocketsphinx's filler words: with them, silence absorbed whole words, and forced
  alignments of "sure" or "no" beat "i'm not sure" on "i'm not sure" (the phrase said scored best
  among 3-4 candidates in 2 of 10 utterances); without them it scored best in all 10.
- No ``bestpath`` lattice pass under a grammar: with it, the FSG search returns fragments that no
  path of the grammar ends on ("go", "let me", "that would": 106 of 832 utterances), without it
  none. Beams wider than the defaults (1e-60, not 1e-48): the search lost fewer phrases that score
  better (exact 75% -> 78%).
- The front end starts afresh for every decode: it carries state between utterances, and the same
  audio decoded after different audio came out differently (19 times in 30). sox does not dither
  (``-D``), so the same text gives the same audio.
- Confidence is a posterior over a few candidate transcripts, each scored by forced alignment (a
  grammar of that one phrase), against a garbage model: an unconstrained phone loop (``allphone``)
  that pays ``GARBAGE_PENALTY`` per frame of speech. Speech the grammar does not cover then fits the
  phone loop better than any phrase, and the confidence falls. pocketsphinx's own numbers are not
  used: ``hyp().prob`` (already a probability in pocketsphinx 5, not a log) is the posterior of one
  path, and a phrase has several (silence placements), so a clean "yes" got 0.33; the scores of the
  FSG lattice's n-best disagree with the search's own (a correct "sounds good" came back with "stop"
  far ahead of it).
- The candidates: under a grammar whose public rule is a choice of rules (``<confirm> | <refuse> |
  <hesitate> | <move>``, as the engine's are), the best transcript of each rule alone, so the
  alternatives always hold the best refusal, the best hesitation, ...; under any other grammar its
  best transcript; free-form, the distinct transcripts of the language model's 10-best.

One ``Recogniser`` per process (``recognise`` makes it on first use): two pocketsphinx decoders,
one search per grammar and per candidate phrase, kept. Not thread-safe.
"""

from __future__ import annotations

import array
import hashlib
import importlib.util
import io
import math
import re
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLE_RATE = 16_000
FRAME_BYTES = SAMPLE_RATE * 2 // 100  # pocketsphinx's frames are 10 ms of 16-bit samples
TOOLS = ("espeak-ng", "sox")

# Calibrated on voices the tests and the benchmark do not use (en-us+f3, en-gb-scotland, 160 words
# a minute; see benchmarks/voice.py --calibrate): a score difference of d (pocketsphinx's log units,
# base 1.0001) weighs exp(SCALE * d); the phone loop pays GARBAGE_PENALTY per frame of speech.
SCALE = 0.003
GARBAGE_PENALTY = 8.0
MAX_ALTERNATIVES = 5
MIN_ALTERNATIVE = 0.01
NBEST = 10  # free-form: how many of the language model's n-best paths give candidates
_BEAMS = {"beam": 1e-60, "wbeam": 1e-40, "pbeam": 1e-60}
TRIM_BELOW = 1e-3  # endpointing: frames under this fraction of the loudest frame's energy, at either end
TRIM_MARGIN = 3  # frames of that quiet kept on each side


@dataclass(frozen=True, slots=True)
class Heard:
    """What the recogniser heard: the best transcript ("" for nothing), its confidence, the others."""

    text: str
    confidence: float
    alternatives: list[tuple[str, float]] = field(default_factory=list)


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
    pcm = _run(["sox", "-q", "-D", "-t", "wav", "-", *_PCM_OUT], spoken)
    if path is not None:
        path.write_bytes(pcm)
    return pcm


_PCM_OUT = ("-t", "raw", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer", "-L", "-")


def _run(command: list[str], data: bytes) -> bytes:
    return subprocess.run(command, input=data, capture_output=True, check=True).stdout


def pcm(audio: bytes) -> bytes:
    """Raw 16 kHz mono 16-bit PCM from raw PCM (returned as is) or a WAV file of any format (via sox)."""
    if audio[:4] != b"RIFF":
        return audio
    with wave.open(io.BytesIO(audio)) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SAMPLE_RATE, 1, 2):
            return w.readframes(w.getnframes())
    return _run(["sox", "-q", "-D", "-t", "wav", "-", *_PCM_OUT], audio)


def endpoint(audio: bytes) -> bytes:
    """``audio`` without the quiet before and after the speech (all of it quiet: b"")."""
    samples = array.array("h")
    samples.frombytes(audio[: len(audio) // 2 * 2])
    if sys.byteorder == "big":
        samples.byteswap()
    step = FRAME_BYTES // 2
    energy = [sum(x * x for x in samples[i : i + step]) for i in range(0, len(samples), step)]
    loud = max(energy, default=0) * TRIM_BELOW
    voiced = [i for i, e in enumerate(energy) if e > loud]
    if not voiced or loud == 0:
        return b""
    first, last = max(voiced[0] - TRIM_MARGIN, 0), voiced[-1] + 1 + TRIM_MARGIN
    return audio[first * FRAME_BYTES : last * FRAME_BYTES]


def recognise(audio: bytes, *, jsgf: str | None) -> Heard:
    """What pocketsphinx hears in ``audio`` (raw PCM or WAV): under ``jsgf``, or free-form if None."""
    return recogniser().recognise(audio, jsgf=jsgf)


def check_jsgf(jsgf: str) -> None:
    """Raise ValueError unless pocketsphinx parses ``jsgf`` and its default dictionary has every word."""
    recogniser().check_jsgf(jsgf)


_RECOGNISER: Recogniser | None = None


def recogniser() -> Recogniser:
    global _RECOGNISER
    if _RECOGNISER is None:
        _RECOGNISER = Recogniser()
    return _RECOGNISER


@dataclass(frozen=True, slots=True)
class Scored:
    """The candidate transcripts of one utterance, each with its forced-alignment score, and the
    phone loop's score over the same frames (scores: pocketsphinx's log units, base 1.0001)."""

    candidates: dict[str, int]
    garbage: int | None
    frames: int

    def heard(self, *, scale: float = SCALE, garbage_penalty: float = GARBAGE_PENALTY) -> Heard:
        """The posterior over the candidates and the garbage model, as a ``Heard``."""
        if not self.candidates:
            return Heard("", 0.0, [])
        everything = dict(self.candidates)
        if self.garbage is not None:
            everything["\0garbage"] = self.garbage - garbage_penalty * max(self.frames, 1)
        top = max(everything.values())
        weights = {c: math.exp(scale * (s - top)) for c, s in everything.items()}
        total = sum(weights.values())
        ranked = sorted(((c, weights[c] / total) for c in self.candidates), key=lambda item: -item[1])
        (text, confidence), rest = ranked[0], ranked[1:]
        alternatives = [(c, round(p, 4)) for c, p in rest if p >= MIN_ALTERNATIVE][:MAX_ALTERNATIVES]
        return Heard(text, round(confidence, 4), alternatives)


class Recogniser:
    """pocketsphinx with its default en-us model: a free-form decoder, and one for grammars, forced
    alignments and the phone loop."""

    def __init__(self) -> None:
        import pocketsphinx  # imported here, so that collecting the tests needs no pocketsphinx

        self._log = tempfile.NamedTemporaryFile(prefix="pocketsphinx-", suffix=".log")  # noqa: SIM115
        self._free = pocketsphinx.Decoder(loglevel="FATAL")
        self._grammars = pocketsphinx.Decoder(
            loglevel="ERROR", logfn=self._log.name, bestpath=False, fsgusefiller=False, **_BEAMS
        )
        self._grammars.add_allphone_file("garbage", None)
        self._logmath = self._grammars.get_logmath()
        self._searches: dict[str, str] = {}

    def recognise(self, audio: bytes, *, jsgf: str | None) -> Heard:
        return self.score(audio, jsgf=jsgf).heard()

    def score(self, audio: bytes, *, jsgf: str | None) -> Scored:
        """The candidates for what ``audio`` says, scored (none: nothing was heard)."""
        audio = pcm(audio)
        speech = endpoint(audio)
        if len(speech) < FRAME_BYTES * 5:
            return Scored({}, None, 0)
        candidates = self._free_form(audio) if jsgf is None else self._grammar(speech, jsgf)
        scores = {c: s for c in candidates if (s := self._forced(speech, c)) is not None}
        garbage = self._decode(self._grammars, speech, "garbage") if scores else None
        return Scored(scores, garbage[1] if garbage else None, len(speech) // FRAME_BYTES)

    def check_jsgf(self, jsgf: str) -> None:
        mark = Path(self._log.name).stat().st_size
        try:
            self._grammars.parse_jsgf(jsgf.encode())
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"pocketsphinx rejects the grammar: {exc}. {self._log_since(mark)}".strip()) from exc
        unknown = sorted(w for w in jsgf_words(jsgf) if self._grammars.lookup_word(w) is None)
        if unknown:
            raise ValueError(f"words not in pocketsphinx's dictionary: {', '.join(unknown)}")

    def _decode(self, decoder: Any, audio: bytes, search: str | None = None) -> tuple[str, int] | None:
        decoder.activate_search(search)
        # The front end starts afresh: it carries state from one utterance to the next (the same
        # audio decoded after different audio came out differently, 19 times in 30); same audio, same result.
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(audio, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        if hyp is None or not hyp.hypstr.strip():
            return None
        return hyp.hypstr.strip(), self._logmath.log(hyp.score) if hyp.score > 0 else -(2**31)

    def _free_form(self, audio: bytes) -> list[str]:
        """The language model's best transcript, then the other distinct ones of its n-best."""
        found = self._decode(self._free, audio)  # the whole recording: the LM search has its own silences
        if found is None:
            return []
        nbest = (h.hypstr.strip() for h, _ in zip(self._free.nbest() or (), range(NBEST), strict=False) if h)
        return list(dict.fromkeys([found[0], *(t for t in nbest if t)]))

    def _grammar(self, speech: bytes, jsgf: str) -> list[str]:
        """The best transcript of each alternative of the grammar's public rule (else of the grammar)."""
        heard = [self._decode(self._grammars, speech, self._search(g)) for g in branches(jsgf) or [jsgf]]
        return list(dict.fromkeys(h[0] for h in heard if h))

    def _search(self, jsgf: str) -> str:
        name = self._searches.get(jsgf)
        if name is None:
            name = f"g{len(self._searches)}"
            self._grammars.add_jsgf_string(name, jsgf.encode())
            self._searches[jsgf] = name
        return name

    def _forced(self, speech: bytes, phrase: str) -> int | None:
        """The score of ``phrase`` aligned to the whole of ``speech`` (None: no alignment)."""
        try:
            search = self._search(f"#JSGF V1.0;\ngrammar forced;\npublic <phrase> = {phrase};\n")
        except ValueError:
            return None  # a word the dictionary lacks, or one JSGF cannot hold
        found = self._decode(self._grammars, speech, search)
        return found[1] if found and found[0] == phrase else None

    def _log_since(self, mark: int) -> str:
        with open(self._log.name, "rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace").strip()[-500:]


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


# --- reading JSGF ---------------------------------------------------------------------------------

_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_PUBLIC = re.compile(r"public\s+<([^>]+)>\s*=\s*([^;]*);")
_REF = re.compile(r"\s*(?:/[^/]*/\s*)?<([^>]+)>\s*")


def branches(jsgf: str) -> list[str]:
    """One grammar per alternative of the public rule, when that rule is a choice of rule names."""
    text = _COMMENTS.sub("", jsgf)
    public = _PUBLIC.search(text)
    if public is None:
        return []
    choices = public.group(2).split("|")
    refs = [m.group(1) for c in choices if (m := _REF.fullmatch(c))]
    if len(refs) != len(choices) or len(refs) < 2:
        return []
    head, tail = text[: public.start()], text[public.end() :]
    return [f"{head}public <{public.group(1)}> = <{ref}>;{tail}" for ref in refs]


def jsgf_words(jsgf: str) -> set[str]:
    """The words (terminals) of a JSGF grammar."""
    text = _COMMENTS.sub("", jsgf)
    text = re.sub(r"^\s*(?:#JSGF|grammar|import)[^;]*;", " ", text, flags=re.M)
    text = re.sub(r"\bpublic\s+(?=<)", " ", text)
    text = re.sub(r"<[^>]*>|\{[^}]*\}|/[^/]*/", " ", text)
    text = re.sub(r'[()\[\]|*+=;"]', " ", text)
    return set(text.split())

