"""dialog: durable conversation state machines for assistants that book things for people."""

from dialog.calendar import Calendar, Event, InMemoryCalendar, Schedule
from dialog.engine import Engine
from dialog.errors import (
    CalendarUnavailable,
    CorruptState,
    DialogError,
    InvalidInput,
    SlotTaken,
    StoreUnavailable,
)
from dialog.machine import State, Trigger
from dialog.results import Channel, Outcome, Proposal, Reply, Snapshot

__all__ = [
    "Calendar",
    "CalendarUnavailable",
    "Channel",
    "CorruptState",
    "DialogError",
    "Engine",
    "Event",
    "InMemoryCalendar",
    "InvalidInput",
    "Outcome",
    "Proposal",
    "Reply",
    "Schedule",
    "SlotTaken",
    "Snapshot",
    "State",
    "StoreUnavailable",
    "Trigger",
]
