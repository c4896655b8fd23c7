"""Time expressions: parse what was said into a clock-independent `When`, then resolve it against a clock.

Parsing (`scan`, `parse_when`) reads normalised tokens (see `normalize`), one pass of dictionary
lookups: a time expression is found in a few microseconds. Recognised:

- days: ``today``, ``tonight``, ``this morning``; ``tomorrow`` (and tmrw/tmr); ``day after
  tomorrow``; ``in 3 days``; weekday names ``thursday``, ``next thursday``, ``this friday``,
  ``on thu``; ``next week`` and ``thursday next week``; dates ``24 nov``, ``the 24th of
  november``, ``nov 24``, ``november 24th 2026``, ``2026-11-24``. The abbreviations
  mon/wed/weds/sat/sun count only after on/next/this/by/until or before a number ("c'mon", "I
  sat down" hold no day); the rest (tue, thu, fri, ...) count anywhere. Slashed dates (``11/24``,
  ``24/11``) are not read, as month/day order differs by country; nor is a bare "the 24th".
- clock times: ``10am``, ``10 am``, ``10.30am``, ``10:30 pm``, ``10:30``, ``15:00``, ``3 o'clock``,
  ``3ish``, ``noon``/``midday``/``lunchtime`` (12:00), ``midnight`` (00:00), number words (``three
  pm``, ``ten thirty``, ``half past two``), and a bare hour (``3``, ``10.30``) only in a time
  position: after at/to/for/around/about/by/till/until/before/after/say/do/make it/how about/what
  about or a day word ("tomorrow 10", "thursday 2"), and before the end, ``?`` or a word such as
  instead/please/then/on/and. ``book 2 calls`` and ``agent 007`` hold no time.
- parts of the day: morning, afternoon, evening, night/tonight (evening); "good morning" and
  "last night" are not times.

Hours said without am/pm follow business hours: 1-7 mean 13:00-19:00, 8-11 mean morning, 12 is
noon; a part of the day overrides that ("8 in the evening" is 20:00, "7 in the morning" 07:00). A
leading zero or an hour above 12 is read as 24-hour time ("07:30", "15:00").

A day or time that is rejected ("not thursday", "not at 3pm", "instead of 2pm", "rather than
friday", "can't do monday", "thursday doesn't work", "3pm is bad") is not the requested one;
`TimeScan.rejected` says that something was rejected. When several are said, the last accepted
one wins, because spoken corrections come last ("move it to 2, no 3pm" is 15:00).
"""

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from .normalize import MONTHS, normalize, one_edit, vocabulary

WEEKDAYS: Final[Mapping[str, int]] = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2, "weds": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4,
    "saturday": 5, "sat": 5, "sunday": 6, "sun": 6,
}  # fmt: skip
PARTS_OF_DAY: Final[Mapping[str, dt.time]] = {
    "morning": dt.time(9),
    "afternoon": dt.time(13),
    "evening": dt.time(17),
}
_POD_WORDS: Final[Mapping[str, str]] = {
    "morning": "morning",
    "afternoon": "afternoon",
    "evening": "evening",
    "night": "evening",
}
_GUARDED_WEEKDAYS: Final = vocabulary("mon wed weds sat sun")
_WEEKDAY_GUARDS: Final = vocabulary("on next this by until till til do say try or from")
# After a guarded abbreviation: "wed at 3:30", "sat morning", "mon the 30th".
_WEEKDAY_GUARDS_AFTER: Final = vocabulary("at morning afternoon evening the")
_TOMORROW: Final = vocabulary("tomorrow tmrw tmr tmw tomorow tommorow tommorrow tomoro 2moro")
_NOONS: Final = vocabulary("noon midday lunchtime midnight")
_DAY_WORDS: Final = frozenset(WEEKDAYS) | _TOMORROW | {"today", "tonight"}
# Words about days or times; `intents` stops a lead's name at them.
TIME_WORDS: Final = _DAY_WORDS | frozenset(_POD_WORDS) | _NOONS | vocabulary("am pm oclock week day days")

_HOUR_BEFORE: Final = vocabulary("at to for around about by till until before after say do than") | _DAY_WORDS
# Before a day or time: a bound, not the time to book ("before 3", "no later than friday"): asked about.
_BOUNDS: Final = {("before",), ("earlier", "than"), ("later", "than"), ("sooner", "than")}
_HOUR_BEFORE_PAIRS: Final = {("make", "it"), ("how", "about"), ("what", "about")}
_HOUR_AFTER: Final = (
    vocabulary("instead please pls then on next this if works work ok okay thanks is would that and or but not in for")
    | vocabulary("sharp oclock ish yes no maybe latest rather ?")
    | _DAY_WORDS
    | frozenset(_POD_WORDS)
)
_HOUR_SUFFIXES: Final = vocabulary("oclock sharp ish")
_CLOCK: Final = re.compile(r"(\d{1,2})(?:([:.])(\d{2}))?(am|pm)?")
_COMPACT: Final = re.compile(r"(\d{1,2})(\d{2})(am|pm)?")  # "1130", "230pm", "0930"
_ISH: Final = re.compile(r"(\d{1,2})ish")
_ISO_DATE: Final = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DAY_OF_MONTH: Final = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?")
_YEAR: Final = re.compile(r"\d{4}")
_ORDINAL_DAY: Final = re.compile(r"(\d{1,2})(?:st|nd|rd|th)")

# "not (at) 3pm", "thursday (is) bad": words before or after a mention that reject it.
_REJECT_SKIP: Final = vocabulary("at on for the until till next this by")
_REJECTING_PREFIXES: Final = {
    ("not",), ("except",), ("can't",), ("busy",), ("unavailable",), ("instead", "of"), ("rather", "than"),
    ("can't", "do"), ("cannot", "do"),
    ("can't", "make"), ("cannot", "make"),
}  # fmt: skip
_COPULAS: Final = {("is",), ("would", "be"), ("will", "be")}
_REJECTING_SUFFIXES: Final = {
    ("bad",), ("impossible",), ("busy",), ("no", "good"), ("doesn't", "work"), ("won't", "work"),
    ("wouldn't", "work"), ("does", "not", "work"), ("will", "not", "work"),
    *((negation, word) for negation in ("not", "isn't") for word in ("good", "great", "ok", "okay", "possible")),
    ("not", "available"),
}  # fmt: skip
_SUFFIX_STARTS: Final = frozenset(phrase[0] for phrase in _REJECTING_SUFFIXES | _COPULAS)


@dataclass(frozen=True, slots=True)
class When:
    """A time expression as said, before any clock is applied.

    ``weekday`` 0=Monday..6=Sunday; ``days_ahead`` 0 today, 1 tomorrow, 2 day after tomorrow;
    ``date`` (month, day, year or None); ``hour``/``minute`` in 24-hour time after am/pm and the
    business-hours rule (both set or both None); ``part_of_day`` "morning" | "afternoon" |
    "evening", only when no clock time was said; ``next_week`` for "next week" (alone: its Monday;
    with a weekday: that day of next calendar week). When several day fields are set,
    ``date`` wins over ``days_ahead``, which wins over ``weekday``/``next_week``.
    """

    weekday: int | None = None
    days_ahead: int | None = None
    date: tuple[int, int, int | None] | None = None
    hour: int | None = None
    minute: int | None = None
    part_of_day: str | None = None
    next_week: bool = False
    # Added in issue 12. ``day_of_month`` "the 27th" (the next such date from today); ``numeric``
    # a slashed date valid in both orders, (first, second, year), read by the tenant's date_order;
    # ``plus_days`` days added to the day said ("a week from friday"); ``shift_days`` and
    # ``shift_minutes`` move from the proposal ("the following day", "an hour later"); ``text``
    # the words of the expression, for a reply that names them.
    day_of_month: int | None = None
    numeric: tuple[int, int, int | None] | None = None
    plus_days: int = 0
    shift_days: int | None = None
    shift_minutes: int | None = None
    text: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.weekday is not None and not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0-6, got {self.weekday}")
        if self.days_ahead is not None and self.days_ahead < 0:
            raise ValueError(f"days_ahead must be >= 0, got {self.days_ahead}")
        if self.date is not None and _valid_date(*self.date) is None:
            raise ValueError(f"date is not a calendar date: {self.date}")
        if (self.hour is None) != (self.minute is None):
            raise ValueError("hour and minute are set together")
        if self.hour is not None and self.minute is not None and not (0 <= self.hour <= 23 and 0 <= self.minute <= 59):
            raise ValueError(f"no such clock time: {self.hour}:{self.minute}")
        if self.part_of_day is not None and self.part_of_day not in PARTS_OF_DAY:
            raise ValueError(f"part_of_day must be one of {sorted(PARTS_OF_DAY)}, got {self.part_of_day!r}")

    @property
    def has_day(self) -> bool:
        """True when a day was said (weekday, relative day, date, or "next week")."""
        return (
            self.weekday is not None
            or self.days_ahead is not None
            or self.date is not None
            or self.next_week
            or self.day_of_month is not None
            or self.numeric is not None
            or self.shift_days is not None
        )

    @property
    def relative(self) -> bool:
        """True when the expression moves from the proposal ("an hour later", "the following day")."""
        return self.shift_days is not None or self.shift_minutes is not None

    @property
    def has_time(self) -> bool:
        """True when a clock time or a part of the day ("tomorrow morning") was said."""
        return self.hour is not None or self.part_of_day is not None or self.shift_minutes is not None


class _Clock(NamedTuple):
    hour: int
    minute: int
    ambiguous: bool  # said without am/pm, so the business-hours rule or a part of the day decides


class _Day(NamedTuple):
    weekday: int | None = None
    days_ahead: int | None = None
    date: tuple[int, int, int | None] | None = None
    day_of_month: int | None = None
    numeric: tuple[int, int, int | None] | None = None


class TimeScan(NamedTuple):
    """What `scan` found: the accepted expression, and whether a said day or time was rejected."""

    when: When | None
    rejected: bool
    unreadable: str | None = None  # the words of a day or time expression that could not be read


class _Found(NamedTuple):
    """One mention, tokens ``start:end``; exactly one of the value fields is set."""

    start: int
    end: int
    day: _Day | None = None
    clock: _Clock | None = None
    part_of_day: str | None = None
    next_week: bool = False
    unreadable: bool = False
    plus_days: int = 0
    shift_days: int | None = None
    shift_minutes: int | None = None


def parse_when(text: str) -> When | None:
    """The time expression in raw ``text``, or None."""
    return scan(normalize(text).tokens).when


def scan(tokens: Sequence[str]) -> TimeScan:
    """Find the day, clock time and part of the day in normalised ``tokens``; the last accepted of each wins."""
    day: _Day | None = None
    clock: _Clock | None = None
    part_of_day: str | None = None
    next_week = rejected = False
    plus_days = 0
    shift_days: int | None = None
    shift_minutes: int | None = None
    first = last = -1
    for found in _mentions(tokens):
        bound = None if found.unreadable else _bound(tokens, found.start)
        if bound is not None:
            found = found._replace(start=bound, unreadable=True)
        if found.unreadable:
            return TimeScan(None, rejected, " ".join(tokens[found.start : found.end]))
        if _is_rejected(tokens, found):
            rejected = True
            continue
        if found.day is not None and day is not None and found.day.weekday is not None and _dated(day):
            day = day._replace(weekday=found.day.weekday)  # "the 1st, a tuesday": both kept, checked later
        elif found.day is not None and day is not None and day.weekday is not None and _dated(found.day):
            day = found.day._replace(weekday=day.weekday)  # "tuesday the 1st"
        else:
            day = found.day or day
        clock = found.clock or clock
        part_of_day = found.part_of_day or part_of_day
        next_week = next_week or found.next_week
        plus_days += found.plus_days
        shift_days = found.shift_days if found.shift_days is not None else shift_days
        shift_minutes = found.shift_minutes if found.shift_minutes is not None else shift_minutes
        first = found.start if first < 0 else min(first, found.start)
        last = max(last, found.end)
    if first < 0:
        return TimeScan(None, rejected)
    if next_week and day is None and shift_days is None and "same" in tokens:
        next_week, shift_days = False, 7  # "same time next week": a week after the proposal
    text = " ".join(t for t in tokens[first:last] if t != ",")
    return TimeScan(_when(day, clock, part_of_day, next_week, plus_days, shift_days, shift_minutes, text), rejected)


def _when(
    day: _Day | None,
    clock: _Clock | None,
    part_of_day: str | None,
    next_week: bool,
    plus_days: int = 0,
    shift_days: int | None = None,
    shift_minutes: int | None = None,
    text: str = "",
) -> When:
    return When(
        weekday=day.weekday if day else None,
        days_ahead=day.days_ahead if day else None,
        date=day.date if day else None,
        hour=None if clock is None else _hour(clock, part_of_day),
        minute=None if clock is None else clock.minute,
        part_of_day=part_of_day if clock is None else None,
        next_week=next_week,
        day_of_month=day.day_of_month if day else None,
        numeric=day.numeric if day else None,
        plus_days=plus_days,
        shift_days=shift_days,
        shift_minutes=shift_minutes,
        text=text,
    )


def _at(tokens: Sequence[str], i: int) -> str:
    return tokens[i] if 0 <= i < len(tokens) else ""


def _mentions(tokens: Sequence[str]) -> list[_Found]:
    found: list[_Found] = []
    consumed = 0
    for i, token in enumerate(tokens):
        reader = _READERS.get(token) or (_read_number if token[0].isdecimal() else None)
        if reader is None or i < consumed:
            continue
        for mention in reader(tokens, i):
            consumed = mention.end if mention.end > consumed else consumed
            found.append(mention)
    return found


def _bound(tokens: Sequence[str], start: int) -> int | None:
    """Where "before (the)", "no later than" starts, right before the mention at ``start``, or None."""
    before = start - 1 if _at(tokens, start - 1) in ("at", "the") else start
    last = _at(tokens, before - 1)
    if (last,) in _BOUNDS:
        return before - 1
    return before - 2 if (_at(tokens, before - 2), last) in _BOUNDS else None


def _dated(day: _Day) -> bool:
    """A day said as a date, without a weekday yet: a weekday said with it is checked against it."""
    return day.weekday is None and (day.date or day.numeric or day.day_of_month) is not None


def _is_rejected(tokens: Sequence[str], found: _Found) -> bool:
    start = found.start - 1 if _at(tokens, found.start - 1) in _REJECT_SKIP else found.start
    last = _at(tokens, start - 1)
    if (last,) in _REJECTING_PREFIXES or (_at(tokens, start - 2), last) in _REJECTING_PREFIXES:
        return True
    if last in ("it", "that") and (_at(tokens, start - 3), _at(tokens, start - 2)) in _REJECTING_PREFIXES:
        return True  # "can't make it tomorrow", "can't do that at 3"
    return _at(tokens, found.end) in _SUFFIX_STARTS and _rejected_after(tokens, found.end)


def _rejected_after(tokens: Sequence[str], end: int) -> bool:
    for copula in _COPULAS:
        if tuple(tokens[end : end + len(copula)]) == copula:
            end += len(copula)
            break
    return any(tuple(tokens[end : end + n]) in _REJECTING_SUFFIXES for n in (1, 2, 3))


def _unreadable(start: int, end: int) -> tuple[_Found, ...]:
    return (_Found(max(start, 0), end, unreadable=True),)


def _read_weekday(tokens: Sequence[str], i: int) -> tuple[_Found, ...]:
    word = tokens[i]
    after = _at(tokens, i + 1)
    if word in _GUARDED_WEEKDAYS and not (
        _at(tokens, i - 1) in _WEEKDAY_GUARDS or after[:1].isdecimal() or after in _WEEKDAY_GUARDS_AFTER
    ):
        return ()
    if (_at(tokens, i - 2), _at(tokens, i - 1)) == ("next", "next"):
        return _unreadable(i - 2, i + 1)  # "next next thursday"
    if after == "or" and (_at(tokens, i + 2) in WEEKDAYS or _at(tokens, i + 2) in _DAY_WORDS):
        return _unreadable(i, i + 3)  # "thursday or friday": which one?
    return (_Found(i, i + 1, day=_Day(weekday=WEEKDAYS[word])),)


def _read_ish(tokens: Sequence[str], i: int) -> tuple[_Found, ...]:
    """ "tuesday-ish", "next week ish", "2-ish": a day or time said as approximate is not read."""
    before = _at(tokens, i - 1)
    if before in _DAY_WORDS or before == "week" or before[:1].isdecimal():
        return _unreadable(i - 1, i + 1)
    return ()


_AMOUNTS: Final[Mapping[str, int]] = {"a": 1, "an": 1, "one": 1}
_VAGUE: Final = vocabulary("few couple several some coupla")
_LATER: Final = vocabulary("later after")
_EARLIER: Final = vocabulary("earlier before sooner")
_PUSHES: Final = vocabulary("push bump delay back postpone")
_MOVERS: Final = vocabulary("move shift change forward")
_MINUTE_UNITS: Final[Mapping[str, int]] = {
    "minute": 1, "minutes": 1, "min": 1, "mins": 1, "hour": 60, "hours": 60, "hr": 60, "hrs": 60,
}  # fmt: skip


def _amount(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """The count before the unit at ``i`` and where it starts; (-1, start) for a vague one."""
    before = _at(tokens, i - 1)
    if before.isdecimal() and len(before) <= 3:
        return int(before), i - 1
    if before in _AMOUNTS:
        return 1, i - 1
    if before in _VAGUE:
        start = i - 2 if _at(tokens, i - 2) in ("a", "the") else i - 1
        return -1, start
    if before == "of" and _at(tokens, i - 2) in _VAGUE:
        return -1, i - 3 if _at(tokens, i - 3) == "a" else i - 2
    return None


def _direction(tokens: Sequence[str], start: int, end: int) -> int | None:
    """+1 later, -1 earlier, 0 a move of unknown direction, None when not a move at all."""
    after = _at(tokens, end)
    if after in _LATER and _at(tokens, end + 1) not in _DAY_WORDS:
        return 1
    if after in _EARLIER:
        return -1
    window = set(tokens[max(0, start - 4) : start])
    if not _PUSHES.isdisjoint(window) and "forward" not in window:
        return 1
    if ("forward" in window and "bring" in window) or ("up" in window and not _MOVERS.isdisjoint(window | {"bring"})):
        return -1  # "bring it forward an hour", "move it up 30 minutes"
    return 0 if not _MOVERS.isdisjoint(window) else None


def _read_duration(tokens: Sequence[str], i: int) -> tuple[_Found, ...]:
    """ "an hour later", "30 minutes earlier", "push it back an hour", "an hour and a half later"."""
    unit = _MINUTE_UNITS[tokens[i]]
    if (_at(tokens, i - 2), _at(tokens, i - 1)) == ("half", "an"):  # "half an hour"
        amount: tuple[int, int] | None = (1, i - 2)
        unit = 30
    elif (_at(tokens, i - 2), _at(tokens, i - 1)) == ("a", "half"):  # "a half hour"
        amount, unit = (1, i - 2), 30
    else:
        amount = _amount(tokens, i)
    if amount is None:
        return ()
    count, start = amount
    end = i + 1
    if tuple(tokens[end : end + 3]) == ("and", "a", "half") and unit == 60:
        count, end = count * 2 + 1, end + 3
        unit = 30
    direction = _direction(tokens, start, end)
    if direction is None:
        return ()
    if direction == 0 or count < 0:
        return _unreadable(start, end + 1)
    stop = end + 1 if _at(tokens, end) in _LATER | _EARLIER else end
    return (_Found(start, stop, shift_minutes=direction * count * unit),)


def _read_today(tokens: Sequence[str], i: int) -> tuple[_Found, ...]:
    today = _Found(i, i + 1, day=_Day(days_ahead=0))
    return (today, _Found(i, i + 1, part_of_day="evening")) if tokens[i] == "tonight" else (today,)


def _read_tomorrow(tokens: Sequence[str], i: int) -> tuple[_Found, ...]:
    if (_at(tokens, i - 2), _at(tokens, i - 1)) == ("day", "after"):
        start = i - 3 if _at(tokens, i - 3) == "the" else i - 2
        return (_Found(start, i + 1, day=_Day(days_ahead=2)),)
    return (_Found(i, i + 1, day=_Day(days_ahead=1)),)


def _read_days(tokens: Sequence[str], i: int) -> tuple[_Found, ...]:
    """ "in 3 days", "2 days later", "the following day", "the day after"; a week: "in 2 weeks",
    "a week from friday", "a week later"."""
    size = 7 if tokens[i] in ("week", "weeks") else 14 if tokens[i] in ("fortnight", "fortnights") else 1
    before, after = _at(tokens, i - 1), _at(tokens, i + 1)
    if size == 7 and before in ("next", "this"):
        at = i - 2
        if _at(tokens, at) == "of":
            at -= 1
        if _at(tokens, at) in _WEEK_QUALIFIERS:
            return _unreadable(at - (_at(tokens, at - 1) in ("the", "by")), i + 1)  # "early next week": which day?
    if size == 1 and tokens[i] == "day":
        if before in ("following", "next") and _at(tokens, i - 2) in ("the", "to", "on", "", "time"):
            return (_Found(i - 2 if _at(tokens, i - 2) in ("the", "to", "on") else i - 1, i + 1, shift_days=1),)
        if before == "the" and after == "after" and _at(tokens, i + 2) not in _TOMORROW:
            return (_Found(i - 1, i + 2, shift_days=1),)
    if size == 7 and before == "next":
        if _at(tokens, i - 2) == "next":
            return _unreadable(i - 2, i + 1)  # "next next week"
        return (_Found(i - 1, i + 1, next_week=True),)
    amount = _amount(tokens, i)
    if amount is None:
        return ()
    count, start = amount
    opener = _at(tokens, start - 1)
    if opener == "in" or (after == "from" and _at(tokens, i + 2) == "now"):
        if count < 0:
            return _unreadable(start - 1, i + 1)
        end = i + 3 if after == "from" else i + 1
        return (_Found(start - 1 if opener == "in" else start, end, day=_Day(days_ahead=count * size)),)
    if after == "from" and count > 0:
        return (_Found(start, i + 2, plus_days=count * size),)
    if after in _LATER and count > 0:
        return (_Found(start, i + 2, shift_days=count * size),)
    if count < 0 and after in _LATER:
        return _unreadable(start, i + 2)
    return ()


def _read_part_of_day(tokens: Sequence[str], i: int) -> tuple[_Found, ...]:
    before = _at(tokens, i - 1)
    if before in ("good", "last"):
        return ()
    if before in _POD_QUALIFIERS and (before, tokens[i]) != ("early", "morning"):
        return _unreadable(i - 1, i + 1)  # "late afternoon", "mid morning": which hour?
    found = _Found(i, i + 1, part_of_day=_POD_WORDS[tokens[i]])
    return (_Found(i - 1, i + 1, day=_Day(days_ahead=0)), found) if before == "this" else (found,)


_WEEK_QUALIFIERS: Final = vocabulary("early late later mid middle start beginning end")
_POD_QUALIFIERS: Final = vocabulary("late mid early later")


def _read_end(tokens: Sequence[str], i: int) -> tuple[_Found, ...]:
    """ "end of the day", "by the end of the week", "eod": a deadline, not a time: asked about."""
    if tokens[i] in ("eod", "eow", "cob"):
        return _unreadable(i, i + 1)
    k = i + 3 if _at(tokens, i + 2) in ("the", "this", "next") else i + 2
    if _at(tokens, i + 1) == "of" and _at(tokens, k) in ("day", "week", "month", "business"):
        return _unreadable(i - 1 if _at(tokens, i - 1) in ("the", "by") else i, k + 1)
    return ()


def _read_noon(tokens: Sequence[str], i: int) -> tuple[_Found, ...]:
    hour = 0 if tokens[i] == "midnight" else 12
    return (_Found(i, i + 1, clock=_Clock(hour, 0, ambiguous=False)),)


def _read_month(tokens: Sequence[str], i: int) -> tuple[_Found, ...]:
    month = MONTHS[tokens[i]]
    found = _month_then_day(tokens, i, month) or _day_then_month(tokens, i, month)
    if found is None and tokens[i] not in ("may", "mar", "march"):
        j = i + 2 if _at(tokens, i + 1) == "the" else i + 1
        if _DAY_OF_MONTH.fullmatch(_at(tokens, j)) and _at(tokens, j + 1) not in ("am", "pm"):
            return _unreadable(i, j + 1)  # "feb 30", "nov 31"
    return (found,) if found else ()


def _month_then_day(tokens: Sequence[str], i: int, month: int) -> _Found | None:
    """ "nov 24", "november the 24th 2026"."""
    j = i + 2 if _at(tokens, i + 1) == "the" else i + 1
    day = _DAY_OF_MONTH.fullmatch(_at(tokens, j))
    if day is None or _at(tokens, j + 1) in ("am", "pm"):
        return None
    return _date(tokens, i, j + 1, month, int(day[1]))


def _day_then_month(tokens: Sequence[str], i: int, month: int) -> _Found | None:
    """ "24 nov", "the 24th of november"."""
    j = i - 2 if _at(tokens, i - 1) == "of" else i - 1
    day = _DAY_OF_MONTH.fullmatch(_at(tokens, j)) if j >= 0 else None
    if day is None:
        return None
    return _date(tokens, j - 1 if _at(tokens, j - 1) == "the" else j, i + 1, month, int(day[1]))


def _date(tokens: Sequence[str], start: int, end: int, month: int, day: int) -> _Found | None:
    """A date mention, taking a four-digit year right after it."""
    year = int(tokens[end]) if _YEAR.fullmatch(_at(tokens, end)) else None
    if _valid_date(month, day, year) is None:
        return None
    return _Found(start, end + (year is not None), day=_Day(date=(month, day, year)))


def _read_number(tokens: Sequence[str], i: int) -> tuple[_Found, ...]:
    token = tokens[i]
    if "/" in token:
        return _numeric_date(token, i)
    hours = _CONSECUTIVE.fullmatch(token)
    if hours is not None and int(hours[2]) == int(hours[1]) + 1:
        return _unreadable(i, i + 1)  # "11-12": the hour from 11 to 12, or the 12th of November?
    iso = _ISO_DATE.fullmatch(token)
    if iso:
        found = _iso_date(i, *map(int, iso.groups()))
        return (found,) if found else _unreadable(i, i + 1)
    ordinal = _ORDINAL_DAY.fullmatch(token)
    near = _misspelt_month(tokens, i) if ordinal or token.isdecimal() else None
    if near is not None:
        return _unreadable(near, i + 1)  # "smarch 3rd", "decmber the 3rd": a day, but of which month?
    if ordinal:
        return _day_of_month(tokens, i, int(ordinal[1]))
    if _at(tokens, i + 1) == "ish":
        return _unreadable(i, i + 2)
    after = _at(tokens, i + 1)
    if after in _RANGE_LINKS or after == "and":
        ranged = _range(tokens, i)
        if ranged is not None:
            return ranged
    if after == "or" and _at(tokens, i + 2)[:1].isdecimal():
        return _unreadable(i, i + 3)  # "4 or 5", "10 or 11am": which one?
    zoned = after in _ZONES or (after in _WHOSE and _at(tokens, i + 2) == "time")
    if zoned and (_CLOCK.fullmatch(token) or _COMPACT.fullmatch(token)):
        return _unreadable(i, i + 2 + (after in _WHOSE))  # "3pm est", "at 3 pacific", "10 my time": whose clock?
    found = _clock_mention(tokens, i)
    if found is None and _DOTTED_OR_DASHED.fullmatch(token):
        if "-" in token:
            return _numeric_date(token.replace("-", "/"), i)  # "12-03": as "12/03"
        return _unreadable(i, i + 1)  # "on 12.3", "3.12.2026", "3.5 hours": a date? a time? ask
    return (found,) if found else ()


_CONSECUTIVE: Final = re.compile(r"([1-9]|1[01])-([1-9]|1[0-2])")
_DOTTED_OR_DASHED: Final = re.compile(r"\d{1,2}(?:\.\d{1,2}(?:\.\d{2,4})?|-\d{1,2}(?:-\d{2,4})?)")


_MONTH_NAMES: Final = tuple(m for m in MONTHS if len(m) >= 4)
_NOT_MONTHS: Final = vocabulary("mary marc match jane tune jury duly maybe mayo mark")


def _misspelt_month(tokens: Sequence[str], i: int) -> int | None:
    """Where a word one edit from a month name stands right before the day at ``i`` ("decmber 3")."""
    j = i - 2 if _at(tokens, i - 1) == "the" else i - 1
    word = _at(tokens, j)
    if len(word) < 4 or word in MONTHS or word in _NOT_MONTHS or not word.isalpha():
        return None
    return j if any(one_edit(word, month) for month in _MONTH_NAMES) else None


def _numeric_date(token: str, i: int) -> tuple[_Found, ...]:
    """ "11/30", "30/11", "12/02/2026": valid in one order -> that date; in both -> the tenant's order."""
    parts = token.split("/")
    if len(parts) not in (2, 3) or not all(p.isdecimal() for p in parts):
        return _unreadable(i, i + 1)
    first, second = int(parts[0]), int(parts[1])
    year: int | None = None
    if len(parts) == 3:
        if len(parts[2]) not in (2, 4):
            return _unreadable(i, i + 1)
        year = int(parts[2]) + (2000 if len(parts[2]) == 2 else 0)
    month_day = _valid_date(first, second, year) is not None
    day_month = _valid_date(second, first, year) is not None
    if month_day and day_month and first != second:
        return (_Found(i, i + 1, day=_Day(numeric=(first, second, year))),)
    if month_day:
        return (_Found(i, i + 1, day=_Day(date=(first, second, year))),)
    if day_month:
        return (_Found(i, i + 1, day=_Day(date=(second, first, year))),)
    return _unreadable(i, i + 1)


def _day_of_month(tokens: Sequence[str], i: int, day: int) -> tuple[_Found, ...]:
    """ "the 27th", "on the 1st": the next such date; a day past 31 is not read."""
    after = _at(tokens, i + 1)
    if after in MONTHS or (after == "of" and _at(tokens, i + 2) in MONTHS):
        return ()  # the month reader takes "the 24th of november"
    named = _at(tokens, i + 2) if after == "of" else after
    misspelt = named.isalpha() and len(named) >= 4 and named not in _NOT_MONTHS
    if misspelt and any(one_edit(named, month) for month in _MONTH_NAMES):
        return _unreadable(i - (_at(tokens, i - 1) == "the"), i + 2 + (after == "of"))  # "the 3rd of smarch"
    start = i - 1 if _at(tokens, i - 1) == "the" else i
    if not 1 <= day <= 31:
        return _unreadable(start, i + 1)
    return (_Found(start, i + 1, day=_Day(day_of_month=day)),)


def _iso_date(i: int, year: int, month: int, day: int) -> _Found | None:
    return _Found(i, i + 1, day=_Day(date=(month, day, year))) if _valid_date(month, day, year) else None


def _clock_mention(tokens: Sequence[str], i: int) -> _Found | None:
    token, after = tokens[i], _at(tokens, i + 1)
    match = _CLOCK.fullmatch(token)
    if match is None:
        compact = _COMPACT.fullmatch(token)
        if compact is not None:
            return _compact(tokens, i, compact)
        ish = _ISH.fullmatch(token)
        return _bare(ish[1], None, i, i + 1) if ish else None
    hour, separator, minute, meridiem = match.groups()
    if meridiem or after in ("am", "pm"):
        clock = _meridiem(int(hour), int(minute or 0), meridiem or after)
        end = i + 1 + (meridiem is None)
        return _Found(i, end, clock=clock) if clock else _Found(i, end, unreadable=True)  # "13pm"
    if separator == ":" and (int(hour) > 23 or int(minute) > 59):
        return _Found(i, i + 1, unreadable=True)  # "25:00"
    if after in _HOUR_SUFFIXES:
        return _bare(hour, minute, i, i + 2)
    if separator == ":" or _in_time_position(tokens, i):
        return _bare(hour, minute, i, i + 1)
    return None


def _compact(tokens: Sequence[str], i: int, match: re.Match[str]) -> _Found | None:
    """ "1130", "230pm", "0930": hours and minutes without a separator, read like "11:30"."""
    hour, minute, meridiem = match.groups()
    after = _at(tokens, i + 1)
    if meridiem or after in ("am", "pm"):
        end = i + 1 + (meridiem is None)
        clock = _meridiem(int(hour), int(minute), meridiem or after)
        return _Found(i, end, clock=clock) if clock else _Found(i, end, unreadable=True)  # "2345pm"
    if not _in_time_position(tokens, i):
        return None
    if int(hour) > 23 or int(minute) > 59 or int(minute) % 5:
        return _Found(i, i + 1, unreadable=True)  # "at 1275", "at 2026"
    return _bare(hour, minute, i, i + 1)


# A range of times: its start is the time asked for ("2-3pm", "between 2 and 3", "from 10 to 11am").
# normalize writes a dash between times as "through".
_RANGE_LINKS: Final = vocabulary("to through thru till til until")
_MINUTE_LIKE: Final = frozenset({5, 10, 20, 25})
_MOVE_WORDS: Final = vocabulary("move push change shift reschedule bump switch moving pushing changing")


def _range(tokens: Sequence[str], i: int) -> tuple[_Found, ...] | None:
    """ "2 to 3pm" -> 14:00; None when the words are no range ("from 10 to 11" in a move: 11)."""
    link, before = tokens[i + 1], _at(tokens, i - 1)
    if link == "and" and before != "between":
        return None
    if before == "from" and not _MOVE_WORDS.isdisjoint(tokens):
        return None  # "move it from 10 to 11": the new time is the second
    first, second = _CLOCK.fullmatch(tokens[i]), _CLOCK.fullmatch(_at(tokens, i + 2))
    if first is None or second is None:
        return None
    end = i + 3
    second_meridiem = second[4] or (_at(tokens, end) if _at(tokens, end) in ("am", "pm") else None)
    end += second[4] is None and second_meridiem is not None
    if _at(tokens, end) in _MINUTE_UNITS:
        return _unreadable(i, end + 1)  # "10 to 15 minutes later": how many?
    h1, m1, h2, m2 = int(first[1]), int(first[3] or 0), int(second[1]), int(second[3] or 0)
    if (
        link in ("to", "till", "til")
        and before not in ("from", "between")
        and first[2] is None
        and first[4] is None
        and h1 in _MINUTE_LIKE
    ):
        return _unreadable(i, end)  # "ten to four", "ten till eleven": 3:50? 10:50? or a range?
    stop = _meridiem(h2, m2, second_meridiem) if second_meridiem else _bare_clock(h2, m2)
    if first[4]:
        start = _meridiem(h1, m1, first[4])
    elif second_meridiem and stop is not None and 1 <= h1 <= 12:
        pm, am = (h1 % 12 + 12) * 60 + m1, (h1 % 12) * 60 + m1
        late = stop.hour * 60 + stop.minute
        start = _Clock(pm // 60, m1, False) if pm < late else _Clock(am // 60, m1, False) if am < late else None
    else:
        start = _bare_clock(h1, m1)
    if start is None or stop is None:
        return _unreadable(i, end)
    begin, finish = _hour(start, None) * 60 + start.minute, _hour(stop, None) * 60 + stop.minute
    if not 15 <= finish - begin <= 240:
        return _unreadable(i, end)  # "between 4 and 2", "9 to 5": no call's length
    return (_Found(i - (before in ("between", "from")), end, clock=start),)


def _bare_clock(hour: int, minute: int) -> _Clock | None:
    return _Clock(hour, minute, 1 <= hour <= 12) if hour <= 23 and minute <= 59 else None


_ZONES: Final = vocabulary(
    "est edt et pst pdt pt cst cdt ct mst mdt mt bst cet cest ist aest jst eastern pacific central mountain"
)
_WHOSE: Final = vocabulary("my your our their his her local")


def _in_time_position(tokens: Sequence[str], i: int) -> bool:
    """A bare number is an hour only between time words: "at 3", "make it 11", "tomorrow 10", "at 4?"."""
    before, after = _at(tokens, i - 1), _at(tokens, i + 1)
    # "no, 11 instead", "no not 10, 11": a correction names hours too
    corrected = before in ("no", "not") or (before.isdecimal() and _at(tokens, i - 2) in ("no", "not"))
    placed = corrected or before in _HOUR_BEFORE or (_at(tokens, i - 2), before) in _HOUR_BEFORE_PAIRS
    if after in _POD_WORDS or (after in ("in", "this") and _at(tokens, i + 1 + (after == "in") + 1) in _POD_WORDS):
        return True  # "4 in the afternoon", "9 this morning"
    if not placed:
        # "10 works", "yes 10 is fine", "but 11 would be better", "3 is bad for me": an hour that
        # opens the answer and is judged by the next word.
        return before in _ANSWER_OPENERS and after in _JUDGED_BY
    return after == "" or after in _HOUR_AFTER or (corrected and after.isdecimal())


_ANSWER_OPENERS: Final = vocabulary("yes yeah yep yup ok okay sure but maybe perhaps actually hmm sorry") | {""}
_JUDGED_BY: Final = vocabulary("works work is it would suits sounds instead please pls then ok okay better ?")


def _bare(hour_text: str, minute_text: str | None, start: int, end: int) -> _Found | None:
    """An hour said without am/pm; a leading zero or an hour above 12 is 24-hour time."""
    hour, minute = int(hour_text), int(minute_text or 0)
    if hour > 23 or minute > 59:
        return None
    ambiguous = 1 <= hour <= 12 and not hour_text.startswith("0")
    return _Found(start, end, clock=_Clock(hour, minute, ambiguous))


def _valid_date(month: int, day: int, year: int | None) -> dt.date | None:
    try:
        return dt.date(2000 if year is None else year, month, day)  # 2000 is a leap year: "feb 29" is valid
    except ValueError:
        return None


def _meridiem(hour: int, minute: int, ap: str) -> _Clock | None:
    if not 1 <= hour <= 12 or minute > 59:
        return None
    return _Clock(hour % 12 + (12 if ap == "pm" else 0), minute, ambiguous=False)


def _hour(clock: _Clock, part_of_day: str | None) -> int:
    """Apply the part of the day, else the business-hours rule, to an hour said without am/pm."""
    if not clock.ambiguous or clock.hour == 12 or part_of_day == "morning":
        return clock.hour
    if part_of_day in ("afternoon", "evening"):
        return clock.hour + 12
    return clock.hour + 12 if clock.hour <= 7 else clock.hour


_Reader = Callable[[Sequence[str], int], tuple[_Found, ...]]
_READERS: Final[Mapping[str, _Reader]] = {
    **dict.fromkeys(WEEKDAYS, _read_weekday),
    **dict.fromkeys(_TOMORROW, _read_tomorrow),
    **dict.fromkeys(("today", "tonight"), _read_today),
    **dict.fromkeys(("day", "days", "week", "weeks", "fortnight", "fortnights"), _read_days),
    **dict.fromkeys(("end", "eod", "eow", "cob"), _read_end),
    **dict.fromkeys(_MINUTE_UNITS, _read_duration),
    "ish": _read_ish,
    **dict.fromkeys(_POD_WORDS, _read_part_of_day),
    **dict.fromkeys(_NOONS, _read_noon),
    **dict.fromkeys(MONTHS, _read_month),
}


def resolve_when(
    when: When, *, now: dt.datetime, anchor: dt.datetime | None = None, date_order: str = "MDY"
) -> tuple[dt.date, dt.time | None]:
    """Resolve ``when`` against ``now`` (tenant-local) and, for a reschedule, the proposal's ``anchor``.

    Returns the date and a naive wall-clock time, or None for the time when the caller should pick
    the first free slot of that day. With an anchor, a missing day or time is taken from the anchor.
    Without one, a time alone is today if still ahead of ``now``, else tomorrow. A numeric date
    valid in both orders is read in ``date_order`` ("MDY" or "DMY").

    Raises ValueError when the expression cannot be resolved with certainty: a shift from the
    proposal without a proposal, or a weekday that does not match the date said with it.
    """
    if when.relative:
        if anchor is None:
            raise ValueError("a shift from the proposal, but nothing is proposed")
        if when.shift_minutes is not None:
            moved = anchor + dt.timedelta(days=when.shift_days or 0, minutes=when.shift_minutes)
            return moved.date(), moved.time()
        clock = _resolve_clock(when)
        return anchor.date() + dt.timedelta(days=when.shift_days or 0), clock if clock is not None else anchor.time()
    day = _resolve_day(when, now.date(), date_order)
    if day is not None and when.plus_days:
        day += dt.timedelta(days=when.plus_days)
    clock = _resolve_clock(when)
    if anchor is not None:
        return day if day is not None else anchor.date(), clock if clock is not None else anchor.time()
    if day is None and clock is not None:
        return (now.date() if clock > now.time() else now.date() + dt.timedelta(days=1)), clock
    return day if day is not None else now.date(), clock


def _resolve_clock(when: When) -> dt.time | None:
    if when.hour is not None and when.minute is not None:
        return dt.time(when.hour, when.minute)
    return PARTS_OF_DAY[when.part_of_day] if when.part_of_day else None


def _resolve_day(when: When, today: dt.date, date_order: str = "MDY") -> dt.date | None:
    day = _resolve_said_day(when, today, date_order)
    if day is not None and when.weekday is not None and not when.next_week and when.weekday != day.weekday():
        raise ValueError(f"{day} does not fall on weekday {when.weekday}")
    return day if day is not None else _resolve_weekday(when, today)


def _resolve_said_day(when: When, today: dt.date, date_order: str) -> dt.date | None:
    """A date, a numeric date, a day of the month: the day the words name, or None."""
    if when.date is not None:
        return _next_date(*when.date, today=today)
    if when.numeric is not None:
        first, second, year = when.numeric
        month, day = (first, second) if date_order == "MDY" else (second, first)
        return _next_date(month, day, year, today=today)
    if when.day_of_month is not None:
        for ahead in range(0, 3):  # this month, or one of the next two that has the day
            month_index = today.month - 1 + ahead
            try:
                candidate = dt.date(today.year + month_index // 12, month_index % 12 + 1, when.day_of_month)
            except ValueError:
                continue
            if candidate >= today:
                return candidate
        raise ValueError(f"no day {when.day_of_month} soon")
    return None


def _resolve_weekday(when: When, today: dt.date) -> dt.date | None:
    if when.days_ahead is not None:
        return today + dt.timedelta(days=when.days_ahead)
    if when.next_week:
        next_monday = today + dt.timedelta(days=7 - today.weekday())
        return next_monday + dt.timedelta(days=when.weekday or 0)
    if when.weekday is not None:
        # The next such day strictly after today: "Thursday" said on a Thursday is a week later.
        return today + dt.timedelta(days=(when.weekday - today.weekday() - 1) % 7 + 1)
    return None


def _next_date(month: int, day: int, year: int | None, *, today: dt.date) -> dt.date:
    """An explicit date; without a year, this year's, or the next year's once it has passed."""
    if year is not None:
        return dt.date(year, month, day)
    for candidate_year in range(today.year, today.year + 9):  # Feb 29 recurs within 8 years
        try:
            candidate = dt.date(candidate_year, month, day)
        except ValueError:
            continue
        if candidate >= today:
            return candidate
    raise ValueError(f"no {month}/{day} within 8 years of {today}")
