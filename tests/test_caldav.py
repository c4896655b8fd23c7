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
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import icalendar
import pytest
import redis

from dialog import CalendarUnavailable, Engine, Schedule, SlotTaken, State
from dialog.calendar.caldav import BUSY_CATEGORY, CalDAVCalendar, collection_name
from dialog.testing import FakeClock
from tests.fixtures_radicale import PASSWORD, USER, RadicaleServer

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
        closed = CalDAVCalendar(radicale.url_with_credentials.replace(str(radicale.port), str(_closed_port())))
        with pytest.raises(CalendarUnavailable) as down:
            closed.events(tenant)
    assert caplog.records  # the libraries did log, at DEBUG
    for text in (caplog.text, str(refused.value), str(down.value), repr(down.value.__cause__)):
        assert all(s not in text for s in secrets), text
    assert "s3cret-but-wrong" not in str(refused.value)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
