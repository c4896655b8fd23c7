"""The slot grid and the in-memory calendar: working hours, busy time, DST, idempotent booking."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from dialog import InMemoryCalendar, Schedule, SlotTaken
from dialog.calendar.slots import first_free, grid

UTC = dt.UTC
MON_8 = dt.datetime(2026, 11, 23, 8, tzinfo=UTC)


def test_the_default_schedule_is_utc_weekdays_nine_to_five_in_half_hours() -> None:
    slots = list(grid(Schedule(), dt.date(2026, 11, 23)))
    assert len(slots) == 16
    assert slots[0] == dt.datetime(2026, 11, 23, 9, tzinfo=ZoneInfo("UTC"))
    assert slots[-1].time() == dt.time(16, 30)
    assert list(grid(Schedule(), dt.date(2026, 11, 28))) == []  # Saturday


def test_first_free_skips_busy_time_weekends_and_the_past() -> None:
    busy = [(dt.datetime(2026, 11, 27, 9, tzinfo=UTC), dt.datetime(2026, 11, 27, 17, tzinfo=UTC))]
    friday_noon = dt.datetime(2026, 11, 27, 12, tzinfo=UTC)
    found = first_free(Schedule(), busy, at_or_after=friday_noon, now=MON_8)
    assert found == dt.datetime(2026, 11, 30, 9, tzinfo=UTC)
    assert first_free(Schedule(), [], at_or_after=MON_8 - dt.timedelta(days=3), now=MON_8) == dt.datetime(
        2026, 11, 23, 9, tzinfo=UTC
    )


def test_off_grid_requests_round_up_and_strictly_after_skips_the_slot_itself() -> None:
    at = dt.datetime(2026, 11, 24, 10, 10, tzinfo=UTC)
    assert first_free(Schedule(), [], at_or_after=at, now=MON_8) == dt.datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    ten = dt.datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert first_free(Schedule(), [], at_or_after=ten, now=MON_8, strictly_after=True) == ten + dt.timedelta(minutes=30)


def test_the_horizon_bounds_the_search() -> None:
    busy = [(MON_8, MON_8 + dt.timedelta(days=20))]
    assert first_free(Schedule(horizon_days=14), busy, at_or_after=MON_8, now=MON_8) is None
    assert first_free(Schedule(horizon_days=30), busy, at_or_after=MON_8, now=MON_8) is not None


def test_the_grid_keeps_wall_clock_hours_across_a_dst_change() -> None:
    berlin = Schedule(timezone="Europe/Berlin")
    before = next(iter(grid(berlin, dt.date(2026, 3, 27))))  # Friday, UTC+1
    after = next(iter(grid(berlin, dt.date(2026, 3, 30))))  # Monday, UTC+2
    assert (before.hour, after.hour) == (9, 9)
    assert before.utcoffset() == dt.timedelta(hours=1) and after.utcoffset() == dt.timedelta(hours=2)


def test_schedules_are_validated() -> None:
    with pytest.raises(ValidationError):
        Schedule(timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        Schedule(day_start=dt.time(17), day_end=dt.time(9))
    with pytest.raises(ValidationError):
        Schedule(working_days=(7,))


def test_booking_is_idempotent_by_key_and_refuses_overlaps() -> None:
    cal = InMemoryCalendar()
    start, end = dt.datetime(2026, 11, 24, 10, tzinfo=UTC), dt.datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    first = cal.book("acme", lead="Dana", start=start, end=end, idempotency_key="k1")
    again = cal.book("acme", lead="Dana", start=start, end=end, idempotency_key="k1")
    assert again == first and cal.events("acme") == [first]
    with pytest.raises(SlotTaken):
        cal.book("acme", lead="Fox", start=start, end=end, idempotency_key="k2")
    assert cal.find("acme", "k1") == first and cal.find("other", "k1") is None
    cal.book("other", lead="Fox", start=start, end=end, idempotency_key="k2")  # tenants don't collide


def test_blocked_time_is_busy() -> None:
    cal = InMemoryCalendar()
    start = dt.datetime(2026, 11, 24, 10, tzinfo=UTC)
    cal.block("acme", start, start + dt.timedelta(hours=1))
    assert cal.busy("acme", start + dt.timedelta(minutes=30), start + dt.timedelta(hours=2)) == [
        (start, start + dt.timedelta(hours=1))
    ]
    assert cal.busy("acme", start + dt.timedelta(hours=1), start + dt.timedelta(hours=2)) == []
