"""The pure core without Redis: the machine's tables, and a turn's flow driven by a scripted driver.

As h11 tests its state machine: the flow (``dialog.flow.Turns``) is a generator of I/O requests,
so a test answers each request itself and checks the order of what the turn asks for (settle a
recorded confirmation first, decide again on the record a lost compare-and-set returned, offer
the next slot when the calendar says ``SlotTaken``). The exhaustive state x intent table runs
here on an in-memory store in well under a second; ``tests/test_state_intent_table.py`` is its
twin on the real Redis.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Generator
from typing import Any

import pytest
import redis

from dialog import Engine, InMemoryCalendar, Schedule, turn
from dialog.calendar.base import Event
from dialog.errors import SlotTaken
from dialog.flow import Book, Done, FindSlot, GetSchedule, Load, Message, Reach, Turns, Write
from dialog.machine import (
    CONFIRMING,
    RULES,
    STATES,
    Act,
    Cue,
    Fact,
    NoRule,
    Outcome,
    State,
    TransitionNotAllowed,
    Trigger,
    choose,
    fire,
    fire_checked,
)
from dialog.store.keys import ConversationKeys
from dialog.store.record import SCHEMA_VERSION, Booking, LastTransition, Record, StoredProposal
from dialog.store.redis_store import Commit, Stored
from dialog.testing import FakeClock
from dialog.understanding import understand
from tests import test_state_intent_table as table

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
TUE_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
KEYS = ConversationKeys("default", "c1")
WORDS = (
    Cue.CONFIRM,
    Cue.REFUSE,
    Cue.HESITATE,
    Cue.UNCLEAR,
    Cue.QUESTION,
    Cue.RESCHEDULE,
    Cue.SCHEDULE,
    Cue.CORRECTION,
    Cue.UNREADABLE,
)
PUBLIC = tuple(State)


# --- the machine's tables ----------------------------------------------------------------------


@pytest.mark.parametrize(("node", "trigger"), list(itertools.product(STATES, Trigger)))
def test_the_compiled_arrows_agree_with_pytransitions(node: str, trigger: Trigger) -> None:
    try:
        expected = fire_checked(node, trigger)
    except TransitionNotAllowed:
        with pytest.raises(TransitionNotAllowed):
            fire(node, trigger)
    else:
        assert fire(node, trigger) == expected


def _all_facts() -> list[frozenset[Fact]]:
    facts = list(Fact)
    return [frozenset(c) for n in range(len(facts) + 1) for c in itertools.combinations(facts, n)]


def test_every_state_at_rest_decides_every_kind_of_words_under_any_facts() -> None:
    """No gap in the rules: 4 states x 9 cues x 1,024 fact sets, each decided by an allowed arrow."""
    for node, cue, facts in itertools.product(PUBLIC, WORDS, _all_facts()):
        rule = choose(node, cue, facts)
        fire(node, rule.trigger)  # raises if the arrow does not exist


def test_words_that_are_not_a_yes_never_record_a_confirmation() -> None:
    """Unclear is never yes: whatever the facts, only a confirmation (or "cancel the call" to a
    proposed cancellation, or the proposal's own time said with affirmative words) records one."""
    for node, cue, facts in itertools.product(PUBLIC, WORDS, _all_facts()):
        rule = choose(node, cue, facts)
        if rule.act is Act.RECORD:
            assert (
                cue is Cue.CONFIRM
                or (cue is Cue.REFUSE and {Fact.CANCELLING, Fact.CANCELS} <= facts)
                or (cue is Cue.RESCHEDULE and Fact.SAME_TIME in facts)
            ), (node, cue, sorted(facts))
            assert fire(node, rule.trigger) == CONFIRMING


def test_only_the_settling_of_a_recorded_confirmation_leaves_confirming() -> None:
    assert {r.trigger for r in RULES if CONFIRMING in r.sources} == {
        Trigger.CONFIRM,
        Trigger.MOVE,
        Trigger.CALL_OFF,
        Trigger.SLOT_TAKEN,
        Trigger.KEEP,
    }
    for cue in WORDS:  # words never decide while a confirmation is outstanding: it is settled first
        with pytest.raises(NoRule):
            choose(CONFIRMING, cue, frozenset())


# --- a turn's flow, driven by a script ------------------------------------------------------------


def _record(state: State, **fields: Any) -> Record:
    return Record(schema_version=SCHEMA_VERSION, state=state, **fields)


def _awaiting(seq: int = 1) -> Record:
    start, end = int(TUE_10.timestamp()), int((TUE_10 + dt.timedelta(minutes=30)).timestamp())
    return _record(State.AWAITING_CONFIRMATION, proposal=StoredProposal("Dana Scully", start, end, seq), seq=seq)


def _recorded() -> Record:
    """Awaiting, with a "yes" recorded and its calendar call outstanding."""
    record = _awaiting()
    assert record.proposal is not None
    key = turn.idempotency_key(KEYS, record.proposal)
    booking = Booking(key, record.proposal.lead, record.proposal.start, record.proposal.end)
    return Record(**{**_fields(record), "booking": booking})


def _fields(record: Record) -> dict[str, Any]:
    return {f: getattr(record, f) for f in record.__struct_fields__}


class Script:
    """Answers a flow's requests; records what it was asked, in order."""

    def __init__(
        self, stored: Stored, *, commits: list[bool] | None = None, book: Callable[[Book], Event] | None = None
    ) -> None:
        self.stored = stored
        self.commits = list(commits or [])
        self.book = book or (lambda r: _event(r.booking))
        self.asked: list[str] = []
        self.writes: list[Write] = []

    def run(self, flow: Generator[Any, Any, Any]) -> Any:
        answer: Any = None
        error: BaseException | None = None
        while True:
            try:
                request = flow.throw(error) if error is not None else flow.send(answer)
            except StopIteration as stop:
                return stop.value
            answer, error = None, None
            self.asked.append(type(request).__name__ + (f":{request.point}" if isinstance(request, Reach) else ""))
            try:
                answer = self._answer(request)
            except SlotTaken as exc:
                error = exc

    def _answer(self, request: Any) -> Any:
        if isinstance(request, GetSchedule):
            return Schedule()
        if isinstance(request, Load):
            return self.stored
        if isinstance(request, Write):
            self.writes.append(request)
            ok = self.commits.pop(0) if self.commits else True
            if ok:
                self.stored = Stored(self.stored.version + 1, request.record)
                return Commit(True, self.stored)
            # another turn wrote first: it moved the proposal (a version the flow has not seen)
            self.stored = Stored(self.stored.version + 1, _awaiting(seq=2))
            return Commit(False, self.stored)
        if isinstance(request, Book):
            return self.book(request)
        if isinstance(request, FindSlot):
            q = request.query
            return q.at_or_after + dt.timedelta(minutes=30) if q.strictly_after else q.at_or_after
        return None


def _event(booking: Booking) -> Event:
    start = dt.datetime.fromtimestamp(booking.start, UTC)
    return Event("e1", start, dt.datetime.fromtimestamp(booking.end, UTC), booking.lead, booking.key)


def _turns() -> Turns:
    return Turns(FakeClock(NOW), lambda keys, channel, done: b"{}")


def _saying(text: str) -> Callable[[turn.Context], turn.Decision]:
    def decide(ctx: turn.Context) -> turn.Decision:
        pending = ctx.record.state in (State.AWAITING_CONFIRMATION, State.RESCHEDULING)
        return turn.decide(ctx, understand(text, pending=pending or ctx.record.booked is not None))

    return decide


def test_a_recorded_confirmation_is_settled_before_the_new_words_are_read() -> None:
    script = Script(Stored(2, _recorded()))
    done = script.run(_turns().run(KEYS, _saying("actually, can we move it?"), Message(None, "text", "x")))
    assert isinstance(done, Done) and done.step.outcome == "booked"
    assert script.asked == [
        "GetSchedule",
        "Load",
        "Reach:loaded",
        "Book",  # before any decision about "move it"
        "Reach:calendar_called",
        "Write",
        "Reach:committed",
    ]
    written = script.writes[0].record
    assert written.state is State.DONE and written.booked is not None
    assert written.last == LastTransition(Trigger.CONFIRM, State.AWAITING_CONFIRMATION, Outcome.BOOKED)


def test_a_lost_compare_and_set_decides_again_on_the_record_it_returned() -> None:
    script = Script(Stored(1, _awaiting()), commits=[False, True])
    done = script.run(_turns().run(KEYS, _saying("3pm instead"), Message(None, "text", "3pm instead")))
    assert isinstance(done, Done) and done.step.outcome == "rescheduled"
    # no second Load: the losing write returned what stands (seq 2), and the turn decided on it
    assert script.asked.count("Load") == 1 and script.asked.count("Write") == 2
    assert "Reach:conflict" in script.asked
    first, second = (w.record.proposal for w in script.writes)
    assert first is not None and second is not None and (first.seq, second.seq) == (2, 3)


def test_slot_taken_from_the_calendar_offers_the_next_free_slot_and_books_nothing() -> None:
    def taken(request: Book) -> Event:
        raise SlotTaken("taken")

    script = Script(Stored(1, _awaiting()), book=taken)
    done = script.run(_turns().run(KEYS, _saying("yes"), Message(None, "text", "yes")))
    assert isinstance(done, Done) and done.step.outcome == "slot_taken"
    assert script.asked.count("Book") == 1 and "FindSlot" in script.asked
    recorded, settled = (w.record for w in script.writes)
    assert recorded.pending_booking is not None  # the "yes" was recorded before the calendar call
    assert settled.booking is None and settled.dropped == recorded.pending_booking.key
    assert settled.proposal is not None and settled.proposal.start == int(TUE_10.timestamp()) + 1800
    assert settled.last == LastTransition(Trigger.SLOT_TAKEN, State.AWAITING_CONFIRMATION, Outcome.SLOT_TAKEN)


def test_a_move_is_one_arrow_and_never_rests_in_rescheduling() -> None:
    script = Script(Stored(1, _awaiting()))
    done = script.run(_turns().run(KEYS, _saying("can we move it"), None))
    assert isinstance(done, Done)
    assert done.step.record.last == LastTransition(Trigger.RESCHEDULE, State.AWAITING_CONFIRMATION, Outcome.RESCHEDULED)


# --- the exhaustive table, in memory -------------------------------------------------------------


class _Forgetting:
    """What ``client.delete(conversation)`` does to the in-memory store: the TTL's work."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def delete(self, key: str) -> None:
        self._store._records.pop(key, None)


@pytest.mark.parametrize(("situation", "kind"), table.CELLS)
def test_cell_in_memory(situation: str, kind: str) -> None:
    from benchmarks.memstore import MemoryStore

    calendar = InMemoryCalendar()
    engine = Engine(redis.Redis(), calendar=calendar, clock=FakeClock(NOW), configure_client=False)  # never used
    store = MemoryStore(ttl_seconds=engine.ttl_seconds)
    engine._store = store  # type: ignore[assignment]
    setup, state_before = table.SETUPS[situation]
    setup(engine, calendar, _Forgetting(store))  # type: ignore[arg-type]
    snap = engine.snapshot("t")
    assert (snap.state if snap else "idle") == state_before
    events_before = len(calendar.events("default"))

    reply = engine.handle("t", table.UTTERANCES[kind])

    outcome, state_after, events_added = table.TABLE[situation][kind]
    assert (reply.outcome, reply.state) == (outcome, state_after)
    assert len(calendar.events("default")) - events_before == events_added
    if state_after == table.A:
        assert reply.proposal is not None and reply.proposal.kind == table.KINDS.get((situation, kind), "book")
    else:
        assert reply.proposal is None
