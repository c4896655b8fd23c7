"""Every row of the behaviour table in shared/SPEC.md section 2, against the real Redis.

The clock stands at Monday 23 Nov 2026, 08:00 UTC; the tenant's schedule is the default one
(UTC, Mon-Fri 09:00-17:00, 30-minute slots, 14-day horizon).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
import redis

from dialog import Engine, InMemoryCalendar, InvalidInput, Schedule
from dialog.store.keys import ConversationKeys
from dialog.testing import FakeClock

UTC = dt.UTC
SCHEDULE_DANA = "Schedule a call with Dana Scully tomorrow at 10am"
TUE_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def proposed(engine: Engine, conv: str = "c1") -> None:
    reply = engine.handle(conv, SCHEDULE_DANA)
    assert (reply.outcome, reply.state) == ("proposed", "awaiting_confirmation")
    assert reply.proposal is not None and reply.proposal.start == TUE_10


# --- idle / done + a schedule request -------------------------------------------------------


def test_schedule_request_proposes_the_requested_time_when_free(engine: Engine) -> None:
    reply = engine.handle("c1", SCHEDULE_DANA)
    assert reply.outcome == "proposed"
    assert reply.state == "awaiting_confirmation"
    assert reply.proposal is not None
    assert (reply.proposal.lead, reply.proposal.start, reply.proposal.end) == ("Dana Scully", TUE_10, at(24, 10, 30))
    assert "Dana Scully" in reply.text and "10:00" in reply.text


def test_schedule_request_for_a_busy_time_proposes_the_first_free_slot_after_it(
    engine: Engine, calendar: InMemoryCalendar
) -> None:
    calendar.block("default", at(24, 10), at(24, 11, 30))
    reply = engine.handle("c1", SCHEDULE_DANA)
    assert reply.outcome == "proposed"
    assert reply.proposal is not None and reply.proposal.start == at(24, 11, 30)
    # spec 4.3 / issue 12: the reply names the true reason (it said "isn't free" for every reason)
    assert reply.text.startswith("Tue 24 Nov, 10:00 (UTC) is already taken. ")


@pytest.mark.parametrize(
    ("text", "start", "reason"),
    [
        ("schedule a call with Dana Scully on Saturday at 10am", at(30, 9), "Sat 28 Nov is not a working day."),
        ("schedule a call with Dana Scully tomorrow at 10:15", at(24, 10, 30), "Calls start every 30 minutes, so"),
        ("schedule a call with Dana Scully tomorrow at 7pm", at(25, 9), "Tue 24 Nov, 19:00 (UTC) is outside working"),
    ],
)
def test_a_time_not_offered_is_answered_with_the_true_reason(
    engine: Engine, text: str, start: dt.datetime, reason: str
) -> None:
    """Spec 4.3: not a working day, off the slot grid, outside working hours: never "isn't free"."""
    reply = engine.handle("c1", text)
    assert reply.proposal is not None and reply.proposal.start == start
    assert reason in reply.text and "isn't free" not in reply.text


def test_a_day_without_a_time_is_not_called_taken(engine: Engine) -> None:
    """Issue 12: "next week" proposed Monday 09:00 after saying "Mon 30 Nov, 00:00 isn't free"."""
    reply = engine.handle("c1", "schedule a call with Dana Scully next week")
    assert reply.proposal is not None and reply.proposal.start == at(30, 9)
    assert reply.text.startswith("Shall I book")


def test_schedule_request_without_a_time_proposes_the_first_free_slot_from_now(
    engine: Engine, clock: FakeClock
) -> None:
    clock.set(at(23, 11, 10))
    reply = engine.handle("c1", "schedule a call with Dana Scully")
    assert reply.proposal is not None and reply.proposal.start == at(23, 11, 30)


def test_a_day_without_a_time_in_a_new_request_means_the_first_free_slot_that_day(
    engine: Engine, calendar: InMemoryCalendar
) -> None:
    calendar.block("default", at(26, 9), at(26, 9, 30))
    reply = engine.handle("c1", "schedule a call with Dana on Thursday")
    assert reply.proposal is not None and reply.proposal.start == at(26, 9, 30)


def test_a_weekday_said_on_that_weekday_means_next_week(engine: Engine, clock: FakeClock) -> None:
    clock.set(at(26, 8))  # Thursday
    reply = engine.handle("c1", "schedule a call with Dana thursday at 10am")
    assert reply.proposal is not None
    assert reply.proposal.start == dt.datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_schedule_request_from_done_proposes_again(engine: Engine, calendar: InMemoryCalendar) -> None:
    proposed(engine)
    assert engine.handle("c1", "yes").state == "done"
    reply = engine.handle("c1", "book a call with Fox Mulder tomorrow at 2pm")
    assert (reply.outcome, reply.state) == ("proposed", "awaiting_confirmation")
    assert reply.proposal is not None and reply.proposal.lead == "Fox Mulder"
    assert reply.proposal.start == at(24, 14)
    assert len(calendar.events("default")) == 1


def test_schedule_request_with_no_free_slot_in_the_horizon_asks_for_another_day(
    engine: Engine, calendar: InMemoryCalendar
) -> None:
    calendar.block("default", at(24, 0), dt.datetime(2026, 12, 12, tzinfo=UTC))
    reply = engine.handle("c1", SCHEDULE_DANA)
    assert (reply.outcome, reply.state) == ("no_free_slot", "rescheduling")
    assert reply.proposal is None
    assert "another day" in reply.text or "other day" in reply.text


# --- idle + "yes" -----------------------------------------------------------------------------


def test_yes_with_nothing_pending_books_nothing(engine: Engine, calendar: InMemoryCalendar) -> None:
    reply = engine.handle("c1", "yes")
    assert (reply.outcome, reply.state) == ("nothing_pending", "idle")
    assert "nothing" in reply.text.lower()
    assert calendar.events("default") == []


def test_yes_after_the_proposal_expired_says_it_expired(
    redis_client: redis.Redis, calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    """The conversation key's TTL really elapses (1 s here); the marker outlives it."""
    engine = Engine(redis_client, calendar=calendar, clock=clock, ttl_seconds=1)
    proposed(engine)
    time.sleep(1.2)
    assert engine.snapshot("c1") is None
    reply = engine.handle("c1", "yes")
    assert (reply.outcome, reply.state) == ("expired", "idle")
    assert "expired" in reply.text and "Dana Scully" in reply.text
    assert calendar.events("default") == []
    again = engine.handle("c1", "yes")
    assert again.outcome == "nothing_pending"
    assert again.version > reply.version > 1


# --- awaiting_confirmation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "channel"),
    [
        ("yes", "text"),
        ("yep", "text"),
        ("sure", "text"),
        ("go ahead", "text"),
        ("sounds good", "text"),
        ("ok", "text"),
        ("👍", "text"),
        ("Yes!", "text"),
        ("uh yeah sure", "voice"),
        ("no problem, go ahead", "text"),
    ],
)
def test_a_confirmation_books_the_proposal_once(
    engine: Engine, calendar: InMemoryCalendar, text: str, channel: str
) -> None:
    proposed(engine)
    reply = engine.handle("c1", text, channel=channel)
    assert (reply.outcome, reply.state) == ("booked", "done")
    events = calendar.events("default")
    assert len(events) == 1
    assert reply.event == events[0]
    assert (events[0].lead, events[0].start, events[0].end) == ("Dana Scully", TUE_10, at(24, 10, 30))


def test_pending_proposals_do_not_reserve_slots_so_a_confirmation_rechecks(
    engine: Engine, calendar: InMemoryCalendar
) -> None:
    proposed(engine, "c1")
    proposed(engine, "c2")  # the same slot, offered to two conversations
    assert engine.handle("c1", "yes").outcome == "booked"
    reply = engine.handle("c2", "yes")
    assert reply.outcome == "slot_taken"
    assert reply.proposal is not None and reply.proposal.start == at(24, 10, 30)
    assert len(calendar.events("default")) == 1


def test_a_confirmation_of_a_slot_taken_meanwhile_books_nothing_and_offers_the_next(
    engine: Engine, calendar: InMemoryCalendar
) -> None:
    proposed(engine)
    calendar.block("default", at(24, 10), at(24, 10, 30))
    reply = engine.handle("c1", "yes")
    assert (reply.outcome, reply.state) == ("slot_taken", "awaiting_confirmation")
    assert calendar.events("default") == []
    assert reply.proposal is not None and reply.proposal.start == at(24, 10, 30)
    assert "taken" in reply.text
    booked = engine.handle("c1", "yes")
    assert booked.outcome == "booked" and booked.event is not None and booked.event.start == at(24, 10, 30)


@pytest.mark.parametrize("text", ["can we move it?", "another time", "change time"])
def test_a_move_without_a_time_offers_the_next_free_slot_strictly_after(engine: Engine, text: str) -> None:
    proposed(engine)
    reply = engine.handle("c1", text)
    assert (reply.outcome, reply.state) == ("rescheduled", "awaiting_confirmation")
    assert reply.proposal is not None and reply.proposal.start == at(24, 10, 30)
    snap = engine.snapshot("c1")
    # one arrow, awaiting -> awaiting: the conversation never rested in rescheduling (issue 14)
    assert snap is not None and (snap.last_source, snap.last_trigger) == ("awaiting_confirmation", "reschedule")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("move it to 3pm", at(24, 15)),
        ("how about Thursday at 2pm?", at(26, 14)),
        ("yes but make it 11am instead", at(24, 11)),
        ("no, 3pm instead", at(24, 15)),
        ("how about thursday", at(26, 10)),
        ("uh make it three pm", at(24, 15)),
    ],
)
def test_a_move_with_a_time_proposes_that_time_and_never_books(
    engine: Engine, calendar: InMemoryCalendar, text: str, expected: dt.datetime
) -> None:
    proposed(engine)
    reply = engine.handle("c1", text)
    assert (reply.outcome, reply.state) == ("rescheduled", "awaiting_confirmation")
    assert reply.proposal is not None and reply.proposal.start == expected
    assert calendar.events("default") == []


def test_a_move_to_a_busy_time_proposes_the_first_free_slot_after_it(
    engine: Engine, calendar: InMemoryCalendar
) -> None:
    proposed(engine)
    calendar.block("default", at(24, 15), at(24, 16))
    reply = engine.handle("c1", "move it to 3pm")
    assert reply.proposal is not None and reply.proposal.start == at(24, 16)


@pytest.mark.parametrize("text", ["no", "nope", "cancel", "never mind", "no, don't book it"])
def test_a_refusal_cancels_and_books_nothing(engine: Engine, calendar: InMemoryCalendar, text: str) -> None:
    proposed(engine)
    reply = engine.handle("c1", text)
    assert (reply.outcome, reply.state) == ("cancelled", "done")
    assert reply.proposal is None
    assert calendar.events("default") == []
    assert "nothing" in reply.text.lower()


@pytest.mark.parametrize("text", ["not yet", "wait", "hmm", "?", "what's the weather like?", "yes but not now"])
def test_hesitation_or_unclear_text_reprompts_with_the_same_proposal(
    engine: Engine, calendar: InMemoryCalendar, text: str
) -> None:
    proposed(engine)
    reply = engine.handle("c1", text)
    assert (reply.outcome, reply.state) == ("reprompted", "awaiting_confirmation")
    assert reply.proposal is not None and reply.proposal.start == TUE_10
    assert calendar.events("default") == []


# --- rescheduling ---------------------------------------------------------------------------


@pytest.fixture
def rescheduling(engine: Engine, calendar: InMemoryCalendar) -> Engine:
    """A conversation left in rescheduling: no free slot in a one-day horizon from Tue 10:00."""
    calendar.set_schedule("default", Schedule(horizon_days=1))
    calendar.block("default", at(24, 0), at(26, 0))
    reply = engine.handle("c1", SCHEDULE_DANA)
    assert (reply.outcome, reply.state) == ("no_free_slot", "rescheduling")
    return engine


@pytest.mark.parametrize(("text", "expected"), [("Thursday at 2pm", at(26, 14)), ("how about thursday", at(26, 10))])
def test_rescheduling_with_a_time_or_a_day_proposes(rescheduling: Engine, text: str, expected: dt.datetime) -> None:
    reply = rescheduling.handle("c1", text)
    assert (reply.outcome, reply.state) == ("rescheduled", "awaiting_confirmation")
    assert reply.proposal is not None and reply.proposal.start == expected
    assert reply.proposal.lead == "Dana Scully"


@pytest.mark.parametrize("text", ["yes", "can we move it", "hmm"])
def test_rescheduling_without_a_time_asks_again(rescheduling: Engine, calendar: InMemoryCalendar, text: str) -> None:
    reply = rescheduling.handle("c1", text)
    assert (reply.outcome, reply.state) == ("reprompted", "rescheduling")
    assert calendar.events("default") == []


@pytest.mark.parametrize("text", ["no", "cancel"])
def test_rescheduling_cancelled(rescheduling: Engine, calendar: InMemoryCalendar, text: str) -> None:
    reply = rescheduling.handle("c1", text)
    assert (reply.outcome, reply.state) == ("cancelled", "done")
    assert calendar.events("default") == []


# --- done -----------------------------------------------------------------------------------


def test_yes_again_after_booking_books_nothing_more(engine: Engine, calendar: InMemoryCalendar) -> None:
    proposed(engine)
    first = engine.handle("c1", "yes", channel="text")
    second = engine.handle("c1", "uh yes", channel="voice")
    assert (second.outcome, second.state) == ("already_booked", "done")
    assert second.event == first.event
    assert len(calendar.events("default")) == 1
    assert "already booked" in second.text


def test_yes_after_a_cancellation_books_nothing(engine: Engine, calendar: InMemoryCalendar) -> None:
    proposed(engine)
    engine.handle("c1", "no")
    reply = engine.handle("c1", "yes")
    assert (reply.outcome, reply.state) == ("nothing_pending", "done")
    assert calendar.events("default") == []


# --- any state: empty text ------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_is_invalid_input_and_changes_nothing(engine: Engine, calendar: InMemoryCalendar, text: str) -> None:
    proposed(engine)
    before = engine.snapshot("c1")
    with pytest.raises(InvalidInput):
        engine.handle("c1", text)
    assert engine.snapshot("c1") == before
    assert calendar.events("default") == []


def test_a_lone_y_books_on_text_and_asks_again_on_voice(engine: Engine) -> None:
    """Issue 12: "y" is a clear yes in chat; a one-letter voice transcript is a fragment (spec 4.4)."""
    proposed(engine, "voice")
    reply = engine.handle("voice", "y", channel="voice")
    assert (reply.outcome, reply.state) == ("reprompted", "awaiting_confirmation")
    assert engine.handle("text", SCHEDULE_DANA).outcome == "proposed"
    assert engine.handle("text", "y").outcome == "booked"


def test_a_question_keeps_the_proposal_and_answers_the_timezone(engine: Engine) -> None:
    """Issue 12 / spec 4.3: "is that eastern time?" moves nothing; the reply gives the timezone."""
    proposed(engine)
    reply = engine.handle("c1", "is that eastern time?")
    assert (reply.outcome, reply.state) == ("reprompted", "awaiting_confirmation")
    assert reply.proposal is not None and reply.proposal.start == TUE_10
    assert reply.text.startswith("All times are in UTC. ")


def test_an_unreadable_date_is_named_and_changes_nothing(engine: Engine) -> None:
    """Spec 4.3: never a guess: the reply names the words it could not read."""
    proposed(engine)
    reply = engine.handle("c1", "move it to feb 30")
    assert (reply.outcome, reply.state) == ("reprompted", "awaiting_confirmation")
    assert reply.proposal is not None and reply.proposal.start == TUE_10
    assert '"feb 30"' in reply.text


def test_do_not_book_it_cancels(engine: Engine) -> None:
    """The regression of issue 12's first draft: "do not book it" read as a question."""
    proposed(engine)
    reply = engine.handle("c1", "do not book it")
    assert (reply.outcome, reply.state) == ("cancelled", "done")


def test_a_new_booking_after_the_conversation_was_forgotten_is_booked(
    engine: Engine, calendar: InMemoryCalendar, redis_client: redis.Redis
) -> None:
    """Found by the property tests: proposal numbers restarted after an expiry, so a new proposal
    for the same lead and start as an earlier (since moved) booking derived its idempotency key."""
    for text in ("schedule a call with Dana Scully tomorrow at 10am", "yes", "can we move the call to 4pm?", "yes"):
        engine.handle("c1", text)
    redis_client.delete(ConversationKeys("default", "c1").conversation)  # what the TTL does
    assert engine.handle("c1", "schedule a call with Dana Scully tomorrow at 10am").outcome == "proposed"
    reply = engine.handle("c1", "yes")
    assert reply.event is not None and reply.event.start == TUE_10
    assert sorted(e.start for e in calendar.events("default")) == [TUE_10, at(24, 16)]


@pytest.mark.parametrize("text", ["yes please book the call with Dana", "yes, book it with Dana Scully"])
def test_a_yes_that_names_the_proposed_lead_books(engine: Engine, calendar: InMemoryCalendar, text: str) -> None:
    proposed(engine)
    reply = engine.handle("c1", text)
    assert reply.outcome == "booked" and len(calendar.events("default")) == 1


def test_a_yes_that_names_another_lead_never_books(engine: Engine, calendar: InMemoryCalendar) -> None:
    proposed(engine)
    reply = engine.handle("c1", "yes please book the call with Priya")
    assert reply.outcome != "booked" and calendar.events("default") == []


@pytest.mark.parametrize("text", ["tuesday is fine", "yes tuesday morning works", "Tuesday at 10 is fine"])
def test_restating_the_proposals_day_or_part_of_day_confirms_it(
    engine: Engine, calendar: InMemoryCalendar, text: str
) -> None:
    """Never a confident wrong time: "Tuesday is fine" to Tue 10:00 is a yes, not a move to 09:00."""
    proposed(engine)
    reply = engine.handle("c1", text)
    assert reply.outcome == "booked" and [e.start for e in calendar.events("default")] == [TUE_10]


def test_an_affirmed_other_part_of_the_day_moves_there(engine: Engine, calendar: InMemoryCalendar) -> None:
    proposed(engine)
    reply = engine.handle("c1", "yes, tuesday afternoon works")
    assert reply.outcome == "rescheduled" and reply.proposal is not None
    assert reply.proposal.start.date() == TUE_10.date() and reply.proposal.start.hour >= 12
    assert calendar.events("default") == []
