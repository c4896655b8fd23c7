"""Two engines (two containers) on one Redis, racing: exactly one event per proposal, no lost update."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import redis

from dialog import Engine, InMemoryCalendar, Reply
from tests.reliability import Table
from tests.support import first_slots


def _race(engines: list[Engine], work: Callable[[Engine, int], Reply], n: int) -> list[Reply]:
    """Every engine runs ``work`` for conversations 0..n-1 at once, released by one barrier."""
    replies: list[Reply] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(engines))

    def run(engine: Engine) -> None:
        barrier.wait()
        for i in range(n):
            try:
                reply = work(engine, i)
            except BaseException as exc:  # surfaced below: concurrent turns must never raise
                errors.append(exc)
                continue
            with lock:
                replies.append(reply)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return replies


def test_two_engines_answering_yes_to_the_same_100_conversations_book_exactly_100_events(
    engine: Engine, make_engine: Callable[..., Engine], calendar: InMemoryCalendar, reliability: Table
) -> None:
    for i in range(100):
        engine.propose(f"c{i}", lead=f"Lead {i}", start=SLOTS[i])
    replies = _race([engine, make_engine()], lambda e, i: e.handle(f"c{i}", "yes"), 100)
    reliability.record(
        "the same yes from two engines at once (100 conversations)", expected=100, found=len(calendar.events("default"))
    )

    assert len(calendar.events("default")) == 100
    by_conversation: dict[str, Counter[str]] = {}
    for r in replies:
        by_conversation.setdefault(r.conversation_id, Counter())[r.outcome] += 1
    # Exactly one of the two answers booked; the other was told it is already booked.
    assert all(c == Counter(booked=1, already_booked=1) for c in by_conversation.values())
    assert len(by_conversation) == 100
    assert {e.idempotency_key for e in calendar.events("default")} == {
        r.event.idempotency_key for r in replies if r.event
    }


def test_concurrent_turns_lose_no_update(
    engine: Engine, make_engine: Callable[..., Engine], redis_client: redis.Redis, reliability: Table
) -> None:
    """Every committed turn bumps the version once: final version == turns applied."""
    engine.propose("busy", lead="Dana", start=SLOTS[0])
    start = engine.snapshot("busy")
    assert start is not None
    replies = _race([engine, make_engine(), make_engine()], lambda e, i: e.handle("busy", "hmm"), 60)

    final = engine.snapshot("busy")
    assert final is not None
    lost = len(replies) - (final.version - start.version)
    reliability.record("three engines writing one conversation (180 turns)", expected=0, found=0, lost_updates=lost)
    assert final.version == start.version + len(replies) == start.version + 180
    assert sorted(r.version for r in replies) == list(range(start.version + 1, final.version + 1))


SLOTS = first_slots(100)
