"""Redis going away mid-conversation: a clear error within 2 s, nothing booked, and then it carries on."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from dialog import Engine, InMemoryCalendar, StoreUnavailable
from dialog.testing import FakeClock
from tests.reliability import Table
from tests.support import RedisServer

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"


def test_a_pending_proposal_survives_a_restart_of_a_persistent_redis(
    redis_server: Callable[..., RedisServer], calendar: InMemoryCalendar, clock: FakeClock, reliability: Table
) -> None:
    server = redis_server(appendonly=True)
    Engine(redis.Redis.from_url(server.url), calendar=calendar, clock=clock).handle("c1", PROPOSE)
    server.stop()
    server.start()  # same port, same folder: the append-only file is replayed
    engine = Engine(redis.Redis.from_url(server.url), calendar=calendar, clock=clock)
    reply = engine.handle("c1", "yes")
    assert reply.outcome == "booked"
    reliability.record(
        "Redis (appendonly) restarted between two turns", expected=1, found=len(calendar.events("default"))
    )
    assert len(calendar.events("default")) == 1


def test_redis_stopped_mid_conversation_then_back(
    redis_server: Callable[..., RedisServer], calendar: InMemoryCalendar, clock: FakeClock, reliability: Table
) -> None:
    server = redis_server(appendonly=True)
    engine = Engine(redis.Redis.from_url(server.url), calendar=calendar, clock=clock)
    engine.handle("c1", PROPOSE)
    server.stop()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        engine.handle("c1", "yes")
    assert time.monotonic() - started < 2.0
    assert caught.value.conversation_id == "c1"
    assert calendar.events("default") == []  # nothing booked without committed state
    server.start()
    reply = engine.handle("c1", "yes")  # the same engine and client carry on
    assert reply.outcome == "booked"
    reliability.record("Redis stopped mid-conversation, then back", expected=1, found=len(calendar.events("default")))
    assert len(calendar.events("default")) == 1
