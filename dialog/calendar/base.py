"""What the engine needs from a calendar: a tenant's schedule, busy time, idempotent booking."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Interval = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True, slots=True)
class Event:
    """A booked event. ``idempotency_key`` is derived from the conversation and the proposal."""

    id: str
    start: dt.datetime
    end: dt.datetime
    lead: str
    idempotency_key: str
    # The booking's evidence: which words, on which channel, confirmed it (spec 4.5). Not part of
    # an event's identity: two views of one event compare equal whatever their notes say.
    note: str = field(default="", compare=False)


class Schedule(BaseModel):
    """A tenant's bookable time: timezone, working days and hours, slot grid, search horizon."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "UTC"
    working_days: tuple[int, ...] = Field(default=(0, 1, 2, 3, 4), min_length=1)  # 0 = Monday
    day_start: dt.time = dt.time(9, 0)
    day_end: dt.time = dt.time(17, 0)
    slot_minutes: int = Field(default=30, ge=5, le=24 * 60)
    horizon_days: int = Field(default=14, ge=1, le=366)
    # On voice, a spoken yes books only at or above this recogniser confidence (spec 4.4).
    voice_confidence: float = Field(default=0.6, ge=0.0, le=1.0)
    # How a numeric date valid in both orders is read ("12/02": Dec 2 in MDY, 12 Feb in DMY); one
    # valid in only one order ("30/11") is read that way (spec 4.3).
    date_order: Literal["MDY", "DMY"] = "MDY"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("working_days")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= d <= 6 for d in value):
            raise ValueError("working days are 0 (Monday) to 6 (Sunday)")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _hours(self) -> Schedule:
        if self.day_end <= self.day_start:
            raise ValueError("day_end must be after day_start")
        return self

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zone(self.timezone)

    @property
    def slot(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.slot_minutes)


@functools.cache
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone named ``name``, built once per process."""
    return zoneinfo.ZoneInfo(name)


@runtime_checkable
class Calendar(Protocol):
    """The calendar side of a turn. Implementations raise ``CalendarUnavailable`` on failure."""

    def schedule(self, tenant_id: str) -> Schedule:
        """The tenant's schedule (a default one when the tenant has none of its own)."""
        ...

    def busy(self, tenant_id: str, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        """Busy time and booked events overlapping [start, end), as aware intervals."""
        ...

    def book(
        self, tenant_id: str, *, lead: str, start: dt.datetime, end: dt.datetime, idempotency_key: str, note: str = ""
    ) -> Event:
        """Create the event once: the same key again returns the first event and books nothing.

        ``note`` is the booking's evidence (which words on which channel confirmed it), kept with
        the event where the calendar can hold it. Raises ``SlotTaken`` when [start, end) overlaps
        busy time or another event.
        """
        ...

    def find(self, tenant_id: str, idempotency_key: str) -> Event | None:
        """The event booked under ``idempotency_key``, if any."""
        ...

    def move(
        self, tenant_id: str, event_id: str, *, start: dt.datetime, end: dt.datetime, idempotency_key: str
    ) -> Event:
        """Move the event ``event_id`` to [start, end), keeping its id; returns it as moved.

        The same ``idempotency_key`` again returns the first result and changes nothing more.
        Raises ``SlotTaken`` when [start, end) overlaps busy time or another event (the event
        itself does not count), ``EventNotFound`` when the calendar holds no such event.
        """
        ...

    def cancel(self, tenant_id: str, event_id: str, *, idempotency_key: str) -> Event | None:
        """Remove the event ``event_id``; returns it as it was, or None when it was already gone.

        The same ``idempotency_key`` again returns the first result and changes nothing more.
        """
        ...

    def events(self, tenant_id: str) -> list[Event]:
        """Every event of the tenant, ordered by start."""
        ...
