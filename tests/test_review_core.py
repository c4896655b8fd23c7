"""Review of issue 14's core changes (rules table, speed work, the lead passed to understand()).

Each test here failed when written (a fresh review of the rules table and the speed work) and
passes since the fix: naming the lead never confirms a move or cancellation, a negated
cancellation or booking is never one, a schedule copied without validation still searches, and a
new request whose date cannot be read is asked about even after an expiry.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
import redis

from dialog import Engine, InMemoryCalendar, Schedule
from dialog.testing import FakeClock

UTC = dt.UTC
SCHEDULE_DANA = "Schedule a call with Dana Scully tomorrow at 10am"
TUE_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _cancel_proposed(engine: Engine, calendar: InMemoryCalendar) -> None:
    assert engine.handle("c1", SCHEDULE_DANA).outcome == "proposed"
    assert engine.handle("c1", "yes").outcome == "booked"
    reply = engine.handle("c1", "cancel the call")
    assert reply.outcome == "proposed" and reply.proposal is not None and reply.proposal.kind == "cancel"
    assert [e.start for e in calendar.events("default")] == [TUE_10]


@pytest.mark.parametrize("text", ["book the call with Dana", "yes please book the call with Dana"])
def test_asking_to_book_the_call_never_confirms_its_cancellation(
    engine: Engine, calendar: InMemoryCalendar, text: str
) -> None:
    """'Shall I cancel your call with Dana?' - 'book the call with Dana': the call must stand.

    Before 3e54df2 this was unclear (re-prompted); now the lead is stripped and what is left
    reads as a yes, so the booked call is removed.
    """
    _cancel_proposed(engine, calendar)
    reply = engine.handle("c1", text)
    assert reply.outcome != "call_cancelled"
    assert [e.start for e in calendar.events("default")] == [TUE_10]


@pytest.mark.parametrize("text", ["don't cancel the call", "please don't cancel the call"])
def test_dont_cancel_the_call_never_cancels_it(engine: Engine, calendar: InMemoryCalendar, text: str) -> None:
    _cancel_proposed(engine, calendar)
    reply = engine.handle("c1", text)
    assert reply.outcome in ("kept", "reprompted")
    assert [e.start for e in calendar.events("default")] == [TUE_10]


def test_a_refusal_that_names_the_lead_cancels(engine: Engine, calendar: InMemoryCalendar) -> None:
    """Spec 2: "no, don't book it" is cancelled; naming the lead changes nothing."""
    assert engine.handle("c1", SCHEDULE_DANA).outcome == "proposed"
    reply = engine.handle("c1", "no, don't book the call with Dana")
    assert (reply.outcome, reply.proposal) == ("cancelled", None)
    assert calendar.events("default") == []


def test_a_schedule_derived_with_model_copy_still_finds_slots(engine: Engine, calendar: InMemoryCalendar) -> None:
    """pydantic's model_copy(update=...) does not validate: working_days stays a list. Before
    140467d the grid took it; the lru_cache now fails on it, and every search is CalendarUnavailable."""
    calendar.set_schedule("acme", Schedule().model_copy(update={"working_days": [0, 1, 2, 3, 4, 5]}))
    reply = engine.handle("c1", "schedule a call with Dana Scully on Saturday at 10am", tenant_id="acme")
    assert reply.outcome == "proposed"
    assert reply.proposal is not None and reply.proposal.start == dt.datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_a_new_request_beyond_a_year_after_an_expiry_is_reprompted(
    redis_client: redis.Redis, calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    """Spec 4.1: a date more than a year ahead is a re-prompt in handle. The old decide re-prompted
    a new request whatever the marker; the rules turn the unreadable date into the 'unreadable'
    cue, which the 'expired' rule answers first."""
    engine = Engine(redis_client, calendar=calendar, clock=clock, ttl_seconds=1)
    assert engine.handle("c1", SCHEDULE_DANA).outcome == "proposed"
    time.sleep(1.2)
    assert engine.snapshot("c1") is None
    reply = engine.handle("c1", "schedule a call with Priya Nair on 1/5/2029 at 10am")
    assert reply.outcome == "reprompted"
    assert calendar.events("default") == []
