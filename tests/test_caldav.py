"""The CalDAV calendar against a real Radicale: bookings read back independently, exactly once
across processes, safe collection names, outages and timeouts, credentials kept out of sight."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import icalendar
import pytest
import redis

from dialog import CalendarUnavailable, Engine, Schedule, SlotTaken, State
from dialog.calendar.base import Event
from dialog.calendar.caldav import ATTEMPTS, BUSY_CATEGORY, CalDAVCalendar, collection_name
from dialog.errors import EventNotFound
from dialog.testing import FakeClock
from tests.fixtures_radicale import PASSWORD, USER, RadicaleServer
from tests.support import free_port

UTC = dt.UTC
BERLIN = Schedule(timezone="Europe/Berlin")
TUE_10_BERLIN = dt.datetime(2026, 11, 24, 9, tzinfo=UTC)  # 10:00 in Berlin (CET, UTC+1)
HALF_HOUR = dt.timedelta(minutes=30)


@pytest.fixture
def tenant() -> str:
    """A tenant of its own on the shared server."""
    return f"t-{uuid.uuid4().hex[:12]}"


def _utc(event: icalendar.Component, name: str) -> dt.datetime:
    value = event.decoded(name)
    assert isinstance(value, dt.datetime)
    return value.astimezone(UTC)


def test_a_booking_through_the_engine_reads_back_with_an_independent_client(
    radicale: RadicaleServer, redis_url: str, redis_client: redis.Redis, clock: FakeClock, tenant: str
) -> None:
    calendar = CalDAVCalendar(radicale.url, username=USER, password=PASSWORD, schedules={tenant: BERLIN})
    engine = Engine(redis.Redis.from_url(redis_url), calendar=calendar, clock=clock)

    proposed = engine.handle("conv-1", "Schedule a call with Dana Scully tomorrow at 10am", tenant_id=tenant)
    assert proposed.outcome == "proposed"
    assert "Tue 24 Nov, 10:00 (Europe/Berlin)" in proposed.text
    booked = engine.handle("conv-1", "yes", tenant_id=tenant)

    assert booked.outcome == "booked" and booked.event is not None
    assert "Tue 24 Nov, 10:00 (Europe/Berlin)" in booked.text
    key = booked.event.idempotency_key
    stored = radicale.events(collection_name(tenant))
    assert list(stored) == [f"/{USER}/{tenant}/{key}.ics"]
    (event,) = stored.values()
    assert str(event["UID"]) == key == booked.event.id
    assert _utc(event, "DTSTART") == TUE_10_BERLIN
    assert _utc(event, "DTEND") == TUE_10_BERLIN + HALF_HOUR
    assert str(event["SUMMARY"]) == "Call with Dana Scully"
    assert str(event["X-DIALOG-LEAD"]) == "Dana Scully"
    status, _ = radicale.request("GET", f"/{USER}/{tenant}/{key}.ics")
    assert status == 200
    # The backend reads back what it wrote, in the tenant's timezone.
    (listed,) = calendar.events(tenant)
    assert listed.start == TUE_10_BERLIN and listed.start.utcoffset() == dt.timedelta(hours=1)
    assert listed.lead == "Dana Scully" and calendar.find(tenant, key) == listed


def test_the_same_key_booked_from_two_instances_leaves_one_event(radicale: RadicaleServer, tenant: str) -> None:
    first, second = (CalDAVCalendar(radicale.url_with_credentials) for _ in range(2))
    start, end = TUE_10_BERLIN, TUE_10_BERLIN + HALF_HOUR

    one = first.book(tenant, lead="Dana", start=start, end=end, idempotency_key="key-1")
    two = second.book(tenant, lead="Dana", start=start, end=end, idempotency_key="key-1")

    assert one == two and one.id == one.idempotency_key == "key-1"
    assert len(radicale.events(tenant)) == 1 and second.events(tenant) == [one]


def test_a_key_whose_event_is_elsewhere_returns_that_event_even_when_the_slot_is_now_taken(
    radicale: RadicaleServer, tenant: str
) -> None:
    """A replayed key books nothing, whatever happened to its slot (the event moved, the time got busy)."""
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    start, end = TUE_10_BERLIN, TUE_10_BERLIN + HALF_HOUR
    first = calendar.book(tenant, lead="Dana", start=start, end=end, idempotency_key="key-1")
    # Off the range checked, the create is refused with 412 and the event is read back.
    elsewhere = calendar.book(tenant, lead="Dana", start=end, end=end + HALF_HOUR, idempotency_key="key-1")
    calendar.block(tenant, end, end + HALF_HOUR)
    taken = calendar.book(tenant, lead="Dana", start=end, end=end + HALF_HOUR, idempotency_key="key-1")
    assert first == elsewhere == taken and first.start == start
    assert [str(e["UID"]) for e in radicale.events(tenant).values()].count("key-1") == 1
    with pytest.raises(SlotTaken):
        calendar.book(tenant, lead="Fox", start=end, end=end + HALF_HOUR, idempotency_key="key-2")


def test_overlaps_with_events_and_busy_time_raise_slot_taken(radicale: RadicaleServer, tenant: str) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    start, end = TUE_10_BERLIN, TUE_10_BERLIN + HALF_HOUR
    calendar.book(tenant, lead="Dana", start=start, end=end, idempotency_key="key-1")
    with pytest.raises(SlotTaken):
        calendar.book(tenant, lead="Fox", start=start + dt.timedelta(minutes=15), end=end, idempotency_key="key-2")
    calendar.book(tenant, lead="Fox", start=end, end=end + HALF_HOUR, idempotency_key="key-2")  # adjacent is free

    calendar.block(tenant, end + HALF_HOUR, end + 3 * HALF_HOUR)
    calendar.block(tenant, end + HALF_HOUR, end + 3 * HALF_HOUR)  # the same interval is stored once
    with pytest.raises(SlotTaken):
        calendar.book(tenant, lead="Walter", start=end + 2 * HALF_HOUR, end=end + 3 * HALF_HOUR, idempotency_key="k3")

    assert [e.idempotency_key for e in calendar.events(tenant)] == ["key-1", "key-2"]
    day = (start - dt.timedelta(hours=9), start + dt.timedelta(hours=9))
    assert calendar.busy(tenant, *day) == [(start, end), (end, end + HALF_HOUR), (end + HALF_HOUR, end + 3 * HALF_HOUR)]
    blocks = [e for e in radicale.events(tenant).values() if "CATEGORIES" in e]
    assert len(blocks) == 1 and f"CATEGORIES:{BUSY_CATEGORY}" in bytes(blocks[0].to_ical()).decode()
    assert str(blocks[0]["SUMMARY"]) == "Busy"


def test_events_written_by_other_clients_are_busy_unless_transparent(radicale: RadicaleServer, tenant: str) -> None:
    """A person's own events block slots (recurring ones expanded); free-time events and cancelled ones don't."""
    calendar = CalDAVCalendar(radicale.url_with_credentials, schedules={tenant: BERLIN})
    calendar.events(tenant)  # creates the collection
    for uid, extra in [
        ("weekly", "RRULE:FREQ=WEEKLY;COUNT=4\r\n"),
        ("transparent", "TRANSP:TRANSPARENT\r\n"),
        ("cancelled", "STATUS:CANCELLED\r\n"),
    ]:
        body = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20261117T120000\r\n"
            f"DTEND;TZID=Europe/Berlin:20261117T130000\r\nSUMMARY:Lunch\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        status, _ = radicale.request("PUT", f"/{USER}/{tenant}/{uid}.ics", body, **{"Content-Type": "text/calendar"})
        assert status == 201

    week = calendar.busy(tenant, dt.datetime(2026, 11, 23, tzinfo=UTC), dt.datetime(2026, 11, 30, tzinfo=UTC))
    assert week == [(dt.datetime(2026, 11, 24, 11, tzinfo=UTC), dt.datetime(2026, 11, 24, 12, tzinfo=UTC))]
    assert week[0][0].tzinfo == BERLIN.tz  # in the tenant's timezone
    with pytest.raises(SlotTaken):
        calendar.book(tenant, lead="Dana", start=week[0][0], end=week[0][1], idempotency_key="k")
    assert calendar.events(tenant) == []  # other clients' events are busy time, not bookings
    assert calendar.find(tenant, "missing") is None


def test_odd_tenant_ids_map_to_distinct_safe_collections(
    radicale_server: Callable[[], RadicaleServer], tmp_path: Path
) -> None:
    server = radicale_server()
    calendar = CalDAVCalendar(server.url_with_credentials)
    tenants = ["acme", "acme/x", "a b", "ü", "..", ".", "%2E%2E", "~", "x" * 256, "x" * 255 + "y", "../../etc"]
    for i, tenant in enumerate(tenants):
        start = TUE_10_BERLIN + i * HALF_HOUR
        calendar.book(tenant, lead=tenant, start=start, end=start + HALF_HOUR, idempotency_key=f"../{tenant}")

    names = [collection_name(t) for t in tenants]
    assert len(set(names)) == len(tenants)
    assert all("/" not in n and not n.startswith(".") and len(n) <= 120 for n in names)
    assert server.collections() == sorted(names)  # all directly under the base URL
    for tenant in tenants:  # each tenant sees exactly its own booking
        assert [(e.lead, e.idempotency_key) for e in calendar.events(tenant)] == [(tenant, f"../{tenant}")]
    root = server.folder / "storage" / "collection-root"
    assert [p.name for p in root.iterdir()] == [USER]  # nothing escaped the user's home
    assert sorted(p.name for p in (root / USER).iterdir()) == sorted(names)


_WORKER = r"""
import datetime as dt, json, sys
import redis
from dialog import Engine
from dialog.calendar.caldav import CalDAVCalendar
from dialog.testing import FakeClock

redis_url, caldav_url, tenant, mode, slots = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
calendar = CalDAVCalendar(caldav_url, timeout=10)
engine = Engine(redis.Redis.from_url(redis_url), calendar=calendar,
                clock=FakeClock(dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)))
calendar.events(tenant)  # warm: the collection exists and the session is open
print("ready", flush=True)
sys.stdin.readline()
out = []
for i, slot in enumerate(slots):
    if mode == "engine":
        reply = engine.handle(f"c{i}", "yes", tenant_id=tenant)
        out.append([reply.outcome, reply.event.id if reply.event else None])
    else:
        start = dt.datetime.fromisoformat(slot)
        event = calendar.book(tenant, lead=f"Lead {i}", start=start, end=start + dt.timedelta(minutes=30),
                              idempotency_key=f"key-{i}")
        out.append(["booked", event.id])
print(json.dumps(out), flush=True)
"""


def _race(
    mode: str, redis_url: str, radicale: RadicaleServer, tenant: str, slots: list[dt.datetime]
) -> list[list[list[str]]]:
    """Two processes run the worker over the same slots at once; their outputs."""
    args = [redis_url, radicale.url_with_credentials, tenant, mode, json.dumps([s.isoformat() for s in slots])]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        for p in processes:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in processes:  # released together
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [json.loads(p.communicate(timeout=60)[0]) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in processes] == [0, 0]
    return results


SLOTS = [dt.datetime(2026, 11, 24, 9, tzinfo=UTC) + i * HALF_HOUR for i in range(12)]


def test_two_engine_processes_confirming_the_same_proposals_book_one_event_each(
    radicale: RadicaleServer, redis_url: str, redis_client: redis.Redis, clock: FakeClock, tenant: str
) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    engine = Engine(redis.Redis.from_url(redis_url), calendar=calendar, clock=clock)
    for i, slot in enumerate(SLOTS):
        assert engine.propose(f"c{i}", lead=f"Lead {i}", start=slot, tenant_id=tenant).outcome == "proposed"

    results = _race("engine", redis_url, radicale, tenant, SLOTS)

    for i in range(len(SLOTS)):
        outcomes = Counter(result[i][0] for result in results)
        assert outcomes == Counter(booked=1, already_booked=1), (i, outcomes)
        assert results[0][i][1] == results[1][i][1] is not None  # both name the one event
    stored = radicale.events(tenant)
    assert len(stored) == len(SLOTS)
    assert sorted(_utc(e, "DTSTART") for e in stored.values()) == SLOTS
    assert {str(e["UID"]) for e in stored.values()} == {r[1] for r in results[0]}


def test_two_processes_booking_the_same_keys_at_once_leave_one_event_per_key(
    radicale: RadicaleServer, redis_url: str, tenant: str
) -> None:
    """Below the engine: the server's conditional PUT alone keeps one event per key."""
    results = _race("calendar", redis_url, radicale, tenant, SLOTS)

    assert results[0] == results[1] == [["booked", f"key-{i}"] for i in range(len(SLOTS))]
    assert sorted(str(e["UID"]) for e in radicale.events(tenant).values()) == sorted(f"key-{i}" for i in range(12))


def test_radicale_stopped_mid_conversation_keeps_the_proposal_and_books_it_once_after_the_restart(
    radicale_server: Callable[[], RadicaleServer], redis_url: str, redis_client: redis.Redis, clock: FakeClock
) -> None:
    server = radicale_server()
    timeout = 2.0
    calendar = CalDAVCalendar(server.url_with_credentials, timeout=timeout, schedules={"acme": BERLIN})
    engine = Engine(redis.Redis.from_url(redis_url), calendar=calendar, clock=clock)
    engine.handle("conv-1", "Schedule a call with Dana Scully tomorrow at 10am", tenant_id="acme")

    server.stop()
    began = time.monotonic()
    with pytest.raises(CalendarUnavailable) as raised:
        engine.handle("conv-1", "yes", tenant_id="acme")
    assert time.monotonic() - began < timeout
    assert raised.value.tenant_id == "acme" and PASSWORD not in str(raised.value)
    snapshot = engine.snapshot("conv-1", tenant_id="acme")
    assert snapshot is not None and snapshot.state is State.AWAITING_CONFIRMATION and snapshot.booking_pending
    assert snapshot.proposal is not None and snapshot.proposal.start == TUE_10_BERLIN

    server.start()  # the same storage folder and port
    booked = engine.handle("conv-1", "yes", tenant_id="acme")
    again = engine.handle("conv-1", "yes", tenant_id="acme")

    assert booked.outcome == "booked" and again.outcome == "already_booked"
    assert booked.event is not None and again.event is not None and again.event.id == booked.event.id
    (event,) = server.events("acme").values()
    assert _utc(event, "DTSTART") == TUE_10_BERLIN and str(event["UID"]) == booked.event.id


def test_a_server_that_never_answers_is_unavailable_within_the_timeout(
    radicale: RadicaleServer, redis_url: str, redis_client: redis.Redis, clock: FakeClock, tenant: str
) -> None:
    """A host that accepts connections and then says nothing: "yes" fails after the timeout, not later."""
    engine = Engine(redis_client, calendar=CalDAVCalendar(radicale.url_with_credentials), clock=clock)
    engine.handle("conv-1", "Schedule a call with Dana Scully tomorrow at 10am", tenant_id=tenant)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # connections queue in the backlog; nothing is ever read or answered
        port = silent.getsockname()[1]
        timeout = 0.5
        stuck = CalDAVCalendar(f"http://{USER}:pw@127.0.0.1:{port}/{USER}/", timeout=timeout)
        other = Engine(redis.Redis.from_url(redis_url), calendar=stuck, clock=clock)  # another container
        began = time.monotonic()
        with pytest.raises(CalendarUnavailable):
            other.handle("conv-1", "yes", tenant_id=tenant)
        elapsed = time.monotonic() - began
    assert timeout <= elapsed < timeout + 0.5
    snapshot = engine.snapshot("conv-1", tenant_id=tenant)
    assert snapshot is not None and snapshot.state is State.AWAITING_CONFIRMATION
    assert engine.handle("conv-1", "yes", tenant_id=tenant).outcome == "booked"
    assert len(radicale.events(tenant)) == 1


def test_credentials_stay_out_of_messages_and_logs(
    radicale: RadicaleServer, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    secrets = [PASSWORD, "s3cret", base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()]
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    assert all(s not in repr(calendar) and s not in calendar.base_url for s in secrets)
    with caplog.at_level(logging.DEBUG):
        calendar.book(tenant, lead="Dana", start=TUE_10_BERLIN, end=TUE_10_BERLIN + HALF_HOUR, idempotency_key="k")
        wrong = CalDAVCalendar(radicale.url, username=USER, password="s3cret-but-wrong")
        with pytest.raises(CalendarUnavailable) as refused:
            wrong.busy(tenant, TUE_10_BERLIN, TUE_10_BERLIN + HALF_HOUR)
        closed = CalDAVCalendar(radicale.url_with_credentials.replace(str(radicale.port), str(free_port())))
        with pytest.raises(CalendarUnavailable) as down:
            closed.events(tenant)
    assert caplog.records  # the libraries did log, at DEBUG
    for text in (caplog.text, str(refused.value), str(down.value), repr(down.value.__cause__)):
        assert all(s not in text for s in secrets), text
    assert "s3cret-but-wrong" not in str(refused.value)


# --- move and cancel --------------------------------------------------------------------------


def _resource_body(radicale: RadicaleServer, tenant: str, event_id: str) -> bytes:
    status, body = radicale.request("GET", f"/{USER}/{tenant}/{event_id}.ics")
    assert status == 200, status
    return body


def _stored(radicale: RadicaleServer, tenant: str, event_id: str) -> icalendar.Component:
    (event,) = icalendar.Calendar.from_ical(_resource_body(radicale, tenant, event_id)).walk("VEVENT")
    return event


def _lines(event: icalendar.Component, name: str) -> list[str]:
    value = event.get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def test_a_move_keeps_the_id_and_every_instance_sees_the_new_time(radicale: RadicaleServer, tenant: str) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials, schedules={tenant: BERLIN})
    other = CalDAVCalendar(radicale.url_with_credentials, schedules={tenant: BERLIN})  # another process's view
    start, end = TUE_10_BERLIN, TUE_10_BERLIN + HALF_HOUR
    booked = calendar.book(tenant, lead="Dana Scully", start=start, end=end, idempotency_key="key-1")
    later = start + 4 * HALF_HOUR

    moved = calendar.move(tenant, booked.id, start=later, end=later + HALF_HOUR, idempotency_key="move-1")

    assert moved.id == booked.id == "key-1" and moved.idempotency_key == "key-1" and moved.lead == "Dana Scully"
    assert moved.start == later and moved.end == later + HALF_HOUR
    assert moved.start.tzinfo == BERLIN.tz  # in the tenant's timezone, like a booking
    assert calendar.events(tenant) == other.events(tenant) == [moved]
    assert other.find(tenant, "key-1") == moved
    assert other.busy(tenant, start, end) == []  # the old time is free again
    assert other.busy(tenant, later, later + HALF_HOUR) == [(later, later + HALF_HOUR)]
    (href,) = radicale.events(tenant)  # the same resource, rewritten in place
    assert href == f"/{USER}/{tenant}/key-1.ics"
    stored = _stored(radicale, tenant, "key-1")
    assert str(stored["UID"]) == "key-1"
    assert _utc(stored, "DTSTART") == later and _utc(stored, "DTEND") == later + HALF_HOUR
    assert stored.decoded("SEQUENCE") == 1
    assert _lines(stored, "X-DIALOG-MOVED") == ["20261124T110000Z/20261124T113000Z move-1"]


def test_a_replayed_move_returns_the_first_result_and_moves_nothing(radicale: RadicaleServer, tenant: str) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials, schedules={tenant: BERLIN})
    other = CalDAVCalendar(radicale.url_with_credentials, schedules={tenant: BERLIN})
    start = TUE_10_BERLIN
    booked = calendar.book(tenant, lead="Dana", start=start, end=start + HALF_HOUR, idempotency_key="key-1")
    first_time, second_time = start + 2 * HALF_HOUR, start + 6 * HALF_HOUR

    first = calendar.move(tenant, booked.id, start=first_time, end=first_time + HALF_HOUR, idempotency_key="m-1")
    body = _resource_body(radicale, tenant, booked.id)
    again = other.move(tenant, booked.id, start=first_time, end=first_time + HALF_HOUR, idempotency_key="m-1")
    assert again == first and _resource_body(radicale, tenant, booked.id) == body  # not even rewritten

    # Moved elsewhere under another key, a replay of the first key changes nothing more: it answers
    # what it answered the first time and leaves the event where the later move put it.
    second = calendar.move(tenant, booked.id, start=second_time, end=second_time + HALF_HOUR, idempotency_key="m-2")
    body = _resource_body(radicale, tenant, booked.id)
    replay = other.move(tenant, booked.id, start=start, end=start + HALF_HOUR, idempotency_key="m-1")
    assert replay == first and replay.start == first_time
    assert _resource_body(radicale, tenant, booked.id) == body
    assert other.events(tenant) == [second] and second.start == second_time
    assert _stored(radicale, tenant, booked.id).decoded("SEQUENCE") == 2


def test_moving_onto_busy_time_or_another_event_raises_slot_taken_and_leaves_it(
    radicale: RadicaleServer, tenant: str
) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    start = TUE_10_BERLIN
    dana = calendar.book(tenant, lead="Dana", start=start, end=start + HALF_HOUR, idempotency_key="key-1")
    fox_start = start + 2 * HALF_HOUR
    fox = calendar.book(tenant, lead="Fox", start=fox_start, end=fox_start + HALF_HOUR, idempotency_key="key-2")
    calendar.block(tenant, start + 4 * HALF_HOUR, start + 6 * HALF_HOUR)
    body = _resource_body(radicale, tenant, dana.id)

    for new_start in (start + 2 * HALF_HOUR - dt.timedelta(minutes=15), start + 5 * HALF_HOUR):
        with pytest.raises(SlotTaken):
            calendar.move(tenant, dana.id, start=new_start, end=new_start + HALF_HOUR, idempotency_key="m-1")
    assert calendar.events(tenant) == [dana, fox]
    assert _resource_body(radicale, tenant, dana.id) == body

    # The event's own time does not count, and the refused key is free for a later move.
    overlap_self = start + dt.timedelta(minutes=15)
    moved = calendar.move(tenant, dana.id, start=overlap_self, end=overlap_self + HALF_HOUR, idempotency_key="m-1")
    assert moved.start == overlap_self and calendar.events(tenant) == [moved, fox]
    adjacent = start + 3 * HALF_HOUR  # between Fox and the busy time
    assert calendar.move(tenant, dana.id, start=adjacent, end=adjacent + HALF_HOUR, idempotency_key="m-2").start == (
        adjacent
    )


def test_moving_or_cancelling_an_event_that_is_not_a_booking(radicale: RadicaleServer, tenant: str) -> None:
    """Missing ids, busy time and other clients' events are no such event: not found, nothing cancelled."""
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    start, end = TUE_10_BERLIN, TUE_10_BERLIN + HALF_HOUR
    calendar.block(tenant, start, end)
    (busy_uid,) = (str(e["UID"]) for e in radicale.events(tenant).values())
    body = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:lunch\r\n"
        "DTSTAMP:20261101T000000Z\r\nDTSTART:20261124T120000Z\r\nDTEND:20261124T130000Z\r\n"
        "SUMMARY:Lunch\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    status, _ = radicale.request("PUT", f"/{USER}/{tenant}/lunch.ics", body, **{"Content-Type": "text/calendar"})
    assert status == 201
    later = end + 4 * HALF_HOUR

    for event_id in ("missing", busy_uid, "lunch", "../lunch"):
        with pytest.raises(EventNotFound) as raised:
            calendar.move(tenant, event_id, start=later, end=later + HALF_HOUR, idempotency_key="m-1")
        assert raised.value.tenant_id == tenant
        assert calendar.cancel(tenant, event_id, idempotency_key="c-1") is None
        assert calendar.cancel(tenant, event_id, idempotency_key="c-1") is None  # the replay, the same
    with pytest.raises(EventNotFound):  # a tenant whose collection does not exist yet
        calendar.move(f"{tenant}-new", "missing", start=later, end=later + HALF_HOUR, idempotency_key="m-1")
    stored = radicale.events(tenant)
    assert len(stored) == 2 and not any("STATUS" in e or "X-DIALOG-MOVED" in e for e in stored.values())
    lunch = (dt.datetime(2026, 11, 24, 12, tzinfo=UTC), dt.datetime(2026, 11, 24, 13, tzinfo=UTC))
    assert calendar.busy(tenant, start, lunch[1]) == [(start, end), lunch]


def test_a_cancel_frees_the_slot_returns_the_event_and_its_replay_returns_the_same(
    radicale: RadicaleServer, tenant: str
) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials, schedules={tenant: BERLIN})
    other = CalDAVCalendar(radicale.url_with_credentials, schedules={tenant: BERLIN})
    start, end = TUE_10_BERLIN, TUE_10_BERLIN + HALF_HOUR
    booked = calendar.book(tenant, lead="Dana", start=start, end=end, idempotency_key="key-1")
    kept = calendar.book(tenant, lead="Fox", start=end, end=end + HALF_HOUR, idempotency_key="key-2")

    gone = calendar.cancel(tenant, booked.id, idempotency_key="c-1")

    assert gone == booked and gone is not None and gone.start.tzinfo == BERLIN.tz  # the event as it was
    assert calendar.events(tenant) == other.events(tenant) == [kept]
    assert other.busy(tenant, start, end) == []  # its slot is free again
    assert other.find(tenant, "key-1") is None
    body = _resource_body(radicale, tenant, booked.id)
    assert other.cancel(tenant, booked.id, idempotency_key="c-1") == booked  # the replay: the same result
    assert _resource_body(radicale, tenant, booked.id) == body  # and nothing written
    assert other.cancel(tenant, booked.id, idempotency_key="c-2") is None  # already gone
    with pytest.raises(EventNotFound):
        other.move(tenant, booked.id, start=start, end=end, idempotency_key="m-1")

    # On the server: a tombstone any client reads as cancelled, which holds the key.
    stored = _stored(radicale, tenant, booked.id)
    assert str(stored["STATUS"]) == "CANCELLED" and str(stored["TRANSP"]) == "TRANSPARENT"
    assert _lines(stored, "X-DIALOG-CANCELLED") == ["20261124T090000Z/20261124T093000Z c-1"]
    assert _resource_body(radicale, tenant, booked.id) == body

    # The slot books again under another key; the cancelled key books nothing.
    assert calendar.book(tenant, lead="Dana", start=start, end=end, idempotency_key="key-1") == booked
    assert calendar.events(tenant) == [kept]
    walter = other.book(tenant, lead="Walter", start=start, end=end, idempotency_key="key-3")
    assert calendar.events(tenant) == [walter, kept]
    assert calendar.cancel(tenant, "missing", idempotency_key="c-3") is None


def test_a_move_replayed_after_a_cancel_still_returns_its_first_result(radicale: RadicaleServer, tenant: str) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    start = TUE_10_BERLIN
    booked = calendar.book(tenant, lead="Dana", start=start, end=start + HALF_HOUR, idempotency_key="key-1")
    later = start + 4 * HALF_HOUR
    moved = calendar.move(tenant, booked.id, start=later, end=later + HALF_HOUR, idempotency_key="m-1")
    gone = calendar.cancel(tenant, booked.id, idempotency_key="c-1")
    assert gone == moved  # cancelled at the time it had then

    assert calendar.move(tenant, booked.id, start=later, end=later + HALF_HOUR, idempotency_key="m-1") == moved
    assert calendar.cancel(tenant, booked.id, idempotency_key="c-1") == moved
    assert calendar.events(tenant) == [] and calendar.busy(tenant, start, later + HALF_HOUR) == []


def _interleave(calendar: CalDAVCalendar, monkeypatch: pytest.MonkeyPatch, writer: Callable[[int], object]) -> None:
    """Run ``writer(n)`` just before the n-th conditional PUT of ``calendar`` (n from 0): a second
    writer changing the event after this calendar read it."""
    replace = calendar._replace
    calls = iter(range(100))

    def interleaved(*args: Any, **kwargs: Any) -> bool:
        writer(next(calls))
        return replace(*args, **kwargs)

    monkeypatch.setattr(calendar, "_replace", interleaved)


def test_a_change_between_the_read_and_the_write_is_reread_never_overwritten(
    radicale: RadicaleServer, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    second_writer = CalDAVCalendar(radicale.url_with_credentials)
    start = TUE_10_BERLIN
    booked = calendar.book(tenant, lead="Dana", start=start, end=start + HALF_HOUR, idempotency_key="key-1")
    theirs, mine = start + 2 * HALF_HOUR, start + 4 * HALF_HOUR
    results: list[object] = []

    def move_first(n: int) -> None:
        if n == 0:
            results.append(
                second_writer.move(tenant, booked.id, start=theirs, end=theirs + HALF_HOUR, idempotency_key="theirs")
            )

    _interleave(calendar, monkeypatch, move_first)
    moved = calendar.move(tenant, booked.id, start=mine, end=mine + HALF_HOUR, idempotency_key="mine")

    # Their PUT landed first; ours got 412, re-read the event (their line in it) and wrote on top.
    assert moved.start == mine and calendar.events(tenant) == [moved]
    stored = _stored(radicale, tenant, booked.id)
    assert [line.rsplit(" ", 1)[1] for line in _lines(stored, "X-DIALOG-MOVED")] == ["theirs", "mine"]
    assert stored.decoded("SEQUENCE") == 2
    their_result = results[0]
    assert isinstance(their_result, Event) and their_result.start == theirs
    replay = second_writer.move(tenant, booked.id, start=theirs, end=theirs + HALF_HOUR, idempotency_key="theirs")
    assert replay == their_result and second_writer.events(tenant) == [moved]  # their change kept, not redone

    # The same key applied by someone else in between: the re-read finds it and writes nothing more.
    monkeypatch.undo()
    back = start + 6 * HALF_HOUR

    def same_key_first(n: int) -> None:
        if n == 0:
            results.append(
                second_writer.move(tenant, booked.id, start=back, end=back + HALF_HOUR, idempotency_key="same")
            )

    _interleave(calendar, monkeypatch, same_key_first)
    assert calendar.move(tenant, booked.id, start=back, end=back + HALF_HOUR, idempotency_key="same") == results[1]
    assert _lines(_stored(radicale, tenant, booked.id), "X-DIALOG-MOVED")[2:] == [
        "20261124T120000Z/20261124T123000Z same"
    ]

    # A cancel racing a move: it cancels the event at the time the move gave it, and says so.
    monkeypatch.undo()
    last = start + 8 * HALF_HOUR

    def move_before_cancel(n: int) -> None:
        if n == 0:
            second_writer.move(tenant, booked.id, start=last, end=last + HALF_HOUR, idempotency_key="before")

    _interleave(calendar, monkeypatch, move_before_cancel)
    gone = calendar.cancel(tenant, booked.id, idempotency_key="cancel")
    assert gone is not None and gone.start == last and calendar.events(tenant) == []
    stored = _stored(radicale, tenant, booked.id)
    assert len(_lines(stored, "X-DIALOG-MOVED")) == 4 and str(stored["STATUS"]) == "CANCELLED"


def test_a_cancel_between_the_read_and_the_write_of_a_move_is_not_undone(
    radicale: RadicaleServer, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    second_writer = CalDAVCalendar(radicale.url_with_credentials)
    start = TUE_10_BERLIN
    booked = calendar.book(tenant, lead="Dana", start=start, end=start + HALF_HOUR, idempotency_key="key-1")
    _interleave(calendar, monkeypatch, lambda n: second_writer.cancel(tenant, booked.id, idempotency_key="c-1"))
    later = start + 4 * HALF_HOUR

    with pytest.raises(EventNotFound):
        calendar.move(tenant, booked.id, start=later, end=later + HALF_HOUR, idempotency_key="m-1")

    stored = _stored(radicale, tenant, booked.id)
    assert str(stored["STATUS"]) == "CANCELLED" and "X-DIALOG-MOVED" not in stored
    assert _utc(stored, "DTSTART") == start and calendar.events(tenant) == []


def test_a_writer_that_always_gets_in_first_makes_the_move_unavailable_not_lost(
    radicale: RadicaleServer, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    second_writer = CalDAVCalendar(radicale.url_with_credentials)
    start = TUE_10_BERLIN
    booked = calendar.book(tenant, lead="Dana", start=start, end=start + HALF_HOUR, idempotency_key="key-1")

    def theirs(n: int) -> None:
        at = start + (n + 1) * 2 * HALF_HOUR
        second_writer.move(tenant, booked.id, start=at, end=at + HALF_HOUR, idempotency_key=f"theirs-{n}")

    _interleave(calendar, monkeypatch, theirs)
    mine = start + 20 * HALF_HOUR
    with pytest.raises(CalendarUnavailable) as raised:
        calendar.move(tenant, booked.id, start=mine, end=mine + HALF_HOUR, idempotency_key="mine")
    assert "412" in str(raised.value) and raised.value.tenant_id == tenant and PASSWORD not in str(raised.value)
    with pytest.raises(CalendarUnavailable):
        calendar.cancel(tenant, booked.id, idempotency_key="cancel")

    stored = _stored(radicale, tenant, booked.id)
    keys = [line.rsplit(" ", 1)[1] for line in _lines(stored, "X-DIALOG-MOVED")]
    assert keys == [f"theirs-{n}" for n in range(2 * ATTEMPTS)]  # every one of theirs, none of ours
    assert "STATUS" not in stored and _utc(stored, "DTSTART") == start + 2 * ATTEMPTS * 2 * HALF_HOUR
    monkeypatch.undo()
    assert calendar.move(tenant, booked.id, start=mine, end=mine + HALF_HOUR, idempotency_key="mine").start == mine


def test_instances_moving_one_event_at_once_keep_every_change(radicale: RadicaleServer, tenant: str) -> None:
    """Threads with an instance (and an HTTP session) each: different keys all land, one key once."""
    setup = CalDAVCalendar(radicale.url_with_credentials)
    start = TUE_10_BERLIN
    booked = setup.book(tenant, lead="Dana", start=start, end=start + HALF_HOUR, idempotency_key="key-1")
    targets = [start + (2 + 2 * i) * HALF_HOUR for i in range(3)]
    barrier = threading.Barrier(len(targets) + 2)
    results: dict[str, Event] = {}

    def move(name: str, key: str, at: dt.datetime) -> None:
        calendar = CalDAVCalendar(radicale.url_with_credentials, timeout=20)
        calendar.events(tenant)  # warm: the session is open
        barrier.wait(timeout=30)
        results[name] = calendar.move(tenant, booked.id, start=at, end=at + HALF_HOUR, idempotency_key=key)

    threads = [threading.Thread(target=move, args=(f"k{i}", f"k{i}", at)) for i, at in enumerate(targets)]
    threads += [threading.Thread(target=move, args=(f"same{i}", "same", targets[0])) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # None failed: 4 distinct keys make 4 writes in all, so no writer sees 4 others land before its own.
    assert len(results) == len(threads)

    assert results["same0"] == results["same1"]
    stored = _stored(radicale, tenant, booked.id)
    keys = sorted(line.rsplit(" ", 1)[1] for line in _lines(stored, "X-DIALOG-MOVED"))
    assert keys == ["k0", "k1", "k2", "same"]  # every change recorded once
    (final,) = setup.events(tenant)
    assert final.start in targets and stored.decoded("SEQUENCE") == 4


def test_the_same_key_landing_on_the_last_attempt_is_found_not_reported_unavailable(
    radicale: RadicaleServer, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    second_writer = CalDAVCalendar(radicale.url_with_credentials)
    start = TUE_10_BERLIN
    booked = calendar.book(tenant, lead="Dana", start=start, end=start + HALF_HOUR, idempotency_key="key-1")
    mine = start + 20 * HALF_HOUR
    landed: list[Event] = []

    def others_then_the_same_key(n: int) -> None:
        if n < ATTEMPTS - 1:
            at = start + (n + 1) * 2 * HALF_HOUR
            second_writer.move(tenant, booked.id, start=at, end=at + HALF_HOUR, idempotency_key=f"theirs-{n}")
        else:  # a replay of our own move (another process) wins the race for the last write
            landed.append(
                second_writer.move(tenant, booked.id, start=mine, end=mine + HALF_HOUR, idempotency_key="mine")
            )

    _interleave(calendar, monkeypatch, others_then_the_same_key)
    moved = calendar.move(tenant, booked.id, start=mine, end=mine + HALF_HOUR, idempotency_key="mine")

    assert [moved] == landed == calendar.events(tenant)
    stored = _stored(radicale, tenant, booked.id)
    assert [line.rsplit(" ", 1)[1] for line in _lines(stored, "X-DIALOG-MOVED")] == [
        *(f"theirs-{n}" for n in range(ATTEMPTS - 1)),
        "mine",
    ]


# --- the booking's evidence (spec 4.5): the note as the event's DESCRIPTION --------------------------

NOTE = 'Confirmed by "uh yeah sure" on the voice channel, message m-1 (dialog).'


def _unfolded(body: bytes) -> str:
    """The raw resource with its content lines unfolded (RFC 5545 3.1), escapes left as they are."""
    return body.decode().replace("\r\n ", "").replace("\r\n\t", "")


def test_a_bookings_note_is_its_description_read_back_by_every_instance_and_kept_by_a_move(
    radicale: RadicaleServer, tenant: str
) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials, schedules={tenant: BERLIN})
    other = CalDAVCalendar(radicale.url_with_credentials, schedules={tenant: BERLIN})  # another process's view
    start, end = TUE_10_BERLIN, TUE_10_BERLIN + HALF_HOUR

    booked = calendar.book(tenant, lead="Dana Scully", start=start, end=end, idempotency_key="key-1", note=NOTE)

    assert booked.note == NOTE
    # On the server: the DESCRIPTION, iCalendar-escaped (the comma), read back by an independent client.
    assert str(_stored(radicale, tenant, "key-1")["DESCRIPTION"]) == NOTE
    raw = _unfolded(_resource_body(radicale, tenant, "key-1"))
    assert 'DESCRIPTION:Confirmed by "uh yeah sure" on the voice channel\\, message m-1 (dialog).\r\n' in raw
    for view in (calendar, other):
        assert [e.note for e in view.events(tenant)] == [NOTE]
        found = view.find(tenant, "key-1")
        assert found is not None and found.note == NOTE
    again = other.book(tenant, lead="Dana Scully", start=start, end=end, idempotency_key="key-1", note="other")
    assert again.note == NOTE  # the first booking's evidence, not the replay's

    later = start + 4 * HALF_HOUR
    moved = other.move(tenant, booked.id, start=later, end=later + HALF_HOUR, idempotency_key="move-1")
    assert moved.note == NOTE and moved.start == later
    assert str(_stored(radicale, tenant, "key-1")["DESCRIPTION"]) == NOTE
    assert [e.note for e in calendar.events(tenant)] == [NOTE]
    replayed = calendar.move(tenant, booked.id, start=start, end=end, idempotency_key="move-1")
    assert replayed.note == NOTE and replayed.start == later
    gone = calendar.cancel(tenant, booked.id, idempotency_key="cancel-1")
    assert gone is not None and gone.note == NOTE
    assert str(_stored(radicale, tenant, "key-1")["DESCRIPTION"]) == NOTE  # the tombstone keeps it


def test_a_note_with_text_special_characters_round_trips(radicale: RadicaleServer, tenant: str) -> None:
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    other = CalDAVCalendar(radicale.url_with_credentials)
    note = 'said "ja; klar, gern" \\ Zoë\nline two\r\nline three ' + "Ω" * 80  # escapes, line breaks, folding
    start = TUE_10_BERLIN
    booked = calendar.book(tenant, lead="Dana", start=start, end=start + HALF_HOUR, idempotency_key="k", note=note)
    read_back = note.replace("\r\n", "\n")  # iCalendar text has one kind of line break
    assert booked.note == read_back
    assert [e.note for e in other.events(tenant)] == [read_back]
    assert str(_stored(radicale, tenant, "k")["DESCRIPTION"]) == read_back


def test_events_without_a_description_read_with_an_empty_note(radicale: RadicaleServer, tenant: str) -> None:
    """A person's event, a booking written before notes existed, a booking made without a note: ""."""
    calendar = CalDAVCalendar(radicale.url_with_credentials)
    calendar.events(tenant)  # creates the collection
    for uid, extra in [("lunch", ""), ("older", "X-DIALOG-KIND:booking\r\nX-DIALOG-LEAD:Fox\r\n")]:
        body = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20261101T000000Z\r\nDTSTART:20261124T120000Z\r\n"
            f"DTEND:20261124T130000Z\r\nSUMMARY:Lunch\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        status, _ = radicale.request("PUT", f"/{USER}/{tenant}/{uid}.ics", body, **{"Content-Type": "text/calendar"})
        assert status == 201
    start = TUE_10_BERLIN
    plain = calendar.book(tenant, lead="Dana", start=start, end=start + HALF_HOUR, idempotency_key="plain")
    assert plain.note == "" and "DESCRIPTION" not in _stored(radicale, tenant, "plain")

    lunch = calendar.find(tenant, "lunch")
    assert lunch is not None and lunch.note == ""
    assert [(e.id, e.note) for e in calendar.events(tenant)] == [("plain", ""), ("older", "")]
    later = start + 10 * HALF_HOUR
    moved = calendar.move(tenant, "older", start=later, end=later + HALF_HOUR, idempotency_key="m-1")
    assert moved.note == "" and moved.lead == "Fox" and "DESCRIPTION" not in _stored(radicale, tenant, "older")
