"""Moving and cancelling a booked call, exactly once, on every calendar (spec 4.2).

Under duplicate answers, two engines ("two containers"), and a crash at every checkpoint of
the confirming turn, continued by the next "yes" or by the sweep: the calendar ends with the
call moved once (same event id) or removed once, and the conversation agrees with it. Each
test runs on the in-memory calendar, on RedisCalendar and on CalDAV (a real Radicale).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from dialog import Engine
from dialog.calendar.caldav import CalDAVCalendar
from dialog.calendar.memory import InMemoryCalendar
from dialog.calendar.redis_calendar import RedisCalendar
from dialog.engine import Checkpoint
from dialog.testing import FakeClock
from tests.fixtures_radicale import RadicaleServer
from tests.reliability import Table
from tests.test_crashes import RECORDED, Crash, crash_at

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"
CHANGES = {"move": ("can we move the call to 3pm?", "moved"), "cancel": ("please call it off", "call_cancelled")}

# The three calendars the tests run on; each can also block time (the Calendar protocol cannot).
Backend = InMemoryCalendar | RedisCalendar | CalDAVCalendar


@pytest.fixture(params=["memory", "redis", "caldav"])
def backend(request: pytest.FixtureRequest, redis_client: redis.Redis) -> Iterator[Backend]:
    if request.param == "memory":
        yield InMemoryCalendar()
    elif request.param == "redis":
        yield RedisCalendar(redis_client)
    else:
        server: RadicaleServer = request.getfixturevalue("radicale")
        yield CalDAVCalendar(server.url_with_credentials)


@pytest.fixture
def tenant() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"  # the session's Radicale is shared: a tenant per test


@pytest.fixture
def engines(
    redis_url: str, redis_client: redis.Redis, backend: Backend, clock: FakeClock
) -> Iterator[Callable[..., Engine]]:
    made: list[Engine] = []

    def make(**options: object) -> Engine:
        made.append(Engine(redis.Redis.from_url(redis_url), calendar=backend, clock=clock, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for engine in made:
        engine.close()
        engine.redis.close()


def booked_then_proposed(make: Callable[..., Engine], tenant: str, change: str) -> str:
    """Book the 10:00 call, then propose its change; returns the event id."""
    first = make()
    first.handle("c1", PROPOSE, tenant_id=tenant)
    event = first.handle("c1", "yes", tenant_id=tenant).event
    assert event is not None
    proposed = first.handle("c1", CHANGES[change][0], tenant_id=tenant)
    assert proposed.proposal is not None and proposed.proposal.kind == change
    assert proposed.event == event
    return event.id


def assert_changed_once(backend: Backend, tenant: str, change: str, event_id: str) -> None:
    events = backend.events(tenant)
    if change == "cancel":
        assert events == []
        return
    assert [(e.id, e.start.hour) for e in events] == [(event_id, 15)]


@pytest.mark.parametrize("change", list(CHANGES))
def test_duplicate_answers_from_two_engines_change_the_call_once(
    engines: Callable[..., Engine], backend: Backend, tenant: str, change: str
) -> None:
    event_id = booked_then_proposed(engines, tenant, change)
    a, b = engines(), engines()
    first = a.handle("c1", "yes", tenant_id=tenant)
    second = b.handle("c1", "yes", tenant_id=tenant, channel="voice")
    third = a.handle("c1", "yes", tenant_id=tenant)
    assert first.outcome == CHANGES[change][1]
    assert second.outcome in ("already_booked", "nothing_pending") and third.outcome == second.outcome
    assert_changed_once(backend, tenant, change, event_id)
    if change == "move":
        assert first.event is not None and first.event.id == event_id and first.event.start.hour == 15


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_refusal_keeps_the_call(engines: Callable[..., Engine], backend: Backend, tenant: str, change: str) -> None:
    event_id = booked_then_proposed(engines, tenant, change)
    kept = engines().handle("c1", "no", tenant_id=tenant)
    assert kept.outcome == "kept" and kept.event is not None and kept.event.id == event_id
    assert [(e.id, e.start.hour) for e in backend.events(tenant)] == [(event_id, 10)]


@pytest.mark.parametrize("point", list(Checkpoint))
@pytest.mark.parametrize("change", list(CHANGES))
@pytest.mark.parametrize("then", ["next yes", "sweep"])
def test_a_crash_at_every_checkpoint_changes_the_call_exactly_once(
    engines: Callable[..., Engine],
    backend: Backend,
    tenant: str,
    change: str,
    point: Checkpoint,
    then: str,
    reliability: Table,
    request: pytest.FixtureRequest,
) -> None:
    event_id = booked_then_proposed(engines, tenant, change)
    other = engines()
    racer = (lambda: other.handle("c1", "hmm", tenant_id=tenant)) if point is Checkpoint.CONFLICT else None
    with pytest.raises(Crash):
        engines(checkpoint=crash_at(point, before=racer)).handle("c1", "yes", tenant_id=tenant)
    recorded = RECORDED[point]
    if then == "next yes":
        reply = engines().handle("c1", "yes", tenant_id=tenant)
        if not recorded:  # the crashed yes never landed: this yes is the confirmation
            assert reply.outcome == CHANGES[change][1]
        changed = True
    else:
        settled = engines().recover(tenant_id=tenant)
        outstanding = recorded and point is not Checkpoint.COMMITTED
        assert [r.outcome for r in settled] == ([CHANGES[change][1]] if outstanding else [])
        changed = recorded
    calendar_kind = request.node.callspec.params["backend"]
    events = backend.events(tenant)
    done_once = sum(e.start.hour == 15 for e in events) if change == "move" else 1 - len(events)
    reliability.record(
        f"{change} of a booked call, crash at {point.value}, then the {then} ({calendar_kind})",
        expected=int(changed),
        found=done_once,
    )
    if changed:
        assert_changed_once(backend, tenant, change, event_id)
        snapshot = engines().snapshot("c1", tenant_id=tenant)
        assert snapshot is not None and snapshot.state == "done" and not snapshot.booking_pending
        assert (snapshot.event is None) == (change == "cancel")
    else:
        assert [(e.id, e.start.hour) for e in backend.events(tenant)] == [(event_id, 10)]


def test_moving_onto_a_taken_slot_offers_the_next_one_and_moves_nothing(
    engines: Callable[..., Engine], backend: Backend, tenant: str
) -> None:
    event_id = booked_then_proposed(engines, tenant, "move")
    taken = backend.events(tenant)[0].start.replace(hour=15)
    backend.block(tenant, taken, taken.replace(minute=30))  # someone takes 15:00 meanwhile
    reply = engines().handle("c1", "yes", tenant_id=tenant)
    assert reply.outcome == "slot_taken"
    assert reply.proposal is not None and reply.proposal.kind == "move" and reply.proposal.start.hour == 15
    assert reply.proposal.start.minute == 30
    assert [(e.id, e.start.hour) for e in backend.events(tenant)] == [(event_id, 10)]
    moved = engines().handle("c1", "yes", tenant_id=tenant)
    assert moved.outcome == "moved" and moved.event is not None and moved.event.start.minute == 30


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_move_or_cancellation_that_expired_is_told_so_and_the_call_stands(
    engines: Callable[..., Engine], backend: Backend, tenant: str, change: str, redis_client: redis.Redis
) -> None:
    from dialog.store.keys import ConversationKeys

    event_id = booked_then_proposed(engines, tenant, change)
    redis_client.delete(ConversationKeys(tenant, "c1").conversation)  # the conversation's TTL ran out
    late = engines().handle("c1", "yes", tenant_id=tenant)
    assert (late.outcome, late.state) == ("expired", "done")
    assert late.event is not None and late.event.id == event_id and "stays on" in late.text
    assert [(e.id, e.start.hour) for e in backend.events(tenant)] == [(event_id, 10)]
    again = engines().handle("c1", "cancel the call", tenant_id=tenant)  # the booked call is still known
    assert again.outcome == "proposed" and again.proposal is not None and again.proposal.kind == "cancel"


def test_a_slot_starting_right_now_is_booked_not_taken(
    engines: Callable[..., Engine], backend: Backend, tenant: str, clock: FakeClock
) -> None:
    import datetime as dt

    clock.set(dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC))
    engine = engines()
    proposed = engine.propose("c1", lead="Dana Scully", start=clock(), tenant_id=tenant)
    assert proposed.proposal is not None and proposed.proposal.start == clock()
    booked = engine.handle("c1", "yes", tenant_id=tenant)
    assert booked.outcome == "booked" and booked.event is not None and booked.event.start == clock()
