"""One turn's orchestration as a generator of I/O requests, driven by the sync and the async engine.

The flow decides what to read, write and book, and in which order; a driver performs each
request and sends the answer back (or throws the error in). So the rules of a turn (settle a
recorded confirmation first, retry a lost compare-and-set on the record it returned, report
``booked`` only from the commit that moved the conversation to done) exist once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import msgspec

from dialog import turn
from dialog.calendar.base import Event, Schedule
from dialog.errors import DialogError, EventNotFound, SlotTaken, StoreUnavailable
from dialog.machine import State, Trigger
from dialog.results import Outcome
from dialog.store.keys import ConversationKeys
from dialog.store.record import Booking, Change, HistoryEntry, Record, StoredReply
from dialog.store.redis_store import Commit, Receipt, Stored

# Concurrent turns on one conversation are retried inside the turn, never surfaced. The first
# lost compare-and-set decides again at once on the record it returned; later ones back off
# (jittered, growing) and re-read, so the loser wakes up to a fresh record, not a stale one.
# With the driver's pause capped at 25 ms this bounds a turn's contention to ~25 s.
MAX_ATTEMPTS = 1000


class Checkpoint(enum.StrEnum):
    """The steps of a turn where ``Engine(checkpoint=...)`` is called (to inject faults)."""

    LOADED = "loaded"  # the record was read
    DECIDED = "decided"  # the decision is made, nothing written yet
    CONFLICT = "conflict"  # a compare-and-set lost; the turn is about to decide again
    INTENT_COMMITTED = "intent_committed"  # a confirmation is recorded, the calendar not yet called
    CALENDAR_CALLED = "calendar_called"  # the calendar holds the event, the commit is not written
    COMMITTED = "committed"  # the turn's last write landed, the reply is not yet built


# The requests and answers of a turn are slotted dataclasses, not frozen ones: a frozen one costs
# ~0.6 us more to build (object.__setattr__ per field) and a turn builds a dozen. Nothing mutates
# them once built (the same holds in dialog.turn and the store's Stored/Commit/Receipt).
@dataclass(slots=True)
class GetSchedule:
    keys: ConversationKeys


@dataclass(slots=True)
class Load:
    keys: ConversationKeys
    fresh: bool = False  # read Redis even when the process remembers the record
    message_id: str | None = None  # also fetch the reply filed under it, if any
    blind: bool = False  # not remembered: do not read; the write then creates only where nothing stands


@dataclass(slots=True)
class Write:
    keys: ConversationKeys
    expected: Stored
    record: Record
    entry: HistoryEntry  # appended to the history by the same script (its version set there)
    message_id: str | None = None  # refuse the write if this message already has a reply filed
    receipts: tuple[Receipt, ...] = ()  # replies to file with the write


@dataclass(slots=True)
class Book:
    keys: ConversationKeys
    booking: Booking


@dataclass(slots=True)
class Move:
    """Move the booked call as ``change`` says (idempotent by its key)."""

    keys: ConversationKeys
    change: Change


@dataclass(slots=True)
class Cancel:
    """Remove the booked call (idempotent by the change's key)."""

    keys: ConversationKeys
    change: Change


@dataclass(slots=True)
class Find:
    """The event the calendar holds under an idempotency key, or None."""

    keys: ConversationKeys
    key: str


@dataclass(slots=True)
class FindSlot:
    keys: ConversationKeys
    query: turn.SlotQuery


@dataclass(slots=True)
class Reach:
    point: Checkpoint


@dataclass(slots=True)
class Pause:
    attempt: int


Request = GetSchedule | Load | Write | Book | Move | Cancel | Find | FindSlot | Reach | Pause


@dataclass(slots=True)
class Done:
    """How a turn ended: the step to report, the version it stands at, the tenant's schedule."""

    step: turn.Step
    version: int
    schedule: Schedule
    wrote: bool = True  # this turn's own write produced ``step.record`` (False: it reports what stands)


@dataclass(slots=True)
class Replayed:
    """The turn's message was handled before: its first reply, as filed."""

    reply: StoredReply
    schedule: Schedule


@dataclass(slots=True)
class Message:
    """The caller's id for this turn's message (None: not given), the channel it came on, and its words."""

    id: str | None
    channel: str
    text: str = ""


Ended = Done | Replayed
Flow = Generator[Request, Any, Ended]
Decide = Callable[[turn.Context], turn.Decision]
# Renders the reply a Done would give on a channel, encoded for filing (the engine's replies).
Render = Callable[[ConversationKeys, str, Done], bytes]


class Turns:
    """Builds the flows; holds the clock and how to render a reply for filing."""

    def __init__(self, clock: Callable[[], dt.datetime], render: Render, *, checkpoints: bool = True) -> None:
        self._clock = clock
        self._render = render
        # Reach requests only when someone listens (fault tests): each is a round of the driver.
        self._checkpoints = checkpoints

    def now(self) -> dt.datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)

    def run(
        self, keys: ConversationKeys, decide: Decide, message: Message | None = None, *, blind: bool = False
    ) -> Flow:
        """One turn. ``blind``: the decision needs nothing stored (a host's propose), so a
        conversation this process never saw is written without a read: one round trip; if
        anything stands there, the write is refused and returns it, and the turn decides again."""
        schedule: Schedule = yield GetSchedule(keys)
        message_id = message.id if message else None
        stored: Stored = yield Load(keys, message_id=message_id, blind=blind and message_id is None)
        if self._checkpoints:
            yield Reach(Checkpoint.LOADED)
        for attempt in range(MAX_ATTEMPTS):
            if stored.replay is not None:
                return Replayed(stored.replay, schedule)
            if stored.record is not None and stored.record.outstanding:
                stored, settled = yield from self._settle(keys, schedule, stored, message)
                if settled is not None:
                    return settled
                continue  # another turn settled it: decide on what stands now
            step = yield from self._resolve(keys, decide(self._context(keys, schedule, stored)))
            if message is not None and step.books:
                step = turn.Step(_confirmed_by(step.record, message), step.outcome, books=True)
            if self._checkpoints:
                yield Reach(Checkpoint.DECIDED)
            receipts = () if step.books else self._receipts(keys, [message], Done(step, stored.version + 1, schedule))
            entry = self._entry(stored, step, message, recorded=step.books)
            commit: Commit = yield Write(keys, stored, step.record, entry, message_id, receipts)
            if not commit.ok:
                if self._checkpoints:
                    yield Reach(Checkpoint.CONFLICT)
                stored = yield from self._after_conflict(keys, commit, attempt, message_id)
                continue
            if step.books:
                if self._checkpoints:
                    yield Reach(Checkpoint.INTENT_COMMITTED)
                return (yield from self._confirm(keys, schedule, commit.stored, message))
            if self._checkpoints:
                yield Reach(Checkpoint.COMMITTED)
            return Done(step, commit.stored.version, schedule)
        raise StoreUnavailable(
            f"gave up after {MAX_ATTEMPTS} concurrent writes",
            tenant_id=keys.tenant_id,
            conversation_id=keys.conversation_id,
        )

    def recover(self, keys: ConversationKeys) -> Generator[Request, Any, Done | None]:
        """Settle the conversation's outstanding confirmation, if it has one."""
        stored: Stored = yield Load(keys, fresh=True)
        if stored.record is None or not stored.record.outstanding:
            return None
        schedule: Schedule = yield GetSchedule(keys)
        stored, done = yield from self._settle(keys, schedule, stored, None)
        return done

    def _after_conflict(
        self, keys: ConversationKeys, commit: Commit, attempt: int, message_id: str | None
    ) -> Generator[Request, Any, Stored]:
        """What to decide on next: the record the lost write returned, or, past the first loss, a
        fresh read taken after a pause (backing off before the read, so it is not stale at once)."""
        if attempt == 0 or commit.stored.replay is not None:
            return commit.stored
        yield Pause(attempt)
        stored: Stored = yield Load(keys, fresh=True, message_id=message_id)
        return stored

    def _confirm(self, keys: ConversationKeys, schedule: Schedule, stored: Stored, message: Message | None) -> Flow:
        """Settle the confirmation this turn recorded; report what became of it if another turn did."""
        recorded = stored.record
        assert recorded is not None
        change, booking = recorded.change, recorded.pending_booking
        intent, kind = (change.key, change.kind) if change is not None else (booking.key, "book")  # type: ignore[union-attr]
        stored, settled = yield from self._settle(keys, schedule, stored, message)
        if settled is not None:
            return settled
        if message is not None and message.id is not None:
            fresh: Stored = yield Load(keys, fresh=True, message_id=message.id)
            if fresh.replay is not None:  # whoever settled it filed our reply
                return Replayed(fresh.replay, schedule)
            stored = fresh
        return (yield from self._what_became_of(keys, schedule, stored, intent, kind))

    def _what_became_of(
        self, keys: ConversationKeys, schedule: Schedule, stored: Stored, intent: str, kind: str
    ) -> Flow:
        """Another turn settled the confirmation this turn recorded: say what became of it.

        Spec 4.1: the answer about a recorded confirmation is booked (the first report) or
        already_booked while the calendar holds its event, or slot_taken, never what later
        turns did to the conversation (a "no" after it does not make this "yes" nothing_pending).
        """
        record = stored.record or turn.fresh_record()

        def said(outcome: Outcome, event: Event | None = None) -> Done:
            return Done(turn.Step(record, outcome, event=event), stored.version, schedule, wrote=False)

        if record.dropped == intent:
            return said(Outcome.SLOT_TAKEN)
        if kind == "cancel":
            return said(Outcome.CALL_CANCELLED)
        if kind == "move" or (record.booked is not None and record.booked.key == intent):
            return said(Outcome.ALREADY_BOOKED, turn.as_event(record.booked, schedule))
        found: Event | None = yield Find(keys, intent)  # booked, then the conversation moved on
        return said(Outcome.ALREADY_BOOKED, found) if found is not None else said(_last_outcome(record))

    def _settle(
        self, keys: ConversationKeys, schedule: Schedule, stored: Stored, message: Message | None
    ) -> Generator[Request, Any, tuple[Stored, Done | None]]:
        """Make the calendar hold the recorded confirmation (idempotently), then commit that.

        A confirmation whose slot has begun is booked only if the calendar already holds it (a
        turn stopped after the calendar call); otherwise it is ``slot_taken``, as any past slot.
        Returns the record as it now stands, and how the turn ended when this flow committed it.
        """
        ctx = self._context(keys, schedule, stored)
        change, booking = ctx.record.change, ctx.record.pending_booking
        if change is not None:
            step = yield from self._change(keys, ctx, change)
            confirming = Message(change.message_id, change.channel, change.said)
        else:
            assert booking is not None
            step = yield from self._book(keys, ctx, booking)
            confirming = Message(booking.message_id, booking.channel, booking.said)
        if self._checkpoints:
            yield Reach(Checkpoint.CALENDAR_CALLED)
        done = Done(step, stored.version + 1, schedule)
        receipts = self._receipts(keys, [confirming, message], done)
        entry = self._entry(stored, step, confirming)  # the evidence: the words that confirmed it
        commit: Commit = yield Write(keys, stored, step.record, entry, message.id if message else None, receipts)
        if not commit.ok:
            yield from self._undo_if_dropped(keys, ctx.record, step, commit.stored)
            return commit.stored, None
        if self._checkpoints:
            yield Reach(Checkpoint.COMMITTED)
        return commit.stored, done

    def _book(self, keys: ConversationKeys, ctx: turn.Context, booking: Booking) -> Generator[Request, Any, turn.Step]:
        if booking.start < ctx.now.timestamp():  # begun; a slot starting right now is still bookable
            found: Event | None = yield Find(keys, booking.key)
            if found is not None:
                return turn.settle_booked(ctx, found)
            return (yield from self._resolve(keys, turn.settle_taken(ctx)))
        try:
            event: Event = yield Book(keys, booking)
        except SlotTaken:
            return (yield from self._resolve(keys, turn.settle_taken(ctx)))
        return turn.settle_booked(ctx, event)

    def _undo_if_dropped(
        self, keys: ConversationKeys, before: Record, step: turn.Step, now: Stored
    ) -> Generator[Request, Any, None]:
        """This turn's calendar call landed, but another turn had meanwhile settled the same
        confirmation as slot_taken (its slot began, or was taken at that moment) and told the user
        nothing changed: undo the call, so the calendar says what the conversation said."""
        record, event = now.record, step.event
        if record is None or event is None or step.outcome not in (Outcome.BOOKED, Outcome.MOVED):
            return
        booked = before.booked
        if before.change is not None and record.dropped == before.change.key and booked is not None:
            back = Change("move", before.change.key + ":undo", event.id, booked.start, booked.end)
            with contextlib.suppress(DialogError):  # best effort: its old time may be gone too
                yield Move(keys, back)
        elif before.pending_booking is not None and record.dropped == before.pending_booking.key:
            undo = Change("cancel", before.pending_booking.key + ":undo", event.id, 0, 0)
            with contextlib.suppress(DialogError):  # the turn's answer stands; the calendar is best effort
                yield Cancel(keys, undo)

    def _change(self, keys: ConversationKeys, ctx: turn.Context, change: Change) -> Generator[Request, Any, turn.Step]:
        """Move or remove the booked call; a move whose new time has begun is ``slot_taken``."""
        if change.kind == "cancel":
            yield Cancel(keys, change)
            return turn.settle_called_off(ctx)
        if change.start < ctx.now.timestamp():
            booked = ctx.record.booked
            assert booked is not None
            found: Event | None = yield Find(keys, booked.key)
            if found is not None and int(found.start.timestamp()) == change.start:
                return turn.settle_moved(ctx, found)  # moved before a crash, committed only now
            return (yield from self._resolve(keys, turn.settle_move_taken(ctx)))
        try:
            event: Event = yield Move(keys, change)
        except SlotTaken:
            return (yield from self._resolve(keys, turn.settle_move_taken(ctx)))
        except EventNotFound:
            return turn.settle_gone(ctx)
        return turn.settle_moved(ctx, event)

    def _receipts(self, keys: ConversationKeys, messages: list[Message | None], done: Done) -> tuple[Receipt, ...]:
        seen: dict[str, Receipt] = {}
        for m in messages:
            if m is not None and m.id is not None and m.id not in seen:
                seen[m.id] = Receipt(m.id, self._render(keys, m.channel, done))
        return tuple(seen.values())

    def _resolve(self, keys: ConversationKeys, decision: turn.Decision) -> Generator[Request, Any, turn.Step]:
        if isinstance(decision, turn.Step):
            return decision
        slot: dt.datetime | None = yield FindSlot(keys, decision.query)
        return decision.build(slot)

    def _entry(
        self, stored: Stored, step: turn.Step, message: Message | None, *, recorded: bool = False
    ) -> HistoryEntry:
        """The history entry of a write: what it did, from what, on whose words."""
        record = step.record
        before = stored.record.state if stored.record is not None else State.IDLE
        if recorded:  # a confirmation recorded, its calendar call to come: a reply still says awaiting
            trigger, outcome = Trigger.RECORD.value, "recorded"
        else:
            trigger = record.last.trigger.value if record.last is not None else ""
            outcome = step.outcome.value
        event = step.event.id if step.event is not None else (record.booked.event_id if record.booked else None)
        return HistoryEntry(
            at=int(self.now().timestamp() * 1000),
            version=0,  # set by the store with the version it writes
            channel=message.channel if message else "text",
            text=message.text if message else "",
            message_id=message.id if message else None,
            state_from=before.value,
            trigger=trigger,
            state=record.state.value,
            outcome=outcome,
            event_id=event,
        )

    def _context(self, keys: ConversationKeys, schedule: Schedule, stored: Stored) -> turn.Context:
        now = self.now().astimezone(schedule.tz)
        marker = stored.marker
        if stored.record is not None or marker is None:
            return turn.Context(keys, now, schedule, stored.record or turn.fresh_record())
        # Proposal numbers go on past an expiry (a version is never smaller than the proposals
        # made before it), so a new proposal never derives an earlier one's idempotency key.
        seq = marker.version
        if marker.booking is not None:
            # The conversation expired after its call was booked: it goes on from "done, booked"
            # (spec 4.1). A move or cancellation that was pending is told it expired; the call stands.
            changing = marker if marker.kind in ("move", "cancel") else None
            return turn.Context(keys, now, schedule, turn.booked_record(marker.booking, seq), changing)
        return turn.Context(keys, now, schedule, turn.fresh_record(seq), marker)


def _confirmed_by(record: Record, message: Message) -> Record:
    """The recorded confirmation remembers the message that made it (its reply is filed on settling)."""
    said = {"message_id": message.id, "channel": message.channel, "said": message.text}
    if record.change is not None:
        return msgspec.structs.replace(record, change=msgspec.structs.replace(record.change, **said))
    booking = record.booking
    assert booking is not None
    confirmed = msgspec.structs.replace(booking, **said)
    return msgspec.structs.replace(record, booking=confirmed)



def _last_outcome(record: Record) -> Outcome:
    return Outcome(record.last.outcome) if record.last is not None else Outcome.REPROMPTED
