"""A turn stopped at every step, then continued by a fresh engine or by the recovery sweep.

Never two events; never a recorded confirmation without its event once the conversation or
the sweep continues; afterwards the stored state agrees with the calendar.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dialog import Engine, InMemoryCalendar
from dialog.engine import Checkpoint
from tests.reliability import Table

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"


class Crash(BaseException):
    """The process dies here: nothing in the engine may catch it."""


def crash_at(point: Checkpoint, *, before: Callable[[], object] | None = None) -> Callable[[Checkpoint], None]:
    def checkpoint(reached: Checkpoint) -> None:
        if reached is Checkpoint.DECIDED and before is not None:
            before()  # another container writes first, so this turn's CAS loses
        if reached is point:
            raise Crash(point.value)

    return checkpoint


def crashed_confirmation(make_engine: Callable[..., Engine], point: Checkpoint) -> None:
    setup = make_engine()
    setup.handle("c1", PROPOSE)
    other = make_engine()
    racer = (lambda: other.handle("c1", "hmm")) if point is Checkpoint.CONFLICT else None
    doomed = make_engine(checkpoint=crash_at(point, before=racer))
    with pytest.raises(Crash):
        doomed.handle("c1", "yes")


def assert_state_agrees_with_calendar(engine: Engine, calendar: InMemoryCalendar) -> None:
    events = calendar.events("default")
    snapshot = engine.snapshot("c1")
    assert snapshot is not None
    assert len(events) <= 1
    if events:
        assert snapshot.state == "done" and snapshot.event == events[0]
        assert not snapshot.booking_pending
    else:
        assert snapshot.state == "awaiting_confirmation" and snapshot.event is None


# What the crashed "yes" left behind, per checkpoint: was the confirmation recorded?
RECORDED = {
    Checkpoint.LOADED: False,
    Checkpoint.DECIDED: False,
    Checkpoint.CONFLICT: False,
    Checkpoint.INTENT_COMMITTED: True,
    Checkpoint.CALENDAR_CALLED: True,
    Checkpoint.COMMITTED: True,
}


def test_every_checkpoint_is_covered() -> None:
    assert set(RECORDED) == set(Checkpoint)


@pytest.mark.parametrize("point", list(Checkpoint))
def test_the_next_yes_from_a_fresh_engine_completes_exactly_once(
    make_engine: Callable[..., Engine], calendar: InMemoryCalendar, point: Checkpoint, reliability: Table
) -> None:
    crashed_confirmation(make_engine, point)
    fresh = make_engine()
    reply = fresh.handle("c1", "yes", channel="voice")
    events = calendar.events("default")
    reliability.record(f"crash at {point.value}, then the next yes", expected=1, found=len(events))
    assert len(events) == 1
    assert reply.event == events[0]
    # The turn that commits `done` reports booked; after a completed commit it was the crashed one.
    assert reply.outcome == ("already_booked" if point is Checkpoint.COMMITTED else "booked")
    assert fresh.handle("c1", "yes").outcome == "already_booked"
    assert len(calendar.events("default")) == 1
    assert_state_agrees_with_calendar(fresh, calendar)


@pytest.mark.parametrize("point", list(Checkpoint))
def test_the_recovery_sweep_completes_a_recorded_confirmation_without_user_input(
    make_engine: Callable[..., Engine], calendar: InMemoryCalendar, point: Checkpoint, reliability: Table
) -> None:
    crashed_confirmation(make_engine, point)
    sweeper = make_engine()
    settled = sweeper.recover()
    found = len(calendar.events("default"))
    reliability.record(f"crash at {point.value}, then the sweep", expected=int(RECORDED[point]), found=found)
    outstanding = RECORDED[point] and point is not Checkpoint.COMMITTED
    assert [r.outcome for r in settled] == (["booked"] if outstanding else [])
    assert len(calendar.events("default")) == (1 if RECORDED[point] else 0)
    assert_state_agrees_with_calendar(sweeper, calendar)
    assert sweeper.recover() == []  # a second sweep finds nothing left


@pytest.mark.parametrize("point", [Checkpoint.INTENT_COMMITTED, Checkpoint.CALENDAR_CALLED])
def test_a_recorded_confirmation_is_honoured_whatever_the_next_words(
    make_engine: Callable[..., Engine], calendar: InMemoryCalendar, point: Checkpoint
) -> None:
    crashed_confirmation(make_engine, point)
    fresh = make_engine()
    reply = fresh.handle("c1", "no wait")
    assert (reply.outcome, reply.state) == ("booked", "done")
    assert_state_agrees_with_calendar(fresh, calendar)


def test_the_sweep_only_touches_the_tenant_it_is_given(
    make_engine: Callable[..., Engine], calendar: InMemoryCalendar
) -> None:
    for tenant in ("acme", "globex"):
        make_engine().handle("c1", PROPOSE, tenant_id=tenant)
        with pytest.raises(Crash):
            make_engine(checkpoint=crash_at(Checkpoint.INTENT_COMMITTED)).handle("c1", "yes", tenant_id=tenant)
    settled = make_engine().recover(tenant_id="acme")
    assert [(r.tenant_id, r.outcome) for r in settled] == [("acme", "booked")]
    assert len(calendar.events("acme")) == 1 and calendar.events("globex") == []
