"""A calendar held in process memory: the fake for unit tests, demos and single-process hosts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid
from collections.abc import Mapping

from dialog.calendar.base import Event, Interval, Schedule
from dialog.errors import EventNotFound, InvalidInput, SlotTaken


class InMemoryCalendar:
    """Busy time and events per tenant, thread-safe; booking is idempotent by key."""

    def __init__(self, schedule: Schedule | None = None, *, schedules: Mapping[str, Schedule] | None = None) -> None:
        self._default = schedule or Schedule()
        self._schedules: dict[str, Schedule] = dict(schedules or {})
        self._blocked: dict[str, list[Interval]] = {}
        self._events: dict[str, dict[str, Event]] = {}
        # move and cancel results by idempotency key, so a replay changes nothing more
        self._changes: dict[str, dict[str, Event | None]] = {}
        self._lock = threading.Lock()

    def set_schedule(self, tenant_id: str, schedule: Schedule) -> None:
        self._schedules[tenant_id] = schedule

    def schedule(self, tenant_id: str) -> Schedule:
        return self._schedules.get(tenant_id, self._default)

    def block(self, tenant_id: str, start: dt.datetime, end: dt.datetime) -> None:
        """Mark [start, end) busy for the tenant."""
        _check_interval(start, end)
        with self._lock:
            self._blocked.setdefault(tenant_id, []).append((start, end))

    def busy(self, tenant_id: str, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        with self._lock:
            return [iv for iv in self._taken(tenant_id) if iv[0] < end and start < iv[1]]

    def book(
        self, tenant_id: str, *, lead: str, start: dt.datetime, end: dt.datetime, idempotency_key: str, note: str = ""
    ) -> Event:
        _check_interval(start, end)
        with self._lock:
            events = self._events.setdefault(tenant_id, {})
            if idempotency_key in events:
                return events[idempotency_key]
            if any(b_start < end and start < b_end for b_start, b_end in self._taken(tenant_id)):
                raise SlotTaken("the slot overlaps busy time or another event", tenant_id=tenant_id)
            event = Event(f"evt_{uuid.uuid4().hex}", start, end, lead, idempotency_key, note)
            events[idempotency_key] = event
            return event

    def move(
        self, tenant_id: str, event_id: str, *, start: dt.datetime, end: dt.datetime, idempotency_key: str
    ) -> Event:
        """Move the event to [start, end) (same id); idempotent by key; ``SlotTaken`` on overlap."""
        _check_interval(start, end)
        with self._lock:
            done = self._changes.setdefault(tenant_id, {})
            if idempotency_key in done:
                return _moved(done[idempotency_key])
            events = self._events.get(tenant_id, {})
            key = next((k for k, e in events.items() if e.id == event_id), None)
            if key is None:
                raise EventNotFound(f"no event {event_id!r}", tenant_id=tenant_id)
            others = [iv for iv in self._taken(tenant_id, but=event_id)]
            if any(b_start < end and start < b_end for b_start, b_end in others):
                raise SlotTaken("the new time overlaps busy time or another event", tenant_id=tenant_id)
            moved = dataclasses.replace(events[key], start=start, end=end)
            events[key] = moved
            done[idempotency_key] = moved
            return moved

    def cancel(self, tenant_id: str, event_id: str, *, idempotency_key: str) -> Event | None:
        """Remove the event; idempotent by key; None when it was already gone."""
        with self._lock:
            done = self._changes.setdefault(tenant_id, {})
            if idempotency_key in done:
                return done[idempotency_key]
            events = self._events.get(tenant_id, {})
            key = next((k for k, e in events.items() if e.id == event_id), None)
            gone = events.pop(key) if key is not None else None
            done[idempotency_key] = gone
            return gone

    def find(self, tenant_id: str, idempotency_key: str) -> Event | None:
        with self._lock:
            return self._events.get(tenant_id, {}).get(idempotency_key)

    def events(self, tenant_id: str) -> list[Event]:
        with self._lock:
            return sorted(self._events.get(tenant_id, {}).values(), key=lambda e: (e.start, e.id))

    def _taken(self, tenant_id: str, *, but: str | None = None) -> list[Interval]:
        booked = [(e.start, e.end) for e in self._events.get(tenant_id, {}).values() if e.id != but]
        return self._blocked.get(tenant_id, []) + booked


def _moved(result: Event | None) -> Event:
    assert result is not None  # a key used for a move always holds the moved event
    return result


def _check_interval(start: dt.datetime, end: dt.datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("calendar times must be timezone-aware datetimes", field="start")
    if end <= start:
        raise InvalidInput("an interval must end after it starts", field="end")
