"""Time expressions: parsing to a clock-independent `When`, and resolving it against a clock.

The resolution rules are SPEC.md section 2's: a weekday is the next such day after today
("Thursday" on a Thursday is a week later), a reschedule keeps the proposal's day or time, a new
request without a day is today if the time is still ahead, else tomorrow.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialog.understanding import When, resolve_when
from dialog.understanding.normalize import normalize
from dialog.understanding.times import parse_when, scan

UTC = dt.UTC
# Monday 23 Nov 2026, 08:00: before working hours.
MONDAY_8AM = dt.datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
# Thursday 26 Nov 2026, 14:30.
THURSDAY_2_30PM = dt.datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
# A proposal on Tuesday 24 Nov 2026 at 10:00.
TUESDAY_10AM = dt.datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _at(hour: int, minute: int = 0, **day: Any) -> When:
    return When(hour=hour, minute=minute, **day)


# --- parsing ------------------------------------------------------------------------------------

PARSED = [
    ("tomorrow at 10am", _at(10, days_ahead=1)),
    ("10am", _at(10)),
    ("10 am", _at(10)),
    ("10:30", _at(10, 30)),
    ("10.30am", _at(10, 30)),
    ("10:30 p.m.", _at(22, 30)),
    ("3pm", _at(15)),
    ("15:00", _at(15)),
    ("noon", _at(12)),
    ("midday", _at(12)),
    ("midnight", _at(0)),
    ("12am", _at(0)),
    ("12pm", _at(12)),
    ("three pm", _at(15)),
    ("ten thirty", _at(10, 30)),
    ("nine thirty am", _at(9, 30)),
    ("half past two", _at(14, 30)),
    ("quarter to nine", _at(8, 45)),
    ("at 3", _at(15)),
    ("at 7", _at(19)),
    ("at 8", _at(8)),
    ("at 12", _at(12)),
    ("make it 11", _at(11)),
    ("how about 4?", _at(16)),
    ("around 9", _at(9)),
    ("to 2", _at(14)),
    ("at 10.30", _at(10, 30)),
    ("at 07", _at(7)),
    ("at 07:30", _at(7, 30)),
    ("at 17", _at(17)),
    ("at 3 o'clock", _at(15)),
    ("3ish", _at(15)),
    ("at 8 in the evening", _at(20)),
    ("at 7 in the morning", _at(7)),
    ("at 2 in the afternoon", _at(14)),
    ("Thursday at 2pm", _at(14, weekday=3)),
    ("thu 2pm", _at(14, weekday=3)),
    ("thursday 2", _at(14, weekday=3)),
    ("tomorrow 10", _at(10, days_ahead=1)),
    ("next Monday 9:30", _at(9, 30, weekday=0)),
    ("this friday", When(weekday=4)),
    ("on tue", When(weekday=1)),
    ("on wed", When(weekday=2)),
    ("next sat", When(weekday=5)),
    ("sun 10am", _at(10, weekday=6)),
    ("today", When(days_ahead=0)),
    ("tonight", When(days_ahead=0, part_of_day="evening")),
    ("tomorrow", When(days_ahead=1)),
    ("tmrw", When(days_ahead=1)),
    ("day after tomorrow", When(days_ahead=2)),
    ("the day after tomorrow at 9", _at(9, days_ahead=2)),
    ("in 3 days", When(days_ahead=3)),
    ("in two days", When(days_ahead=2)),
    ("tomorrow morning", When(days_ahead=1, part_of_day="morning")),
    ("tomorrow afternoon", When(days_ahead=1, part_of_day="afternoon")),
    ("tomorrow night", When(days_ahead=1, part_of_day="evening")),
    ("this morning", When(days_ahead=0, part_of_day="morning")),
    ("in the evening", When(part_of_day="evening")),
    ("24 nov", When(date=(11, 24, None))),
    ("nov 24", When(date=(11, 24, None))),
    ("november 24th", When(date=(11, 24, None))),
    ("the 24th of november", When(date=(11, 24, None))),
    ("november twenty fourth", When(date=(11, 24, None))),
    ("nov 24 2027", When(date=(11, 24, 2027))),
    ("2026-11-24", When(date=(11, 24, 2026))),
    ("2026-11-24 15:00", _at(15, date=(11, 24, 2026))),
    ("feb 29", When(date=(2, 29, None))),
    ("next week", When(next_week=True)),
    ("thursday next week", When(weekday=3, next_week=True)),
    ("next week on thursday at 4pm", _at(16, weekday=3, next_week=True)),
    ("noon tomorrow", _at(12, days_ahead=1)),
    # corrections: the last accepted mention wins
    ("move it to 2, no 3pm", _at(15)),
    ("not thursday, friday", When(weekday=4)),
    ("move it from 3pm to 4pm", _at(16)),
    ("at 3pm instead of 2pm", _at(15)),
    ("3pm doesn't work, 4pm is fine", _at(16)),
    ("friday at 10, not at 9", _at(10, weekday=4)),
]

NOT_TIMES = [
    "book 2 calls",
    "call with agent 007",
    "schedule 3 meetings",
    "I have 2 kids",
    "good morning",
    "good night",
    "last night",
    "c'mon",
    "I sat down",
    "the sun is out",
    "we wed in june",
    "feb 30",
    "2026-02-29",
    "2026-13-01",
    "at 25",
    "at 10.75",
    "13pm",
    "0am",
    "10.30 dollars",
    "page 3",
    "may i ask",
    "book two thirty minute calls",
    "12345",
    "",
]

REJECTED = [
    "not thursday",
    "not on thursday",
    "not next thursday",
    "not at 3pm",
    "not at 3",
    "not tomorrow",
    "thursday doesn't work",
    "3pm is bad",
    "3pm would be impossible",
    "tomorrow is not good",
    "tomorrow isn't possible",
    "thursday does not work",
    "can't do monday",
    "rather than friday",
    "instead of 2pm",
    "monday is busy",
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_parse(text: str, expected: When) -> None:
    assert parse_when(text) == expected


@pytest.mark.parametrize("text", NOT_TIMES)
def test_numbers_and_words_outside_a_time_position_are_no_time(text: str) -> None:
    assert parse_when(text) is None


@pytest.mark.parametrize("text", REJECTED)
def test_a_rejected_day_or_time_is_not_the_requested_one(text: str) -> None:
    found = scan(text.replace(",", "").split())
    assert (found.when, found.rejected) == (None, True)


def test_nothing_said_is_not_rejected() -> None:
    assert scan(("yes", "please")) == (None, False, None)


# --- issue 12 / spec 4.3: numeric dates, days of the month, relative anchors, unreadable words ---

# "11/24", "24/11" and "the 24th" used to be no time at all; spec 4.3 reads them.
NUMERIC_AND_ORDINAL = [
    ("11/24", When(date=(11, 24, None))),  # valid only as month/day
    ("24/11", When(date=(11, 24, None))),  # valid only as day/month
    ("12/02", When(numeric=(12, 2, None))),  # valid both ways: the tenant's date_order decides
    ("12/02/2027", When(numeric=(12, 2, 2027))),
    ("12-03", When(numeric=(12, 3, None))),  # a dashed date reads as a slashed one
    ("the 24th", When(day_of_month=24)),
    ("on the twenty seventh", When(day_of_month=27)),
    ("december 3rd", When(date=(12, 3, None))),
    ("in 3 days", When(days_ahead=3)),
    ("a week from tomorrow", When(days_ahead=1, plus_days=7)),
    ("an hour later", When(shift_minutes=60)),
    ("30 minutes earlier", When(shift_minutes=-30)),
    ("the following day", When(shift_days=1)),
    ("same time next week", When(shift_days=7)),
    ("move it up an hour", When(shift_minutes=-60)),  # "up" is earlier
    ("bring it forward half an hour", When(shift_minutes=-30)),
    ("next day same time", When(shift_days=1)),
    ("ninety minutes later", When(shift_minutes=90)),
    ("could we do wed at 3:30?", When(weekday=2, hour=15, minute=30)),  # "wed at": a day, not a verb
    # pass 2: compact clock times, ranges (their start), a fortnight, a day's possessive
    ("at 1130", When(hour=11, minute=30)),
    ("230pm", When(hour=14, minute=30)),
    ("for 0930 tomorrow", When(days_ahead=1, hour=9, minute=30)),
    ("2-3pm", When(hour=14, minute=0)),
    ("11-12pm", When(hour=11, minute=0)),
    ("10-11am wednesday", When(weekday=2, hour=10, minute=0)),
    ("1pm - 2pm", When(hour=13, minute=0)),
    ("between 2 and 3", When(hour=14, minute=0)),
    ("two to three p m", When(hour=14, minute=0)),
    ("from 3pm to 4pm", When(hour=15, minute=0)),  # a range: its start
    ("move it from 10 to 11", When(hour=11, minute=0)),  # a move from one time to another: the new one
    ("in a fortnight", When(days_ahead=14)),
    ("a fortnight from friday", When(weekday=4, plus_days=14)),
    ("tuesday's fine", When(weekday=1)),
]


@pytest.mark.parametrize(("text", "expected"), NUMERIC_AND_ORDINAL)
def test_numeric_dates_days_of_the_month_and_relative_expressions(text: str, expected: When) -> None:
    assert parse_when(text) == expected


@pytest.mark.parametrize(
    ("when", "date_order", "expected"),
    [
        (When(numeric=(12, 2, None)), "MDY", dt.date(2026, 12, 2)),
        (When(numeric=(12, 2, None)), "DMY", dt.date(2027, 2, 12)),
        (When(date=(11, 24, None)), "DMY", dt.date(2026, 11, 24)),  # read one way only: order irrelevant
        (When(day_of_month=24), "MDY", dt.date(2026, 11, 24)),
        (When(day_of_month=1), "MDY", dt.date(2026, 12, 1)),
        (When(days_ahead=1, plus_days=7), "MDY", dt.date(2026, 12, 1)),
    ],
)
def test_dates_from_today_follow_the_tenants_date_order(when: When, date_order: str, expected: dt.date) -> None:
    """Spec 4.3: numeric dates follow Schedule.date_order; "the 26th", "in 3 days" count from today."""
    assert resolve_when(when, now=MONDAY_8AM, date_order=date_order) == (expected, None)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (When(shift_minutes=60), (dt.date(2026, 11, 24), dt.time(11))),
        (When(shift_minutes=-30), (dt.date(2026, 11, 24), dt.time(9, 30))),
        (When(shift_days=1), (dt.date(2026, 11, 25), dt.time(10))),
        (When(shift_days=7), (dt.date(2026, 12, 1), dt.time(10))),
    ],
)
def test_relative_expressions_move_from_the_proposal(when: When, expected: tuple[dt.date, dt.time]) -> None:
    """Spec 4.3: "an hour later", "the following day", "same time next week" are relative to the proposal."""
    assert resolve_when(when, now=MONDAY_8AM, anchor=TUESDAY_10AM) == expected


def test_a_shift_without_a_proposal_is_not_resolved() -> None:
    with pytest.raises(ValueError, match="nothing is proposed"):
        resolve_when(When(shift_minutes=60), now=MONDAY_8AM)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("feb 30", "feb 30"),
        ("2026-13-01", "2026-13-01"),
        ("13pm", "13pm"),
        ("25:00", "25:00"),
        ("13/13", "13/13"),
        ("the 32nd", "the 32nd"),
        ("in a few days", "in a few days"),
        ("tuesday-ish", "tuesday ish"),
        ("next next thursday", "next next thursday"),
        # pass 2: readings that are not certain are asked about, never guessed
        ("2345pm", "2345pm"),
        ("at 2026", "2026"),
        ("4 or 5", "4 or 5"),
        ("thursday or friday", "thursday or friday"),
        ("before 3", "before 3"),
        ("no later than 3", "later than 3"),
        ("before noon tomorrow", "before noon"),
        ("late afternoon", "late afternoon"),
        ("mid-morning", "mid morning"),
        ("early next week", "early next week"),
        ("by the end of the day", "the end of the day"),
        ("eod", "eod"),
        ("3pm est", "3pm est"),
        ("at 3 pacific", "3 pacific"),
        ("at 10 my time", "10 my time"),
        ("ten to four", "10 to 4"),  # 3:50, or a range?
        ("9 to 5", "9 to 5"),  # no call's length
        ("10 to 15 minutes later", "10 to 15 minutes"),
        ("move it to 11-12", "11-12"),  # 11 to 12, or 12 November?
        ("the 3rd of smarch", "the 3rd of smarch"),
        ("the 3rd decmber", "the 3rd decmber"),
    ],
)
def test_a_date_or_time_that_cannot_be_read_is_named_not_guessed(text: str, words: str) -> None:
    """Spec 4.3: an expression that looks like a date or time but is not read gives its words, no `when`."""
    assert scan(normalize(text).tokens)[::2] == (None, words)


@pytest.mark.parametrize(
    ("when", "has_day", "has_time"),
    [
        (When(), False, False),
        (When(weekday=3), True, False),
        (When(days_ahead=0), True, False),
        (When(date=(11, 24, None)), True, False),
        (When(next_week=True), True, False),
        (_at(10), False, True),
        (When(part_of_day="morning"), False, True),  # a part of the day counts as a time
        (_at(10, days_ahead=1), True, True),
    ],
)
def test_has_day_and_has_time(when: When, has_day: bool, has_time: bool) -> None:
    assert (when.has_day, when.has_time) == (has_day, has_time)


@pytest.mark.parametrize(
    "fields",
    [
        {"weekday": 7},
        {"weekday": -1},
        {"days_ahead": -1},
        {"date": (2, 30, None)},
        {"date": (13, 1, 2026)},
        {"hour": 10},
        {"minute": 30},
        {"hour": 24, "minute": 0},
        {"hour": 10, "minute": 60},
        {"part_of_day": "noon"},
    ],
)
def test_when_rejects_impossible_values(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        When(**fields)


# --- resolving ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "weekday", "expected"),
    [
        (THURSDAY_2_30PM, 3, dt.date(2026, 12, 3)),  # "Thursday" said on a Thursday is a week later
        (THURSDAY_2_30PM, 4, dt.date(2026, 11, 27)),
        (THURSDAY_2_30PM, 2, dt.date(2026, 12, 2)),
        (MONDAY_8AM, 3, dt.date(2026, 11, 26)),  # "next Thursday" on a Monday: this week's
        (MONDAY_8AM, 0, dt.date(2026, 11, 30)),
        (MONDAY_8AM, 6, dt.date(2026, 11, 29)),
        (dt.datetime(2026, 12, 31, 9, tzinfo=UTC), 4, dt.date(2027, 1, 1)),
    ],
)
def test_a_weekday_is_the_next_such_day_after_today(now: dt.datetime, weekday: int, expected: dt.date) -> None:
    assert resolve_when(When(weekday=weekday), now=now) == (expected, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("today", (dt.date(2026, 11, 23), None)),
        ("tomorrow", (dt.date(2026, 11, 24), None)),
        ("day after tomorrow", (dt.date(2026, 11, 25), None)),
        ("in 10 days", (dt.date(2026, 12, 3), None)),
        ("tomorrow at 10am", (dt.date(2026, 11, 24), dt.time(10))),
        ("thursday", (dt.date(2026, 11, 26), None)),  # a day without a time: the engine picks the first free slot
        ("next thursday at 2pm", (dt.date(2026, 11, 26), dt.time(14))),
        ("next week", (dt.date(2026, 11, 30), None)),  # its Monday
        ("thursday next week", (dt.date(2026, 12, 3), None)),
        ("tomorrow morning", (dt.date(2026, 11, 24), dt.time(9))),
        ("tomorrow afternoon", (dt.date(2026, 11, 24), dt.time(13))),
        ("tomorrow evening", (dt.date(2026, 11, 24), dt.time(17))),
        ("10am", (dt.date(2026, 11, 23), dt.time(10))),  # still ahead of 08:00: today
        ("7:30am", (dt.date(2026, 11, 24), dt.time(7, 30))),  # passed: tomorrow
        ("8am", (dt.date(2026, 11, 24), dt.time(8))),  # exactly now is not ahead: tomorrow
        ("this afternoon", (dt.date(2026, 11, 23), dt.time(13))),
        ("24 nov", (dt.date(2026, 11, 24), None)),
        ("23 nov", (dt.date(2026, 11, 23), None)),  # today is not past
        ("22 nov", (dt.date(2027, 11, 22), None)),  # past: next year
        ("jan 5", (dt.date(2027, 1, 5), None)),
        ("2026-11-20", (dt.date(2026, 11, 20), None)),  # an explicit year is kept even if past
        ("feb 29", (dt.date(2028, 2, 29), None)),  # the next Feb 29
        ("yes", (dt.date(2026, 11, 23), None)),  # nothing said
    ],
)
def test_resolving_a_new_request(text: str, expected: tuple[dt.date, dt.time | None]) -> None:
    """Without an anchor, relative to Monday 23 Nov 2026 08:00."""
    when = parse_when(text) or When()
    assert resolve_when(when, now=MONDAY_8AM) == expected


def test_part_of_day_without_a_day_follows_the_time_rule() -> None:
    """ "in the morning" said at 14:30 is tomorrow 09:00; "in the evening" is today 17:00."""
    assert resolve_when(When(part_of_day="morning"), now=THURSDAY_2_30PM) == (dt.date(2026, 11, 27), dt.time(9))
    assert resolve_when(When(part_of_day="evening"), now=THURSDAY_2_30PM) == (dt.date(2026, 11, 26), dt.time(17))


def test_the_year_rolls_over_at_new_year() -> None:
    new_years_eve = dt.datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert resolve_when(When(date=(1, 2, None)), now=new_years_eve) == (dt.date(2027, 1, 2), None)
    assert resolve_when(When(days_ahead=1), now=new_years_eve) == (dt.date(2027, 1, 1), None)
    assert resolve_when(_at(9), now=new_years_eve) == (dt.date(2027, 1, 1), dt.time(9))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("move it to 3pm", (dt.date(2026, 11, 24), dt.time(15))),  # a time keeps the proposal's day
        ("make it 9:30", (dt.date(2026, 11, 24), dt.time(9, 30))),
        ("thursday", (dt.date(2026, 11, 26), dt.time(10))),  # a day keeps the proposal's time
        ("tomorrow", (dt.date(2026, 11, 24), dt.time(10))),  # tomorrow is relative to now, not the proposal
        ("next week", (dt.date(2026, 11, 30), dt.time(10))),
        ("how about Thursday at 2pm?", (dt.date(2026, 11, 26), dt.time(14))),
        ("the afternoon", (dt.date(2026, 11, 24), dt.time(13))),
        ("can we move it?", (dt.date(2026, 11, 24), dt.time(10))),  # nothing said: the anchor itself
    ],
)
def test_resolving_a_reschedule_keeps_what_was_not_said(text: str, expected: tuple[dt.date, dt.time | None]) -> None:
    """With the proposal (Tuesday 24 Nov 10:00) as anchor, said on Monday 23 Nov 08:00."""
    when = parse_when(text) or When()
    assert resolve_when(when, now=MONDAY_8AM, anchor=TUESDAY_10AM) == expected


def test_a_reschedule_to_an_earlier_time_of_day_keeps_the_day() -> None:
    """ "move it to 9am" is the proposal's day at 09:00 even if 09:00 has passed today."""
    now = dt.datetime(2026, 11, 23, 16, tzinfo=UTC)
    assert resolve_when(_at(9), now=now, anchor=TUESDAY_10AM) == (dt.date(2026, 11, 24), dt.time(9))


def test_resolution_uses_the_local_date_of_now() -> None:
    """`now` is already in the tenant's timezone: 23:30 in New York is still Monday there."""
    new_york = ZoneInfo("America/New_York")
    now = dt.datetime(2026, 11, 23, 23, 30, tzinfo=new_york)  # 04:30 UTC on Tuesday
    assert resolve_when(When(days_ahead=1), now=now) == (dt.date(2026, 11, 24), None)
    assert resolve_when(_at(10), now=now) == (dt.date(2026, 11, 24), dt.time(10))


def test_resolved_times_are_naive_wall_clock_times() -> None:
    _, clock = resolve_when(When(weekday=3), now=MONDAY_8AM, anchor=TUESDAY_10AM)
    assert clock == dt.time(10) and clock.tzinfo is None


# --- properties ---------------------------------------------------------------------------------

NOWS = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31), timezones=st.just(UTC))


@settings(max_examples=300)
@given(NOWS, st.integers(0, 6))
def test_a_weekday_always_resolves_within_the_next_seven_days(now: dt.datetime, weekday: int) -> None:
    day, clock = resolve_when(When(weekday=weekday), now=now)
    assert day.weekday() == weekday and 1 <= (day - now.date()).days <= 7 and clock is None


@settings(max_examples=300)
@given(NOWS, st.integers(0, 23), st.integers(0, 59))
def test_a_time_alone_in_a_new_request_is_the_next_such_time(now: dt.datetime, hour: int, minute: int) -> None:
    day, clock = resolve_when(_at(hour, minute), now=now)
    assert clock is not None
    start = dt.datetime.combine(day, clock, tzinfo=UTC)
    assert now < start <= now + dt.timedelta(days=1)


@settings(max_examples=300)
@given(NOWS, NOWS, st.integers(0, 23), st.integers(0, 6))
def test_a_reschedule_takes_the_missing_part_from_the_anchor(
    now: dt.datetime, anchor: dt.datetime, hour: int, weekday: int
) -> None:
    assert resolve_when(_at(hour), now=now, anchor=anchor) == (anchor.date(), dt.time(hour))
    day, clock = resolve_when(When(weekday=weekday), now=now, anchor=anchor)
    assert day.weekday() == weekday and clock == anchor.time()


@settings(max_examples=300)
@given(NOWS, st.integers(1, 12), st.integers(1, 31))
def test_a_date_without_a_year_is_never_in_the_past(now: dt.datetime, month: int, day: int) -> None:
    try:
        when = When(date=(month, day, None))
    except ValueError:
        return
    resolved, _ = resolve_when(when, now=now)
    assert (resolved.month, resolved.day) == (month, day)
    assert 0 <= (resolved - now.date()).days <= 366 * 8
