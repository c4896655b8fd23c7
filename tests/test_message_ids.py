"""A turn is applied once: a message handled again with the same ``message_id`` returns its first reply.

Spec 4.1: a client retrying after a timeout or a 503 sends the same message id; the engine
does not apply it again and answers with the first reply (same outcome, proposal, event,
version). The last 16 message ids of a conversation are remembered while it lives.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator

import pytest
import redis.asyncio

from dialog import CalendarUnavailable, Engine, InMemoryCalendar, InvalidInput, Reply
from dialog.calendar.base import Event
from dialog.engine import AsyncEngine
from dialog.store.keys import REMEMBERED_MESSAGES
from dialog.testing import FakeClock

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"


def same(a: Reply, b: Reply) -> bool:
    return (a.outcome, a.state, a.proposal, a.event, a.version, a.text) == (
        b.outcome,
        b.state,
        b.proposal,
        b.event,
        b.version,
        b.text,
    )


@pytest.mark.parametrize("text", [PROPOSE, "can we move it", "yes", "hmm", "no"])
def test_a_retried_message_returns_its_first_reply_and_is_not_applied_again(engine: Engine, text: str) -> None:
    if text != PROPOSE:
        engine.handle("c1", PROPOSE)
    first = engine.handle("c1", text, message_id="m1")
    again = engine.handle("c1", text, message_id="m1")
    assert same(first, again)
    snapshot = engine.snapshot("c1")
    assert snapshot is not None and snapshot.version == first.version


def test_after_a_replay_the_next_message_is_applied(engine: Engine) -> None:
    engine.handle("c1", PROPOSE, message_id="k1")
    engine.handle("c1", PROPOSE, message_id="k1")
    moved = engine.handle("c1", "can we move it", message_id="k2")
    assert moved.outcome == "rescheduled" and moved.version == 2


def test_another_container_retrying_the_message_gets_the_first_reply(
    engine: Engine, make_engine: Callable[..., Engine], calendar: InMemoryCalendar
) -> None:
    engine.handle("c1", PROPOSE)
    first = engine.handle("c1", "yes", message_id="yes-1", channel="voice")
    again = make_engine().handle("c1", "yes", message_id="yes-1", channel="text")
    assert first.outcome == "booked" and same(first, again) and again.channel == "voice"
    assert len(calendar.events("default")) == 1


def test_the_same_id_with_other_words_is_still_the_first_reply(engine: Engine) -> None:
    first = engine.handle("c1", PROPOSE, message_id="m1")
    again = engine.handle("c1", "no", message_id="m1")
    assert same(first, again)


def test_the_last_16_message_ids_are_remembered(engine: Engine) -> None:
    first = engine.handle("c1", PROPOSE, message_id="m0")
    replies = [engine.handle("c1", "hmm", message_id=f"m{i}") for i in range(1, REMEMBERED_MESSAGES)]
    assert same(engine.handle("c1", PROPOSE, message_id="m0"), first)  # 16 ids: m0..m15
    for i, reply in enumerate(replies, start=1):
        assert same(engine.handle("c1", "hmm", message_id=f"m{i}"), reply)
    engine.handle("c1", "hmm", message_id="m16")  # the 17th pushes m0 out
    forgotten = engine.handle("c1", "can we move it", message_id="m0")
    assert forgotten.outcome == "rescheduled"


def test_message_ids_are_per_conversation(engine: Engine) -> None:
    engine.handle("c1", PROPOSE, message_id="m1")
    other = engine.handle("c2", PROPOSE, message_id="m1")
    assert other.conversation_id == "c2" and other.version == 1 and other.outcome == "proposed"


class DownCalendar(InMemoryCalendar):
    down = True

    def book(
        self, tenant_id: str, *, lead: str, start: dt.datetime, end: dt.datetime, idempotency_key: str, note: str = ""
    ) -> Event:
        if self.down:
            raise CalendarUnavailable("down (injected)", tenant_id=tenant_id)
        return super().book(tenant_id, lead=lead, start=start, end=end, idempotency_key=idempotency_key, note=note)


def test_a_yes_retried_after_a_calendar_outage_books_once_and_says_booked(
    make_engine: Callable[..., Engine],
) -> None:
    calendar = DownCalendar()
    engine = make_engine(calendar=calendar)
    engine.handle("c1", PROPOSE)
    with pytest.raises(CalendarUnavailable):
        engine.handle("c1", "yes", message_id="y1")
    calendar.down = False
    retried = engine.handle("c1", "yes", message_id="y1")
    assert retried.outcome == "booked" and [retried.event] == calendar.events("default")
    assert same(engine.handle("c1", "yes", message_id="y1"), retried)


@pytest.mark.parametrize("bad", ["", "x" * 257, "\ud800", 5])
def test_a_bad_message_id_is_invalid_input_and_changes_nothing(engine: Engine, bad: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        engine.handle("c1", PROPOSE, message_id=bad)  # type: ignore[arg-type]
    assert caught.value.field == "message_id"
    assert engine.snapshot("c1") is None


@pytest.fixture
def async_engine(redis_url: str, redis_client: object, clock: FakeClock) -> Iterator[AsyncEngine]:
    engine = AsyncEngine(redis.asyncio.Redis.from_url(redis_url), calendar=InMemoryCalendar(), clock=clock)
    yield engine
    asyncio.run(engine.aclose())


def test_the_async_engine_replays_too(async_engine: AsyncEngine) -> None:
    async def run() -> tuple[Reply, Reply, Reply]:
        await async_engine.handle("c1", PROPOSE)
        first = await async_engine.handle("c1", "can we move it", message_id="m")
        again = await async_engine.handle("c1", "can we move it", message_id="m")
        nxt = await async_engine.handle("c1", "can we move it", message_id="n")
        await async_engine.aclose()
        return first, again, nxt

    first, again, nxt = asyncio.run(run())
    assert same(first, again)
    assert nxt.version == first.version + 1 and nxt.proposal != first.proposal
