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
from dialog.machine import CONFIRMING, Act, Cue, Fact, Node, Outcome, Rule, State, Trigger, choose, fire, public
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


@dataclass(slots=True)
class Context:
    """Everything a decision reads: who, when, the tenant's schedule, what is stored."""

    keys: ConversationKeys
    now: dt.datetime  # aware, in the tenant's timezone
    schedule: Schedule
    record: Record
    marker: ExpiredMarker | None = None  # set only when the conversation itself has expired


@dataclass(slots=True)
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


@dataclass(slots=True)
class SlotQuery:
    at_or_after: dt.datetime
    strictly_after: bool = False


@dataclass(slots=True)
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
    """The turn's decision for the user's utterance: the machine's rules choose, this builds it."""
    state = ctx.record.state
    anchor = _anchor(ctx, u)
    requested = None
    cue = _CUES[u.intent] if u.unreadable is None else Cue.UNREADABLE
    unreadable = u.unreadable
    if u.when is not None and cue is not Cue.UNREADABLE:
        requested = _when(ctx, u.when, anchor=anchor)
        if requested is None:  # more than a year ahead, or no such day: ask, never guess
            cue, unreadable = Cue.UNREADABLE, u.when.text
    rule = choose(state, cue, _facts(ctx, u, anchor, requested))
    act = rule.act
    if act is Act.STAY:
        note = None
        if cue is Cue.UNREADABLE:
            note = ("unreadable", unreadable or "")
        elif cue is Cue.QUESTION and u.topic == "timezone":
            note = ("timezone", "")
        return _stay(ctx, rule, note)
    if act is Act.RECORD:
        return _record(ctx)
    if act is Act.CLEAR:
        return _clear(ctx, rule)
    if act is Act.PROPOSE_CANCEL:
        return _propose_cancel(ctx, rule)
    assert act is Act.SEARCH, rule
    return _search(ctx, rule, u, anchor, requested)


def propose(ctx: Context, lead: str, start: dt.datetime) -> SlotNeeded:
    """A host's own decision to propose ``start`` (or the first free slot at or after it)."""
    rule = choose(ctx.record.state, Cue.PROPOSE, _NO_FACTS)
    return _request_slot(ctx, rule, lead, SlotQuery(start), requested=start)


def settle_booked(ctx: Context, event: Event) -> Step:
    """The calendar holds the confirmed proposal's event: the conversation is done."""
    booking = ctx.record.booking
    assert booking is not None
    done = msgspec.structs.replace(booking, event_id=event.id)
    rule = choose(CONFIRMING, Cue.BOOKED, _NO_FACTS)
    record = _advance(ctx, rule, proposal=None, request=None, booking=done)
    return Step(record, _outcome(rule), event=event)


def settle_moved(ctx: Context, event: Event) -> Step:
    """The calendar holds the booked call at its new time: the conversation is done again."""
    booked, change = ctx.record.booked, ctx.record.change
    assert booked is not None and change is not None
    moved = msgspec.structs.replace(booked, start=change.start, end=change.end)
    rule = choose(CONFIRMING, Cue.MOVED, _NO_FACTS)
    record = _advance(ctx, rule, proposal=None, request=None, booking=moved, change=None)
    return Step(record, _outcome(rule), event=event)


def settle_called_off(ctx: Context) -> Step:
    """The calendar no longer holds the booked call: the conversation is done, with nothing booked."""
    rule = choose(CONFIRMING, Cue.CALLED_OFF, _NO_FACTS)
    record = _advance(ctx, rule, proposal=None, request=None, booking=None, change=None)
    return Step(record, _outcome(rule), event=_as_event(ctx, ctx.record.booked))


def settle_gone(ctx: Context) -> Step:
    """The call to move is no longer in the calendar (removed there): nothing is booked any more."""
    rule = choose(CONFIRMING, Cue.GONE, _NO_FACTS)
    record = _advance(ctx, rule, proposal=None, request=None, booking=None, change=None)
    return Step(record, _outcome(rule))


def settle_move_taken(ctx: Context) -> SlotNeeded:
    """The new time was taken before the move: offer moving to the first free slot after it."""
    change, booked = ctx.record.change, ctx.record.booked
    assert change is not None and booked is not None
    cleared = msgspec.structs.replace(ctx.record, change=None, dropped=change.key)
    inner = Context(ctx.keys, ctx.now, ctx.schedule, cleared)
    return _taken(inner, choose(CONFIRMING, Cue.TAKEN, _NO_FACTS), booked.lead, change.start, "move", CONFIRMING)


def settle_taken(ctx: Context) -> SlotNeeded:
    """The slot was taken before the booking: offer the first free slot after it instead."""
    booking = ctx.record.booking
    assert booking is not None
    dropped = msgspec.structs.replace(ctx.record, dropped=booking.key)
    inner = Context(ctx.keys, ctx.now, ctx.schedule, dropped)
    return _taken(inner, choose(CONFIRMING, Cue.TAKEN, _NO_FACTS), booking.lead, booking.start, "book", CONFIRMING)


def _taken(ctx: Context, rule: Rule, lead: str, epoch: int, kind: str, node: Node | None = None) -> SlotNeeded:
    """Offer the first free slot strictly after ``epoch``; a booking proposal drops its recorded
    confirmation, a move keeps the booked call."""
    start = _local(ctx, epoch)
    cleared = ctx.record if kind == "move" else msgspec.structs.replace(ctx.record, booking=None)
    inner = Context(ctx.keys, ctx.now, ctx.schedule, cleared)
    return _request_slot(inner, rule, lead, SlotQuery(start, strictly_after=True), start, kind, node)


def idempotency_key(keys: ConversationKeys, proposal: StoredProposal) -> str:
    """The same confirmed proposal always derives the same key, in any process.

    The parts are hashed as a JSON array, an injective encoding: no characters in the ids or
    the lead can make two different proposals share a key (joining with a separator could).
    """
    parts: tuple[object, ...] = (keys.tenant_id, keys.conversation_id, proposal.seq, proposal.start, proposal.lead)
    if proposal.kind != "book":  # a move or cancellation of the booked call: a key of its own
        parts = (*parts, proposal.kind)
    return hashlib.sha256(_KEY_ENCODER.encode(parts)).hexdigest()[:32]


# --- what the rules read -------------------------------------------------------------------

_CUES = {
    Intent.CONFIRM: Cue.CONFIRM,
    Intent.REFUSE: Cue.REFUSE,
    Intent.HESITATE: Cue.HESITATE,
    Intent.UNCLEAR: Cue.UNCLEAR,
    Intent.QUESTION: Cue.QUESTION,
    Intent.RESCHEDULE: Cue.RESCHEDULE,
    Intent.SCHEDULE: Cue.SCHEDULE,
    Intent.CORRECTION: Cue.CORRECTION,
}
_NO_FACTS: frozenset[Fact] = frozenset()


def _anchor(ctx: Context, u: Understanding) -> dt.datetime | None:
    """What a relative time is relative to: today for a new request, else the proposal, the day
    asked about, or the booked call (spec 4.3)."""
    record = ctx.record
    new_request = u.intent is Intent.SCHEDULE
    if record.state is State.AWAITING_CONFIRMATION and record.proposal is not None:
        return None if new_request and u.lead else _local(ctx, record.proposal.start)
    if record.state is State.RESCHEDULING and record.request is not None:
        return None if new_request and u.lead and u.lead != record.request.lead else _local(ctx, record.request.anchor)
    booked = record.booked
    return None if new_request or booked is None else _local(ctx, booked.start)


def _facts(ctx: Context, u: Understanding, anchor: dt.datetime | None, requested: dt.datetime | None) -> set[Fact]:
    record = ctx.record
    facts: set[Fact] = set()
    if ctx.marker is not None:
        facts.add(Fact.EXPIRED)
    if record.booked is not None:
        facts.add(Fact.BOOKED)
    if u.cancels:
        facts.add(Fact.CANCELS)
    if u.lead:
        facts.add(Fact.LEAD)
    if requested is not None:
        facts.add(Fact.TIME)
    if u.intent is Intent.SCHEDULE:
        facts.add(Fact.REQUEST)
    proposal, request = record.proposal, record.request
    if record.state is State.AWAITING_CONFIRMATION and proposal is not None:
        if proposal.kind != "book":
            facts.add(Fact.CHANGE)
            if proposal.kind == "cancel":
                facts.add(Fact.CANCELLING)
        if proposal.start < ctx.now.timestamp():
            facts.add(Fact.BEGUN)
        if u.affirms and requested is not None and anchor is not None and _names(u, requested, anchor):
            facts.add(Fact.SAME_TIME)
    elif record.state is State.RESCHEDULING and request is not None:
        if request.kind != "book":
            facts.add(Fact.CHANGE)
        if u.lead and u.lead != request.lead:
            facts.add(Fact.NEW_LEAD)
    return facts


_PARTS_OF_DAY = {"morning": (0, 12), "afternoon": (12, 17), "evening": (17, 24)}


def _names(u: Understanding, requested: dt.datetime, anchor: dt.datetime) -> bool:
    """Whether the time said names the proposal itself: its very time, or, with no clock time
    said, its day ("Tuesday is fine") or the part of its day ("yes Tuesday morning works")."""
    if requested == anchor:
        return True
    when = u.when
    if when is None or when.hour is not None or requested.date() != anchor.date():
        return False
    part = _PARTS_OF_DAY.get(when.part_of_day or "")
    return part is None or part[0] <= anchor.hour < part[1]


# --- what the rules build -------------------------------------------------------------------


def _record(ctx: Context) -> Step:
    """A "yes", recorded before the calendar call (an outbox of one): whoever loads this record
    next, this turn or another, settles it with the same idempotency key."""
    proposal = ctx.record.proposal
    assert proposal is not None
    key = idempotency_key(ctx.keys, proposal)
    if proposal.kind == "book":
        booking = Booking(key=key, lead=proposal.lead, start=proposal.start, end=proposal.end)
        record = msgspec.structs.replace(ctx.record, booking=booking, updated=_stamp(ctx))
        return Step(record, Outcome.BOOKED, books=True)
    booked = ctx.record.booked
    assert booked is not None and booked.event_id is not None
    change = Change(proposal.kind, key, booked.event_id, proposal.start, proposal.end)
    record = msgspec.structs.replace(ctx.record, change=change, updated=_stamp(ctx))
    return Step(record, Outcome.MOVED if proposal.kind == "move" else Outcome.CALL_CANCELLED, books=True)


def _clear(ctx: Context, rule: Rule) -> Step:
    """A refusal: the proposal goes; a refused move or cancellation leaves the booked call standing."""
    record = _advance(ctx, rule, proposal=None, request=None)
    event = _as_event(ctx, ctx.record.booked) if rule.trigger is Trigger.KEEP else None
    return Step(record, _outcome(rule), event=event)


def _propose_cancel(ctx: Context, rule: Rule) -> Step:
    booked = ctx.record.booked
    assert booked is not None
    seq = ctx.record.seq + 1
    proposal = StoredProposal(booked.lead, booked.start, booked.end, seq, kind="cancel")
    record = _advance(ctx, rule, proposal=proposal, request=None, seq=seq)
    return Step(record, _outcome(rule))


def _search(
    ctx: Context, rule: Rule, u: Understanding, anchor: dt.datetime | None, requested: dt.datetime | None
) -> SlotNeeded:
    """Find the slot the rule offers: at the time asked for, else the next free one after the anchor."""
    record = ctx.record
    trigger = rule.trigger
    if trigger is Trigger.SLOT_TAKEN:  # confirmed after its slot began
        proposal = record.proposal
        assert proposal is not None
        return _taken(ctx, rule, proposal.lead, proposal.start, proposal.kind)
    if trigger is Trigger.PROPOSE and u.intent is Intent.CORRECTION:  # the other person, same or said time
        assert anchor is not None
        at = requested or anchor
        return _request_slot(ctx, rule, u.lead or "", SlotQuery(at), at)
    if trigger is Trigger.PROPOSE:  # a new request
        lead = u.lead or _current_lead(record)
        shown = requested if u.when is not None and u.when.has_time else None
        return _request_slot(ctx, rule, lead, SlotQuery(requested or ctx.now), shown)
    if trigger is Trigger.OFFER:
        request = record.request
        assert request is not None and requested is not None
        return _request_slot(ctx, rule, request.lead, SlotQuery(requested), requested, request.kind)
    # RESCHEDULE a proposal, or PROPOSE_MOVE the booked call
    if trigger is Trigger.PROPOSE_MOVE:
        assert record.booked is not None
        lead, kind = record.booked.lead, "move"
    else:
        assert record.proposal is not None
        lead, kind = record.proposal.lead, ("move" if record.proposal.kind != "book" else "book")
    assert anchor is not None
    if requested is None:  # "can we move it?": the next free slot strictly after
        return _request_slot(ctx, rule, lead, SlotQuery(anchor, strictly_after=True), None, kind)
    return _request_slot(ctx, rule, lead, SlotQuery(requested), requested, kind)


def _request_slot(
    ctx: Context,
    rule: Rule,
    lead: str,
    query: SlotQuery,
    requested: dt.datetime | None,
    kind: str = "book",
    node: Node | None = None,
) -> SlotNeeded:
    """Offer the slot found with the rule's trigger; with none free, NO_SLOT asks for a day."""

    def build(slot: dt.datetime | None) -> Step:
        if slot is None:
            return _no_slot(ctx, lead, query.at_or_after, rule, kind, node)
        return _offer(ctx, rule, lead, slot, requested, kind, node)

    return SlotNeeded(query, build)


def _offer(
    ctx: Context,
    rule: Rule,
    lead: str,
    slot: dt.datetime,
    requested: dt.datetime | None,
    kind: str,
    node: Node | None,
) -> Step:
    seq = ctx.record.seq + 1
    end = slot + ctx.schedule.slot
    proposal = StoredProposal(lead=lead, start=_epoch(slot), end=_epoch(end), seq=seq, kind=kind)
    # A new booking proposal forgets an earlier booking; a move keeps the call it moves.
    booking = ctx.record.booking if kind == "move" else None
    record = _advance(ctx, rule, node, proposal=proposal, request=None, booking=booking, seq=seq)
    differs = requested is not None and requested != slot
    note = ("reason", why_not_offered(ctx, requested)) if differs and requested is not None else None
    outcome = _outcome(rule)
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


def _no_slot(ctx: Context, lead: str, anchor: dt.datetime, rule: Rule, kind: str, node: Node | None) -> Step:
    request = Request(lead=lead, anchor=_epoch(anchor), kind=kind)
    booking = ctx.record.booking if kind == "move" else None
    record = _advance(ctx, rule, node, Trigger.NO_SLOT, proposal=None, request=request, booking=booking)
    return Step(record, rule.none_free, requested=anchor, event=_moving(ctx, kind))


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


def _stay(ctx: Context, rule: Rule, note: tuple[str, str] | None = None) -> Step:
    outcome = _outcome(rule)
    record = _advance(ctx, rule)
    if outcome is Outcome.EXPIRED:  # whatever they answer, the proposal they answer is gone
        return Step(record, outcome, expired=ctx.marker, event=_as_event(ctx, ctx.record.booked))
    return Step(record, outcome, note=note)


def node_of(record: Record) -> Node:
    """The machine's state of a stored record: a recorded, unsettled confirmation is CONFIRMING."""
    return CONFIRMING if record.outstanding else record.state


def _outcome(rule: Rule) -> Outcome:
    assert rule.outcome is not None, rule
    return rule.outcome


def _advance(
    ctx: Context, rule: Rule, node: Node | None = None, none_free: Trigger | None = None, **changes: object
) -> Record:
    """The record after the rule's arrow, fired from ``node`` (default: the stored state); with
    ``none_free`` (NO_SLOT), the arrow its search takes when no slot is free."""
    source = node_of(ctx.record) if node is None else node
    trigger, outcome = (rule.trigger, _outcome(rule)) if none_free is None else (none_free, rule.none_free)
    dest = fire(source, trigger)
    last = LastTransition(trigger=trigger, source=public(source), outcome=outcome)
    return msgspec.structs.replace(ctx.record, state=public(dest), last=last, updated=_stamp(ctx), **changes)


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
