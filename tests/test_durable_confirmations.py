"""A recorded confirmation is never dropped: not by the conversation's TTL, a crash, or a long outage.

Finding 2 of issue 10: the recorded "yes" lived under the conversation's 10-minute TTL, so a
calendar outage longer than the TTL, or a crash after the calendar call followed by the TTL,
left an event in the calendar while the user heard "expired" or a re-prompt. These tests use
a 2-second TTL and real Redis expiry.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import pytest
import redis

from dialog import CalendarUnavailable, Engine, InMemoryCalendar
from dialog.calendar.base import Event
from dialog.engine import Checkpoint
from dialog.store.keys import ConversationKeys
from dialog.testing import FakeClock
from tests.reliability import Table
from tests.test_crashes import Crash, crash_at

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"
TTL = 2  # seconds: long enough that the first turns never outlive it on a loaded machine


class FlakyCalendar(InMemoryCalendar):
    """An in-memory calendar that can be down, or slow, when booking."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.delay = 0.0

    def book(
        self, tenant_id: str, *, lead: str, start: dt.datetime, end: dt.datetime, idempotency_key: str, note: str = ""
    ) -> Event:
        if self.down:
            raise CalendarUnavailable("the calendar is down (injected)", tenant_id=tenant_id)
        time.sleep(self.delay)
        return super().book(tenant_id, lead=lead, start=start, end=end, idempotency_key=idempotency_key, note=note)

    def move(
        self, tenant_id: str, event_id: str, *, start: dt.datetime, end: dt.datetime, idempotency_key: str
    ) -> Event:
        if self.down:
            raise CalendarUnavailable("the calendar is down (injected)", tenant_id=tenant_id)
        return super().move(tenant_id, event_id, start=start, end=end, idempotency_key=idempotency_key)


@pytest.fixture
def flaky() -> FlakyCalendar:
    return FlakyCalendar()


def past_the_ttl() -> None:
    time.sleep(TTL + 0.3)


@pytest.mark.parametrize("cache_size", [10_000, 0])
def test_a_yes_recorded_while_the_calendar_is_down_is_booked_after_the_ttl(
    redis_client: redis.Redis, flaky: FlakyCalendar, clock: FakeClock, cache_size: int, reliability: Table
) -> None:
    engine = Engine(redis_client, calendar=flaky, clock=clock, ttl_seconds=TTL, cache_size=cache_size)
    engine.handle("c1", PROPOSE)
    flaky.down = True
    with pytest.raises(CalendarUnavailable):
        engine.handle("c1", "yes")
    past_the_ttl()
    flaky.down = False
    reply = engine.handle("c1", "yes")
    events = flaky.events("default")
    reliability.record("confirmation across the TTL, calendar down", expected=1, found=len(events))
    assert reply.outcome == "booked"
    assert [reply.event] == events


def test_while_a_confirmation_is_outstanding_the_conversation_outlives_its_ttl(
    redis_client: redis.Redis, flaky: FlakyCalendar, clock: FakeClock
) -> None:
    engine = Engine(redis_client, calendar=flaky, clock=clock, ttl_seconds=TTL)
    engine.handle("c1", PROPOSE)
    flaky.down = True
    with pytest.raises(CalendarUnavailable):
        engine.handle("c1", "yes")
    keys = ConversationKeys("default", "c1")
    assert redis_client.pttl(keys.conversation) > 24 * 3600 * 1000  # long, but still a TTL
    flaky.down = False
    engine.handle("c1", "hmm")  # settles it
    assert 0 < redis_client.pttl(keys.conversation) <= TTL * 1000


def test_a_crash_after_the_calendar_call_then_the_ttl_is_settled_by_the_sweep(
    redis_url: str, redis_client: redis.Redis, flaky: FlakyCalendar, clock: FakeClock, reliability: Table
) -> None:
    def engine(**options: object) -> Engine:
        return Engine(redis.Redis.from_url(redis_url), calendar=flaky, clock=clock, ttl_seconds=TTL, **options)  # type: ignore[arg-type]

    engine().handle("c1", PROPOSE)
    with pytest.raises(Crash):
        engine(checkpoint=crash_at(Checkpoint.CALENDAR_CALLED)).handle("c1", "yes")
    past_the_ttl()
    swept = engine().recover()
    reliability.record("crash after the calendar call, then the TTL", expected=1, found=len(flaky.events("default")))
    assert [r.outcome for r in swept] == ["booked"]
    assert [swept[0].event] == flaky.events("default")
    again = engine().handle("c1", "yes")
    assert again.outcome == "already_booked" and again.event == swept[0].event


def test_a_calendar_slower_than_the_ttl_still_answers_booked(
    make_engine: Callable[..., Engine], flaky: FlakyCalendar
) -> None:
    engine = make_engine(calendar=flaky, ttl_seconds=TTL)
    engine.handle("c1", PROPOSE)
    flaky.delay = TTL + 0.3
    reply = engine.handle("c1", "yes")
    assert reply.outcome == "booked"
    assert [reply.event] == flaky.events("default")
    snapshot = engine.snapshot("c1")
    assert snapshot is not None and snapshot.state == "done" and snapshot.event == reply.event


def test_a_yes_after_a_booked_conversation_expired_is_already_booked_not_nothing_pending(
    make_engine: Callable[..., Engine], flaky: FlakyCalendar
) -> None:
    engine = make_engine(calendar=flaky, ttl_seconds=TTL)
    engine.handle("c1", PROPOSE)
    booked = engine.handle("c1", "yes")
    past_the_ttl()
    late = make_engine(calendar=flaky, ttl_seconds=TTL).handle("c1", "yes", channel="voice")
    assert late.outcome == "already_booked" and late.event == booked.event


def test_a_move_recorded_while_the_calendar_is_down_is_made_after_the_ttl(
    redis_client: redis.Redis, flaky: FlakyCalendar, clock: FakeClock, reliability: Table
) -> None:
    """A confirmed move of a booked call is an outstanding confirmation too: it outlives the TTL."""
    engine = Engine(redis_client, calendar=flaky, clock=clock, ttl_seconds=TTL)
    engine.handle("c1", PROPOSE)
    booked = engine.handle("c1", "yes").event
    engine.handle("c1", "can we move the call to 3pm?")
    flaky.down = True
    with pytest.raises(CalendarUnavailable):
        engine.handle("c1", "yes")
    past_the_ttl()
    flaky.down = False
    reply = engine.handle("c1", "hmm")  # whatever the words: the recorded move is made first
    events = flaky.events("default")
    reliability.record("a move confirmed across the TTL, calendar down", expected=1, found=len(events))
    assert reply.outcome == "moved"
    assert booked is not None and [(e.id, e.start.hour) for e in events] == [(booked.id, 15)]
