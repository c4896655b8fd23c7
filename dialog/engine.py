"""The engines: one turn of a conversation, from the user's words to a committed state and a reply.

``Engine`` (redis-py, blocking) and ``AsyncEngine`` (``redis.asyncio``) drive the same flow
(``dialog.flow``): load the record in one round trip, settle a confirmation left outstanding,
decide (``dialog.turn``), compare-and-set, render the reply. Only the I/O differs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import inspect
import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from dialog import inputs, replies, turn, voice
from dialog.calendar.base import Calendar, Event, Schedule
from dialog.calendar.guard import CalendarCalls
from dialog.calendar.memory import InMemoryCalendar
from dialog.calendar.redis_calendar import RedisCalendar
from dialog.calendar.slots import find_slot
from dialog.errors import CalendarUnavailable, CorruptState, DialogError, InvalidInput
from dialog.flow import (
    Book,
    Cancel,
    Checkpoint,
    Done,
    Ended,
    Find,
    FindSlot,
    Flow,
    GetSchedule,
    Load,
    Message,
    Move,
    Pause,
    Reach,
    Replayed,
    Request,
    Turns,
    Write,
)
from dialog.machine import State
from dialog.results import Channel, HistoryEntry, Outcome, Proposal, Reply, Snapshot, Transition
from dialog.store.cache import DEFAULT_CACHE_SIZE, RecordCache
from dialog.store.cluster import cluster_from_url, is_cluster_url, sync_twin
from dialog.store.keys import DEFAULT_HISTORY_TTL_SECONDS, DEFAULT_TTL_SECONDS, ConversationKeys
from dialog.store.record import HistoryEntry as StoredEntry
from dialog.store.record import Record, StoredReply, encode
from dialog.store.redis_store import BLIND, AsyncRedisStore, RedisStore, Stored, apply_failure_policy
from dialog.understanding import Intent, Understanding, understand

__all__ = ["AsyncEngine", "Checkpoint", "Engine", "utc_now"]

_log = logging.getLogger("dialog.recover")
# Each calendar call is bounded by this much time, then CalendarUnavailable (spec 4.1).
DEFAULT_CALENDAR_TIMEOUT = 5.0

Clock = Callable[[], dt.datetime]
_T = TypeVar("_T")
_PENDING = (State.AWAITING_CONFIRMATION, State.RESCHEDULING)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _no_checkpoint(point: Checkpoint) -> None:
    return None


class _Base:
    """What both engines share: checking input, the calendar calls, building replies."""

    def __init__(
        self,
        redis_client: Any,
        *,
        calendar: Calendar | None,
        clock: Clock | None,
        ttl_seconds: int,
        configure_client: bool,
        checkpoint: Callable[[Checkpoint], None] | None,
        cache_size: int,
        calendar_timeout: float | None,
        calendar_inline: bool | None,
    ) -> None:
        if not isinstance(ttl_seconds, int) or ttl_seconds < 1:
            raise InvalidInput("ttl_seconds must be a positive whole number", field="ttl_seconds")
        if configure_client:
            apply_failure_policy(redis_client)
        self.redis = redis_client
        # The default calendar is a system of record on the same Redis, shared by every process.
        self.calendar: Calendar = calendar if calendar is not None else RedisCalendar(self._sync_client(redis_client))
        self.ttl_seconds = ttl_seconds
        self._turns = Turns(clock or utc_now, self._filed, checkpoints=checkpoint is not None)
        # A test seam: called at each step of a turn, so fault tests can stop a turn anywhere.
        self._checkpoint = checkpoint or _no_checkpoint
        self._cache = RecordCache(cache_size)
        # Calendar calls run on the engine's own threads, bounded in time and per tenant, so a
        # hung calendar never holds up calendar-free turns or other tenants (spec 4.1). The
        # in-memory calendar never waits, so by default it is called inline.
        self._calls = CalendarCalls(timeout=calendar_timeout)
        self._inline = self._never_hangs(self.calendar) if calendar_inline is None else calendar_inline
        # A host's calendar written before book() took the evidence note keeps working without it.
        self._takes_note = _accepts(self.calendar.book, "note")

    @staticmethod
    def _sync_client(redis_client: Any) -> Any:
        return redis_client

    @staticmethod
    def _never_hangs(calendar: Calendar) -> bool:
        """Called inline: the in-memory calendar never waits; a RedisCalendar's waits are bounded
        by its client's timeouts (overridden by the async engine, which must never block its loop)."""
        return isinstance(calendar, InMemoryCalendar | RedisCalendar)

    def _remember(self, keys: ConversationKeys, stored: Stored) -> Stored:
        # A filed reply answers one message id, never the next turn: it is not remembered.
        self._cache.put(keys, stored if stored.replay is None else dataclasses.replace(stored, replay=None))
        return stored

    def _remembered(self, request: Load) -> Stored | None:
        cached = None if request.fresh else self._cache.get(request.keys)
        if cached is None and request.blind:
            return Stored(0, None, token=BLIND)  # nothing read: the write creates only where nothing stands
        return cached

    def _forget_if_corrupt(self, request: Request, exc: DialogError) -> None:
        """After CorruptState the conversation starts afresh: a remembered record must not revive it."""
        if isinstance(exc, CorruptState) and isinstance(request, Load | Write):
            self._cache.drop(request.keys)

    # --- building a turn ----------------------------------------------------------------------

    def _handle_flow(
        self,
        conversation_id: str,
        text: str,
        tenant_id: str,
        channel: str,
        message_id: str | None,
        hearing: inputs.Hearing | None = None,
    ) -> tuple[Flow, Channel]:
        keys = _keys(conversation_id, tenant_id)
        where = {"tenant_id": tenant_id, "conversation_id": conversation_id}
        on_voice = inputs.channel(channel) is Channel.VOICE
        # On voice an empty transcript (silence, nothing recognised) is a turn: "I didn't catch that".
        said = inputs.transcript(text, **where) if on_voice else inputs.text(text, **where)
        message = self._message(message_id, channel, keys, said)
        heard: dict[tuple[bool, str | None], Understanding] = {}  # understood once per situation

        def decide(ctx: turn.Context) -> turn.Decision:
            if not said:  # voice, nothing heard: "Sorry, I didn't catch that." and the question again
                return turn.decide(ctx, Understanding(Intent.UNCLEAR, None, None, unreadable=""))
            # A booked call can still be moved or cancelled: its words are read as answers too.
            pending = ctx.record.state in _PENDING or ctx.record.booked is not None
            # the pending booking proposal's lead: "yes, book the call with Dana" confirms a call
            # with Dana (never a proposed move or cancellation of the booked call)
            p = ctx.record.proposal
            lead = p.lead if p is not None and p.kind == "book" else None
            if (pending, lead) not in heard:
                heard[pending, lead] = understand(said, pending=pending, lead=lead)
            u = heard[pending, lead]
            awaiting = on_voice and ctx.record.state is State.AWAITING_CONFIRMATION
            if awaiting and _doubtful(u, said, hearing, ctx):
                u = Understanding(Intent.HESITATE, None, None)  # ask yes or no, plainly
            decision = turn.decide(ctx, u)
            if awaiting and isinstance(decision, turn.Step) and decision.books and not _sure_act(hearing, ctx):
                # words that confirm without being a yes ("Tuesday at 10 is fine", "cancel the
                # call" to a cancellation) pass the same confidence and alternatives rule
                decision = turn.decide(ctx, Understanding(Intent.HESITATE, None, None))
            return decision

        return self._turns.run(keys, decide, message), Channel(message.channel)

    def _propose_flow(
        self, conversation_id: str, lead: str, start: dt.datetime, tenant_id: str, channel: str, message_id: str | None
    ) -> tuple[Flow, Channel]:
        keys = _keys(conversation_id, tenant_id)
        where = {"tenant_id": tenant_id, "conversation_id": conversation_id}
        who = inputs.lead(lead, **where)
        when = inputs.future_start(start, self._turns.now(), **where)
        message = self._message(message_id, channel, keys, f"propose({who}, {when.isoformat()})")
        flow = self._turns.run(keys, lambda ctx: turn.propose(ctx, who, when), message, blind=True)
        return flow, Channel(message.channel)

    @staticmethod
    def _message(message_id: str | None, channel: str, keys: ConversationKeys, text: str) -> Message:
        where = {"tenant_id": keys.tenant_id, "conversation_id": keys.conversation_id}
        return Message(inputs.message_id(message_id, **where), inputs.channel(channel).value, text)

    def _filed(self, keys: ConversationKeys, channel: str, done: Done) -> bytes:
        """The reply ``done`` gives on ``channel``, encoded to be filed under its message id."""
        reply = self._reply(keys, Channel(channel), done)
        p, e = reply.proposal, reply.event
        return encode(
            StoredReply(
                version=reply.version,
                state=reply.state,
                outcome=reply.outcome.value,
                text=reply.text,
                channel=reply.channel.value,
                proposal=(p.lead, _epoch(p.start), _epoch(p.end)) if p else None,
                event=(e.id, _epoch(e.start), _epoch(e.end), e.lead, e.idempotency_key) if e else None,
                kind=p.kind if p else "book",
            )
        )

    def _replayed(self, keys: ConversationKeys, ended: Replayed) -> Reply:
        r, schedule = ended.reply, ended.schedule
        p, e = r.proposal, r.event
        return Reply(
            conversation_id=keys.conversation_id,
            tenant_id=keys.tenant_id,
            state=r.state,
            outcome=Outcome(r.outcome),
            text=r.text,
            proposal=Proposal(p[0], _local(p[1], schedule), _local(p[2], schedule), r.kind) if p else None,
            event=Event(e[0], _local(e[1], schedule), _local(e[2], schedule), e[3], e[4]) if e else None,
            version=r.version,
            channel=Channel(r.channel),
        )

    # --- the calendar side of a request -------------------------------------------------------

    def _calendar_work(self, request: Request) -> Callable[[], Any]:
        keys = request.keys  # type: ignore[union-attr]
        if isinstance(request, Find):
            return lambda: self.calendar.find(keys.tenant_id, request.key)
        if isinstance(request, Move):
            c = request.change
            return lambda: self.calendar.move(
                keys.tenant_id, c.event_id, start=_utc(c.start), end=_utc(c.end), idempotency_key=c.key
            )
        if isinstance(request, Cancel):
            gone = request.change
            return lambda: self.calendar.cancel(keys.tenant_id, gone.event_id, idempotency_key=gone.key)
        if isinstance(request, Book):
            b = request.booking
            extra = {"note": evidence(b.said, b.channel, b.message_id)} if self._takes_note else {}
            return lambda: self.calendar.book(
                keys.tenant_id, lead=b.lead, start=_utc(b.start), end=_utc(b.end), idempotency_key=b.key, **extra
            )
        assert isinstance(request, FindSlot)
        q = request.query
        return lambda: find_slot(
            self.calendar,
            keys.tenant_id,
            at_or_after=q.at_or_after,
            now=self._turns.now(),
            strictly_after=q.strictly_after,
        )

    def _schedule(self, keys: ConversationKeys) -> Schedule:
        """The tenant's schedule, read inline: a configuration lookup, no I/O, on every turn."""
        return self._inline_call(keys, lambda: self.calendar.schedule(keys.tenant_id))

    @staticmethod
    def _inline_call(keys: ConversationKeys, call: Callable[[], _T]) -> _T:
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

    def _calendar_call(self, request: Request) -> Any:
        keys = request.keys  # type: ignore[union-attr]
        if isinstance(request, GetSchedule):
            return self._schedule(keys)
        work = self._calendar_work(request)
        if self._inline:
            return self._inline_call(keys, work)
        where = {"tenant_id": keys.tenant_id, "conversation_id": keys.conversation_id}
        return self._calls.call(work, what=type(request).__name__, **where)

    # --- results ------------------------------------------------------------------------------

    def _answer(self, keys: ConversationKeys, channel: Channel, ended: Ended) -> Reply:
        if isinstance(ended, Replayed):
            return self._replayed(keys, ended)
        return self._reply(keys, channel, ended)

    def _reply(self, keys: ConversationKeys, channel: Channel, done: Done) -> Reply:
        step, schedule, record = done.step, done.schedule, done.step.record
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
            requested=step.requested, note=step.note,
            expired_lead=marker.lead if marker else None,
            expired_start=_utc(marker.start) if marker else None,
            expired_kind=marker.kind if marker else "book",
        )
        return Reply(
            conversation_id=keys.conversation_id,
            tenant_id=keys.tenant_id,
            state=record.state,
            outcome=step.outcome,
            text=replies.render(said),
            proposal=proposal,
            event=None if step.outcome is Outcome.CALL_CANCELLED else event,  # the text names what was removed
            version=done.version,
            channel=channel,
            transition=_transition(record) if done.wrote else None,
            expect=_expected(record),
        )

    @staticmethod
    def _snapshot(keys: ConversationKeys, stored: Stored, schedule: Schedule) -> Snapshot | None:
        record = stored.record
        if record is None:
            return None
        last = record.last
        return Snapshot(
            conversation_id=keys.conversation_id,
            tenant_id=keys.tenant_id,
            state=record.state,
            proposal=_proposal(record, schedule),
            event=_event(record, schedule),
            version=stored.version,
            last_trigger=last.trigger.value if last else None,
            last_source=last.source if last else None,
            last_outcome=last.outcome.value if last else None,
            booking_pending=record.outstanding,
        )


class Engine(_Base):
    """Durable confirmation dialogs on Redis, one compare-and-set per state change.

    ``redis_client`` is a redis-py client; unless ``configure_client=False``, the engine gives it
    its own timeouts and bounded retry, so an unreachable Redis is ``StoreUnavailable`` within 2 s.
    ``replicas=N`` makes every write wait (in the same round trip) until N replicas hold it, so a
    failover cannot lose a reply already given; fewer within ``replica_timeout_ms`` is ``StoreUnavailable``.
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
        cache_size: int = DEFAULT_CACHE_SIZE,
        calendar_timeout: float | None = DEFAULT_CALENDAR_TIMEOUT,
        calendar_inline: bool | None = None,
        history_ttl_seconds: int = DEFAULT_HISTORY_TTL_SECONDS,
        replicas: int = 0,
        replica_timeout_ms: int = 250,
    ) -> None:
        super().__init__(
            redis_client,
            calendar=calendar,
            clock=clock,
            ttl_seconds=ttl_seconds,
            configure_client=configure_client,
            checkpoint=checkpoint,
            cache_size=cache_size,
            calendar_timeout=calendar_timeout,
            calendar_inline=calendar_inline,
        )
        self._store = RedisStore(
            redis_client,
            ttl_seconds=ttl_seconds,
            history_ttl_seconds=history_ttl_seconds,
            replicas=replicas,
            replica_timeout_ms=replica_timeout_ms,
        )

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
        elif is_cluster_url(url):
            client = cluster_from_url(url)
        else:
            client = redis.Redis.from_url(url)
        return cls(client, calendar=calendar, **options)

    def handle(
        self,
        conversation_id: str,
        text: str,
        *,
        tenant_id: str = "default",
        channel: str = "text",
        message_id: str | None = None,
        confidence: float | None = None,
        alternatives: Sequence[tuple[str, float]] | None = None,
    ) -> Reply:
        """Apply what the user said to the conversation and return what to say back.

        A ``message_id`` handled before (a client retrying) is not applied again: the first
        reply is returned. On voice, ``confidence`` and ``alternatives`` (the recogniser's n-best:
        (transcript, confidence) pairs) decide whether a spoken yes may book (spec 4.4).
        """
        hearing = inputs.hearing(confidence, alternatives)
        flow, checked = self._handle_flow(conversation_id, text, tenant_id, channel, message_id, hearing)
        return self._answer(_keys(conversation_id, tenant_id), checked, self._drive(flow))

    def propose(
        self,
        conversation_id: str,
        *,
        lead: str,
        start: dt.datetime,
        tenant_id: str = "default",
        channel: str = "text",
        message_id: str | None = None,
    ) -> Reply:
        """Propose ``start`` (or the first free slot at or after it), replacing any pending proposal."""
        flow, checked = self._propose_flow(conversation_id, lead, start, tenant_id, channel, message_id)
        return self._answer(_keys(conversation_id, tenant_id), checked, self._drive(flow))

    def snapshot(self, conversation_id: str, *, tenant_id: str = "default") -> Snapshot | None:
        """The conversation as stored, or None when there is none (never written, or expired)."""
        keys = _keys(conversation_id, tenant_id)
        stored = self._store.load(keys)
        if stored.record is None:
            return None
        return self._snapshot(keys, stored, self._schedule(keys))

    def expectations(self, conversation_id: str, *, tenant_id: str = "default") -> voice.Expectations:
        """What the conversation's next turn is expected to contain: ASR hints, JSGF, SRGS (spec 4.4)."""
        keys = _keys(conversation_id, tenant_id)
        stored = self._store.load(keys)
        return _expected(stored.record or turn.fresh_record())

    def history(self, conversation_id: str, *, tenant_id: str = "default") -> list[HistoryEntry]:
        """The conversation's applied turns, oldest first (the last 200, for up to 30 days)."""
        keys = _keys(conversation_id, tenant_id)
        return [_history(e) for e in self._store.history(keys)]

    def recover(self, *, tenant_id: str | None = None) -> list[Reply]:
        """Settle every confirmation left outstanding (a turn that stopped mid-way), no user input needed.

        Scans this engine's conversation keys (one tenant's, or all); returns one reply per
        conversation this call settled (``booked`` or ``slot_taken``). A conversation or tenant
        that fails (calendar down, unreadable record) is logged and left for the next sweep; after
        a tenant's calendar fails, its other conversations wait for the next sweep too.
        """
        sweep = _Sweep()
        for keys in list(self._store.conversations(tenant_id)):
            if sweep.skips(keys):
                continue
            try:
                done = self._drive(self._turns.recover(keys))
            except DialogError as exc:
                sweep.failed(keys, exc)
                continue
            if done is not None:
                sweep.settled.append(self._reply(keys, Channel(done.step.record.booking_channel), done))
        return sweep.settled

    def _drive(self, flow: Any) -> Any:
        answer: Any = None
        error: BaseException | None = None
        while True:
            try:
                request = flow.send(answer) if error is None else flow.throw(error)
            except StopIteration as stop:
                return stop.value
            answer, error = None, None
            try:
                answer = self._perform(request)
            except DialogError as exc:
                self._forget_if_corrupt(request, exc)
                error = exc  # thrown into the flow: it handles SlotTaken, the rest propagate

    def _perform(self, request: Request) -> Any:
        if isinstance(request, Load):
            cached = self._remembered(request)
            return cached or self._remember(request.keys, self._store.load(request.keys, request.message_id))
        if isinstance(request, Write):
            r = request
            commit = self._store.commit(r.keys, r.expected, r.record, r.entry, r.message_id, r.receipts)
            self._remember(r.keys, commit.stored)
            return commit
        if isinstance(request, Reach):
            return self._checkpoint(request.point)
        if isinstance(request, Pause):
            return time.sleep(_pause(request.attempt))
        return self._calendar_call(request)

    def close(self) -> None:
        """Release the engine's calendar threads (the Redis client stays the host's to close)."""
        self._calls.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncEngine(_Base):
    """``Engine`` on ``redis.asyncio``: the same flow and semantics, awaited I/O.

    A calendar whose calls block (CalDAV) runs in a worker thread; the in-memory calendar,
    which never waits, is called inline (``calendar_in_thread`` overrides the choice).
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
        cache_size: int = DEFAULT_CACHE_SIZE,
        calendar_timeout: float | None = DEFAULT_CALENDAR_TIMEOUT,
        calendar_in_thread: bool | None = None,
        history_ttl_seconds: int = DEFAULT_HISTORY_TTL_SECONDS,
    ) -> None:
        super().__init__(
            redis_client,
            calendar=calendar,
            clock=clock,
            ttl_seconds=ttl_seconds,
            configure_client=configure_client,
            checkpoint=checkpoint,
            cache_size=cache_size,
            calendar_timeout=calendar_timeout,
            calendar_inline=None if calendar_in_thread is None else not calendar_in_thread,
        )
        self._store = AsyncRedisStore(redis_client, ttl_seconds=ttl_seconds, history_ttl_seconds=history_ttl_seconds)

    @staticmethod
    def _sync_client(redis_client: Any) -> Any:
        twin = sync_twin(redis_client)
        apply_failure_policy(twin)
        return twin

    @staticmethod
    def _never_hangs(calendar: Calendar) -> bool:
        return isinstance(calendar, InMemoryCalendar)

    @classmethod
    def from_url(cls, url: str, *, calendar: Calendar | None = None, **options: Any) -> AsyncEngine:
        import redis.asyncio

        if is_cluster_url(url):
            return cls(cluster_from_url(url, asynchronous=True), calendar=calendar, **options)
        return cls(redis.asyncio.Redis.from_url(url), calendar=calendar, **options)

    async def handle(
        self,
        conversation_id: str,
        text: str,
        *,
        tenant_id: str = "default",
        channel: str = "text",
        message_id: str | None = None,
        confidence: float | None = None,
        alternatives: Sequence[tuple[str, float]] | None = None,
    ) -> Reply:
        """Apply what the user said; a ``message_id`` handled before returns the first reply."""
        hearing = inputs.hearing(confidence, alternatives)
        flow, checked = self._handle_flow(conversation_id, text, tenant_id, channel, message_id, hearing)
        return self._answer(_keys(conversation_id, tenant_id), checked, await self._drive(flow))

    async def propose(
        self,
        conversation_id: str,
        *,
        lead: str,
        start: dt.datetime,
        tenant_id: str = "default",
        channel: str = "text",
        message_id: str | None = None,
    ) -> Reply:
        """Propose ``start`` (or the first free slot at or after it), replacing any pending proposal."""
        flow, checked = self._propose_flow(conversation_id, lead, start, tenant_id, channel, message_id)
        return self._answer(_keys(conversation_id, tenant_id), checked, await self._drive(flow))

    async def snapshot(self, conversation_id: str, *, tenant_id: str = "default") -> Snapshot | None:
        keys = _keys(conversation_id, tenant_id)
        stored = await self._store.load(keys)
        if stored.record is None:
            return None
        return self._snapshot(keys, stored, self._schedule(keys))

    async def expectations(self, conversation_id: str, *, tenant_id: str = "default") -> voice.Expectations:
        """What the conversation's next turn is expected to contain (spec 4.4)."""
        stored = await self._store.load(_keys(conversation_id, tenant_id))
        return _expected(stored.record or turn.fresh_record())

    async def history(self, conversation_id: str, *, tenant_id: str = "default") -> list[HistoryEntry]:
        """The conversation's applied turns, oldest first."""
        keys = _keys(conversation_id, tenant_id)
        return [_history(e) for e in await self._store.history(keys)]

    async def recover(self, *, tenant_id: str | None = None) -> list[Reply]:
        """Settle every confirmation left outstanding; failures are logged and left for the next sweep."""
        sweep = _Sweep()
        for keys in await self._store.conversations(tenant_id):
            if sweep.skips(keys):
                continue
            try:
                done = await self._drive(self._turns.recover(keys))
            except DialogError as exc:
                sweep.failed(keys, exc)
                continue
            if done is not None:
                sweep.settled.append(self._reply(keys, Channel(done.step.record.booking_channel), done))
        return sweep.settled

    async def aclose(self) -> None:
        """Close the Redis client and release the engine's calendar threads."""
        self._calls.close()
        await self.redis.aclose()

    async def _drive(self, flow: Any) -> Any:
        answer: Any = None
        error: BaseException | None = None
        while True:
            try:
                request = flow.send(answer) if error is None else flow.throw(error)
            except StopIteration as stop:
                return stop.value
            answer, error = None, None
            try:
                answer = await self._perform(request)
            except DialogError as exc:
                self._forget_if_corrupt(request, exc)
                error = exc

    async def _perform(self, request: Request) -> Any:
        if isinstance(request, Load):
            cached = self._remembered(request)
            return cached or self._remember(request.keys, await self._store.load(request.keys, request.message_id))
        if isinstance(request, Write):
            r = request
            commit = await self._store.commit(r.keys, r.expected, r.record, r.entry, r.message_id, r.receipts)
            self._remember(r.keys, commit.stored)
            return commit
        if isinstance(request, Reach):
            return self._checkpoint(request.point)
        if isinstance(request, Pause):
            return await asyncio.sleep(_pause(request.attempt))
        return await self._calendar(request)

    async def _calendar(self, request: Request) -> Any:
        keys = request.keys  # type: ignore[union-attr]
        if isinstance(request, GetSchedule):
            return self._schedule(keys)
        work = self._calendar_work(request)
        if self._inline:
            return self._inline_call(keys, work)
        where = {"tenant_id": keys.tenant_id, "conversation_id": keys.conversation_id}
        return await self._calls.acall(work, what=type(request).__name__, **where)


def _keys(conversation_id: str, tenant_id: str) -> ConversationKeys:
    """The checked ids' keys; kept for recent conversations (an invalid id raises, and is not kept)."""
    if type(conversation_id) is str and type(tenant_id) is str:  # hashable: worth keeping
        return _checked_keys(conversation_id, tenant_id)
    return _checked_keys.__wrapped__(conversation_id, tenant_id)


@functools.lru_cache(maxsize=4096)
def _checked_keys(conversation_id: str, tenant_id: str) -> ConversationKeys:
    return ConversationKeys(
        inputs.identifier(tenant_id, "tenant_id"), inputs.identifier(conversation_id, "conversation_id")
    )


def _pause(attempt: int) -> float:
    """Full jitter over a window that doubles from 1 ms to 25 ms: contenders spread out, nobody starves."""
    return random.uniform(0, min(0.025, 0.001 * 2 ** min(attempt, 5)))


class _Sweep:
    """One recovery sweep's bookkeeping: what it settled, and the tenants whose calendar failed."""

    def __init__(self) -> None:
        self.settled: list[Reply] = []
        self._down: set[str] = set()

    def skips(self, keys: ConversationKeys) -> bool:
        return keys.tenant_id in self._down

    def failed(self, keys: ConversationKeys, exc: DialogError) -> None:
        if isinstance(exc, CalendarUnavailable):
            self._down.add(keys.tenant_id)
        _log.warning(
            "recover: left for the next sweep: %s: %s",
            type(exc).__name__,
            exc,
            extra={"tenant_id": keys.tenant_id, "conversation_id": keys.conversation_id},
        )


def _proposal(record: Record, schedule: Schedule) -> Proposal | None:
    p = record.proposal
    if p is None or record.state is not State.AWAITING_CONFIRMATION:
        return None
    return Proposal(lead=p.lead, start=_local(p.start, schedule), end=_local(p.end, schedule), kind=p.kind)


def _event(record: Record, schedule: Schedule) -> Event | None:
    return turn.as_event(record.booking, schedule)


def _doubtful(u: Understanding, said: str, hearing: inputs.Hearing | None, ctx: turn.Context) -> bool:
    """On voice, while a proposal awaits: a yes that is not sure (spec 4.4), or any other act (a
    cancellation, a move) heard below the tenant's confidence, is asked again rather than done."""
    confidence = hearing.confidence if hearing else None
    threshold = ctx.schedule.voice_confidence
    if u.intent is Intent.CONFIRM:
        alternatives = hearing.alternatives if hearing else ()
        return not voice.spoken_yes_is_sure(said, confidence, alternatives, threshold)
    acts = u.intent in (Intent.REFUSE, Intent.RESCHEDULE, Intent.SCHEDULE, Intent.CORRECTION)
    return acts and confidence is not None and confidence < threshold


def _sure_act(hearing: inputs.Hearing | None, ctx: turn.Context) -> bool:
    if hearing is None:
        return True
    return voice.spoken_act_is_sure(hearing.confidence, hearing.alternatives, ctx.schedule.voice_confidence)


def _expected(record: Record) -> voice.Expectations:
    if record.state is State.DONE and record.booked is not None:
        return voice.expectations(State.DONE, "booked")
    kind = record.proposal.kind if record.proposal else record.request.kind if record.request else "book"
    return voice.expectations(record.state, kind)


def _transition(record: Record) -> Transition | None:
    last = record.last
    return None if last is None else Transition(last.source, last.trigger, record.state)


def _history(e: StoredEntry) -> HistoryEntry:
    at = dt.datetime.fromtimestamp(e.at / 1000, dt.UTC)
    before, after = State(e.state_from), State(e.state)
    return HistoryEntry(at, e.version, e.channel, e.text, e.message_id, before, e.trigger, after, e.outcome, e.event_id)


def _accepts(function: Callable[..., Any], name: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def evidence(said: str, channel: str, message_id: str | None) -> str:
    """What a booked event records about its confirmation (spec 4.5)."""
    ref = f", message {message_id}" if message_id else ""
    return f'Confirmed by "{said}" on the {channel} channel{ref} (dialog).'


def _epoch(value: dt.datetime) -> int:
    return int(value.timestamp())


def _utc(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _local(epoch: int, schedule: Schedule) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, schedule.tz)
