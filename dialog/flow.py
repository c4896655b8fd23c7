"""One turn's orchestration as a generator of I/O requests, driven by the sync and the async engine.

The flow decides what to read, write and book, and in which order; a driver performs each
request and sends the answer back (or throws the error in). So the rules of a turn (settle a
recorded confirmation first, retry a lost compare-and-set on the record it returned, report
``booked`` only from the commit that moved the conversation to done) exist once.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from dialog import turn
from dialog.calendar.base import Event, Schedule
from dialog.errors import SlotTaken, StoreUnavailable
from dialog.results import Outcome
from dialog.store.keys import ConversationKeys
from dialog.store.record import Booking, Record
from dialog.store.redis_store import Commit, Stored

# Concurrent turns on one conversation are retried inside the turn, never surfaced; past a few
# immediate retries the driver pauses briefly (jittered) so the other writer can finish.
MAX_ATTEMPTS = 50


class Checkpoint(enum.StrEnum):
    """The steps of a turn where ``Engine(checkpoint=...)`` is called (to inject faults)."""

    LOADED = "loaded"  # the record was read
    DECIDED = "decided"  # the decision is made, nothing written yet
    CONFLICT = "conflict"  # a compare-and-set lost; the turn is about to decide again
    INTENT_COMMITTED = "intent_committed"  # a confirmation is recorded, the calendar not yet called
    CALENDAR_CALLED = "calendar_called"  # the calendar holds the event, the commit is not written
    COMMITTED = "committed"  # the turn's last write landed, the reply is not yet built


@dataclass(frozen=True, slots=True)
class GetSchedule:
    keys: ConversationKeys


@dataclass(frozen=True, slots=True)
class Load:
    keys: ConversationKeys
    fresh: bool = False  # read Redis even when the process remembers the record


@dataclass(frozen=True, slots=True)
class Write:
    keys: ConversationKeys
    expected: Stored
    record: Record


@dataclass(frozen=True, slots=True)
class Book:
    keys: ConversationKeys
    booking: Booking


@dataclass(frozen=True, slots=True)
class FindSlot:
    keys: ConversationKeys
    query: turn.SlotQuery


@dataclass(frozen=True, slots=True)
class Reach:
    point: Checkpoint


@dataclass(frozen=True, slots=True)
class Pause:
    attempt: int


Request = GetSchedule | Load | Write | Book | FindSlot | Reach | Pause
Flow = Generator[Request, Any, "Done"]
Decide = Callable[[turn.Context], turn.Decision]


@dataclass(frozen=True, slots=True)
class Done:
    """How a turn ended: the step to report, the version it stands at, the tenant's schedule."""

    step: turn.Step
    version: int
    schedule: Schedule


class Turns:
    """Builds the flows; holds only the clock."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self._clock = clock

    def now(self) -> dt.datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)

    def run(self, keys: ConversationKeys, decide: Decide) -> Flow:
        schedule: Schedule = yield GetSchedule(keys)
        stored: Stored = yield Load(keys)
        yield Reach(Checkpoint.LOADED)
        for attempt in range(MAX_ATTEMPTS):
            if stored.record is not None and stored.record.pending_booking is not None:
                stored, settled = yield from self._settle(keys, schedule, stored)
                if settled is not None:
                    return Done(settled, stored.version, schedule)
                continue  # another turn settled it: decide on what stands now
            step = yield from self._resolve(keys, decide(self._context(keys, schedule, stored)))
            yield Reach(Checkpoint.DECIDED)
            commit: Commit = yield Write(keys, stored, step.record)
            if not commit.ok:
                stored = commit.stored
                yield Reach(Checkpoint.CONFLICT)
                yield Pause(attempt)
                continue
            if step.books:
                yield Reach(Checkpoint.INTENT_COMMITTED)
                return (yield from self._confirm(keys, schedule, commit.stored))
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
        if stored.record is None or stored.record.pending_booking is None:
            return None
        schedule: Schedule = yield GetSchedule(keys)
        stored, step = yield from self._settle(keys, schedule, stored)
        return None if step is None else Done(step, stored.version, schedule)

    def _confirm(self, keys: ConversationKeys, schedule: Schedule, stored: Stored) -> Flow:
        """Settle the confirmation this turn recorded; report what stands if another turn did."""
        stored, settled = yield from self._settle(keys, schedule, stored)
        if settled is not None:
            return Done(settled, stored.version, schedule)
        record = stored.record or turn.fresh_record()
        booked = record.booking is not None and record.booking.event_id is not None
        outcome = Outcome.ALREADY_BOOKED if booked else _last_outcome(record)
        return Done(turn.Step(record, outcome), stored.version, schedule)

    def _settle(
        self, keys: ConversationKeys, schedule: Schedule, stored: Stored
    ) -> Generator[Request, Any, tuple[Stored, turn.Step | None]]:
        """Make the calendar hold the recorded confirmation (idempotently), then commit that.

        Returns the record as it now stands, and the step when this flow committed it.
        """
        ctx = self._context(keys, schedule, stored)
        booking = ctx.record.pending_booking
        assert booking is not None
        try:
            event: Event = yield Book(keys, booking)
        except SlotTaken:
            step = yield from self._resolve(keys, turn.settle_taken(ctx))
        else:
            step = turn.settle_booked(ctx, event)
        yield Reach(Checkpoint.CALENDAR_CALLED)
        commit: Commit = yield Write(keys, stored, step.record)
        if not commit.ok:
            return commit.stored, None
        yield Reach(Checkpoint.COMMITTED)
        return commit.stored, step

    def _resolve(self, keys: ConversationKeys, decision: turn.Decision) -> Generator[Request, Any, turn.Step]:
        if isinstance(decision, turn.Step):
            return decision
        slot: dt.datetime | None = yield FindSlot(keys, decision.query)
        return decision.build(slot)

    def _context(self, keys: ConversationKeys, schedule: Schedule, stored: Stored) -> turn.Context:
        record = stored.record or turn.fresh_record()
        marker = stored.marker if stored.record is None else None
        return turn.Context(keys, self.now().astimezone(schedule.tz), schedule, record, marker)


def _last_outcome(record: Record) -> Outcome:
    return Outcome(record.last.outcome) if record.last is not None else Outcome.REPROMPTED
