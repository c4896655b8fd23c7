"""Round trips per turn: one on the common path when this process wrote last, and correct when it didn't."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from dialog import Engine, InMemoryCalendar

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts packets sent to Redis: a pipeline is one, a script call is one."""
    count = [0]
    original: Callable[..., object] = redis.connection.AbstractConnection.send_packed_command  # unannotated

    def counted(conn: redis.connection.AbstractConnection, *args: object, **kwargs: object) -> None:
        count[0] += 1
        original(conn, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    yield count


def measure(trips: list[int], turn: Callable[[], object]) -> int:
    before = trips[0]
    turn()
    return trips[0] - before


def test_a_conversation_this_process_wrote_last_costs_one_round_trip_a_turn(engine: Engine, trips: list[int]) -> None:
    engine.handle("warm", "hmm")  # scripts loaded, connection open
    assert measure(trips, lambda: engine.handle("c1", PROPOSE)) == 2  # unknown: read, then write
    assert measure(trips, lambda: engine.handle("c1", "can we move it")) == 1
    assert measure(trips, lambda: engine.handle("c1", "hmm")) == 1
    assert measure(trips, lambda: engine.handle("c1", "yes")) == 2  # record the intent, then done


def test_a_stale_process_pays_one_extra_round_trip_and_loses_nothing(
    engine: Engine, make_engine: Callable[..., Engine], calendar: InMemoryCalendar, trips: list[int]
) -> None:
    other = make_engine()
    engine.handle("c1", PROPOSE)
    other.handle("c1", "can we move it")  # engine's remembered record is now stale
    moved = other.snapshot("c1")
    cost = measure(trips, lambda: engine.handle("c1", "hmm"))
    assert cost == 2  # the refused write returned the current record; the retry landed
    after = engine.snapshot("c1")
    assert after is not None and moved is not None
    assert after.version == moved.version + 1 and after.proposal == moved.proposal


def test_without_a_cache_every_turn_reads_first(
    redis_client: redis.Redis, calendar: InMemoryCalendar, trips: list[int]
) -> None:
    engine = Engine(redis_client, calendar=calendar, cache_size=0)
    engine.handle("warm", "hmm")
    engine.handle("c1", PROPOSE)
    assert measure(trips, lambda: engine.handle("c1", "can we move it")) == 2


def test_a_hosts_propose_on_a_conversation_never_seen_is_one_round_trip(
    engine: Engine, clock: object, trips: list[int]
) -> None:
    """A create-if-absent write: nothing is read first (issue 14: 1.33 round trips on the 3-turn dialog)."""
    import datetime as dt

    engine.handle("warm", "hmm")
    start = dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)
    assert measure(trips, lambda: engine.propose("c1", lead="Dana Scully", start=start)) == 1
    assert measure(trips, lambda: engine.handle("c1", "can we move it")) == 1
    assert measure(trips, lambda: engine.handle("c1", "yes")) == 2


def test_a_blind_propose_over_an_existing_or_expired_conversation_is_refused_then_decided_again(
    engine: Engine, make_engine: Callable[..., Engine], redis_client: redis.Redis
) -> None:
    """Versions keep growing: a blind write never lands over a record or an expiry marker."""
    import datetime as dt

    from dialog.store.keys import ConversationKeys

    start = dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)
    engine.handle("c1", PROPOSE)
    engine.handle("c1", "hmm")
    second = make_engine().propose("c1", lead="Fox Mulder", start=start)  # never saw c1: writes blind, refused
    assert second.version == 3 and second.proposal is not None and second.proposal.lead == "Fox Mulder"
    redis_client.delete(ConversationKeys("default", "c1").conversation)  # expired: only the marker is left
    third = make_engine().propose("c1", lead="Dana Scully", start=start + dt.timedelta(hours=1))
    assert third.version == 4  # continues from the marker's version
