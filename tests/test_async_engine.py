"""AsyncEngine: the same flow on redis.asyncio; it interoperates with Engine on the same conversations."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections import Counter

import pytest
import redis.asyncio

from dialog import Engine, InMemoryCalendar, StoreUnavailable
from dialog.calendar.base import Interval
from dialog.engine import AsyncEngine
from dialog.testing import FakeClock
from tests.support import free_port

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"


def async_engine(url: str, calendar: InMemoryCalendar, clock: FakeClock) -> AsyncEngine:
    return AsyncEngine(redis.asyncio.Redis.from_url(url), calendar=calendar, clock=clock)


def test_the_async_engine_runs_the_whole_dialog(
    redis_url: str, redis_client: object, calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    async def dialog() -> list[tuple[str, str]]:
        engine = async_engine(redis_url, calendar, clock)
        try:
            said = [await engine.handle("c1", text) for text in (PROPOSE, "hmm", "can we move it", "yes", "yes")]
            snapshot = await engine.snapshot("c1")
            assert snapshot is not None and snapshot.version == said[-1].version
            return [(r.outcome, r.state) for r in said]
        finally:
            await engine.aclose()

    assert asyncio.run(dialog()) == [
        ("proposed", "awaiting_confirmation"),
        ("reprompted", "awaiting_confirmation"),
        ("rescheduled", "awaiting_confirmation"),
        ("booked", "done"),
        ("already_booked", "done"),
    ]
    assert len(calendar.events("default")) == 1


def test_sync_and_async_engines_share_conversations(
    redis_url: str, engine: Engine, calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    engine.handle("c1", PROPOSE)

    async def confirm() -> str:
        other = async_engine(redis_url, calendar, clock)
        try:
            return (await other.handle("c1", "uh yeah sure", channel="voice")).outcome
        finally:
            await other.aclose()

    assert asyncio.run(confirm()) == "booked"
    assert engine.handle("c1", "yes").outcome == "already_booked"


def test_duplicate_answers_in_flight_at_once_book_once_per_conversation(
    redis_url: str, engine: Engine, calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    for i in range(40):
        engine.handle(f"c{i}", PROPOSE, tenant_id=f"t{i}")

    async def race() -> list[str]:
        first, second = async_engine(redis_url, calendar, clock), async_engine(redis_url, calendar, clock)
        try:
            replies = await asyncio.gather(
                *(e.handle(f"c{i}", "yes", tenant_id=f"t{i}") for i in range(40) for e in (first, second))
            )
            return [r.outcome for r in replies]
        finally:
            await first.aclose()
            await second.aclose()

    assert Counter(asyncio.run(race())) == Counter(booked=40, already_booked=40)
    assert sum(len(calendar.events(f"t{i}")) for i in range(40)) == 40


def test_an_unreachable_redis_is_store_unavailable_within_2_seconds(
    calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    async def turn() -> None:
        engine = AsyncEngine(redis.asyncio.Redis(port=free_port()), calendar=calendar, clock=clock)
        try:
            await engine.handle("c1", PROPOSE)
        finally:
            await engine.aclose()

    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        asyncio.run(turn())
    assert time.monotonic() - started < 2.0


def test_a_blocking_calendar_runs_in_a_worker_thread(redis_url: str, redis_client: object, clock: FakeClock) -> None:
    """A CalDAV-like calendar must not block the event loop; the in-memory one is called inline."""
    seen: list[int] = []

    class BlockingCalendar(InMemoryCalendar):
        def busy(self, tenant_id: str, start: dt.datetime, end: dt.datetime) -> list[Interval]:
            seen.append(threading.get_ident())
            return super().busy(tenant_id, start, end)

    async def turn(calendar: InMemoryCalendar, calendar_in_thread: bool | None = None) -> int:
        client = redis.asyncio.Redis.from_url(redis_url)
        engine = AsyncEngine(client, calendar=calendar, clock=clock, calendar_in_thread=calendar_in_thread)
        try:
            await engine.handle("a", PROPOSE)
            return threading.get_ident()
        finally:
            await engine.aclose()

    loop_thread = asyncio.run(turn(BlockingCalendar(), calendar_in_thread=True))
    assert seen and seen[-1] != loop_thread
    loop_thread = asyncio.run(turn(BlockingCalendar()))  # in-memory: inline
    assert seen[-1] == loop_thread
