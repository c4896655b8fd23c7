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
    original = redis.connection.AbstractConnection.send_packed_command

    def counted(conn: redis.connection.AbstractConnection, *args: object, **kwargs: object) -> None:
        count[0] += 1
        original(conn, *args, **kwargs)  # type: ignore[arg-type]

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
