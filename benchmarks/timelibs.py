"""Time-expression libraries side by side with our grammar, on the understanding corpus (issue 12).

    .venv/bin/python benchmarks/timelibs.py [--parsers ours,dateparser,...] [--repeats N]
        [--by-category] [--show PARSER] [--corpus PATH]

The libraries come with ``pip install -e '.[timelibs]'`` (dateparser, parsedatetime, ctparse,
timefhuman); one that does not install or import is reported as such, not dropped.

THE ITEMS. Every corpus item whose expected outcome carries a start in the categories where the
utterance may name a time: ``reschedule``, ``reschedule_next``, ``schedule``, ``lead_change`` and
``booked_change`` (confirmations, hesitations, questions and unreadable items also carry the
proposal's start, but name no new time). Each item is "named" (the utterance names the moment:
every reschedule, and the schedules, lead and booked changes whose expected start differs from
what naming nothing gives) or "unnamed" (the next free slot, a change of person at the same time,
a cancellation, a request with no time): there the right reading is none at all.

THE WORLD, as in benchmarks/understanding.py and the engine: tenant schedule ``Schedule()`` (UTC,
Mon-Fri 09:00-17:00, 30-minute slots, date_order MDY), now Monday 23 Nov 2026 08:00. The proposal
(and the booked call, and the request being rescheduled) is Tue 24 Nov 10:00: it is the anchor of
every item but a new request (``schedule``), which the engine reads without one.

EACH PARSER gets the text and returns a reading: a day, a clock time, either or both, or nothing.
Every reading is completed as `dialog.understanding.resolve_when` completes ours (the engine's
rule): with an anchor, a missing day or time is the anchor's; without one, a time alone is today
if still ahead, else tomorrow, and a day alone is that day's first free slot. Each library gets
its best chance:

- ``ours``: ``understand(text, pending=...)`` then ``resolve_when(when, now, anchor, date_order)``,
  exactly the engine's ``dialog/turn.py`` ``_when`` (a moment more than a year ahead is none).
- The base ("now") of a library is the proposal's start when the text moves from the proposal
  (``RELATIVE``: earlier, later, the following/next day, the day after, same time, push back) and
  a proposal is pending, else now.
- ``dateparser``: ``DateDataParser(languages=["en"])`` with PREFER_DATES_FROM="future",
  RELATIVE_BASE=base, DATE_ORDER=the tenant's, TIMEZONE=the tenant's, RETURN_TIME_AS_PERIOD=True
  (so a day said without a time is known); the whole text first, else ``search_dates`` and its
  last match (the last said wins, as in ours), re-read for its period.
- ``parsedatetime``: ``Calendar(version=VERSION_CONTEXT_STYLE).parseDT(text, sourceTime=base)``;
  the context says whether a date and a time were found.
- ``ctparse``: ``ctparse(text, ts=base)``; a ``Time``'s unset fields are unsaid; an ``Interval``
  is read as its start; a ``Duration`` ("an hour later") is not a moment: none.
- ``timefhuman``: ``timefhuman(text, tfhConfig(now=base))``; the last match; a range is read as its
  start, a list of choices as its first.

A library's part of the day ("tomorrow afternoon") is mapped to ours (09:00, 13:00, 17:00). A
library that gives today's date with a time is read as a time without a day (none of them says
which it was; for a new request a time alone completes to today anyway, as "today at 3" should);
a datetime at 00:00 from dateparser's search or timefhuman is read as a day without a time.

``combined`` is issue 12's suggestion, a library for the day and our grammar for the rest:
moves from the proposal and rejected times are ours alone, the clock time is ours when we read
one, the day is the library's when it reads one (``--combine-with``, default parsedatetime, the
best of the four in this role when measured).

THE SCORE. The engine offers the first free slot at or after the moment asked for (the booked
call's slot is not free). A reading is:
- ``exact``: the completed moment is the expected start, or it is not a free slot (a day alone;
  a weekend, out of hours or off the grid; the booked call) and the first free slot at or after
  it is the expected start; on an unnamed item, no reading is exact too;
- ``none``: no reading on a named item (the engine would re-prompt or fall back);
- ``wrong``: any other reading: a confident wrong proposal, the worst case.

SPEED: per item, the median of ``--repeats`` warm calls; then the median and p99 over items, in
microseconds. ``first`` is the first call after import (dateparser loads its language data then).
``import`` is the median of three cold imports in a fresh interpreter. No thresholds asserted.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, cast

from dialog import Schedule
from dialog.understanding import resolve_when, understand
from dialog.understanding.times import PARTS_OF_DAY

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "understanding.jsonl"
CATEGORIES = ("reschedule", "reschedule_next", "schedule", "lead_change", "booked_change")
SPLITS = ("dev", "heldout", "all")
PARSERS = ("ours", "dateparser", "parsedatetime", "ctparse", "timefhuman", "combined")

SCHEDULE = Schedule()
TZ = SCHEDULE.tz
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=TZ)  # Monday, before working hours
ANCHOR = dt.datetime(2026, 11, 24, 10, 0, tzinfo=TZ)  # the proposal: Tue 24 Nov 10:00
MAX_AHEAD = dt.timedelta(days=366)
# A text that moves from the proposal: a library gets the proposal's start as its base.
RELATIVE = re.compile(
    r"\b(earlier|later|sooner|same time|following day|next day|day after(?! tomorrow)|push\w*(?: \w+)? back)\b",
    re.IGNORECASE,
)


class Reading(NamedTuple):
    """What a parser read: a day, a (naive, local) clock time, either or both."""

    day: dt.date | None
    clock: dt.time | None


Parse = Callable[[str, dt.datetime, "dt.datetime | None"], Reading | None]


@dataclass(frozen=True, slots=True)
class Case:
    item: dict[str, Any]
    anchor: dt.datetime | None  # the proposal a time may be relative to; None for a new request
    named: bool  # the utterance names the moment; else the right reading is none
    booked: dt.datetime | None  # the booked call's slot, not free

    @property
    def text(self) -> str:
        return str(self.item["text"])

    @property
    def expected(self) -> dt.datetime:
        return dt.datetime.strptime(self.item["expect"]["start"], "%Y-%m-%dT%H:%M").replace(tzinfo=TZ)

    @property
    def base(self) -> dt.datetime:
        """The base a library resolves against: the proposal when the text moves from it, else now."""
        return self.anchor if self.anchor is not None and RELATIVE.search(self.text) else NOW


def load_corpus(path: Path = CORPUS) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def cases(items: Iterable[dict[str, Any]]) -> list[Case]:
    """The items whose expected outcome carries a start a time expression may name."""
    chosen = []
    for item in items:
        expect = item["expect"]
        if item["category"] not in CATEGORIES or expect["start"] is None:
            continue
        anchor = None if item["category"] == "schedule" else ANCHOR
        booked = ANCHOR if item["situation"] == "booked" else None
        expected = Case(item, anchor, True, booked).expected
        if item["category"] == "reschedule_next":
            named = False
        elif item["category"] == "schedule":  # naming nothing: the first free slot from now
            named = expected != first_slot(NOW, taken=booked)
        elif item["category"] in ("lead_change", "booked_change"):  # the proposal, or the slot after it
            named = expected != (ANCHOR + SCHEDULE.slot if expect["kind"] == "move" else ANCHOR)
        else:
            named = True
        chosen.append(Case(item, anchor, named, booked))
    return chosen


# --- scoring ---------------------------------------------------------------------------------


def complete(reading: Reading, *, now: dt.datetime, anchor: dt.datetime | None) -> dt.datetime | None:
    """The moment a reading names, completed as `resolve_when` completes ours; None past a year ahead."""
    day, clock = reading
    if day is None and clock is None:
        return None
    if anchor is not None:
        day = day if day is not None else anchor.date()
        clock = clock if clock is not None else anchor.time().replace(tzinfo=None)
    elif day is None:
        assert clock is not None
        day = now.date() if clock > now.time().replace(tzinfo=None) else now.date() + dt.timedelta(days=1)
    moment = dt.datetime.combine(day, clock or dt.time(0, 0), tzinfo=TZ)
    return moment if moment - now <= MAX_AHEAD else None


def bookable(moment: dt.datetime) -> bool:
    """A slot of the default schedule: a working day, within hours, on the grid."""
    s = SCHEDULE
    on_grid = (moment.hour * 60 + moment.minute - s.day_start.hour * 60 - s.day_start.minute) % s.slot_minutes == 0
    start, end = moment.time().replace(tzinfo=None), (moment + s.slot).time().replace(tzinfo=None)
    return (
        moment.weekday() in s.working_days
        and s.day_start <= start
        and (end <= s.day_end or end == dt.time(0))
        and (on_grid and moment.second == 0)
    )


def first_slot(moment: dt.datetime, *, taken: dt.datetime | None) -> dt.datetime:
    """The first free slot of the default schedule at or after ``moment``."""
    s = SCHEDULE
    day = moment.date()
    for _ in range(s.horizon_days + 366):
        slot = dt.datetime.combine(day, s.day_start, tzinfo=TZ)
        close = dt.datetime.combine(day, s.day_end, tzinfo=TZ)
        while day.weekday() in s.working_days and slot + s.slot <= close:
            if slot >= moment and slot != taken:
                return slot
            slot += s.slot
        day += dt.timedelta(days=1)
    raise ValueError(f"no slot after {moment}")


def score(case: Case, reading: Reading | None) -> str:
    """``exact``, ``none`` or ``wrong`` (see the module docstring)."""
    moment = None if reading is None else complete(reading, now=NOW, anchor=case.anchor)
    if moment is None:
        return "none" if case.named else "exact"
    if moment == case.expected:
        return "exact"
    if (reading is not None and reading.clock is None) or not bookable(moment) or moment == case.booked:
        return "exact" if first_slot(moment, taken=case.booked) == case.expected else "wrong"
    return "wrong"


# --- the parsers ---------------------------------------------------------------------------


def _part_of_day(hour: int) -> dt.time:
    return PARTS_OF_DAY["morning" if hour < 12 else "afternoon" if hour < 17 else "evening"]


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=None)


def _from_datetime(value: dt.datetime, *, day_only_at_midnight: bool) -> Reading:
    """A library's datetime: today's date means no day said; 00:00 (where set) no time said."""
    day = None if value.date() == NOW.date() else value.date()
    clock = None if day_only_at_midnight and value.time() == dt.time(0) else value.time()
    return Reading(day, clock)


def parse_ours(text: str, base: dt.datetime, anchor: dt.datetime | None) -> Reading | None:
    """The engine's reading: understand(), then resolve_when() against now and the anchor."""
    when = understand(text, pending=anchor is not None).when
    if when is None:
        return None
    try:
        day, clock = resolve_when(when, now=NOW, anchor=anchor, date_order=SCHEDULE.date_order)
    except (OverflowError, ValueError):
        return None
    return Reading(day, clock)


def make_dateparser() -> Parse:
    import dateparser
    from dateparser.search import search_dates

    def settings(base: dt.datetime) -> dict[str, Any]:
        return {
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": _naive(base),
            "DATE_ORDER": SCHEDULE.date_order,
            "TIMEZONE": SCHEDULE.timezone,
            "RETURN_AS_TIMEZONE_AWARE": False,
            "RETURN_TIME_AS_PERIOD": True,
        }

    by_base = {
        b: (dateparser.DateDataParser(languages=["en"], settings=settings(b)), settings(b)) for b in (NOW, ANCHOR)
    }

    def parse(text: str, base: dt.datetime, anchor: dt.datetime | None) -> Reading | None:
        parser, options = by_base[base]
        data = parser.get_date_data(text)
        if data.date_obj is None:
            found = search_dates(text, languages=["en"], settings=options)
            if not found:
                return None
            words, value = found[-1]
            data = parser.get_date_data(words)
            if data.date_obj is None:
                return _from_datetime(value, day_only_at_midnight=True)
        value, period = data.date_obj, data.period
        if period == "time":
            return _from_datetime(value, day_only_at_midnight=False)
        if period == "part_of_day":
            return Reading(None if value.date() == NOW.date() else value.date(), _part_of_day(value.hour))
        return Reading(value.date(), None)

    return parse


def make_parsedatetime() -> Parse:
    import parsedatetime

    calendar = parsedatetime.Calendar(version=parsedatetime.VERSION_CONTEXT_STYLE)

    def parse(text: str, base: dt.datetime, anchor: dt.datetime | None) -> Reading | None:
        value, context = calendar.parseDT(text, sourceTime=_naive(base))
        if not (context.hasDate or context.hasTime):
            return None
        clock = value.time() if context.hasTime else None
        if context.hasTime and context.accuracy & parsedatetime.pdtContext.ACU_HALFDAY and value.minute == 0:
            clock = _part_of_day(value.hour)  # "tomorrow afternoon"
        day = value.date() if context.hasDate or value.date() != base.date() else None
        return Reading(day, clock)

    return parse


def make_ctparse() -> Parse:
    import logging

    from ctparse.ctparse import ctparse
    from ctparse.types import Interval, Time

    logging.getLogger("ctparse").setLevel(logging.CRITICAL)  # "Failed to produce result for ..."

    def parse(text: str, base: dt.datetime, anchor: dt.datetime | None) -> Reading | None:
        found = ctparse(text, ts=_naive(base))
        if found is None:
            return None
        value: Any = found.resolution
        if isinstance(value, Interval):
            value = value.t_from
        if not isinstance(value, Time):
            return None  # a Duration: not a moment
        # hasDate: year, month and day are set (ctparse types them Optional)
        day = dt.date(cast(int, value.year), cast(int, value.month), cast(int, value.day)) if value.hasDate else None
        clock: dt.time | None = None
        if value.hasTime:
            clock = dt.time(value.hour or 0, value.minute or 0)
        elif value.hasPOD and value.POD in PARTS_OF_DAY:
            clock = PARTS_OF_DAY[str(value.POD)]
        return Reading(day, clock) if day is not None or clock is not None else None

    return parse


def make_timefhuman() -> Parse:
    from timefhuman import tfhConfig, timefhuman

    configs = {b: tfhConfig(now=_naive(b)) for b in (NOW, ANCHOR)}

    def parse(text: str, base: dt.datetime, anchor: dt.datetime | None) -> Reading | None:
        found: Any = timefhuman(text, config=configs[base])
        if not found:
            return None
        value = found[-1]
        while isinstance(value, (list, tuple)) and value:  # choices: the first; a range: its start
            value = value[0]
        if isinstance(value, dt.datetime):
            return _from_datetime(value, day_only_at_midnight=True)
        if isinstance(value, dt.date):
            return Reading(value, None)
        if isinstance(value, dt.time):
            return Reading(None, value)
        return None

    return parse


FACTORIES: dict[str, Callable[[], Parse]] = {
    "ours": lambda: parse_ours,
    "dateparser": make_dateparser,
    "parsedatetime": make_parsedatetime,
    "ctparse": make_ctparse,
    "timefhuman": make_timefhuman,
}
MODULES = {"ours": "dialog.understanding", "dateparser": "dateparser", "parsedatetime": "parsedatetime",
           "ctparse": "ctparse", "timefhuman": "timefhuman"}  # fmt: skip


# --- running -------------------------------------------------------------------------------


@dataclass
class Run:
    """One parser over the cases: a verdict per case, the warm microseconds per case, the first call."""

    name: str
    verdicts: list[str] = field(default_factory=list)
    readings: list[Reading | None] = field(default_factory=list)
    micros: list[float] = field(default_factory=list)
    first_us: float = float("nan")
    import_ms: float = float("nan")
    error: str | None = None


def run_parser(name: str, parse: Parse, chosen: Sequence[Case], repeats: int = 5) -> Run:
    run = Run(name)
    perf = time.perf_counter_ns
    for index, case in enumerate(chosen):
        base, anchor, text = case.base, case.anchor, case.text
        started = perf()
        reading = parse(text, base, anchor)
        if index == 0:
            run.first_us = (perf() - started) / 1000
        samples = []
        for _ in range(repeats):
            started = perf()
            parse(text, base, anchor)
            samples.append(perf() - started)
        run.readings.append(reading)
        run.verdicts.append(score(case, reading))
        run.micros.append(statistics.median(samples) / 1000 if samples else float("nan"))
    return run


def import_ms(module: str, times: int = 3) -> float:
    """Median milliseconds to import ``module`` in a fresh interpreter."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    samples = []
    for _ in range(times):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        samples.append(float(done.stdout.split()[-1]) * 1000)
    return statistics.median(samples)


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def table(runs: Sequence[Run], chosen: Sequence[Case]) -> str:
    header = (
        f"{'parser':<14} {'split':<8} {'n':>4} {'exact':>6} {'exact %':>7} {'none':>5} {'wrong':>5}"
        f" {'named ok':>8} {'unnamed ok':>10} {'med us':>8} {'p99 us':>8} {'first us':>9} {'import ms':>9}"
    )
    lines = [header, "-" * len(header)]
    for run in runs:
        if run.error is not None:
            lines.append(f"{run.name:<14} {run.error}")
            continue
        for split in SPLITS:
            picked = [i for i, c in enumerate(chosen) if split == "all" or c.item["split"] == split]
            counts = collections.Counter(run.verdicts[i] for i in picked)
            named = [i for i in picked if chosen[i].named]
            named_ok = sum(run.verdicts[i] == "exact" for i in named)
            unnamed_ok = counts["exact"] - named_ok
            speed = ""
            if split == "all":
                speed = (
                    f" {statistics.median(run.micros):>8.1f} {p99(run.micros):>8.1f}"
                    f" {run.first_us:>9.0f} {run.import_ms:>9.0f}"
                )
            share = 100 * counts["exact"] / len(picked) if picked else float("nan")
            lines.append(
                f"{run.name if split == 'dev' else '':<14} {split:<8} {len(picked):>4} {counts['exact']:>6}"
                f" {share:>7.1f} {counts['none']:>5} {counts['wrong']:>5}"
                f" {f'{named_ok}/{len(named)}':>8} {f'{unnamed_ok}/{len(picked) - len(named)}':>10}{speed}"
            )
    return "\n".join(lines)


def by_category(runs: Sequence[Run], chosen: Sequence[Case]) -> str:
    """Exact / none / wrong per category and channel, all splits."""
    ok = [r for r in runs if r.error is None]
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for i, c in enumerate(chosen):
        groups[f"{c.item['category']}/{'named' if c.named else 'unnamed'}/{c.item['channel']}"].append(i)
    lines = [f"{'class':<32} {'n':>4} " + " ".join(f"{r.name:>14}" for r in ok) + "   (exact/none/wrong)"]
    for key in sorted(groups):
        cells = []
        for r in ok:
            counts = collections.Counter(r.verdicts[i] for i in groups[key])
            cells.append(f"{counts['exact']}/{counts['none']}/{counts['wrong']}")
        lines.append(f"{key:<32} {len(groups[key]):>4} " + " ".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)


def show(run: Run, chosen: Sequence[Case], reference: Run | None) -> str:
    """The cases where ``run`` is not exact, or where it is and ``reference`` is not."""
    lines = []
    for i, case in enumerate(chosen):
        mine = run.verdicts[i]
        theirs = reference.verdicts[i] if reference is not None else "exact"
        if mine == "exact" and theirs == "exact":
            continue
        reading = run.readings[i]
        moment = None if reading is None else complete(reading, now=NOW, anchor=case.anchor)
        lines.append(
            f"{mine:<5} ({'ours ' + theirs if reference is not None else ''}) {case.item['id']} {case.item['split']}"
            f" {case.text!r}: expected {case.expected:%a %d %b %H:%M},"
            f" read {reading} -> {moment and f'{moment:%a %d %b %H:%M}'}"
        )
    return "\n".join(lines)


def build(names: Sequence[str], combine_with: str = "parsedatetime") -> dict[str, Parse | str]:
    """Each parser, or why it is not there (not installed, import failed)."""
    built: dict[str, Parse | str] = {}
    wanted = [n for n in names if n != "combined"]
    for name in ["ours", combine_with] if "combined" in names else wanted:
        if name not in wanted:
            wanted.append(name)
    for name in wanted:
        try:
            built[name] = FACTORIES[name]()
        except ImportError as exc:
            built[name] = f"not installed ({exc}); pip install -e '.[timelibs]'"
        except Exception as exc:  # a library that installs but does not start on this Python
            built[name] = f"fails to start: {type(exc).__name__}: {exc}"
    if "combined" in names:
        ours, library = built["ours"], built[combine_with]
        if callable(ours) and callable(library):
            built["combined"] = combined(ours, library)
        else:
            built["combined"] = f"needs ours and {combine_with}"
    return {name: built[name] for name in names}


# --- the combination the issue suggests ----------------------------------------------------


def combined(ours: Parse, library: Parse) -> Parse:
    """A library for the day, our grammar for the rest (issue 12's suggestion).

    Our grammar keeps what is the dialog's own: a move from the proposal ("an hour later", "the
    following day") and rejected times ("not 10") are read by ours alone, as is the clock time
    (business hours, "half past two", parts of the day). The day is the library's when it reads
    one, else ours.
    """

    def parse(text: str, base: dt.datetime, anchor: dt.datetime | None) -> Reading | None:
        said = understand(text, pending=anchor is not None).when
        mine = ours(text, base, anchor)
        if said is not None and said.relative:
            return mine
        theirs = library(text, base, anchor)
        if said is None and theirs is None:
            return None
        day = theirs.day if theirs is not None and theirs.day is not None else None
        if day is None and said is not None and said.has_day and mine is not None:
            day = mine.day
        clock = mine.clock if said is not None and said.has_time and mine is not None else None
        if clock is None and theirs is not None:
            clock = theirs.clock
        return Reading(day, clock) if day is not None or clock is not None else None

    return parse


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parsers", default=",".join(PARSERS), help=f"comma-separated, of {', '.join(PARSERS)}")
    parser.add_argument(
        "--combine-with", choices=PARSERS[1:-1], default="parsedatetime", help="the library of `combined`"
    )
    parser.add_argument("--repeats", type=int, default=5, help="warm timed calls per item and parser")
    parser.add_argument("--split", choices=SPLITS, default="all", help="only these items")
    parser.add_argument("--by-category", action="store_true", help="exact/none/wrong per category and channel")
    parser.add_argument("--show", choices=PARSERS, help="list the items this parser gets wrong or ours does")
    parser.add_argument("--no-import-time", action="store_true", help="skip the cold import measurements")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.parsers.split(",") if n.strip()]
    unknown = sorted(set(names) - set(PARSERS))
    if unknown:
        parser.error(f"unknown parsers: {', '.join(unknown)}")

    items = [i for i in load_corpus(args.corpus) if args.split == "all" or i["split"] == args.split]
    chosen = cases(items)
    named = sum(c.named for c in chosen)
    print(
        f"time expressions: {len(chosen)} corpus items ({named} naming a time, {len(chosen) - named} naming none),"
        f" now {NOW:%a %d %b %Y %H:%M} {SCHEDULE.timezone}, proposal {ANCHOR:%a %d %b %H:%M}\n"
    )
    runs = []
    for name, parse in build(names, args.combine_with).items():
        if isinstance(parse, str):
            runs.append(Run(name, error=parse))
            continue
        run = run_parser(name, parse, chosen, args.repeats)
        if not args.no_import_time and name in MODULES:
            run.import_ms = import_ms(MODULES[name])
        runs.append(run)
    print(table(runs, chosen))
    if args.by_category:
        print()
        print(by_category(runs, chosen))
    if args.show:
        picked = next((r for r in runs if r.name == args.show and r.error is None), None)
        reference = next((r for r in runs if r.name == "ours" and r.error is None), None)
        if picked is not None:
            print(f"\n{args.show}: items not exact" + (" (or where ours is not)" if reference is not picked else ""))
            print(show(picked, chosen, reference if reference is not picked else None) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
