"""Races between the turns that settle one recorded confirmation (found by `make soak`).

1. A "yes" recorded by one container and settled by another, after which the user said "no",
   must still be answered about *that* yes: already_booked, never nothing_pending (spec 4.1).
2. Two turns settle one recorded yes across the start of its slot: the one that finds the slot
   begun (and no event yet) commits slot_taken, then the other's slow calendar call lands. The
   calendar must not keep an event the conversation told the user was not booked.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest

from dialog import CalendarUnavailable, Engine, InMemoryCalendar, Reply
from dialog.calendar.base import Event
from dialog.engine import Checkpoint
from dialog.testing import FakeClock

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"


def test_a_recorded_yes_settled_elsewhere_then_refused_is_still_answered_already_booked(
    make_engine: Callable[..., Engine], calendar: InMemoryCalendar
) -> None:
    recorded, go = threading.Event(), threading.Event()

    def hold(point: Checkpoint) -> None:  # A pauses after recording its yes, before the calendar call
        if point is Checkpoint.INTENT_COMMITTED:
            recorded.set()
            go.wait(10)

    a, b = make_engine(checkpoint=hold), make_engine()
    b.handle("c1", PROPOSE)
    answers: dict[str, Reply] = {}
    thread = threading.Thread(target=lambda: answers.setdefault("a", a.handle("c1", "yes")))
    thread.start()
    assert recorded.wait(10)
    assert b.handle("c1", "hmm").outcome == "booked"  # B's turn settles A's recorded yes first
    assert b.handle("c1", "no").outcome == "nothing_pending"
    go.set()
    thread.join(10)
    events = calendar.events("default")
    assert answers["a"].outcome == "already_booked"
    assert [answers["a"].event] == events


class SlowCalendar(InMemoryCalendar):
    """A calendar whose book() in the thread named "slow" waits until told to go on."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.go = threading.Event(), threading.Event()
        self.down = False

    def book(self, tenant_id: str, **kwargs: Any) -> Event:
        if self.down:
            raise CalendarUnavailable("down (injected)", tenant_id=tenant_id)
        if threading.current_thread().name == "slow":
            self.inside.set()
            self.go.wait(10)
        return super().book(tenant_id, **kwargs)


def test_a_booking_landing_after_the_sweep_said_slot_taken_is_undone(
    make_engine: Callable[..., Engine], clock: FakeClock
) -> None:
    calendar = SlowCalendar()
    x = make_engine(calendar=calendar)
    z = make_engine(calendar=calendar, calendar_timeout=None)
    x.handle("c1", PROPOSE)  # Tue 24 Nov 10:00
    calendar.down = True
    with pytest.raises(CalendarUnavailable):
        x.handle("c1", "yes")  # recorded, outstanding
    calendar.down = False
    clock.set(dt.datetime(2026, 11, 24, 9, 59, tzinfo=dt.UTC))  # a minute before the call
    answers: dict[str, Reply] = {}
    slow = threading.Thread(target=lambda: answers.setdefault("z", z.handle("c1", "hmm")), name="slow")
    slow.start()
    assert calendar.inside.wait(10)  # Z found the slot ahead and is calling book
    clock.set(dt.datetime(2026, 11, 24, 10, 1, tzinfo=dt.UTC))  # the call has begun
    swept = x.recover()
    assert [r.outcome for r in swept] == ["slot_taken"]  # no event yet: the user is told so
    calendar.go.set()
    slow.join(10)
    assert answers["z"].outcome == "reprompted"  # its own words, "hmm", on the slot now offered
    assert answers["z"].proposal == swept[0].proposal
    assert calendar.events("default") == []  # Z's late booking was undone
    snapshot = x.snapshot("c1")
    assert snapshot is not None and snapshot.event is None and not snapshot.booking_pending
