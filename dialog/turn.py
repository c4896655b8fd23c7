"""The decision of one turn: given the stored conversation and what the user meant, what happens.

Pure and I/O-free, so the synchronous and the async engine share it. A decision that needs a
free slot returns a :class:`SlotNeeded` naming the query; the engine runs the query against its
calendar and hands the answer to ``build``. Every state change goes through ``machine.fire``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from dialog.calendar.base import Event, Schedule
from dialog.machine import State, Trigger, fire
from dialog.results import Outcome
from dialog.store.keys import ConversationKeys
from dialog.store.record import (
    SCHEMA_VERSION,
    Booking,
    Change,
    ExpiredMarker,
    LastTransition,
    Record,
    Request,
    StoredProposal,
)
from dialog.understanding import Intent, Understanding, When, resolve_when


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a decision reads: who, when, the tenant's schedule, what is stored."""

    keys: ConversationKeys
    now: dt.datetime  # aware, in the tenant's timezone
    schedule: Schedule
    record: Record
    marker: ExpiredMarker | None = None  # set only when the conversation itself has expired


@dataclass(frozen=True, slots=True)
class Step:
    """What a turn writes and says. ``books``: the record carries a confirmation to settle."""

    record: Record
    outcome: Outcome
    requested: dt.datetime | None = None  # the time asked for, when the slot offered differs
    expired: ExpiredMarker | None = None
    event: Event | None = None
    books: bool = False
    # What the reply should add (issue 12): ("unreadable", words), ("timezone", ""), or why the
    # requested time was not offered: ("taken" | "hours" | "day" | "grid" | "past", "").
    note: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class SlotQuery:
    at_or_after: dt.datetime
    strictly_after: bool = False


@dataclass(frozen=True, slots=True)
class SlotNeeded:
    """A decision waiting for the first free slot that matches ``query`` (or None)."""

    query: SlotQuery
    build: Callable[[dt.datetime | None], Step] = field(repr=False)


Decision = Step | SlotNeeded


# How far ahead a requested time may lie (spec 4.1: more than a year ahead is not read as a date).
MAX_AHEAD = dt.timedelta(days=366)
_KEY_ENCODER = msgspec.json.Encoder()


def fresh_record(seq: int = 0) -> Record:
    """A conversation with nothing stored; ``seq``: where its proposal numbering goes on from."""
    return Record(schema_version=SCHEMA_VERSION, state=State.IDLE, seq=seq)


def booked_record(booking: Booking, seq: int = 0) -> Record:
    """A conversation that expired after its call was booked, as it stood then."""
    return Record(schema_version=SCHEMA_VERSION, state=State.DONE, booking=booking, seq=seq)


def decide(ctx: Context, u: Understanding) -> Decision:
    """The turn's decision for the user's utterance, from the stored state."""
    if u.unreadable is not None or u.intent is Intent.QUESTION:
        # Never a guess, never a move: ask again, naming what could not be read or answering the question.
        note = ("unreadable", u.unreadable) if u.unreadable is not None else None
        if u.intent is Intent.QUESTION and u.topic == "timezone":
            note = ("timezone", "")
        if ctx.marker is not None and ctx.record.state not in (State.AWAITING_CONFIRMATION, State.RESCHEDULING):
            return _nothing_pending(ctx, Understanding(Intent.UNCLEAR, None, None))
        return _reprompt(ctx, note)
    state = ctx.record.state
    if state is State.AWAITING_CONFIRMATION:
        return _while_awaiting(ctx, u)
    if state is State.RESCHEDULING:
        return _while_rescheduling(ctx, u)
    return _nothing_pending(ctx, u)


def propose(ctx: Context, lead: str, start: dt.datetime) -> SlotNeeded:
    """A host's own decision to propose ``start`` (or the first free slot at or after it)."""
    return _request_slot(ctx, lead, SlotQuery(start), requested=start)


def settle_booked(ctx: Context, event: Event) -> Step:
    """The calendar holds the confirmed proposal's event: the conversation is done."""
    booking = ctx.record.booking
    assert booking is not None
    done = msgspec.structs.replace(booking, event_id=event.id)
    record = _advance(ctx, (Trigger.CONFIRM,), Outcome.BOOKED, proposal=None, request=None, booking=done)
    return Step(record, Outcome.BOOKED, event=event)


def settle_moved(ctx: Context, event: Event) -> Step:
    """The calendar holds the booked call at its new time: the conversation is done again."""
    booked, change = ctx.record.booked, ctx.record.change
    assert booked is not None and change is not None
    moved = msgspec.structs.replace(booked, start=change.start, end=change.end)
    record = _advance(ctx, (Trigger.MOVE,), Outcome.MOVED, proposal=None, request=None, booking=moved, change=None)
    return Step(record, Outcome.MOVED, event=event)


def settle_called_off(ctx: Context) -> Step:
    """The calendar no longer holds the booked call: the conversation is done, with nothing booked."""
    record = _advance(
        ctx, (Trigger.CALL_OFF,), Outcome.CALL_CANCELLED, proposal=None, request=None, booking=None, change=None
    )
    return Step(record, Outcome.CALL_CANCELLED, event=_as_event(ctx, ctx.record.booked))


def settle_gone(ctx: Context) -> Step:
    """The call to move is no longer in the calendar (removed there): nothing is booked any more."""
    record = _advance(
        ctx, (Trigger.KEEP,), Outcome.NOTHING_PENDING, proposal=None, request=None, booking=None, change=None
    )
    return Step(record, Outcome.NOTHING_PENDING)


def settle_move_taken(ctx: Context) -> SlotNeeded:
    """The new time was taken before the move: offer moving to the first free slot after it."""
    change, booked = ctx.record.change, ctx.record.booked
    assert change is not None and booked is not None
    cleared = msgspec.structs.replace(ctx.record, change=None, dropped=change.key)
    return _taken(Context(ctx.keys, ctx.now, ctx.schedule, cleared), booked.lead, change.start, "move")


def settle_taken(ctx: Context) -> SlotNeeded:
    """The slot was taken before the booking: offer the first free slot after it instead."""
    booking = ctx.record.booking
    assert booking is not None
    dropped = msgspec.structs.replace(ctx.record, dropped=booking.key)
    return _taken(Context(ctx.keys, ctx.now, ctx.schedule, dropped), booking.lead, booking.start)


def _taken(ctx: Context, lead: str, epoch: int, kind: str = "book") -> SlotNeeded:
    start = _local(ctx, epoch)

    def build(slot: dt.datetime | None) -> Step:
        # a booking proposal drops its recorded confirmation; a move keeps the booked call
        cleared = ctx.record if kind == "move" else msgspec.structs.replace(ctx.record, booking=None)
        inner = Context(ctx.keys, ctx.now, ctx.schedule, cleared)
        if slot is None:
            return _no_slot(inner, lead, start, Outcome.SLOT_TAKEN, kind)
        return _offer(inner, (Trigger.SLOT_TAKEN,), Outcome.SLOT_TAKEN, lead, slot, start, kind)

    return SlotNeeded(SlotQuery(start, strictly_after=True), build)


def idempotency_key(keys: ConversationKeys, proposal: StoredProposal) -> str:
    """The same confirmed proposal always derives the same key, in any process.

    The parts are hashed as a JSON array, an injective encoding: no characters in the ids or
    the lead can make two different proposals share a key (joining with a separator could).
    """
    parts: tuple[object, ...] = (keys.tenant_id, keys.conversation_id, proposal.seq, proposal.start, proposal.lead)
    if proposal.kind != "book":  # a move or cancellation of the booked call: a key of its own
        parts = (*parts, proposal.kind)
    return hashlib.sha256(_KEY_ENCODER.encode(parts)).hexdigest()[:32]


# --- per state ------------------------------------------------------------------------------


def _nothing_pending(ctx: Context, u: Understanding) -> Decision:
    if u.intent is Intent.SCHEDULE:
        return _new_request(ctx, u)
    booked = ctx.record.booked
    if ctx.marker is not None and booked is not None:  # a move or cancellation of it expired
        record = _advance(ctx, (Trigger.ACKNOWLEDGE,), Outcome.EXPIRED)
        return Step(record, Outcome.EXPIRED, expired=ctx.marker, event=_as_event(ctx, booked))
    if booked is not None and ctx.record.state is State.DONE:
        if u.intent in (Intent.RESCHEDULE, Intent.CORRECTION):
            anchor = _local(ctx, booked.start)
            return _move(ctx, booked.lead, anchor, u.when, "move", (Trigger.PROPOSE_MOVE,), Outcome.PROPOSED)
        if u.intent is Intent.REFUSE and u.cancels:
            return _propose_cancel(ctx, booked)
    if ctx.marker is not None:  # whatever they answer, the proposal they answer is gone
        record = _advance(ctx, (Trigger.ACKNOWLEDGE,), Outcome.EXPIRED)
        return Step(record, Outcome.EXPIRED, expired=ctx.marker)
    if u.intent in (Intent.HESITATE, Intent.UNCLEAR):
        return _stay(ctx, Trigger.REPROMPT, Outcome.REPROMPTED)
    already = ctx.record.booking is not None and u.intent is Intent.CONFIRM
    return _stay(ctx, Trigger.ACKNOWLEDGE, Outcome.ALREADY_BOOKED if already else Outcome.NOTHING_PENDING)


def _while_awaiting(ctx: Context, u: Understanding) -> Decision:
    proposal = ctx.record.proposal
    assert proposal is not None
    anchor = _local(ctx, proposal.start)
    changing = proposal.kind != "book"
    # "cancel the call" answers "shall I cancel your call?" with a yes
    confirms = u.intent is Intent.CONFIRM or (proposal.kind == "cancel" and u.cancels)
    if confirms:
        return _confirm_change(ctx, proposal) if changing else _confirm(ctx, proposal)
    if u.intent is Intent.REFUSE:
        return _keep(ctx) if changing else _cancel(ctx)
    if u.intent is Intent.SCHEDULE and u.lead:
        return _new_request(ctx, u)
    if u.intent is Intent.CORRECTION and u.lead and not changing:
        # "not Dana, Priya Nair": the same time (or the time said) with the other person
        when_at = _when(ctx, u.when, anchor=anchor) if u.when is not None else anchor
        if when_at is None:
            return _reprompt(ctx, ("unreadable", u.when.text if u.when else ""))
        return _request_slot(ctx, u.lead, SlotQuery(when_at), when_at)
    affirmed = u.intent is Intent.RESCHEDULE and u.affirms and u.when is not None and not changing
    if affirmed and u.when is not None and _when(ctx, u.when, anchor=anchor) == anchor:
        return _confirm(ctx, proposal)  # "Tuesday at 10 is fine": the proposal itself
    if u.intent in (Intent.RESCHEDULE, Intent.SCHEDULE, Intent.CORRECTION):
        return _move(ctx, proposal.lead, anchor, u.when, "move" if changing else "book")
    return _stay(ctx, Trigger.REPROMPT, Outcome.REPROMPTED)


def _while_rescheduling(ctx: Context, u: Understanding) -> Decision:
    request = ctx.record.request
    assert request is not None
    if u.intent is Intent.SCHEDULE and u.lead and u.lead != request.lead:
        return _new_request(ctx, u)
    if u.intent is Intent.REFUSE:
        return _keep(ctx) if request.kind == "move" else _cancel(ctx)
    if u.intent in (Intent.RESCHEDULE, Intent.SCHEDULE, Intent.CORRECTION) and u.when is not None:
        requested = _when(ctx, u.when, anchor=_local(ctx, request.anchor))
        if requested is None:
            return _reprompt(ctx, ("unreadable", u.when.text))
        query = SlotQuery(requested)
        return _request_slot(ctx, request.lead, query, requested, (Trigger.OFFER,), Outcome.RESCHEDULED, request.kind)
    return _stay(ctx, Trigger.REPROMPT, Outcome.REPROMPTED)


# --- building blocks ------------------------------------------------------------------------


def _confirm(ctx: Context, proposal: StoredProposal) -> Decision:
    if proposal.start < ctx.now.timestamp():
        return _taken(ctx, proposal.lead, proposal.start)  # its time has passed: not a free slot any more
    key = idempotency_key(ctx.keys, proposal)
    booking = Booking(key=key, lead=proposal.lead, start=proposal.start, end=proposal.end)
    # The confirmation is recorded before the calendar call (an outbox of one): whoever loads
    # this record next, this turn or another, settles it with the same idempotency key.
    record = msgspec.structs.replace(ctx.record, booking=booking, updated=_stamp(ctx))
    return Step(record, Outcome.BOOKED, books=True)


def _confirm_change(ctx: Context, proposal: StoredProposal) -> Decision:
    """A "yes" to moving or cancelling the booked call: recorded first (outbox), like a booking."""
    booked = ctx.record.booked
    assert booked is not None and booked.event_id is not None
    if proposal.kind == "move" and proposal.start < ctx.now.timestamp():
        return _taken(ctx, proposal.lead, proposal.start, "move")
    key = idempotency_key(ctx.keys, proposal)
    change = Change(proposal.kind, key, booked.event_id, proposal.start, proposal.end)
    record = msgspec.structs.replace(ctx.record, change=change, updated=_stamp(ctx))
    return Step(record, Outcome.MOVED if proposal.kind == "move" else Outcome.CALL_CANCELLED, books=True)


def _cancel(ctx: Context) -> Step:
    record = _advance(ctx, (Trigger.CANCEL,), Outcome.CANCELLED, proposal=None, request=None)
    return Step(record, Outcome.CANCELLED)


def _keep(ctx: Context) -> Step:
    """A refused move or cancellation: the booked call stands."""
    record = _advance(ctx, (Trigger.KEEP,), Outcome.KEPT, proposal=None, request=None)
    return Step(record, Outcome.KEPT, event=_as_event(ctx, ctx.record.booked))


def _propose_cancel(ctx: Context, booked: Booking) -> Step:
    seq = ctx.record.seq + 1
    proposal = StoredProposal(booked.lead, booked.start, booked.end, seq, kind="cancel")
    record = _advance(ctx, (Trigger.PROPOSE_CANCEL,), Outcome.PROPOSED, proposal=proposal, request=None, seq=seq)
    return Step(record, Outcome.PROPOSED)


def _move(
    ctx: Context,
    lead: str,
    anchor: dt.datetime,
    when: When | None,
    kind: str = "book",
    triggers: tuple[Trigger, ...] = (Trigger.RESCHEDULE, Trigger.OFFER),
    outcome: Outcome = Outcome.RESCHEDULED,
) -> Decision:
    if when is None:  # "can we move it?": the next free slot strictly after the proposal
        query = SlotQuery(anchor, strictly_after=True)
        return _request_slot(ctx, lead, query, None, triggers, outcome, kind)
    requested = _when(ctx, when, anchor=anchor)
    if requested is None:
        return _reprompt(ctx, ("unreadable", when.text))
    return _request_slot(ctx, lead, SlotQuery(requested), requested, triggers, outcome, kind)


def _new_request(ctx: Context, u: Understanding) -> Decision:
    lead = u.lead or _current_lead(ctx.record)
    if u.when is None:
        return _request_slot(ctx, lead, SlotQuery(ctx.now), None)
    requested = _when(ctx, u.when, anchor=None)
    if requested is None:
        return _reprompt(ctx, ("unreadable", u.when.text))
    return _request_slot(ctx, lead, SlotQuery(requested), requested if u.when.has_time else None)


def _request_slot(
    ctx: Context,
    lead: str,
    query: SlotQuery,
    requested: dt.datetime | None,
    triggers: tuple[Trigger, ...] = (Trigger.PROPOSE,),
    outcome: Outcome = Outcome.PROPOSED,
    kind: str = "book",
) -> SlotNeeded:
    def build(slot: dt.datetime | None) -> Step:
        if slot is None:
            return _no_slot(ctx, lead, query.at_or_after, Outcome.NO_FREE_SLOT, kind)
        return _offer(ctx, triggers, outcome, lead, slot, requested, kind)

    return SlotNeeded(query, build)


def _offer(
    ctx: Context,
    triggers: tuple[Trigger, ...],
    outcome: Outcome,
    lead: str,
    slot: dt.datetime,
    requested: dt.datetime | None,
    kind: str = "book",
) -> Step:
    seq = ctx.record.seq + 1
    end = slot + ctx.schedule.slot
    proposal = StoredProposal(lead=lead, start=_epoch(slot), end=_epoch(end), seq=seq, kind=kind)
    # A new booking proposal forgets an earlier booking; a move keeps the call it moves.
    booking = ctx.record.booking if kind == "move" else None
    record = _advance(ctx, triggers, outcome, proposal=proposal, request=None, booking=booking, seq=seq)
    differs = requested is not None and requested != slot
    note = ("reason", why_not_offered(ctx, requested)) if differs and requested is not None else None
    return Step(record, outcome, requested=requested if differs else None, event=_moving(ctx, kind), note=note)


def why_not_offered(ctx: Context, requested: dt.datetime) -> str:
    """Why ``requested`` was not the slot offered: in the past, not a working day, outside working
    hours, off the slot grid, else taken."""
    schedule = ctx.schedule
    local = requested.astimezone(schedule.tz)
    if requested < ctx.now:
        return "past"
    if local.weekday() not in schedule.working_days:
        return "day"
    if not schedule.day_start <= local.time() < schedule.day_end or (
        (local + schedule.slot).time() > schedule.day_end and (local + schedule.slot).date() == local.date()
    ):
        return "hours"
    start = dt.datetime.combine(local.date(), schedule.day_start, tzinfo=local.tzinfo)
    if (local - start) % schedule.slot:
        return "grid"
    return "taken"


def _reprompt(ctx: Context, note: tuple[str, str] | None) -> Step:
    step = _stay(ctx, Trigger.REPROMPT, Outcome.REPROMPTED)
    return Step(step.record, step.outcome, note=note)


def _no_slot(ctx: Context, lead: str, anchor: dt.datetime, outcome: Outcome, kind: str = "book") -> Step:
    request = Request(lead=lead, anchor=_epoch(anchor), kind=kind)
    booking = ctx.record.booking if kind == "move" else None
    record = _advance(ctx, (Trigger.NO_SLOT,), outcome, proposal=None, request=request, booking=booking)
    return Step(record, outcome, requested=anchor, event=_moving(ctx, kind))


def _moving(ctx: Context, kind: str) -> Event | None:
    return _as_event(ctx, ctx.record.booked) if kind == "move" else None


def _as_event(ctx: Context, booking: Booking | None) -> Event | None:
    return as_event(booking, ctx.schedule)


def as_event(booking: Booking | None, schedule: Schedule) -> Event | None:
    """The booked call as the calendar holds it (a reply's ``event``), in the tenant's timezone."""
    if booking is None or booking.event_id is None:
        return None
    start, end = (dt.datetime.fromtimestamp(t, schedule.tz) for t in (booking.start, booking.end))
    return Event(booking.event_id, start, end, booking.lead, booking.key)


def _stay(ctx: Context, trigger: Trigger, outcome: Outcome) -> Step:
    return Step(_advance(ctx, (trigger,), outcome), outcome)


def _advance(ctx: Context, triggers: tuple[Trigger, ...], outcome: Outcome, **changes: object) -> Record:
    state = source = ctx.record.state
    for trigger in triggers:
        source, state = state, fire(state, trigger)  # the last arrow is what the diagrams mark
    last = LastTransition(trigger=triggers[-1], source=source, outcome=outcome)
    return msgspec.structs.replace(ctx.record, state=state, last=last, updated=_stamp(ctx), **changes)


def _when(ctx: Context, when: When, *, anchor: dt.datetime | None) -> dt.datetime | None:
    """The moment a time expression names, in the tenant's timezone (a bare day: its midnight).

    None when it lies more than a year ahead or outside what a datetime can hold: the turn
    asks again rather than search a calendar there.
    """
    try:
        day, time = resolve_when(when, now=ctx.now, anchor=anchor, date_order=ctx.schedule.date_order)
        moment = dt.datetime.combine(day, time or dt.time(0, 0), tzinfo=ctx.schedule.tz)
    except (OverflowError, ValueError):
        return None
    return moment if moment - ctx.now <= MAX_AHEAD else None


def _current_lead(record: Record) -> str:
    if record.proposal is not None:
        return record.proposal.lead
    return record.request.lead if record.request is not None else ""


def _local(ctx: Context, epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, ctx.schedule.tz)


def _epoch(value: dt.datetime) -> int:
    return int(value.timestamp())


def _stamp(ctx: Context) -> int:
    return int(ctx.now.timestamp())
