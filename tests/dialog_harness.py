"""The harness of the property suites: two engines, one Redis, one calendar and one clock,
checked against the reference model (``tests/dialog_reference.py``) after every step.

Three layers, cheapest and most certain first (``scripts/mutations.py`` runs the three files
in this order with ``-x``):

1. ``test_dialog_properties_table.py``, an exhaustive table: every reachable situation (a
   booking, a move or a cancellation pending, a move waiting for a day, a booked, moved or
   cancelled call, expiries) x every utterance class x both channels (every utterance of the
   class; a sample of it in the rows of spec 4.2).
2. ``test_dialog_properties_interleaved.py``, interleaving tables: a second container's whole
   turn lands between one container's read and its compare-and-set (the result must be as if
   the turns had run one after the other), or between a confirmation's calendar call and its
   last write (one event, booked, moved or removed once).
3. ``test_dialog_properties_stateful.py``, a hypothesis ``RuleBasedStateMachine``: two engines
   (two redis-py clients, "two containers") on one Redis, one ``InMemoryCalendar`` and one
   ``FakeClock``, four conversations on three tenants; utterances drawn per intent class on both
   channels, ``propose`` via the API, the conversation key expiring, a container restarting, the
   clock advancing (which ages every ``dialog:*`` key's TTL by as much), busy time appearing,
   interleaved turns, booked calls moved and cancelled (proposed on one container, confirmed on
   the other, crossed by another turn). Rules are biased toward answering pending proposals:
   random stateful tests alone were measured catching a seeded bug in only 0-4 of 10 runs at
   small sizes.

After every step: the reply (state, outcome, proposal, event, version, non-empty text, no emoji on
voice) matches the model; every conversation's stored state and version match; every ``dialog:*``
key has a TTL, the conversation key's is 600 s less the (fake) time since its last turn, an
expired proposal's marker lives 1-24 h; the calendar holds exactly the confirmed proposals, at
their confirmed (moved) times, less the cancelled ones, one event per idempotency key, and a moved
event keeps its id; no exception other than the expected ``InvalidInput`` escapes.

Redis: the real one at tests/conftest.py ``REDIS_URL`` (a database per run; ``DIALOG_TEST_REDIS_URL``
overrides), not fakeredis: the compare-and-set is a Lua script and the TTLs are Redis's own, and
the ``ci`` profile fits its budget on the real server (see the profiles below). Every example
flushes the database when it starts and when it ends, so nothing else may use that database
while these files run.

Profiles, chosen by ``DIALOG_HYPOTHESIS_PROFILE`` (default ``ci``):
- ``ci``: derandomized (the same examples every run), bounded to keep these files well under 60 s
  on 2 cores;
- ``nightly``: thousands of random examples, longer runs of steps:
  ``DIALOG_HYPOTHESIS_PROFILE=nightly .venv/bin/python -m pytest tests/test_dialog_properties_*.py``
- ``mutations``: the ``ci`` examples without shrinking, for the mutation check
  (``.venv/bin/python scripts/mutations.py``, run in CI by tests/test_mutations.py).
"""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import redis
from hypothesis import HealthCheck, Phase, settings

from dialog import Engine, InMemoryCalendar, Reply
from dialog.engine import Checkpoint
from dialog.testing import FakeClock
from tests.dialog_reference import (
    ALREADY_BOOKED,
    AWAITING,
    BOOK,
    BOOKED,
    BUSY,
    BUSY_FROM,
    BUSY_UNTIL,
    CALL_CANCELLED,
    CANCEL_THE_CALL,
    CATALOGUE,
    DONE,
    EXPIRED,
    IDLE,
    JANUARY_5TH,
    KEPT,
    MARKER_AT_LEAST,
    MARKER_AT_MOST,
    MOVE_IT,
    MOVED,
    NOTHING_PENDING,
    OUTCOMES,
    PENDING,
    PROPOSE_DANA,
    RESCHEDULING,
    SLOT,
    START,
    STATES,
    TENANTS,
    TTL,
    TTL_SLACK_MS,
    Conversation,
    Expect,
    Meaning,
    Reference,
    Utterance,
)

# --- hypothesis profiles ----------------------------------------------------------------------

# Hypothesis's own default for state machines suppresses every health check; these profiles keep
# all but too_slow, which times data generation, and in a state machine that includes every
# step's Redis round trips: on a loaded machine it would time the server, not the strategies.
_SLOW_STEPS = [HealthCheck.too_slow]
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=100,
    stateful_step_count=40,
    suppress_health_check=_SLOW_STEPS,
)
settings.register_profile(
    "nightly",
    deadline=None,
    max_examples=3000,
    stateful_step_count=60,
    suppress_health_check=_SLOW_STEPS,
    print_blob=True,
)
# The ci profile's examples without shrinking, for scripts/mutations.py: a seeded bug needs a
# failing example, not a minimal one (shrinking one took up to 5 minutes).
settings.register_profile("mutations", settings.get_profile("ci"), phases=[Phase.explicit, Phase.reuse, Phase.generate])
PROFILE = settings.get_profile(os.environ.get("DIALOG_HYPOTHESIS_PROFILE", "ci"))


# --- the world: engines, Redis, calendar and clock, checked against the model ------------------


class Connections:
    """The Redis clients a test's worlds share: an admin client and one client per container.

    Opening a client costs a handshake; the exhaustive tables build a world per utterance, so
    they reuse these. A restart in the stateful test still gets a fresh client.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = redis.Redis.from_url(url)
        self.containers = [redis.Redis.from_url(url), redis.Redis.from_url(url)]
        self.configured: set[int] = set()
        self.clean = False  # flushed by the last world's close, and untouched since

    def close(self) -> None:
        for client in (self.admin, *self.containers):
            client.close()


class Interruption:
    """Runs a callback once, when an engine's turn reaches a given checkpoint.

    The engine calls ``checkpoint`` at each step of a turn: at ``DECIDED`` the turn has read the
    conversation (or remembered it) and decided, and nothing is written yet; at
    ``CALENDAR_CALLED`` a confirmation's event exists and its last write is not done. Another
    container's turn lands there.
    """

    def __init__(self) -> None:
        self._at: Checkpoint | None = None
        self._then: Callable[[], None] | None = None

    def arm(self, at: Checkpoint, then: Callable[[], None]) -> None:
        self._at, self._then = at, then

    def disarm(self) -> None:
        self._at = self._then = None

    def __call__(self, point: Checkpoint) -> None:
        if point == self._at and self._then is not None:
            then = self._then
            self.disarm()
            then()


class World:
    """Two engines on one Redis, one calendar, one clock, and the model they must agree with."""

    def __init__(self, url: str, connections: Connections | None = None) -> None:
        self._owns = connections is None
        self.connections = connections or Connections(url)
        self.admin = self.connections.admin
        if not self.connections.clean:
            self.admin.flushdb()
        self.connections.clean = False
        self.clock = FakeClock(START)
        self.calendar = InMemoryCalendar()
        self.model = Reference(self.clock)
        self.interruptions = [Interruption(), Interruption()]
        self.engines = [self._engine(i, client) for i, client in enumerate(self.connections.containers)]
        # each event's id by (tenant, lead casefolded, start), as last seen: a moved event keeps its id
        self.ids: dict[tuple[str, str, dt.datetime], str] = {}
        self._restarted: list[redis.Redis] = []
        self.block(BUSY, BUSY_FROM, BUSY_UNTIL)

    def _engine(self, index: int, client: redis.Redis) -> Engine:
        # The engine applies its timeouts and retry to a client the first time it is given one.
        first = id(client) not in self.connections.configured
        self.connections.configured.add(id(client))
        return Engine(
            client,
            calendar=self.calendar,
            clock=self.clock,
            configure_client=first,
            checkpoint=self.interruptions[index],
        )

    def close(self) -> None:
        self.admin.flushdb()
        self.connections.clean = True  # the next world on these connections need not flush again
        for client in self._restarted:
            client.close()
        if self._owns:
            self.connections.close()

    def conversation(self, tenant: str = "acme", cid: str = "c1") -> Conversation:
        return self.model.conversations[(tenant, cid)]

    # actions

    def say(self, engine: int, c: Conversation, utterance: Utterance, channel: str = "text") -> Reply:
        expected = self.model.expect_answer(c, utterance.meaning)
        floor = self.model.version_floor(c)
        reply = self.engines[engine].handle(c.cid, utterance.text, tenant_id=c.tenant, channel=channel)
        self._settle(c, reply, expected, floor, f"engine {engine} hears {utterance} on {channel}")
        return reply

    def propose(self, engine: int, c: Conversation, lead: str, start: dt.datetime) -> Reply:
        expected = self.model.expect_propose(c, lead, start)
        floor = self.model.version_floor(c)
        reply = self.engines[engine].propose(c.cid, lead=lead, start=start, tenant_id=c.tenant)
        self._settle(c, reply, expected, floor, f"engine {engine} proposes {lead} at {start:%a %d %b %H:%M}")
        return reply

    def interleave(
        self, first: int, c: Conversation, utterance: Utterance, other: Conversation, meanwhile: Utterance
    ) -> tuple[Reply, Reply]:
        """Engine ``first`` hears ``utterance``; the other engine's whole turn lands before its write.

        Compare-and-set makes that the same as the other turn running first: the model applies
        the other turn, then this one. In another conversation nothing conflicts: this turn's
        free-slot search ran before the other turn (pending proposals reserve nothing), its
        calendar call (booking, moving) after it, so a proposal may also be the one it would have
        been without the other turn.
        """
        second = 1 - first
        seen: dict[str, Any] = {}
        alone = [] if other is c else self.model.expect_answer(c, utterance.meaning)
        searched_first = [e for e in alone if not (e.books or e.moves or e.removes)]

        def other_turn() -> None:
            seen["reply"] = self.say(second, other, meanwhile)
            after = self.model.expect_answer(c, utterance.meaning)
            seen["expected"] = after + [e for e in searched_first if e not in after]
            seen["floor"] = self.model.version_floor(c)

        reply = self._interrupted(first, Checkpoint.DECIDED, other_turn, lambda: self._handle(first, c, utterance))
        assert "reply" in seen, "the interleaved turn never ran: the first turn never decided"
        what = f"engine {first} hears {utterance}, engine {second} hears {meanwhile} on {other} in between"
        self._settle(c, reply, seen["expected"], seen["floor"], what)
        return seen["reply"], reply

    def cross_mid_confirmation(self, first: int, c: Conversation, yes: Utterance, meanwhile: Utterance) -> None:
        """Engine ``first`` books (moves, cancels) on "yes"; the other engine's turn lands after the
        calendar call.

        Spec: exactly one event, and the next turn "finds the event by its idempotency key and
        completes the turn as booked". README: it does so whatever that turn says, and the turn
        that finds the work done answers already_booked. Spec 4.2: a move or a cancellation is
        made "exactly once" likewise (the calendar's move and cancel are idempotent by key); the
        turn that finds it done reports it (the spec has no word for that; the model allows the
        change's own outcome or what a "yes" would hear after it).
        """
        confirming = self.model.expect_answer(c, yes.meaning)
        effects = [e for e in confirming if e.books or e.moves or e.removes]
        assert len(confirming) == len(effects) == 1, f"{c} would not confirm on {yes}: {_show(confirming)}"
        second = 1 - first
        seen: dict[str, Any] = {}

        def other_turn() -> None:
            floor = self.model.version_floor(c) + 1  # the first turn's intent was committed
            reply = self.engines[second].handle(c.cid, meanwhile.text, tenant_id=c.tenant)
            what = f"engine {second} hears {meanwhile} after engine {first}'s calendar call for {yes}"
            completes = replace(effects[0], why="a recorded confirmation is completed by the next turn")
            self._settle(c, reply, [completes], floor, what)
            seen["reply"] = reply

        reply = self._interrupted(first, Checkpoint.CALENDAR_CALLED, other_turn, lambda: self._handle(first, c, yes))
        assert "reply" in seen, "the other turn never ran: the confirmation never called the calendar"
        why = "the turn that finds its confirmation completed"
        found_done = {
            BOOKED: [Expect(ALREADY_BOOKED, DONE, why=why)],
            MOVED: [Expect(MOVED, DONE, why=why), Expect(ALREADY_BOOKED, DONE, why=why)],
            CALL_CANCELLED: [Expect(CALL_CANCELLED, DONE, why=why), Expect(NOTHING_PENDING, DONE, why=why)],
        }[effects[0].outcome]
        # This turn's last write lost to the other turn's, so it reports the version that stands.
        self._settle(c, reply, found_done, seen["reply"].version - 1, f"engine {first}'s {yes}, completed")

    def _handle(self, engine: int, c: Conversation, utterance: Utterance) -> Reply:
        return self.engines[engine].handle(c.cid, utterance.text, tenant_id=c.tenant)

    def _interrupted(self, engine: int, at: Checkpoint, then: Callable[[], None], turn: Callable[[], Reply]) -> Reply:
        self.interruptions[engine].arm(at, then)
        try:
            return turn()
        finally:
            self.interruptions[engine].disarm()

    def restart(self, engine: int) -> None:
        """A container restarts: a fresh engine on a fresh client replaces it."""
        client = redis.Redis.from_url(self.connections.url)
        self._restarted.append(client)
        self.engines[engine] = self._engine(engine, client)

    def expire(self, c: Conversation) -> None:
        """The conversation key's TTL elapses (deleted here, as the TTL would)."""
        self.admin.delete(c.keys.conversation)
        c.deleted = True

    def time_passes(self, minutes: int) -> None:
        """The clock moves on, and every dialog key's TTL runs down by as much."""
        elapsed_ms = minutes * 60_000
        self.clock.advance(minutes=minutes)
        for key in self.admin.scan_iter(match="dialog:*", count=1000):
            left = self.admin.pttl(key)
            if left > elapsed_ms:
                self.admin.pexpire(key, left - elapsed_ms)
            elif left > 0:
                self.admin.delete(key)

    def block(self, tenant: str, start: dt.datetime, end: dt.datetime) -> None:
        self.calendar.block(tenant, start, end)
        self.model.blocks[tenant].append((start, end))

    # checks

    def _settle(self, c: Conversation, reply: Reply, expected: list[Expect], floor: int, what: str) -> None:
        """The reply must be one the spec allows; the model then follows it."""
        context = f"{c}: {what}\n  expected one of {_show(expected)}\n  got {_show_reply(reply)}"
        assert reply.state in STATES and reply.outcome in OUTCOMES, context
        assert (reply.conversation_id, reply.tenant_id) == (c.cid, c.tenant), context
        assert reply.text.strip(), f"empty reply text; {context}"
        if reply.channel == "voice":
            assert not any(unicodedata.category(ch) == "So" for ch in reply.text), f"emoji on voice; {context}"
        if reply.outcome == EXPIRED:
            floor = max(floor, c.version)  # the marker carried the version across the expiry
        assert reply.version > floor, f"version {reply.version} did not grow past {floor}; {context}"
        alike = [e for e in expected if _matches(reply, e)]
        problems = [_event_problem(reply, e, (e.view or self.model.view(c)).booked) for e in alike]
        matching = [e for e, problem in zip(alike, problems, strict=True) if problem is None]
        assert matching, "; ".join([context, *(p for p in problems if p)])
        e = matching[0]
        booked_before = (e.view or self.model.view(c)).booked
        if e.moves:  # the same event, at its new time
            assert booked_before is not None and reply.event is not None
            was = self.ids.get((c.tenant, booked_before[0].casefold(), booked_before[1]))
            assert reply.event.id == was, f"moved, but event {reply.event.id} is not the booked {was}; {context}"
        self.model.apply(c, e, reply.version)
        self._note_ids(c.tenant)

    def _note_ids(self, tenant: str) -> None:
        for event in self.calendar.events(tenant):
            self.ids[(tenant, event.lead.casefold(), event.start)] = event.id

    def check(self) -> None:
        """Every invariant over Redis, the calendar and the stored conversations."""
        keys = list(self.admin.scan_iter(match="dialog:*", count=1000))
        pipe = self.admin.pipeline(transaction=False)
        for key in keys:
            pipe.pttl(key)
        ttls = dict(zip(keys, pipe.execute(), strict=True))
        for key, ttl in ttls.items():
            assert ttl > 0 or ttl == -2, f"{key!r} has no TTL (PTTL {ttl})"
            if key.endswith(b":pending"):
                assert ttl <= MARKER_AT_MOST // dt.timedelta(milliseconds=1), f"{key!r} lives {ttl} ms > 24 h"
        for c in self.model.conversations.values():
            self._check_conversation(c, ttls)
        for tenant in TENANTS:
            self._check_calendar(tenant)

    def _check_conversation(self, c: Conversation, ttls: dict[bytes, int]) -> None:
        keys, now = c.keys, self.clock()
        ttl = ttls.get(keys.conversation.encode(), -2)
        if not self.model.alive(c):
            assert ttl == -2, f"{c} should be gone, but its key lives {ttl} ms more"
            self._check_marker(c, now, ttls.get(keys.expired_marker.encode(), -2))
            return
        assert c.written is not None
        left = (TTL - (now - c.written)) // dt.timedelta(milliseconds=1)
        assert left - TTL_SLACK_MS <= ttl <= left, f"{c}: TTL {ttl} ms, expected {left} ms (refreshed every turn)"
        snapshot = self.engines[0].snapshot(c.cid, tenant_id=c.tenant)
        assert snapshot is not None, f"{c}: the model has it stored, the engine has no snapshot"
        assert (snapshot.state, snapshot.version) == (c.state, c.version), f"{c}: stored {snapshot}, model {c}"
        if c.state == AWAITING:
            assert snapshot.proposal is not None, f"{c}: {snapshot}"
            assert (snapshot.proposal.start, snapshot.proposal.kind) == (c.start, c.kind), f"{c}: {snapshot}"
        event = None if snapshot.event is None else (snapshot.event.lead.casefold(), snapshot.event.start)
        booked = None if c.booked is None else (c.booked[0].casefold(), c.booked[1])
        assert event == booked, f"{c}: the stored call is {event}, the model's {booked}"

    def _check_marker(self, c: Conversation, now: dt.datetime, ttl: int) -> None:
        """An expired proposal's (or booked call's) marker lives at least 1 hour (and at most 24)."""
        booked = c.state == DONE and c.booked is not None
        if c.written is not None and (c.pending_when_written or booked) and ttl == -2:
            age = now - c.written
            assert age >= MARKER_AT_LEAST, f"{c}: the expiry marker is gone after only {age}"

    def _check_calendar(self, tenant: str) -> None:
        events = self.calendar.events(tenant)
        got = sorted((e.lead.casefold(), e.start) for e in events)
        want = sorted((lead.casefold(), start) for lead, start in self.model.events[tenant])
        assert got == want, f"{tenant}: the calendar holds {got}; the confirmed proposals are {want}"
        assert len({e.idempotency_key for e in events}) == len(events), f"{tenant}: an idempotency key twice"
        assert all(e.end - e.start == SLOT for e in events), f"{tenant}: {events}"


def _matches(reply: Reply, e: Expect) -> bool:
    if (reply.outcome, reply.state) != (e.outcome, e.state):
        return False
    if e.state != AWAITING:
        return reply.proposal is None
    p = reply.proposal
    assert e.lead is not None and e.start is not None
    return (
        p is not None
        and p.kind == e.kind
        and p.lead.casefold() == e.lead.casefold()
        and (p.start, p.end) == (e.start, e.start + SLOT)
    )


def _event_problem(reply: Reply, e: Expect, booked_before: tuple[str, dt.datetime] | None) -> str | None:
    """What is wrong with ``reply.event`` if ``e`` is what the turn did (None: nothing).

    A booking reports the new event; a move the same call at its new time; a cancellation no
    event; ``already_booked``, ``kept`` and every reply while a change of the booked call is
    pending report the call as booked; while a booking proposal is pending, no event (spec 1:
    the event booked for the current proposal); any other reply no event or this conversation's call.
    """
    event = None if reply.event is None else (reply.event.lead.casefold(), reply.event.start)
    was = None if booked_before is None else (booked_before[0].casefold(), booked_before[1])
    if e.books:
        assert e.lead is not None
        want, why = (e.lead.casefold(), e.start), "booked, but the reply's event differs"
    elif e.moves:
        assert was is not None
        want, why = (was[0], e.start), "moved, but the reply's event is not the call at its new time"
    elif e.removes or e.outcome == CALL_CANCELLED:
        want, why = None, "the call was cancelled, but the reply names an event"
    elif e.state in PENDING and e.kind == BOOK:
        want, why = None, "a booking proposal is pending, but the reply names an event"
    elif e.outcome in (ALREADY_BOOKED, KEPT, MOVED) or (e.state in PENDING and e.kind != BOOK):
        want, why = was, "the reply's event is not the booked call"
        if was is None:
            return f"{e.outcome}, but the model knows no booked call"
    elif event is None or event == was:
        return None
    else:
        return f"{e.outcome}: an event this conversation did not book ({event})"
    return None if event == want else f"{why}: {event}, expected {want}"


def _show(expected: Iterable[Expect]) -> str:
    return "; ".join(
        f"{e.outcome}->{e.state}" + (f" {e.lead} {e.start:%a %d %b %H:%M}" if e.start else "") + f" ({e.why})"
        for e in expected
    )


def _show_reply(reply: Reply) -> str:
    p = reply.proposal
    proposal = f" {p.lead} {p.start:%a %d %b %H:%M}" if p else ""
    return f"{reply.outcome}->{reply.state}{proposal} v{reply.version}: {reply.text!r}"


# --- 1. the exhaustive table: situation x utterance class x channel ----------------------------


def _awaiting(w: World) -> Conversation:
    c = w.conversation()
    w.say(0, c, PROPOSE_DANA)
    return c


def _awaiting_taken(w: World) -> Conversation:
    c = _awaiting(w)
    assert c.start is not None
    w.block(c.tenant, c.start, c.start + SLOT)
    return c


def _awaiting_after_a_pause(w: World) -> Conversation:
    c = _awaiting(w)
    w.time_passes(9)
    w.say(0, c, CATALOGUE["hesitate"][2])  # "hmm": the TTL starts again
    return c


def _rescheduling(w: World) -> Conversation:
    c = w.conversation(BUSY, "b1")
    w.say(0, c, PROPOSE_DANA)
    return c


def _awaiting_after_rescheduling(w: World) -> Conversation:
    c = _rescheduling(w)
    w.say(0, c, JANUARY_5TH)
    return c


def _done(answer: str) -> Callable[[World], Conversation]:
    def done(w: World) -> Conversation:
        c = _awaiting(w)
        w.say(0, c, CATALOGUE[answer][0])
        return c

    return done


def _expired(w: World) -> Conversation:
    c = _awaiting(w)
    w.expire(c)
    return c


def _booked_then(*said: Utterance) -> Callable[[World], Conversation]:
    """Spec 4.2: a call booked (Dana Scully, Tue 24 Nov 10:00), then changes asked for in the conversation."""

    def then(w: World) -> Conversation:
        c = _done("confirm")(w)
        for utterance in said:
            w.say(0, c, utterance)
        return c

    return then


def _awaiting_move_taken(w: World) -> Conversation:
    c = _booked_then(MOVE_IT)(w)
    assert c.start is not None
    w.block(c.tenant, c.start, c.start + SLOT)
    return c


def _awaiting_move_passed(w: World) -> Conversation:
    """Mon 08:55: a call booked at 10:00 is to move to 9:00; at 09:01 (the conversation alive) the answer comes."""
    w.clock.set(START.replace(minute=55))
    c = w.conversation()
    w.propose(0, c, "Dana Scully", START.replace(hour=10))
    w.say(0, c, CATALOGUE["confirm"][0])
    w.say(0, c, Utterance("move it to 9am", Meaning("move_to", time=dt.time(9))))
    w.time_passes(6)
    return c


def _rescheduling_move(w: World) -> Conversation:
    """A move of the booked call with no free slot in the horizon: the conversation asks for a day."""
    c = _done("confirm")(w)
    w.block(c.tenant, w.clock(), BUSY_UNTIL)
    w.say(0, c, MOVE_IT)
    return c


def _then(setup: Callable[[World], Conversation], minutes: int) -> Callable[[World], Conversation]:
    def later(w: World) -> Conversation:
        c = setup(w)
        w.time_passes(minutes)
        return c

    return later


SITUATIONS: dict[str, tuple[Callable[[World], Conversation], str]] = {
    "new": (lambda w: w.conversation(), IDLE),
    "awaiting": (_awaiting, AWAITING),
    "awaiting_slot_taken": (_awaiting_taken, AWAITING),
    "awaiting_after_a_pause": (_awaiting_after_a_pause, AWAITING),
    "rescheduling": (_rescheduling, RESCHEDULING),
    "awaiting_after_rescheduling": (_awaiting_after_rescheduling, AWAITING),
    "done_booked": (_done("confirm"), DONE),
    "done_cancelled": (_done("refuse"), DONE),
    "expired_key_deleted": (_expired, IDLE),
    "expired_ttl_elapsed": (_then(_awaiting, 11), IDLE),
    "expired_long_ago": (_then(_awaiting, 25 * 60), IDLE),
    # spec 4.1: past its TTL a booked conversation is still done with its event (the marker
    # remembers it for 1-24 h); only after that is it forgotten.
    "done_booked_then_expired": (_then(_done("confirm"), 11), DONE),
    "done_booked_then_forgotten": (_then(_done("confirm"), 25 * 60), IDLE),
    # spec 4.2: the booked call moved or cancelled in the conversation (see SAMPLED below)
    "awaiting_move": (_booked_then(MOVE_IT), AWAITING),
    "awaiting_move_slot_taken": (_awaiting_move_taken, AWAITING),
    "awaiting_move_passed": (_awaiting_move_passed, AWAITING),
    "awaiting_cancel": (_booked_then(CANCEL_THE_CALL), AWAITING),
    "rescheduling_move": (_rescheduling_move, RESCHEDULING),
    "done_moved": (_booked_then(MOVE_IT, CATALOGUE["confirm"][0]), DONE),
    "done_call_cancelled": (_booked_then(CANCEL_THE_CALL, CATALOGUE["confirm"][0]), DONE),
    # a change of the booked call that expired: told so, and still done with the call (see views)
    "awaiting_move_then_expired": (_then(_booked_then(MOVE_IT), 11), DONE),
    "awaiting_cancel_then_expired": (_then(_booked_then(CANCEL_THE_CALL), 11), DONE),
}


def each_in_a_fresh_world(redis_url: str, cases: Iterable[tuple[str, Callable[[World], None]]]) -> None:
    """Run every case in a world of its own (sharing connections); report all that fail."""
    failures = []
    connections = Connections(redis_url)
    try:
        for label, case in cases:
            world = World(redis_url, connections)
            try:
                case(world)
            except AssertionError as exc:
                failures.append(f"{label}: {exc}")
            finally:
                world.close()
    finally:
        connections.close()
    assert not failures, "\n".join(failures)
