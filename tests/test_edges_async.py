"""The edge cases of ``test_edges`` against ``AsyncEngine`` on redis.asyncio (same store, same flow)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis
import redis.asyncio

from dialog import CorruptState, Engine, InMemoryCalendar
from dialog.engine import AsyncEngine
from dialog.results import Snapshot
from dialog.store.keys import ConversationKeys
from dialog.testing import FakeClock
from tests.test_edges import BAD, SCHEDULE, Crash, assert_kept, crash_before_the_calendar, seed_record, value_at

# Finding A, kinds 1 (AssertionError), 5 (_Unreadable escapes) and 6 (StoreUnavailable after 50 writes).
ASYNC_KINDS = [
    "1-awaiting-without-proposal",
    "5-hash-at-expired-marker",
    "6-version-token-leading-space",
    "6-version-token-plus-sign",
    "6-version-token-underscore",
]


def run(
    redis_url: str, calendar: InMemoryCalendar, clock: FakeClock, body: Callable[[AsyncEngine], Awaitable[None]]
) -> None:
    async def main() -> None:
        engine = AsyncEngine(redis.asyncio.Redis.from_url(redis_url), calendar=calendar, clock=clock)
        try:
            await body(engine)
        finally:
            await engine.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("kind", ASYNC_KINDS)
def test_async_bad_stored_data_is_corrupt_state_once_then_the_conversation_starts_afresh(
    redis_url: str, redis_client: redis.Redis, calendar: InMemoryCalendar, clock: FakeClock, kind: str
) -> None:
    """Finding A on AsyncEngine: CorruptState once (bad value kept aside), then a fresh conversation."""
    planted = BAD[kind](redis_client, seed_record(redis_client, clock))

    async def body(engine: AsyncEngine) -> None:
        with pytest.raises(CorruptState) as caught:
            await engine.handle("c1", "yes")
        assert_kept(redis_client, caught.value, planted)
        assert (await engine.handle("c1", "yes")).outcome == "nothing_pending"
        assert (await engine.handle("c1", SCHEDULE)).outcome == "proposed"
        assert value_at(redis_client, caught.value.kept_at or "") == planted

    run(redis_url, calendar, clock, body)


@pytest.mark.parametrize("kind", ASYNC_KINDS)
def test_async_snapshot_of_bad_stored_data_is_corrupt_state_or_none(
    redis_url: str, redis_client: redis.Redis, calendar: InMemoryCalendar, clock: FakeClock, kind: str
) -> None:
    """Finding A on AsyncEngine: snapshot raises only CorruptState, then returns None."""
    planted = BAD[kind](redis_client, seed_record(redis_client, clock))

    async def body(engine: AsyncEngine) -> None:
        first: Snapshot | None
        try:
            first = await engine.snapshot("c1")
        except CorruptState as exc:
            assert_kept(redis_client, exc, planted)
            first = None
        assert first is None
        assert await engine.snapshot("c1") is None

    run(redis_url, calendar, clock, body)


def test_async_sweep_is_not_stopped_by_an_unreadable_record(
    redis_url: str,
    redis_client: redis.Redis,
    make_engine: Callable[..., Engine],
    calendar: InMemoryCalendar,
    clock: FakeClock,
) -> None:
    """Finding D (3) on AsyncEngine: an unreadable record is skipped; the other confirmation is settled."""
    make_engine().handle("c1", SCHEDULE, tenant_id="acme")
    with pytest.raises(Crash):
        make_engine(checkpoint=crash_before_the_calendar).handle("c1", "yes", tenant_id="acme")
    redis_client.set(ConversationKeys("umbrella", "c1").conversation, b"7.1|not a record", ex=600)

    async def body(engine: AsyncEngine) -> None:
        settled = await engine.recover()
        assert [(r.tenant_id, r.outcome) for r in settled] == [("acme", "booked")]

    run(redis_url, calendar, clock, body)
    assert len(calendar.events("acme")) == 1
