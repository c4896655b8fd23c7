"""The slot grid: where a proposal may start, given a schedule and the busy time around it."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from dialog.calendar.base import Calendar, Interval, Schedule, zone


def grid(schedule: Schedule, day: dt.date) -> tuple[dt.datetime, ...]:
    """Slot starts of one local day, in order (none on a day off); kept per schedule and day."""
    s = schedule
    # tuple(): a schedule made with model_copy(update=...) is not validated, and may hold a list
    return _grid(s.timezone, tuple(s.working_days), s.day_start, s.day_end, s.slot_minutes, day)


@functools.lru_cache(maxsize=4096)
def _grid(
    timezone: str, working_days: tuple[int, ...], day_start: dt.time, day_end: dt.time, minutes: int, day: dt.date
) -> tuple[dt.datetime, ...]:
    if day.weekday() not in working_days:
        return ()
    tz, slot = zone(timezone), dt.timedelta(minutes=minutes)
    start = dt.datetime.combine(day, day_start, tzinfo=tz)
    end = dt.datetime.combine(day, day_end, tzinfo=tz)
    # Wall-clock arithmetic on the local day: a DST change shifts UTC offsets, never the grid.
    starts = []
    at = start
    while _utc(at) + slot <= _utc(end):
        starts.append(at)
        at = (at.replace(tzinfo=None) + slot).replace(tzinfo=tz)
    return tuple(starts)


def first_free(
    schedule: Schedule,
    busy: Sequence[Interval],
    *,
    at_or_after: dt.datetime,
    now: dt.datetime,
    strictly_after: bool = False,
) -> dt.datetime | None:
    """The first free grid slot at (or strictly after) ``at_or_after``, not in the past.

    The search looks ``schedule.horizon_days`` ahead of where it starts; None when nothing is free.
    """
    floor = max(at_or_after, now)
    day = floor.astimezone(schedule.tz).date()
    for offset in range(schedule.horizon_days + 1):
        for start in grid(schedule, day + dt.timedelta(days=offset)):
            if _eligible(start, floor, at_or_after, strictly_after) and _free(start, schedule, busy):
                return start
    return None


def find_slot(
    calendar: Calendar,
    tenant_id: str,
    *,
    at_or_after: dt.datetime,
    now: dt.datetime,
    strictly_after: bool = False,
) -> dt.datetime | None:
    """``first_free`` over the calendar's busy time in the search window (one calendar read)."""
    schedule = calendar.schedule(tenant_id)
    window_start = max(at_or_after, now)
    window_end = window_start + dt.timedelta(days=schedule.horizon_days + 2)
    busy = calendar.busy(tenant_id, window_start, window_end)
    return first_free(schedule, busy, at_or_after=at_or_after, now=now, strictly_after=strictly_after)


def _eligible(start: dt.datetime, floor: dt.datetime, requested: dt.datetime, strictly: bool) -> bool:
    return start >= floor and (start > requested if strictly else True)


def _free(start: dt.datetime, schedule: Schedule, busy: Sequence[Interval]) -> bool:
    end = start + schedule.slot
    return not any(b_start < end and start < b_end for b_start, b_end in busy)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)
