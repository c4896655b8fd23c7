"""A process booking on a ``RedisCalendar``, for tests/test_redis_calendar.py.

    python -m tests.calendar_worker race REDIS_URL TENANT NAME GO_KEY READY_KEY
    python -m tests.calendar_worker once REDIS_URL TENANT LEAD START_ISO END_ISO KEY

``race``: counts itself in at READY_KEY, waits for a token at GO_KEY (the start barrier), then
books the 20 slots of ``race_slot`` under keys ``NAME-<i>`` and prints one JSON line per booking.
``once``: books one event, prints it, and exits.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

import redis

from dialog.calendar.redis_calendar import RedisCalendar
from dialog.errors import SlotTaken

BOOKINGS = 20
FIRST = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)


def race_slot(name: str, i: int) -> tuple[dt.datetime, dt.datetime]:
    """Worker ``a`` books [9:00 + i h, +30 min); ``b`` the same on even i, 15 min later on odd i."""
    start = FIRST + dt.timedelta(hours=i)
    if name == "b" and i % 2:
        start += dt.timedelta(minutes=15)
    return start, start + dt.timedelta(minutes=30)


def race(url: str, tenant: str, name: str, go_key: str, ready_key: str) -> None:
    client = redis.Redis.from_url(url)
    calendar = RedisCalendar(client)
    client.ping()  # connected before the barrier, so both start booking at once
    client.incr(ready_key)
    client.blpop([go_key], timeout=30)
    results = []
    for i in range(BOOKINGS):
        start, end = race_slot(name, i)
        try:
            event = calendar.book(tenant, lead=f"Lead {name}{i}", start=start, end=end, idempotency_key=f"{name}-{i}")
            results.append({"i": i, "outcome": "booked", "id": event.id})
        except SlotTaken:
            results.append({"i": i, "outcome": "taken", "id": None})
    for line in results:
        print(json.dumps(line), flush=True)


def once(url: str, tenant: str, lead: str, start: str, end: str, key: str) -> None:
    client = redis.Redis.from_url(url)
    event = RedisCalendar(client).book(
        tenant,
        lead=lead,
        start=dt.datetime.fromisoformat(start),
        end=dt.datetime.fromisoformat(end),
        idempotency_key=key,
    )
    print(json.dumps({"id": event.id, "start": event.start.isoformat(), "end": event.end.isoformat()}), flush=True)
    client.close()


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "race":
        race(*rest)
    elif mode == "once":
        once(*rest)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
