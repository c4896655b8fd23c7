"""The engine: one turn of a conversation, from the user's words to a committed state and a reply.

A turn loads the record (one round trip), settles a confirmation left outstanding, decides
(``dialog.turn``), commits with compare-and-set, and renders the reply. A lost race returns the
current record with the refusal, so the turn decides again without another read.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dialog import inputs, replies, turn
from dialog.calendar.base import Calendar, Event, Schedule
from dialog.calendar.memory import InMemoryCalendar
from dialog.calendar.slots import find_slot
from dialog.errors import CalendarUnavailable, DialogError, InvalidInput, SlotTaken, StoreUnavailable
from dialog.machine import State
from dialog.results import Channel, Outcome, Proposal, Reply, Snapshot
from dialog.store.keys import DEFAULT_TTL_SECONDS, ConversationKeys
from dialog.store.record import Record
from dialog.store.redis_store import RedisStore, Stored, apply_failure_policy
from dialog.understanding import understand

Clock = Callable[[], dt.datetime]
_T = TypeVar("_T")

# Concurrent turns on one conversation are retried inside the turn, never surfaced; past a few
# immediate retries a short jittered pause lets the other writer finish.
MAX_ATTEMPTS = 50
_PENDING = (State.AWAITING_CONFIRMATION, State.RESCHEDULING)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Checkpoint(enum.StrEnum):
    """The steps of a turn where ``Engine(checkpoint=...)`` is called (to inject faults)."""

    LOADED = "loaded"  # the record was read
    DECIDED = "decided"  # the decision is made, nothing written yet
    CONFLICT = "conflict"  # a compare-and-set lost; the turn is about to decide again
    INTENT_COMMITTED = "intent_committed"  # a confirmation is recorded, the calendar not yet called
    CALENDAR_CALLED = "calendar_called"  # the calendar holds the event, the commit is not written
    COMMITTED = "committed"  # the turn's last write landed, the reply is not yet built


def _no_checkpoint(point: Checkpoint) -> None:
    return None


class Engine:
    """Durable confirmation dialogs on Redis, one compare-and-set per state change.

    ``redis_client`` is a redis-py client; unless ``configure_client=False``, the engine gives it
    its own timeouts and bounded retry, so an unreachable Redis is ``StoreUnavailable`` within 2 s.
    """

    def __init__(
        self,
        redis_client: Any,
        *,
        calendar: Calendar | None = None,
        clock: Clock | None = None,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        configure_client: bool = True,
        checkpoint: Callable[[Checkpoint], None] | None = None,
    ) -> None:
        if not isinstance(ttl_seconds, int) or ttl_seconds < 1:
            raise InvalidInput("ttl_seconds must be a positive whole number", field="ttl_seconds")
        if configure_client:
            apply_failure_policy(redis_client)
        self.redis = redis_client
        self.calendar: Calendar = calendar if calendar is not None else InMemoryCalendar()
        self.ttl_seconds = ttl_seconds
        self._clock = clock or utc_now
        # A test seam: called at each step of a turn, so fault tests can stop a turn anywhere.
        self._checkpoint = checkpoint or _no_checkpoint
        self._store = RedisStore(redis_client, ttl_seconds=ttl_seconds)

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        calendar: Calendar | None = None,
        calendar_url: str | None = None,
        data_dir: Path | None = None,
        **options: Any,
    ) -> Engine:
        """An engine on ``url``; ``None`` means the embedded server (see ``dialog.embedded``).

        ``calendar_url`` (``memory://`` or a CalDAV base URL) builds the calendar when none is given.
        """
        import redis

        if calendar is None and calendar_url is not None:
            from dialog.calendar.config import calendar_from_url

            calendar = calendar_from_url(calendar_url)

        if url is None:
            from dialog import embedded

            client, _ = embedded.client(data_dir)
        else:
            client = redis.Redis.from_url(url)
        return cls(client, calendar=calendar, **options)

    # --- the public turns ---------------------------------------------------------------------

    def handle(self, conversation_id: str, text: str, *, tenant_id: str = "default", channel: str = "text") -> Reply:
        """Apply what the user said to the conversation and return what to say back."""
        keys = self._keys(conversation_id, tenant_id)
        said = inputs.text(text, tenant_id=tenant_id, conversation_id=conversation_id)
        return self._run(keys, inputs.channel(channel), lambda ctx: turn.decide(ctx, self._understand(ctx, said)))

    def propose(
        self,
        conversation_id: str,
        *,
        lead: str,
        start: dt.datetime,
        tenant_id: str = "default",
        channel: str = "text",
    ) -> Reply:
        """Propose ``start`` (or the first free slot at or after it), replacing any pending proposal."""
        keys = self._keys(conversation_id, tenant_id)
        who = inputs.lead(lead, tenant_id=tenant_id, conversation_id=conversation_id)
        when = inputs.future_start(start, self._now(), tenant_id=tenant_id, conversation_id=conversation_id)
        return self._run(keys, inputs.channel(channel), lambda ctx: turn.propose(ctx, who, when))

    def snapshot(self, conversation_id: str, *, tenant_id: str = "default") -> Snapshot | None:
        """The conversation as stored, or None when there is none (never written, or expired)."""
        keys = self._keys(conversation_id, tenant_id)
        stored = self._store.load(keys)
        if stored.record is None:
            return None
        schedule = self._schedule(keys)
        record = stored.record
        last = record.last
        return Snapshot(
            conversation_id=keys.conversation_id,
            tenant_id=keys.tenant_id,
            state=record.state,
            proposal=_proposal(record, schedule),
            event=_event(record, schedule),
            version=stored.version,
            last_trigger=last.trigger if last else None,
            last_source=State(last.source) if last else None,
            last_outcome=last.outcome if last else None,
            booking_pending=record.pending_booking is not None,
        )

    def recover(self, *, tenant_id: str | None = None) -> list[Reply]:
        """Settle every confirmation left outstanding (a turn that stopped mid-way), no user input needed.

        Scans this engine's conversation keys (one tenant's, or all); returns one reply per
        conversation this call settled (``booked`` or ``slot_taken``).
        """
        settled: list[Reply] = []
        for keys in self._store.conversations(tenant_id):
            stored = self._store.load(keys)
            if stored.record is None or stored.record.pending_booking is None:
                continue
            schedule = self._schedule(keys)
            stored, step = self._settle(keys, schedule, stored)
            if step is not None:
                settled.append(self._reply(keys, Channel.TEXT, schedule, step, stored.version))
        return settled

    # --- one turn -----------------------------------------------------------------------------

    def _run(self, keys: ConversationKeys, channel: Channel, decide: Callable[[turn.Context], turn.Decision]) -> Reply:
        schedule = self._schedule(keys)
        stored = self._store.load(keys)
        self._checkpoint(Checkpoint.LOADED)
        for attempt in range(MAX_ATTEMPTS):
            if stored.record is not None and stored.record.pending_booking is not None:
                stored, settled = self._settle(keys, schedule, stored)
                if settled is not None:
                    return self._reply(keys, channel, schedule, settled, stored.version)
                continue  # another turn settled it: decide on what stands now
            step = self._resolve(keys, decide(self._context(keys, schedule, stored)))
            self._checkpoint(Checkpoint.DECIDED)
            commit = self._store.commit(keys, stored, step.record)
            if not commit.ok:
                stored = commit.stored
                self._checkpoint(Checkpoint.CONFLICT)
                _back_off(attempt)
                continue
            if step.books:
                self._checkpoint(Checkpoint.INTENT_COMMITTED)
                return self._confirm(keys, channel, schedule, commit.stored)
            self._checkpoint(Checkpoint.COMMITTED)
            return self._reply(keys, channel, schedule, step, commit.stored.version)
        raise StoreUnavailable(
            f"gave up after {MAX_ATTEMPTS} concurrent writes",
            tenant_id=keys.tenant_id,
            conversation_id=keys.conversation_id,
        )

    def _confirm(self, keys: ConversationKeys, channel: Channel, schedule: Schedule, stored: Stored) -> Reply:
        """Settle the confirmation this turn recorded; report what stands if another turn did."""
        stored, settled = self._settle(keys, schedule, stored)
        if settled is not None:
            return self._reply(keys, channel, schedule, settled, stored.version)
        record = stored.record or turn.fresh_record()
        booked = record.booking is not None and record.booking.event_id is not None
        outcome = Outcome.ALREADY_BOOKED if booked else _last_outcome(record)
        return self._reply(keys, channel, schedule, turn.Step(record, outcome), stored.version)

    def _settle(self, keys: ConversationKeys, schedule: Schedule, stored: Stored) -> tuple[Stored, turn.Step | None]:
        """Make the calendar hold the recorded confirmation (idempotently), then commit that.

        Returns the record as it now stands, and the step when this call committed it.
        """
        ctx = self._context(keys, schedule, stored)
        booking = ctx.record.pending_booking
        assert booking is not None
        try:
            event = self._calendar_call(
                keys,
                lambda: self.calendar.book(
                    keys.tenant_id,
                    lead=booking.lead,
                    start=_utc(booking.start),
                    end=_utc(booking.end),
                    idempotency_key=booking.key,
                ),
            )
        except SlotTaken:
            step = self._resolve(keys, turn.settle_taken(ctx))
        else:
            step = turn.settle_booked(ctx, event)
        self._checkpoint(Checkpoint.CALENDAR_CALLED)
        commit = self._store.commit(keys, stored, step.record)
        if not commit.ok:
            return commit.stored, None
        self._checkpoint(Checkpoint.COMMITTED)
        return commit.stored, step

    def _resolve(self, keys: ConversationKeys, decision: turn.Decision) -> turn.Step:
        if isinstance(decision, turn.Step):
            return decision
        query = decision.query
        slot = self._calendar_call(
            keys,
            lambda: find_slot(
                self.calendar,
                keys.tenant_id,
                at_or_after=query.at_or_after,
                now=self._now(),
                strictly_after=query.strictly_after,
            ),
        )
        return decision.build(slot)

    # --- helpers ------------------------------------------------------------------------------

    def _understand(self, ctx: turn.Context, text: str) -> Any:
        return understand(text, pending=ctx.record.state in _PENDING)

    def _context(self, keys: ConversationKeys, schedule: Schedule, stored: Stored) -> turn.Context:
        record = stored.record or turn.fresh_record()
        marker = stored.marker if stored.record is None else None
        return turn.Context(keys, self._now().astimezone(schedule.tz), schedule, record, marker)

    def _reply(
        self, keys: ConversationKeys, channel: Channel, schedule: Schedule, step: turn.Step, version: int
    ) -> Reply:
        record = step.record
        proposal = _proposal(record, schedule)
        event = step.event or _event(record, schedule)
        marker = step.expired
        said = replies.Said(
            outcome=step.outcome,
            state=record.state,
            channel=channel,
            schedule=schedule,
            proposal=proposal,
            event=event,
            requested=step.requested,
            expired_lead=marker.lead if marker else None,
            expired_start=_utc(marker.start) if marker else None,
        )
        return Reply(
            conversation_id=keys.conversation_id,
            tenant_id=keys.tenant_id,
            state=record.state,
            outcome=step.outcome,
            text=replies.render(said),
            proposal=proposal,
            event=event,
            version=version,
            channel=channel,
        )

    def _keys(self, conversation_id: str, tenant_id: str) -> ConversationKeys:
        return ConversationKeys(
            inputs.identifier(tenant_id, "tenant_id"), inputs.identifier(conversation_id, "conversation_id")
        )

    def _schedule(self, keys: ConversationKeys) -> Schedule:
        return self._calendar_call(keys, lambda: self.calendar.schedule(keys.tenant_id))

    def _now(self) -> dt.datetime:
        now = self._clock()
        return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)

    def _calendar_call(self, keys: ConversationKeys, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except DialogError:
            raise
        except Exception as exc:  # a host's own calendar may raise anything: translate it here
            raise CalendarUnavailable(
                f"the calendar failed: {type(exc).__name__}: {exc}",
                tenant_id=keys.tenant_id,
                conversation_id=keys.conversation_id,
            ) from exc


def _proposal(record: Record, schedule: Schedule) -> Proposal | None:
    p = record.proposal
    if p is None or record.state is not State.AWAITING_CONFIRMATION:
        return None
    return Proposal(lead=p.lead, start=_local(p.start, schedule), end=_local(p.end, schedule))


def _event(record: Record, schedule: Schedule) -> Event | None:
    b = record.booking
    if b is None or b.event_id is None:
        return None
    return Event(b.event_id, _local(b.start, schedule), _local(b.end, schedule), b.lead, b.key)


def _last_outcome(record: Record) -> Outcome:
    return Outcome(record.last.outcome) if record.last is not None else Outcome.REPROMPTED


def _back_off(attempt: int) -> None:
    if attempt >= 3:
        time.sleep(random.uniform(0, 0.001 * min(attempt, 20)))


def _utc(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _local(epoch: int, schedule: Schedule) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, schedule.tz)
