"""Calendars: the protocol the engine books through, the slot grid, in-memory and CalDAV backends.

``CalDAVCalendar`` lives in ``dialog.calendar.caldav`` (the optional ``durable-dialog[caldav]`` extra);
``calendar_from_url`` picks a backend from a URL without importing CalDAV unless it is asked for.
"""

from dialog.calendar.base import Calendar, Event, Interval, Schedule
from dialog.calendar.config import ConfigError, Tenants, calendar_from_url, load_tenants
from dialog.calendar.memory import InMemoryCalendar
from dialog.calendar.slots import find_slot, first_free

__all__ = [
    "Calendar",
    "ConfigError",
    "Event",
    "InMemoryCalendar",
    "Interval",
    "Schedule",
    "Tenants",
    "calendar_from_url",
    "find_slot",
    "first_free",
    "load_tenants",
]
