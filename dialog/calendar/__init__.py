"""Calendars: the protocol the engine books through, the slot grid, and the in-memory calendar."""

from dialog.calendar.base import Calendar, Event, Interval, Schedule
from dialog.calendar.memory import InMemoryCalendar
from dialog.calendar.slots import find_slot, first_free

__all__ = ["Calendar", "Event", "InMemoryCalendar", "Interval", "Schedule", "find_slot", "first_free"]
