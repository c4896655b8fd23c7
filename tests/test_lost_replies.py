"""A write whose reply is lost (the script ran, the socket timed out) is never applied twice.

redis-py retries a command after a timeout; when another engine wrote in between, the retried
compare-and-set fails. The engine must recognise that its own write landed, not decide again
on the newer record and apply the user's words a second time (finding 1 of issue 10).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from dialog import Engine, InMemoryCalendar
from dialog.testing import FakeClock
from tests.faults import LossyRedis, lossy_client
from tests.reliability import Table

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"
TUESDAY = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)


@pytest.fixture
def lossy(
    redis_url: str, redis_client: object, calendar: InMemoryCalendar, clock: FakeClock
) -> tuple[Engine, LossyRedis]:
    client = lossy_client(redis_url)
    engine = Engine(client, calendar=calendar, clock=clock)
    return engine, client


def at(hour: int, minute: int = 0) -> dt.datetime:
    return TUESDAY.replace(hour=hour, minute=minute)


def test_a_move_whose_reply_was_lost_moves_once_though_another_engine_wrote_meanwhile(
    lossy: tuple[Engine, LossyRedis], make_engine: Callable[..., Engine], reliability: Table
) -> None:
    engine, client = lossy
    other = make_engine()
    engine.handle("c1", PROPOSE)
    client.lose_next_reply(between=lambda: other.handle("c1", "hmm"))
    moved = engine.handle("c1", "can we move it")
    snapshot = other.snapshot("c1")
    assert snapshot is not None and snapshot.proposal is not None
    slots = (snapshot.proposal.start - at(10)) // dt.timedelta(minutes=30)
    fault = "a lost CAS reply, retried after another engine wrote"
    reliability.record(fault, expected=0, found=0, applied_twice=slots - 1)
    assert client.lost == 1
    assert moved.outcome == "rescheduled"
    assert moved.proposal is not None and moved.proposal.start == at(10, 30)
    assert slots == 1  # one slot, not two


def test_a_lost_request_while_another_container_confirms_leaves_one_booking_and_no_new_proposal(
    lossy: tuple[Engine, LossyRedis], make_engine: Callable[..., Engine], calendar: InMemoryCalendar
) -> None:
    engine, client = lossy
    other = make_engine()
    engine.handle("c1", PROPOSE)
    booked: list[object] = []
    client.lose_next_reply(between=lambda: booked.append(other.handle("c1", "yes")))
    first = engine.handle("c1", "schedule a call with Dana Scully tomorrow at 4pm")
    assert first.outcome == "proposed" and first.proposal is not None
    assert first.proposal.start == at(16)
    events = calendar.events("default")
    assert [e.start for e in events] == [at(16)]  # the other container confirmed the 4pm proposal
    snapshot = other.snapshot("c1")
    assert snapshot is not None and snapshot.state == "done" and snapshot.proposal is None


@pytest.mark.parametrize("message_id", [None, "m-1"])
def test_a_lost_reply_is_recognised_however_many_writes_landed_after_it(
    lossy: tuple[Engine, LossyRedis], make_engine: Callable[..., Engine], message_id: str | None
) -> None:
    engine, client = lossy
    other = make_engine()
    engine.handle("c1", PROPOSE)

    def many_writes() -> None:
        for _ in range(40):
            other.handle("c1", "hmm")

    client.lose_next_reply(between=many_writes)
    moved = engine.handle("c1", "can we move it", message_id=message_id)
    assert moved.outcome == "rescheduled" and moved.proposal is not None
    assert moved.proposal.start == at(10, 30)
    snapshot = other.snapshot("c1")
    assert snapshot is not None and snapshot.proposal is not None and snapshot.proposal.start == at(10, 30)


def test_a_lost_confirmation_books_once_and_says_booked(
    lossy: tuple[Engine, LossyRedis], make_engine: Callable[..., Engine], calendar: InMemoryCalendar
) -> None:
    engine, client = lossy
    other = make_engine()
    engine.handle("c1", PROPOSE)
    client.lose_next_reply(between=lambda: other.handle("c1", "hmm"))
    reply = engine.handle("c1", "yes")
    assert reply.outcome in ("booked", "already_booked")
    assert len(calendar.events("default")) == 1
    assert reply.event == calendar.events("default")[0]
