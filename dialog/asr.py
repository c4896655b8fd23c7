"""Speech recognition under the grammar the engine exports (spec 4.4), with pocketsphinx: what
``dialog voice`` hears in a WAV file and what the spoken loop (tests/voice_loop.py,
benchmarks/voice.py) measures. ``Recogniser().recognise(audio, jsgf=...)`` gives a ``Heard``: the
transcript ("" for nothing), its confidence and the alternatives, as an ASR service reports them.
pocketsphinx is imported when a ``Recogniser`` is made (``pip install 'durable-dialog[voice]'``; sox only
for WAV files that are not 16 kHz mono 16-bit).

How it decides (each choice measured on espeak-ng speech: 2 voices, 2 speeds; benchmarks/voice.py):

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
- Two confidences, from the same scores. Each candidate transcript is scored by forced
  alignment (a grammar of that one phrase), and so is an unconstrained phone loop (``allphone``,
  the standard out-of-grammar garbage model): speech the grammar does not cover fits the phone
  loop better than any phrase. Both are fitted by log loss on voices the tests and the benchmark
  do not use (``benchmarks/voice.py --calibrate``), under grammars only (free-form, they mean
  little). On the benchmark's voices (README, Voice):
  - ``Scored.heard`` (the default; the loop's and the tests'): a posterior over the candidates
    and the phone loop, which pays ``GARBAGE_PENALTY`` per frame of speech. Cautious below 0.6:
    transcripts given 0.2-0.4 were right 54% of the time, 0.4-0.6 59%, 0.6-0.8 80%, 0.8-1 94%.
  - ``Scored.calibrated``: the probability that the best candidate is what was said, from a
    logistic model (Platt scaling) of its lead over the runner-up, the phone loop's lead per
    frame and the length of the speech; each alternative gets a softmax share of ``1 -
    confidence``. Right 44%, 64%, 82% and 92% of the time in the same bands.
  pocketsphinx's own numbers are not used: ``hyp().prob`` (already a probability in pocketsphinx
  5, not a log) is the posterior of one path, and a phrase has several (silence placements), so a
  clean "yes" got 0.33; the scores of the FSG lattice's n-best disagree with the search's own (a
  correct "sounds good" came back with "stop" far ahead of it).
- The candidates: under a grammar whose public rule is a choice of rules (``<confirm> | <refuse> |
  <hesitate> | <move>``, as the engine's are), the best transcript of each rule alone, so the
  alternatives always hold the best refusal, the best hesitation, ...; under any other grammar its
  best transcript; free-form, the distinct transcripts of the language model's 10-best.

A ``Recogniser`` holds two pocketsphinx decoders and one search per grammar and per candidate
phrase, kept. Not thread-safe.
"""

from __future__ import annotations

import array
import io
import math
import re
import subprocess
import sys
import tempfile
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SAMPLE_RATE = 16_000
FRAME_BYTES = SAMPLE_RATE * 2 // 100  # pocketsphinx's frames are 10 ms of 16-bit samples

# Fitted by `benchmarks/voice.py --calibrate`, on voices the tests and the benchmark do not use
# (en-us+f3, en-gb-scotland, 160 words a minute). The loop's confidence (``Scored.heard``): a score
# difference of d (pocketsphinx's log units, base 1.0001) weighs exp(SCALE * d); the phone loop
# pays GARBAGE_PENALTY per frame of speech.
SCALE = 0.003
GARBAGE_PENALTY = 12.0
# The calibrated confidence (``Scored.calibrated``; by log loss, on en-us+f3 and en-gb-scotland at 160
# words a minute, voices the tests and the benchmark do not use): the logistic model's weights for
# (1, the lead over the runner-up, the phone loop's lead per frame, the length; see ``features``)
# and the scale (per unit of pocketsphinx's log score, base 1.0001) of the alternatives' softmax.
WEIGHTS = (-0.3603, 1.6834, -1.0221, 0.5634)
ALTERNATIVES_SCALE = 0.002
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


PCM_OUT = ("-t", "raw", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", "-e", "signed-integer", "-L", "-")


def _run(command: list[str], data: bytes) -> bytes:
    return subprocess.run(command, input=data, capture_output=True, check=True).stdout


def pcm(audio: bytes) -> bytes:
    """Raw 16 kHz mono 16-bit PCM from raw PCM (returned as is) or a WAV file of any format (via sox)."""
    if audio[:4] != b"RIFF":
        return audio
    with wave.open(io.BytesIO(audio)) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (SAMPLE_RATE, 1, 2):
            frames: bytes = w.readframes(w.getnframes())
            return frames
    return _run(["sox", "-q", "-D", "-t", "wav", "-", *PCM_OUT], audio)


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


@dataclass(frozen=True, slots=True)
class Scored:
    """The candidate transcripts of one utterance, each with its forced-alignment score, and the
    phone loop's score over the same frames (scores: pocketsphinx's log units, base 1.0001)."""

    candidates: dict[str, int]
    garbage: int | None
    frames: int

    def features(self) -> tuple[float, ...]:
        """What the confidence is computed from (each about unit size): 1; the best candidate's
        lead over the runner-up (thousands of log units, at most 3); the phone loop's lead over
        the best candidate per frame (tens of log units); the log of the speech's length."""
        top = max(self.candidates.values())
        rest = sorted(self.candidates.values(), reverse=True)[1:]
        lead = min(top - rest[0], 3000) / 1000 if rest else 3.0
        garbage = (self.garbage - top) / max(self.frames, 1) / 10 if self.garbage is not None else -1.0
        return (1.0, lead, garbage, math.log(max(self.frames, 1)) / 5)

    def heard(self, *, scale: float = SCALE, garbage_penalty: float = GARBAGE_PENALTY) -> Heard:
        """The posterior over the candidates and the garbage model, as a ``Heard``."""
        if not self.candidates:
            return Heard("", 0.0, [])
        everything: dict[str, float] = dict(self.candidates)
        if self.garbage is not None:
            everything["\0garbage"] = self.garbage - garbage_penalty * max(self.frames, 1)
        top = max(everything.values())
        weights = {c: math.exp(scale * (s - top)) for c, s in everything.items()}
        total = sum(weights.values())
        ranked = sorted(((c, weights[c] / total) for c in self.candidates), key=lambda item: -item[1])
        (text, confidence), rest = ranked[0], ranked[1:]
        alternatives = [(c, round(p, 4)) for c, p in rest if p >= MIN_ALTERNATIVE][:MAX_ALTERNATIVES]
        return Heard(text, round(confidence, 4), alternatives)

    def calibrated(
        self,
        *,
        weights: Sequence[float] = WEIGHTS,
        alternatives_scale: float = ALTERNATIVES_SCALE,
        min_alternative: float = MIN_ALTERNATIVE,
    ) -> Heard:
        """The best candidate with a calibrated confidence (Platt scaling); the others share the rest."""
        if not self.candidates:
            return Heard("", 0.0, [])
        ranked = sorted(self.candidates.items(), key=lambda item: -item[1])
        (text, _), rest = ranked[0], ranked[1:]
        confidence = _sigmoid(sum(w * x for w, x in zip(weights, self.features(), strict=True)))
        alternatives: list[tuple[str, float]] = []
        if rest:
            runner_up = rest[0][1]
            weighed = [(c, math.exp(alternatives_scale * (s - runner_up))) for c, s in rest]
            total = sum(w for _, w in weighed)
            shares = [(c, round((1 - confidence) * w / total, 4)) for c, w in weighed]
            alternatives = [(c, p) for c, p in shares if p >= min_alternative][:MAX_ALTERNATIVES]
        return Heard(text, round(confidence, 4), alternatives)


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-max(min(z, 40.0), -40.0)))


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

    def recognise(self, audio: bytes, *, jsgf: str | None, calibrated: bool = False) -> Heard:
        scored = self.score(audio, jsgf=jsgf)
        return scored.calibrated() if calibrated else scored.heard()

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
