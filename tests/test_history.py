"""Every applied turn is in the history, written by the same script as the state change (spec 4.5).

A turn is in the history if and only if it was applied: a refused write (lost race, retried
message) leaves no entry, a lost reply retried by redis-py leaves one, not two. The history of
a booked call says which words, on which channel, confirmed it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import pytest
import redis
import redis.asyncio

from dialog import CorruptState, Engine, InMemoryCalendar
from dialog.engine import AsyncEngine, Checkpoint
from dialog.store.keys import HISTORY_ENTRIES, ConversationKeys
from dialog.testing import FakeClock
from tests.faults import lossy_client
from tests.test_crashes import Crash, crash_at

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"


def test_each_applied_turn_is_one_entry_oldest_first_with_its_words_and_transition(engine: Engine) -> None:
    engine.handle("c1", PROPOSE, message_id="m1")
    engine.handle("c1", "hmm", channel="voice")
    engine.handle("c1", "can we move it")
    history = engine.history("c1")
    assert [(h.version, h.text, h.state_from, h.trigger, h.state, h.outcome) for h in history] == [
        (1, PROPOSE, "idle", "propose", "awaiting_confirmation", "proposed"),
        (2, "hmm", "awaiting_confirmation", "reprompt", "awaiting_confirmation", "reprompted"),
        (3, "can we move it", "awaiting_confirmation", "reschedule", "awaiting_confirmation", "rescheduled"),
    ]
    assert [h.channel for h in history] == ["text", "voice", "text"]
    assert history[0].message_id == "m1" and history[1].message_id is None
    assert all(h.at.tzinfo is not None for h in history)
    assert history[-1].version == engine.snapshot("c1").version  # type: ignore[union-attr]


def test_the_history_of_a_booked_call_says_which_words_on_which_channel_confirmed_it(
    engine: Engine, calendar: InMemoryCalendar
) -> None:
    engine.handle("c1", PROPOSE)
    booked = engine.handle("c1", "uh yeah sure", channel="voice", message_id="v-7")
    history = engine.history("c1")
    recorded, settled = history[-2], history[-1]
    assert (recorded.outcome, recorded.text, recorded.channel) == ("recorded", "uh yeah sure", "voice")
    assert (settled.outcome, settled.text, settled.channel, settled.message_id) == (
        "booked",
        "uh yeah sure",
        "voice",
        "v-7",
    )
    assert booked.event is not None and settled.event_id == booked.event.id == calendar.events("default")[0].id


def test_a_confirmation_settled_by_the_sweep_still_names_the_words_that_confirmed_it(
    make_engine: Callable[..., Engine],
) -> None:
    make_engine().handle("c1", PROPOSE)
    with pytest.raises(Crash):
        make_engine(checkpoint=crash_at(Checkpoint.INTENT_COMMITTED)).handle("c1", "go ahead", channel="voice")
    sweeper = make_engine()
    assert [r.outcome for r in sweeper.recover()] == ["booked"]
    settled = sweeper.history("c1")[-1]
    assert (settled.outcome, settled.text, settled.channel) == ("booked", "go ahead", "voice")


def test_a_retried_message_and_a_lost_race_add_no_entry(
    engine: Engine, make_engine: Callable[..., Engine]
) -> None:
    engine.handle("c1", PROPOSE, message_id="m1")
    engine.handle("c1", PROPOSE, message_id="m1")  # replayed: not applied again
    other = make_engine()
    other.handle("c1", "hmm")
    engine.handle("c1", "can we move it")  # its cached record is stale: the first CAS loses, the retry lands
    assert [h.version for h in engine.history("c1")] == [1, 2, 3]


def test_a_lost_reply_retried_by_redis_py_is_one_entry(
    redis_url: str, redis_client: redis.Redis, calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    client = lossy_client(redis_url)
    engine = Engine(client, calendar=calendar, clock=clock)
    engine.handle("c1", PROPOSE)
    client.lose_next_reply()
    engine.handle("c1", "can we move it")
    assert client.lost == 1
    assert [h.outcome for h in engine.history("c1")] == ["proposed", "rescheduled"]


def test_the_history_keeps_the_last_200_entries_and_outlives_the_conversation(
    engine: Engine, redis_client: redis.Redis
) -> None:
    engine.handle("c1", PROPOSE)
    for _ in range(HISTORY_ENTRIES + 5):
        engine.handle("c1", "hmm")
    history = engine.history("c1")
    assert len(history) == HISTORY_ENTRIES
    assert history[-1].version == HISTORY_ENTRIES + 6 and history[0].version == 7
    keys = ConversationKeys("default", "c1")
    assert redis_client.pttl(keys.history) >= 29 * 24 * 3600 * 1000
    redis_client.delete(keys.conversation)  # the conversation's TTL ran out
    assert len(engine.history("c1")) == HISTORY_ENTRIES


def test_a_history_of_another_redis_type_is_corrupt_state_once(engine: Engine, redis_client: redis.Redis) -> None:
    keys = ConversationKeys("default", "c1")
    redis_client.set(keys.history, b"not a list")
    with pytest.raises(CorruptState) as caught:
        engine.handle("c1", PROPOSE)
    assert caught.value.kept_at is not None and redis_client.get(caught.value.kept_at) == b"not a list"
    assert engine.handle("c1", PROPOSE).outcome == "proposed"
    assert [h.version for h in engine.history("c1")] == [1]


def test_the_async_engine_keeps_the_same_history(redis_url: str, redis_client: redis.Redis, clock: FakeClock) -> None:
    async def run() -> list[str]:
        engine = AsyncEngine(redis.asyncio.Redis.from_url(redis_url), calendar=InMemoryCalendar(), clock=clock)
        try:
            await engine.handle("c1", PROPOSE)
            await engine.handle("c1", "yes")
            return [h.outcome for h in await engine.history("c1")]
        finally:
            await engine.aclose()

    assert asyncio.run(run()) == ["proposed", "recorded", "booked"]


def test_entries_carry_the_engines_clock(engine: Engine, clock: FakeClock) -> None:
    engine.handle("c1", PROPOSE)
    clock.advance(minutes=5)
    engine.handle("c1", "hmm")
    first, second = engine.history("c1")
    assert second.at - first.at == dt.timedelta(minutes=5)


def test_the_booked_event_carries_its_evidence(engine: Engine, calendar: InMemoryCalendar) -> None:
    engine.handle("c1", PROPOSE)
    engine.handle("c1", "uh yeah sure", channel="voice", message_id="m-1")
    (event,) = calendar.events("default")
    assert event.note == 'Confirmed by "uh yeah sure" on the voice channel, message m-1 (dialog).'


def test_a_host_calendar_whose_book_takes_no_note_still_books(make_engine: Callable[..., Engine]) -> None:
    """Calendars written against the first release's protocol keep working: the note is optional."""

    class OldCalendar(InMemoryCalendar):
        def book(  # type: ignore[override]
            self, tenant_id: str, *, lead: str, start: dt.datetime, end: dt.datetime, idempotency_key: str
        ) -> object:
            return super().book(tenant_id, lead=lead, start=start, end=end, idempotency_key=idempotency_key)

    calendar = OldCalendar()
    engine = make_engine(calendar=calendar)
    engine.handle("c1", PROPOSE)
    assert engine.handle("c1", "yes").outcome == "booked"
    assert calendar.events("default")[0].note == ""


@pytest.mark.parametrize("point", list(Checkpoint))
def test_a_crash_at_every_checkpoint_leaves_exactly_the_applied_writes_in_the_history(
    make_engine: Callable[..., Engine], point: Checkpoint
) -> None:
    """Versions 1..n, each once: a write is in the history if and only if it landed."""
    make_engine().handle("c1", PROPOSE)
    other = make_engine()
    racer = (lambda: other.handle("c1", "hmm")) if point is Checkpoint.CONFLICT else None
    with pytest.raises(Crash):
        make_engine(checkpoint=crash_at(point, before=racer)).handle("c1", "yes")
    fresh = make_engine()
    fresh.handle("c1", "yes")
    fresh.recover()
    final = fresh.snapshot("c1")
    assert final is not None
    versions = [h.version for h in fresh.history("c1")]
    assert versions == list(range(1, final.version + 1))
    assert [h.outcome for h in fresh.history("c1")].count("booked") == 1


def test_histories_are_per_tenant(engine: Engine) -> None:
    engine.handle("c1", PROPOSE, tenant_id="acme")
    assert engine.history("c1", tenant_id="globex") == []
    engine.handle("c1", "hmm", tenant_id="globex")
    assert [h.text for h in engine.history("c1", tenant_id="acme")] == [PROPOSE]
    assert [h.text for h in engine.history("c1", tenant_id="globex")] == ["hmm"]
