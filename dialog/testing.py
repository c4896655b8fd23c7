"""Helpers for tests of hosts that embed ``dialog``: a clock you move by hand, a fake-Redis engine."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from dialog.calendar.memory import InMemoryCalendar
from dialog.engine import Engine


class FakeClock:
    """A clock that stands still until told to move; pass it as ``Engine(clock=...)``."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, **delta: float) -> dt.datetime:
        with self._lock:
            self._now += dt.timedelta(**delta)
            return self._now

    def set(self, value: dt.datetime) -> None:
        with self._lock:
            self._now = value


def fake_engine(
    *, calendar: InMemoryCalendar | None = None, clock: FakeClock | None = None, server: Any = None,
    **options: Any,
) -> Engine:
    """An engine on fakeredis (Lua through lupa): for fast unit tests, not for proofs."""
    import fakeredis

    client = fakeredis.FakeRedis(server=server or fakeredis.FakeServer())
    return Engine(client, calendar=calendar or InMemoryCalendar(), clock=clock, **options)
