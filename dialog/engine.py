"""The engines: one turn of a conversation, from the user's words to a committed state and a reply.

``Engine`` (redis-py, blocking) and ``AsyncEngine`` (``redis.asyncio``) drive the same flow
(``dialog.flow``): load the record in one round trip, settle a confirmation left outstanding,
decide (``dialog.turn``), compare-and-set, render the reply. Only the I/O differs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from dialog import inputs, replies, turn
from dialog.calendar.base import Calendar, Event, Schedule
from dialog.calendar.memory import InMemoryCalendar
from dialog.calendar.slots import find_slot
from dialog.errors import CalendarUnavailable, DialogError, InvalidInput
from dialog.flow import Book, Checkpoint, Done, FindSlot, Flow, GetSchedule, Load, Pause, Reach, Request, Turns, Write
from dialog.machine import State
from dialog.results import Channel, Proposal, Reply, Snapshot
from dialog.store.cache import DEFAULT_CACHE_SIZE, RecordCache
from dialog.store.cluster import cluster_from_url, is_cluster_url
from dialog.store.keys import DEFAULT_TTL_SECONDS, ConversationKeys
from dialog.store.record import Record
from dialog.store.redis_store import AsyncRedisStore, RedisStore, Stored, apply_failure_policy
from dialog.understanding import Understanding, understand

__all__ = ["AsyncEngine", "Checkpoint", "Engine", "utc_now"]

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
    ) -> None:
        if not isinstance(ttl_seconds, int) or ttl_seconds < 1:
            raise InvalidInput("ttl_seconds must be a positive whole number", field="ttl_seconds")
        if configure_client:
            apply_failure_policy(redis_client)
        self.redis = redis_client
        self.calendar: Calendar = calendar if calendar is not None else InMemoryCalendar()
        self.ttl_seconds = ttl_seconds
        self._turns = Turns(clock or utc_now)
        # A test seam: called at each step of a turn, so fault tests can stop a turn anywhere.
        self._checkpoint = checkpoint or _no_checkpoint
        self._cache = RecordCache(cache_size)

    def _remember(self, keys: ConversationKeys, stored: Stored) -> Stored:
        self._cache.put(keys, stored)
        return stored

    def _remembered(self, request: Load) -> Stored | None:
        return None if request.fresh else self._cache.get(request.keys)

    # --- building a turn ----------------------------------------------------------------------

    def _handle_flow(self, conversation_id: str, text: str, tenant_id: str, channel: str) -> tuple[Flow, Channel]:
        keys = _keys(conversation_id, tenant_id)
        said = inputs.text(text, tenant_id=tenant_id, conversation_id=conversation_id)
        heard: dict[bool, Understanding] = {}  # understood once per "is something pending"

        def decide(ctx: turn.Context) -> turn.Decision:
            pending = ctx.record.state in _PENDING
            if pending not in heard:
                heard[pending] = understand(said, pending=pending)
            return turn.decide(ctx, heard[pending])

        return self._turns.run(keys, decide), inputs.channel(channel)

    def _propose_flow(
        self, conversation_id: str, lead: str, start: dt.datetime, tenant_id: str, channel: str
    ) -> tuple[Flow, Channel]:
        keys = _keys(conversation_id, tenant_id)
        where = {"tenant_id": tenant_id, "conversation_id": conversation_id}
        who = inputs.lead(lead, **where)
        when = inputs.future_start(start, self._turns.now(), **where)
        return self._turns.run(keys, lambda ctx: turn.propose(ctx, who, when)), inputs.channel(channel)

    # --- the calendar side of a request -------------------------------------------------------

    def _calendar_work(self, request: Request) -> Callable[[], Any]:
        keys = request.keys  # type: ignore[union-attr]
        if isinstance(request, GetSchedule):
            return lambda: self.calendar.schedule(keys.tenant_id)
        if isinstance(request, Book):
            b = request.booking
            return lambda: self.calendar.book(
                keys.tenant_id, lead=b.lead, start=_utc(b.start), end=_utc(b.end), idempotency_key=b.key
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

    @staticmethod
    def _calendar_call(keys: ConversationKeys, call: Callable[[], _T]) -> _T:
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

    # --- results ------------------------------------------------------------------------------

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
            version=done.version,
            channel=channel,
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
            last_trigger=last.trigger if last else None,
            last_source=State(last.source) if last else None,
            last_outcome=last.outcome if last else None,
            booking_pending=record.pending_booking is not None,
        )


class Engine(_Base):
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
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        super().__init__(
            redis_client,
            calendar=calendar,
            clock=clock,
            ttl_seconds=ttl_seconds,
            configure_client=configure_client,
            checkpoint=checkpoint,
            cache_size=cache_size,
        )
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
        elif is_cluster_url(url):
            client = cluster_from_url(url)
        else:
            client = redis.Redis.from_url(url)
        return cls(client, calendar=calendar, **options)

    def handle(self, conversation_id: str, text: str, *, tenant_id: str = "default", channel: str = "text") -> Reply:
        """Apply what the user said to the conversation and return what to say back."""
        flow, checked = self._handle_flow(conversation_id, text, tenant_id, channel)
        return self._reply(_keys(conversation_id, tenant_id), checked, self._drive(flow))

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
        flow, checked = self._propose_flow(conversation_id, lead, start, tenant_id, channel)
        return self._reply(_keys(conversation_id, tenant_id), checked, self._drive(flow))

    def snapshot(self, conversation_id: str, *, tenant_id: str = "default") -> Snapshot | None:
        """The conversation as stored, or None when there is none (never written, or expired)."""
        keys = _keys(conversation_id, tenant_id)
        stored = self._store.load(keys)
        if stored.record is None:
            return None
        return self._snapshot(keys, stored, self._calendar_call(keys, self._calendar_work(GetSchedule(keys))))

    def recover(self, *, tenant_id: str | None = None) -> list[Reply]:
        """Settle every confirmation left outstanding (a turn that stopped mid-way), no user input needed.

        Scans this engine's conversation keys (one tenant's, or all); returns one reply per
        conversation this call settled (``booked`` or ``slot_taken``).
        """
        settled = []
        for keys in list(self._store.conversations(tenant_id)):
            done = self._drive(self._turns.recover(keys))
            if done is not None:
                settled.append(self._reply(keys, Channel.TEXT, done))
        return settled

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
                error = exc  # thrown into the flow: it handles SlotTaken, the rest propagate

    def _perform(self, request: Request) -> Any:
        if isinstance(request, Load):
            return self._remembered(request) or self._remember(request.keys, self._store.load(request.keys))
        if isinstance(request, Write):
            commit = self._store.commit(request.keys, request.expected, request.record)
            self._remember(request.keys, commit.stored)
            return commit
        if isinstance(request, Reach):
            return self._checkpoint(request.point)
        if isinstance(request, Pause):
            return time.sleep(_pause(request.attempt))
        return self._calendar_call(request.keys, self._calendar_work(request))


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
        calendar_in_thread: bool | None = None,
    ) -> None:
        super().__init__(
            redis_client,
            calendar=calendar,
            clock=clock,
            ttl_seconds=ttl_seconds,
            configure_client=configure_client,
            checkpoint=checkpoint,
            cache_size=cache_size,
        )
        self._store = AsyncRedisStore(redis_client, ttl_seconds=ttl_seconds)
        inline = isinstance(self.calendar, InMemoryCalendar)
        self._in_thread = (not inline) if calendar_in_thread is None else calendar_in_thread

    @classmethod
    def from_url(cls, url: str, *, calendar: Calendar | None = None, **options: Any) -> AsyncEngine:
        import redis.asyncio

        if is_cluster_url(url):
            return cls(cluster_from_url(url, asynchronous=True), calendar=calendar, **options)
        return cls(redis.asyncio.Redis.from_url(url), calendar=calendar, **options)

    async def handle(
        self, conversation_id: str, text: str, *, tenant_id: str = "default", channel: str = "text"
    ) -> Reply:
        flow, checked = self._handle_flow(conversation_id, text, tenant_id, channel)
        return self._reply(_keys(conversation_id, tenant_id), checked, await self._drive(flow))

    async def propose(
        self,
        conversation_id: str,
        *,
        lead: str,
        start: dt.datetime,
        tenant_id: str = "default",
        channel: str = "text",
    ) -> Reply:
        flow, checked = self._propose_flow(conversation_id, lead, start, tenant_id, channel)
        return self._reply(_keys(conversation_id, tenant_id), checked, await self._drive(flow))

    async def snapshot(self, conversation_id: str, *, tenant_id: str = "default") -> Snapshot | None:
        keys = _keys(conversation_id, tenant_id)
        stored = await self._store.load(keys)
        if stored.record is None:
            return None
        return self._snapshot(keys, stored, await self._calendar(keys, GetSchedule(keys)))

    async def recover(self, *, tenant_id: str | None = None) -> list[Reply]:
        settled = []
        for keys in await self._store.conversations(tenant_id):
            done = await self._drive(self._turns.recover(keys))
            if done is not None:
                settled.append(self._reply(keys, Channel.TEXT, done))
        return settled

    async def aclose(self) -> None:
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
                error = exc

    async def _perform(self, request: Request) -> Any:
        if isinstance(request, Load):
            return self._remembered(request) or self._remember(request.keys, await self._store.load(request.keys))
        if isinstance(request, Write):
            commit = await self._store.commit(request.keys, request.expected, request.record)
            self._remember(request.keys, commit.stored)
            return commit
        if isinstance(request, Reach):
            return self._checkpoint(request.point)
        if isinstance(request, Pause):
            return await asyncio.sleep(_pause(request.attempt))
        return await self._calendar(request.keys, request)

    def _calendar(self, keys: ConversationKeys, request: Request) -> Awaitable[Any]:
        work = self._calendar_work(request)
        if self._in_thread:
            return asyncio.to_thread(self._calendar_call, keys, work)
        return _ready(self._calendar_call(keys, work))


async def _ready(value: _T) -> _T:
    return value


def _keys(conversation_id: str, tenant_id: str) -> ConversationKeys:
    return ConversationKeys(
        inputs.identifier(tenant_id, "tenant_id"), inputs.identifier(conversation_id, "conversation_id")
    )


def _pause(attempt: int) -> float:
    return 0.0 if attempt < 3 else random.uniform(0, 0.001 * min(attempt, 20))


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


def _utc(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _local(epoch: int, schedule: Schedule) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, schedule.tz)
