"""A booked event carries its evidence (spec 4.5): which words, on which channel, in which message
confirmed it, kept with the event in the calendar itself (Redis by default, or CalDAV)."""

from __future__ import annotations

import json
import uuid

import icalendar
import redis

from dialog import Engine, Schedule
from dialog.calendar.caldav import CalDAVCalendar, collection_name
from dialog.calendar.redis_calendar import RedisCalendar
from dialog.store.keys import CalendarKeys
from dialog.testing import FakeClock
from tests.conftest import MONDAY_8AM
from tests.fixtures_radicale import USER, RadicaleServer

WORDS, CHANNEL, MESSAGE = "uh yeah sure", "voice", "m-1"


def _book(engine: Engine, tenant: str) -> str:
    """Propose a call, confirm it with WORDS on CHANNEL in message MESSAGE; the booked event's id."""
    proposed = engine.handle("conv-1", "Schedule a call with Dana Scully tomorrow at 10am", tenant_id=tenant)
    assert proposed.outcome == "proposed", proposed.text
    booked = engine.handle("conv-1", WORDS, tenant_id=tenant, channel=CHANNEL, message_id=MESSAGE)
    assert booked.outcome == "booked", booked.text
    assert booked.event is not None
    return booked.event.id


def _names_the_evidence(note: str) -> None:
    assert f'"{WORDS}"' in note, note
    assert CHANNEL in note and MESSAGE in note, note


def test_the_default_redis_calendar_keeps_the_confirmations_words_channel_and_message(
    redis_url: str, redis_client: redis.Redis
) -> None:
    engine = Engine(redis_client, clock=FakeClock(MONDAY_8AM))  # no calendar: RedisCalendar on this Redis
    assert isinstance(engine.calendar, RedisCalendar)

    event_id = _book(engine, "acme")

    (event,) = engine.calendar.events("acme")
    assert event.id == event_id
    _names_the_evidence(event.note)
    found = engine.calendar.find("acme", event.idempotency_key)
    assert found is not None and found.note == event.note
    client = redis.Redis.from_url(redis_url)  # another process reads the same evidence
    try:
        (seen,) = RedisCalendar(client).events("acme")
        assert seen.note == event.note
    finally:
        client.close()
    raw = redis_client.hget(CalendarKeys("acme").events, event_id)
    assert isinstance(raw, bytes)
    assert json.loads(raw)[5] == event.note  # in the event's record itself


def test_a_caldav_calendar_keeps_the_evidence_in_the_events_description(
    radicale: RadicaleServer, redis_client: redis.Redis
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    calendar = CalDAVCalendar(radicale.url_with_credentials, schedules={tenant: Schedule(timezone="Europe/Berlin")})
    engine = Engine(redis_client, calendar=calendar, clock=FakeClock(MONDAY_8AM))

    event_id = _book(engine, tenant)

    (event,) = calendar.events(tenant)
    assert event.id == event_id
    _names_the_evidence(event.note)
    # On the server, read by an independent client: the event's DESCRIPTION, iCalendar-escaped.
    status, body = radicale.request("GET", f"/{USER}/{collection_name(tenant)}/{event_id}.ics")
    assert status == 200
    (stored,) = icalendar.Calendar.from_ical(body).walk("VEVENT")
    assert str(stored["DESCRIPTION"]) == event.note
    escaped = event.note.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    assert f"DESCRIPTION:{escaped}\r\n" in body.decode().replace("\r\n ", "")  # RFC 5545 3.3.11, unfolded
