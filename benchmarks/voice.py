"""The spoken loop of issue 15 as a table: free-form recognition vs the grammar the engine exports.

    .venv/bin/python benchmarks/voice.py [--voices en-us,en-gb] [--speeds 140,180] [--workers 2]
        [--modes free-form,grammar,calibrated] [--threshold 0.6] [--redis-url URL | --fake] [--show]
        [--calibrate]

Every answer in tests/voice_loop.py (DECLINES: refusals and hesitations; CONFIRMATIONS) is spoken
by espeak-ng in each voice at each speed (words a minute), resampled to 16 kHz by sox and
recognised by pocketsphinx (dialog/asr.py): free-form (its default language model), and under
the JSGF grammar the engine exported with its question, with the loop's confidence and with the
calibrated one. Each recognition answers its own conversation (its own tenant): "schedule a
call with Dana Scully tomorrow at 10am" on voice, then the transcript with the recogniser's
confidence and alternatives (dialog/asr.py says how they are computed), at the tenants'
threshold (``--threshold``, default 0.6). Real Redis (database 14 of the local server, flushed at the
start) unless --fake.

Columns:
- ``heard exactly``: the transcript is the phrase spoken;
- ``false accepts``: refusals and hesitations that booked (the target is none);
- ``true accepts``: confirmations that booked (the target is 90%);
- ``ms/turn``: median time of one answer turn: recognition plus the engine's turn (synthesis excluded).

The second table keeps only the phrases the exported grammar offers. ``--show`` lists every false
accept, and the confirmations that did not book under the grammar. Then, per mode, how often a
transcript given each confidence was the phrase spoken. ``--calibrate`` fits the recogniser's
confidences (dialog/asr.py: SCALE, GARBAGE_PENALTY; WEIGHTS, ALTERNATIVES_SCALE) by log loss on
voices the table does not use.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis

from dialog import Engine, InMemoryCalendar, Schedule
from dialog.testing import FakeClock
from tests import voice_loop
from tests.voice_loop import CONFIRMATIONS, DECLINES, Heard, Scored, speak

MONDAY_8AM = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"
CALIBRATION_VOICES = (("en-us+f3", 160), ("en-gb-scotland", 160))


@dataclass(frozen=True)
class Job:
    voice: str
    speed: int
    mode: str  # "free-form" | "grammar" | "calibrated" (the grammar, with the calibrated confidence)
    declines: bool
    said: str
    tenant: str


@dataclass(frozen=True)
class Result:
    job: Job
    heard: Heard
    outcome: str
    seconds: float
    offered: bool  # the phrase is one the exported grammar offers


# Each worker process's engine and the folder of synthesised speech (set by _start).
_engine: Engine | None = None
_speech = Path()


def _start(redis_url: str | None, speech: str, threshold: float = 0.6) -> None:
    global _engine, _speech
    client: redis.Redis
    if redis_url is None:
        import fakeredis

        client = fakeredis.FakeRedis()
    else:
        client = redis.Redis.from_url(redis_url)
    calendar = InMemoryCalendar(Schedule(voice_confidence=threshold))
    _engine = Engine(client, calendar=calendar, clock=FakeClock(MONDAY_8AM))
    _speech = Path(speech)
    voice_loop.recogniser()  # the decoders load once per worker


def _run(job: Job) -> Result:
    assert _engine is not None
    proposed = _engine.handle("call", PROPOSE, tenant_id=job.tenant, channel="voice")
    assert proposed.outcome == "proposed" and proposed.expect is not None, proposed
    audio = speak(job.said, voice=job.voice, speed=job.speed, cache=_speech)
    started = time.perf_counter()
    jsgf = None if job.mode == "free-form" else proposed.expect.jsgf
    heard = voice_loop.recognise(audio, jsgf=jsgf, calibrated=job.mode == "calibrated")
    try:
        reply = _engine.handle(
            "call", heard.text, tenant_id=job.tenant, channel="voice",
            confidence=heard.confidence, alternatives=heard.alternatives,
        )  # fmt: skip
        outcome = str(reply.outcome)
    except Exception as exc:  # an engine error is a finding, not the end of the run
        outcome = f"{type(exc).__name__}"
    seconds = time.perf_counter() - started
    return Result(job, heard, outcome, seconds, job.said in proposed.expect.phrases)


def jobs(voices: Sequence[tuple[str, int]], modes: Sequence[str]) -> list[Job]:
    out = []
    for (voice, speed), mode in ((v, m) for v in voices for m in modes):
        for declines, phrases in ((True, DECLINES), (False, CONFIRMATIONS)):
            tenant = f"{voice}-{speed}-{mode}-{declines}-"
            out += [Job(voice, speed, mode, declines, p, f"{tenant}{i}") for i, p in enumerate(phrases)]
    return out


def run(all_jobs: list[Job], *, workers: int, redis_url: str | None, threshold: float = 0.6) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="voice-speech-") as speech:
        if workers <= 1 or redis_url is None:  # fakeredis lives in this process
            _start(redis_url, speech, threshold)
            return [_run(j) for j in all_jobs]
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers, initializer=_start, initargs=(redis_url, speech, threshold)) as pool:
            return pool.map(_run, all_jobs, chunksize=4)


# --- the tables ------------------------------------------------------------------------------------


def row(label: Iterable[str], results: list[Result]) -> str:
    declines = [r for r in results if r.job.declines]
    confirms = [r for r in results if not r.job.declines]
    exact = sum(r.heard.text == r.job.said for r in results)
    false_accepts = sum(r.outcome == "booked" for r in declines)
    true_accepts = sum(r.outcome == "booked" for r in confirms)
    ms = statistics.median(r.seconds for r in results) * 1000 if results else math.nan
    cells = [
        *label,
        _share(exact, len(results)),
        f"**{_share(false_accepts, len(declines))}**",
        _share(true_accepts, len(confirms)),
        f"{ms:.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def _share(n: int, total: int) -> str:
    return f"{n} of {total} ({_pct(n, total)})"


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f}%" if total else "-"


def tables(results: list[Result], voices: Sequence[tuple[str, int]], modes: Sequence[str]) -> None:
    head = "| recognition | voice | speed | heard exactly | false accepts | true accepts | ms/turn |"
    subsets = (("every phrase", lambda r: True), ("only phrases the exported grammar offers", lambda r: r.offered))
    for title, keep in subsets:
        print(f"\n{title}:\n\n{head}\n" + "|---" * 7 + "|")
        for mode in modes:
            mine = [r for r in results if r.job.mode == mode and keep(r)]
            for voice, speed in voices:
                print(row((mode, voice, str(speed)), [r for r in mine if (r.job.voice, r.job.speed) == (voice, speed)]))
            print(row((f"**{mode}**", "all", "all"), mine))


def reliability(results: list[Result], modes: Sequence[str]) -> None:
    """How often a transcript given each confidence was what was said: is 0.6 right 6 times in 10?"""
    print("\nheard exactly, by confidence:")
    edges = (0.0, 0.2, 0.4, 0.6, 0.8, 1.01)
    for mode in modes:
        heard = [r for r in results if r.job.mode == mode and r.heard.text]
        cells = []
        for low, high in itertools.pairwise(edges):
            inside = [r for r in heard if low <= r.heard.confidence < high]
            right = sum(r.heard.text == r.job.said for r in inside)
            cells.append(f"{low:.1f}-{min(high, 1):.1f}: {_share(right, len(inside))}")
        print(f"  {mode:10} " + "; ".join(cells))


def show(results: list[Result]) -> None:
    def line(r: Result) -> str:
        alternatives = ", ".join(f"{t!r} {c:.2f}" for t, c in r.heard.alternatives[:3])
        return (f"  {r.job.mode:9} {r.job.voice:6} {r.job.speed} {r.job.said!r} heard {r.heard.text!r}"
                f" {r.heard.confidence:.2f} [{alternatives}] -> {r.outcome}")  # fmt: skip

    print("\nfalse accepts:")
    for r in results:
        if r.job.declines and r.outcome == "booked":
            print(line(r))
    print("\nconfirmations not booked under the grammar:")
    for r in results:
        if not r.job.declines and r.job.mode == "grammar" and r.outcome != "booked":
            print(line(r))


def outcomes(results: list[Result]) -> None:
    print("\nwhat the other turns did (grammar):")
    for declines, name in ((True, "declines"), (False, "confirmations")):
        counts: dict[str, int] = {}
        for r in results:
            if r.job.mode == "grammar" and r.job.declines is declines:
                counts[r.outcome] = counts.get(r.outcome, 0) + 1
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))


# --- calibration -----------------------------------------------------------------------------------


def phrase_grammar() -> str:
    """A grammar of every phrase the loop says: confirmations, then refusals and hesitations."""
    return (
        "#JSGF V1.0;\ngrammar everything;\npublic <answer> = <confirm> | <decline>;\n"
        f"<confirm> = {' | '.join(CONFIRMATIONS)};\n<decline> = {' | '.join(DECLINES)};\n"
    )


def calibrate(redis_url: str | None) -> None:
    """Fit dialog/asr.py's confidences on CALIBRATION_VOICES and print the constants: the loop's
    (SCALE, GARBAGE_PENALTY) under the exported grammar and a grammar of every phrase; the
    calibrated one (WEIGHTS, ALTERNATIVES_SCALE) under the exported grammar, the one the engine uses."""
    with tempfile.TemporaryDirectory(prefix="voice-speech-") as speech:
        _start(redis_url, speech)
        assert _engine is not None
        exported = _engine.handle("calibrate", PROPOSE, channel="voice").expect
        assert exported is not None
        samples: list[tuple[str, Scored]] = []
        on_exported: list[tuple[str, Scored]] = []
        for (voice, speed), jsgf in ((v, g) for v in CALIBRATION_VOICES for g in (exported.jsgf, phrase_grammar())):
            for said in DECLINES + CONFIRMATIONS:
                audio = speak(said, voice=voice, speed=speed, cache=Path(speech))
                scored = voice_loop.recogniser().score(audio, jsgf=jsgf)
                if scored.candidates:
                    samples.append((said, scored))
                    if jsgf == exported.jsgf:
                        on_exported.append((said, scored))
    fits = []
    for scale in (0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.015):
        for penalty in (0, 2, 4, 6, 8, 10, 12, 15, 20):
            posteriors = [(s.heard(scale=scale, garbage_penalty=penalty), said) for said, s in samples]
            loss = _log_loss([h.confidence for h, _ in posteriors], [float(h.text == said) for h, said in posteriors])
            fits.append((loss, scale, penalty))
    loss, old_scale, penalty = min(fits)
    print(f"the loop's confidence: SCALE = {old_scale}, GARBAGE_PENALTY = {penalty} (log loss {loss:.3f})")
    samples = on_exported
    right = [float(max(s.candidates, key=s.candidates.__getitem__) == said) for said, s in samples]
    weights = logistic([s.features() for _, s in samples], right)  # Platt scaling
    losses = []
    for scale in (0.001, 0.002, 0.003, 0.005, 0.008, 0.012, 0.02):
        loss, n = 0.0, 0
        for said, scored in samples:
            best = scored.calibrated(weights=weights, alternatives_scale=scale).text
            heard = scored.calibrated(weights=weights, alternatives_scale=scale, min_alternative=0.0)
            given = dict(heard.alternatives)
            for candidate in scored.candidates:
                if candidate != best:
                    p = _clip(given.get(candidate, 0.0))
                    loss -= math.log(p if candidate == said else 1 - p)
                    n += 1
        losses.append((loss / max(n, 1), scale))
    loss, scale = min(losses)
    confidence_loss = _log_loss([s.calibrated(weights=weights).confidence for _, s in samples], right)
    print(f"{len(samples)} recognitions ({', '.join(f'{v} {s}' for v, s in CALIBRATION_VOICES)}), "
          f"{sum(right):.0f} right; calibrated: log loss {confidence_loss:.3f}, alternatives' {loss:.4f}:")  # fmt: skip
    print(f"WEIGHTS = ({', '.join(f'{w:.4f}' for w in weights)})\nALTERNATIVES_SCALE = {scale}")


def logistic(
    xs: Sequence[Sequence[float]], ys: Sequence[float], *, steps: int = 2000, rate: float = 0.5
) -> list[float]:
    """Weights of a logistic regression of ``ys`` (0 or 1) on ``xs`` by gradient descent (a little L2)."""
    weights = [0.0] * len(xs[0])
    for _ in range(steps):
        gradient = [0.0] * len(weights)
        for x, y in zip(xs, ys, strict=True):
            error = 1 / (1 + math.exp(-max(min(sum(w * v for w, v in zip(weights, x, strict=True)), 40), -40))) - y
            gradient = [g + error * v for g, v in zip(gradient, x, strict=True)]
        weights = [w - rate * (g / len(xs) + 1e-3 * w) for w, g in zip(weights, gradient, strict=True)]
    return weights


def _clip(p: float) -> float:
    return min(max(p, 1e-4), 1 - 1e-4)


def _log_loss(ps: Sequence[float], ys: Sequence[float]) -> float:
    return -sum(math.log(_clip(p) if y else 1 - _clip(p)) for p, y in zip(ps, ys, strict=True)) / len(ps)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voices", default="en-us,en-gb")
    parser.add_argument("--speeds", default="140,180")
    parser.add_argument("--modes", default="free-form,grammar,calibrated")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--threshold", type=float, default=0.6, help="every tenant's voice_confidence")
    parser.add_argument("--fake", action="store_true", help="fakeredis instead of Redis (one process)")
    parser.add_argument("--show", action="store_true", help="list false accepts and missed confirmations")
    parser.add_argument("--calibrate", action="store_true", help="fit the confidence's constants instead")
    args = parser.parse_args(argv)
    missing = voice_loop.missing_tools()
    if missing:
        sys.exit(f"missing: {', '.join(missing)} (`make voice`; pip install -e '.[test]')")
    redis_url = None if args.fake else args.redis_url
    if redis_url is not None:
        redis.Redis.from_url(redis_url).flushdb()
    if args.calibrate:
        calibrate(redis_url)
        return
    voices = [(v, int(s)) for v in args.voices.split(",") for s in args.speeds.split(",")]
    modes = args.modes.split(",")
    started = time.perf_counter()
    results = run(jobs(voices, modes), workers=args.workers, redis_url=redis_url, threshold=args.threshold)
    took = time.perf_counter() - started
    print(f"{len(DECLINES)} refusals and hesitations, {len(CONFIRMATIONS)} confirmations; {len(results)} spoken turns"
          f" in {took:.0f} s ({args.workers if redis_url else 1} worker(s))")  # fmt: skip
    print(f"threshold (voice_confidence) {args.threshold}, veto 0.2")
    tables(results, voices, modes)
    reliability(results, modes)
    outcomes(results)
    if args.show:
        show(results)


if __name__ == "__main__":
    main()
