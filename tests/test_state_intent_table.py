"""The exhaustive table: every starting situation x every kind of utterance, on the real Redis.

Written from shared/SPEC.md, not from the engine's transition table: each cell states the
outcome, the state reached and how many events the calendar gains.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
import redis

from dialog import Engine, InMemoryCalendar, Schedule
from dialog.store.keys import ConversationKeys

UTC = dt.UTC
Setup = Callable[[Engine, InMemoryCalendar, redis.Redis], None]

UTTERANCES = {
    "confirm": "yes please",
    "refuse": "no thanks",
    "hesitate": "not yet",
    "move": "can we move it",
    "move_to_time": "3pm instead",
    "schedule": "schedule a call with Fox Mulder tomorrow at 11am",
    "unclear": "what's the weather in Paris",
    "cancel_call": "cancel the call",
    # issue 12 / spec 4.3: a question never moves anything; a deferral is a hesitation; "no" plus a
    # time is a correction of the time: a reschedule to it (spec section 2: "no, 3pm instead")
    "question": "is that eastern time?",
    "deferral": "not right now",
    "correction": "no, 11 instead",
}


def _propose(engine: Engine, *_: object) -> None:
    engine.handle("t", "Schedule a call with Dana Scully tomorrow at 10am")


def _new(*_: object) -> None:
    pass


def _awaiting(engine: Engine, calendar: InMemoryCalendar, client: redis.Redis) -> None:
    _propose(engine)


def _rescheduling(engine: Engine, calendar: InMemoryCalendar, client: redis.Redis) -> None:
    calendar.set_schedule("default", Schedule(horizon_days=1))
    calendar.block("default", dt.datetime(2026, 11, 24, tzinfo=UTC), dt.datetime(2026, 11, 26, tzinfo=UTC))
    _propose(engine)


def _booked(engine: Engine, calendar: InMemoryCalendar, client: redis.Redis) -> None:
    _propose(engine)
    engine.handle("t", "yes")


def _move_proposed(engine: Engine, calendar: InMemoryCalendar, client: redis.Redis) -> None:
    _booked(engine, calendar, client)
    engine.handle("t", "can we move the call to 2pm?")


def _cancel_proposed(engine: Engine, calendar: InMemoryCalendar, client: redis.Redis) -> None:
    _booked(engine, calendar, client)
    engine.handle("t", "please call it off")


def _cancelled(engine: Engine, calendar: InMemoryCalendar, client: redis.Redis) -> None:
    _propose(engine)
    engine.handle("t", "no")


def _expired(engine: Engine, calendar: InMemoryCalendar, client: redis.Redis) -> None:
    _propose(engine)
    client.delete(ConversationKeys("default", "t").conversation)  # what the TTL does


SETUPS: dict[str, tuple[Setup, str]] = {
    "idle": (_new, "idle"),
    "awaiting": (_awaiting, "awaiting_confirmation"),
    "rescheduling": (_rescheduling, "rescheduling"),
    "done_booked": (_booked, "done"),
    "awaiting_move": (_move_proposed, "awaiting_confirmation"),
    "awaiting_cancel": (_cancel_proposed, "awaiting_confirmation"),
    "done_cancelled": (_cancelled, "done"),
    "idle_expired": (_expired, "idle"),
}

P, A, R, D, IDLE = "proposed", "awaiting_confirmation", "rescheduling", "done", "idle"
# situation -> utterance kind -> (outcome, state after, events added by this turn)
TABLE: dict[str, dict[str, tuple[str, str, int]]] = {
    "idle": {
        "confirm": ("nothing_pending", IDLE, 0),
        "refuse": ("nothing_pending", IDLE, 0),
        "hesitate": ("reprompted", IDLE, 0),
        "move": ("reprompted", IDLE, 0),
        "move_to_time": ("reprompted", IDLE, 0),
        "schedule": (P, A, 0),
        "unclear": ("reprompted", IDLE, 0),
        "cancel_call": ("nothing_pending", IDLE, 0),
        "question": ("reprompted", IDLE, 0),
        "deferral": ("reprompted", IDLE, 0),
        "correction": ("reprompted", IDLE, 0),
    },
    "awaiting": {
        "confirm": ("booked", D, 1),
        "refuse": ("cancelled", D, 0),
        "hesitate": ("reprompted", A, 0),
        "move": ("rescheduled", A, 0),
        "move_to_time": ("rescheduled", A, 0),
        "schedule": (P, A, 0),
        "unclear": ("reprompted", A, 0),
        "cancel_call": ("cancelled", D, 0),
        "question": ("reprompted", A, 0),
        "deferral": ("reprompted", A, 0),
        "correction": ("rescheduled", A, 0),
    },
    "rescheduling": {
        "confirm": ("reprompted", R, 0),
        "refuse": ("cancelled", D, 0),
        "hesitate": ("reprompted", R, 0),
        "move": ("reprompted", R, 0),
        "move_to_time": ("no_free_slot", R, 0),
        "schedule": ("no_free_slot", R, 0),  # the setup leaves no free slot for anyone
        "unclear": ("reprompted", R, 0),
        "cancel_call": ("cancelled", D, 0),
        "question": ("reprompted", R, 0),
        "deferral": ("reprompted", R, 0),
        "correction": ("no_free_slot", R, 0),
    },
    # spec 4.2: a booked call can be moved or cancelled; a bare "no" does not cancel it
    "done_booked": {
        "confirm": ("already_booked", D, 0),
        "refuse": ("nothing_pending", D, 0),
        "hesitate": ("reprompted", D, 0),
        "move": (P, A, 0),
        "move_to_time": (P, A, 0),
        "schedule": (P, A, 0),
        "unclear": ("reprompted", D, 0),
        "cancel_call": (P, A, 0),
        "question": ("reprompted", D, 0),
        "deferral": ("reprompted", D, 0),
        "correction": (P, A, 0),
    },
    "awaiting_move": {
        "confirm": ("moved", D, 0),
        "refuse": ("kept", D, 0),
        "hesitate": ("reprompted", A, 0),
        "move": ("rescheduled", A, 0),
        "move_to_time": ("rescheduled", A, 0),
        "schedule": (P, A, 0),
        "unclear": ("reprompted", A, 0),
        "cancel_call": ("kept", D, 0),  # refusing the move never removes the call
        "question": ("reprompted", A, 0),
        "deferral": ("reprompted", A, 0),
        "correction": ("rescheduled", A, 0),
    },
    "awaiting_cancel": {
        "confirm": ("call_cancelled", D, -1),
        "refuse": ("kept", D, 0),
        "hesitate": ("reprompted", A, 0),
        "move": ("rescheduled", A, 0),  # "move it" instead of cancelling: a move proposal
        "move_to_time": ("rescheduled", A, 0),
        "schedule": (P, A, 0),
        "unclear": ("reprompted", A, 0),
        "cancel_call": ("call_cancelled", D, -1),  # "cancel the call" answers "shall I cancel it?"
        "question": ("reprompted", A, 0),
        "deferral": ("reprompted", A, 0),
        "correction": ("rescheduled", A, 0),
    },
    "done_cancelled": {
        "confirm": ("nothing_pending", D, 0),
        "refuse": ("nothing_pending", D, 0),
        "hesitate": ("reprompted", D, 0),
        "move": ("reprompted", D, 0),
        "move_to_time": ("reprompted", D, 0),
        "schedule": (P, A, 0),
        "unclear": ("reprompted", D, 0),
        "cancel_call": ("nothing_pending", D, 0),
        "question": ("reprompted", D, 0),
        "deferral": ("reprompted", D, 0),
        "correction": ("reprompted", D, 0),
    },
    "idle_expired": {
        "confirm": ("expired", IDLE, 0),
        "refuse": ("expired", IDLE, 0),
        "hesitate": ("expired", IDLE, 0),
        "move": ("expired", IDLE, 0),
        "move_to_time": ("expired", IDLE, 0),
        "schedule": (P, A, 0),
        "unclear": ("expired", IDLE, 0),
        "cancel_call": ("expired", IDLE, 0),
        "question": ("expired", IDLE, 0),
        "deferral": ("expired", IDLE, 0),
        "correction": ("expired", IDLE, 0),
    },
}
# The kind of proposal a cell leaves pending, where it is not a new booking.
KINDS = {
    ("done_booked", "move"): "move",
    ("done_booked", "move_to_time"): "move",
    ("done_booked", "cancel_call"): "cancel",
    ("awaiting_move", "hesitate"): "move",
    ("awaiting_move", "move"): "move",
    ("awaiting_move", "move_to_time"): "move",
    ("awaiting_move", "unclear"): "move",
    ("awaiting_cancel", "hesitate"): "cancel",
    ("awaiting_cancel", "move"): "move",
    ("awaiting_cancel", "move_to_time"): "move",
    ("awaiting_cancel", "unclear"): "cancel",
    ("done_booked", "correction"): "move",
    ("awaiting_move", "question"): "move",
    ("awaiting_move", "deferral"): "move",
    ("awaiting_move", "correction"): "move",
    ("awaiting_cancel", "question"): "cancel",
    ("awaiting_cancel", "deferral"): "cancel",
    ("awaiting_cancel", "correction"): "move",
}

CELLS = [(situation, kind) for situation in TABLE for kind in UTTERANCES]


def test_the_table_covers_every_situation_and_kind() -> None:
    assert set(TABLE) == set(SETUPS)
    assert all(set(row) == set(UTTERANCES) for row in TABLE.values())


@pytest.mark.parametrize(("situation", "kind"), CELLS)
def test_cell(engine: Engine, calendar: InMemoryCalendar, redis_client: redis.Redis, situation: str, kind: str) -> None:
    setup, state_before = SETUPS[situation]
    setup(engine, calendar, redis_client)
    snap = engine.snapshot("t")
    assert (snap.state if snap else "idle") == state_before
    events_before = len(calendar.events("default"))

    reply = engine.handle("t", UTTERANCES[kind])

    outcome, state_after, events_added = TABLE[situation][kind]
    assert (reply.outcome, reply.state) == (outcome, state_after)
    assert len(calendar.events("default")) - events_before == events_added
    assert reply.text.strip()
    if state_after == A:
        assert reply.proposal is not None
        assert reply.proposal.kind == KINDS.get((situation, kind), "book")
        if reply.proposal.kind != "book":  # the call as booked travels with a change proposal
            assert reply.event is not None and reply.event in calendar.events("default")
    else:
        assert reply.proposal is None
