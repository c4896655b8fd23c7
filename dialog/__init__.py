"""dialog: durable conversation state machines for assistants that book things for people."""

from dialog.calendar import Calendar, Event, InMemoryCalendar, Schedule
from dialog.calendar.redis_calendar import RedisCalendar
from dialog.engine import Engine
from dialog.errors import (
    CalendarUnavailable,
    CorruptState,
    DialogError,
    EventNotFound,
    InvalidInput,
    SlotTaken,
    StoreUnavailable,
)
from dialog.machine import State, Trigger
from dialog.results import Channel, HistoryEntry, Outcome, Proposal, Reply, Snapshot, Transition

__all__ = [
    "Calendar",
    "CalendarUnavailable",
    "Channel",
    "CorruptState",
    "DialogError",
    "Engine",
    "Event",
    "EventNotFound",
    "HistoryEntry",
    "InMemoryCalendar",
    "InvalidInput",
    "Outcome",
    "Proposal",
    "RedisCalendar",
    "Reply",
    "Schedule",
    "SlotTaken",
    "Snapshot",
    "State",
    "StoreUnavailable",
    "Transition",
    "Trigger",
]
