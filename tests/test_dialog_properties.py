"""Property-based dialog tests: the engine against a reference model written by hand from the spec.

``Reference`` is written from shared/SPEC.md section 2 (and, where the spec is silent, from the
README's "Choices where the spec is silent"); it does not import ``dialog.machine`` or
``dialog.turn``. Per conversation it tracks the state, the pending proposal or request, the booked
event, when the conversation was last written and whether something was pending then (the expiry
marker), and per tenant the busy time and the events. It computes free slots itself (UTC, Mon-Fri
09:00-17:00, 30-minute grid, 14-day horizon). Where the spec leaves a choice open, it allows each
reading the spec permits and follows the one the engine took.

Three layers, cheapest and most certain first (``scripts/mutations.py`` runs this file with ``-x``):

1. An exhaustive table: every reachable situation x every utterance class x both channels.
2. Interleaving tables: a second container's whole turn lands between one container's read and
   its compare-and-set (the result must be as if the turns had run one after the other), or
   between a confirmation's calendar call and its last write (one event, booked once).
3. A hypothesis ``RuleBasedStateMachine``: two engines (two redis-py clients, "two containers")
   on one Redis, one ``InMemoryCalendar`` and one ``FakeClock``, four conversations on three
   tenants; utterances drawn per intent class on both channels, ``propose`` via the API, the
   conversation key expiring, a container restarting, the clock advancing (which ages every
   ``dialog:*`` key's TTL by as much), busy time appearing, interleaved turns. Rules are biased
   toward answering pending proposals: random stateful tests alone were measured catching a
   seeded bug in only 0-4 of 10 runs at small sizes.

After every step: the reply (state, outcome, proposal, event, version, non-empty text, no emoji on
voice) matches the model; every conversation's stored state and version match; every ``dialog:*``
key has a TTL, the conversation key's is 600 s less the (fake) time since its last turn, an
expired proposal's marker lives 1-24 h; the calendar holds exactly the confirmed proposals, one
event per idempotency key; no exception other than the expected ``InvalidInput`` escapes.

Redis: the real one at tests/conftest.py ``REDIS_URL`` (a database per run; ``DIALOG_TEST_REDIS_URL``
overrides), not fakeredis: the compare-and-set is a Lua script and the TTLs are Redis's own, and
the ``ci`` profile fits its budget on the real server (see the profiles below). Every example
flushes the database when it starts and when it ends, so nothing else may use that database
while this file runs.

Profiles, chosen by ``DIALOG_HYPOTHESIS_PROFILE`` (default ``ci``):
- ``ci``: derandomized (the same examples every run), bounded to keep this file well under 60 s
  on 2 cores;
- ``nightly``: thousands of random examples, longer runs of steps:
  ``DIALOG_HYPOTHESIS_PROFILE=nightly .venv/bin/python -m pytest tests/test_dialog_properties.py``
- ``mutations``: the ``ci`` examples without shrinking, for the mutation check
  (``.venv/bin/python scripts/mutations.py``, run in CI by tests/test_mutations.py).
"""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from dialog import Engine, InMemoryCalendar, InvalidInput, Reply
from dialog.engine import Checkpoint
from dialog.store.keys import ConversationKeys
from dialog.testing import FakeClock
from tests.conftest import MONDAY_8AM, REDIS_URL

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

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def _redis_reachable(redis_url: str) -> None:
    """Skips (or, with CI=true, fails) this file's tests when the real Redis is unreachable."""


# --- the spec's vocabulary, written out by hand -----------------------------------------------

UTC = dt.UTC
IDLE, AWAITING, RESCHEDULING, DONE = "idle", "awaiting_confirmation", "rescheduling", "done"
STATES = frozenset({IDLE, AWAITING, RESCHEDULING, DONE})
PROPOSED, RESCHEDULED, BOOKED, ALREADY_BOOKED = "proposed", "rescheduled", "booked", "already_booked"
CANCELLED, REPROMPTED, NOTHING_PENDING, EXPIRED = "cancelled", "reprompted", "nothing_pending", "expired"
SLOT_TAKEN, NO_FREE_SLOT = "slot_taken", "no_free_slot"
OUTCOMES = frozenset(
    {PROPOSED, RESCHEDULED, BOOKED, ALREADY_BOOKED, CANCELLED, REPROMPTED, NOTHING_PENDING, EXPIRED}
    | {SLOT_TAKEN, NO_FREE_SLOT}
)

START = MONDAY_8AM  # Monday 23 Nov 2026, 08:00 UTC
SLOT = dt.timedelta(minutes=30)
DAY_START, SLOTS_PER_DAY = dt.time(9, 0), 16  # 09:00-17:00
WORKING_DAYS = frozenset(range(5))
TTL = dt.timedelta(seconds=600)
MARKER_AT_LEAST, MARKER_AT_MOST = dt.timedelta(hours=1), dt.timedelta(hours=24)
# The horizon is 14 days. The model is sure of a slot found within 13 days of where the search
# starts and sure there is none when the first free one is more than 16 days away; in between
# it allows both (the spec does not say how the edge of the horizon is counted).
SURELY_WITHIN, SURELY_BEYOND = dt.timedelta(days=13), dt.timedelta(days=16)
# Real milliseconds that may pass between a write and the check of its TTL.
TTL_SLACK_MS = 10_000

# Tenant "busy" has no free slot until 2027: its conversations reach `rescheduling`.
BUSY = "busy"
BUSY_FROM, BUSY_UNTIL = dt.datetime(2026, 11, 23, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC)
CONVERSATIONS = (("acme", "c1"), ("acme", "c2"), ("globex", "c1"), (BUSY, "b1"))
TENANTS = ("acme", "globex", BUSY)


# --- utterances, each with its meaning written next to it -------------------------------------

Day = tuple[Any, ...]  # ("tomorrow",) | ("weekday", 0-6) | ("date", month, day)
TOMORROW: Day = ("tomorrow",)
THURSDAY: Day = ("weekday", 3)
FRIDAY: Day = ("weekday", 4)
JAN_5: Day = ("date", 1, 5)


@dataclass(frozen=True)
class Meaning:
    """What an utterance means, by the spec: its class, and the day, time and lead it names.

    Classes: confirm, idiom (a fixed affirmative idiom: "may confirm"), refuse, hesitate,
    unclear, move (no time), move_to (a time or a day), schedule (a new request), mixed (a yes
    with a refusal or hesitation in it: never a confirmation).
    """

    kind: str
    day: Day | None = None
    time: dt.time | None = None
    lead: str | None = None


@dataclass(frozen=True)
class Utterance:
    text: str
    meaning: Meaning

    @property
    def typed_only(self) -> bool:
        """Holds an emoji, so it is never a voice transcript."""
        return any(unicodedata.category(ch) == "So" for ch in self.text)

    def __str__(self) -> str:
        return repr(self.text)


def _said(kind: str, *texts: str, **meaning: Any) -> tuple[Utterance, ...]:
    return tuple(Utterance(text, Meaning(kind, **meaning)) for text in texts)


def _at(hour: int, minute: int = 0) -> dt.time:
    return dt.time(hour, minute)


CATALOGUE: dict[str, tuple[Utterance, ...]] = {
    "confirm": _said(
        "confirm",
        "yes", "yep", "sure", "go ahead", "sounds good", "ok", "👍", "Yes!", "yes please", "Perfect, book it",
        "✅", "uh yeah sure", "yeah go ahead", "um yes please", "okay sounds good", "yup that works",
    ),
    "idiom": _said("idiom", "no problem, go ahead", "why not"),
    "refuse": _said(
        "refuse", "no", "nope", "cancel", "never mind", "No, don't book it", "no thanks", "uh no",
        "nah forget it", "no don't book it", "um cancel it",
    ),
    "hesitate": _said(
        "hesitate", "not yet", "wait", "hmm", "?", "hold on", "let me think", "um wait", "hmm not yet",
        "uh let me check", "maybe",
    ),
    "unclear": _said(
        "unclear", "what's the weather like?", "tell me a joke", "lorem ipsum dolor", "uh who is this",
    ),
    "move": _said("move", "can we move it?", "another time", "change time", "uh can we move it", "can we reschedule"),
    "move_to": (
        *_said("move_to", "move it to 3pm", "no, 3pm instead", "uh make it three pm", time=_at(15)),
        *_said("move_to", "yes but make it 11am instead", time=_at(11)),
        *_said("move_to", "um move it to ten thirty", time=_at(10, 30)),
        *_said("move_to", "How about Thursday at 2pm?", "how about thursday at two pm", day=THURSDAY, time=_at(14)),
        *_said("move_to", "How about Thursday?", day=THURSDAY),
        *_said("move_to", "How about January 5th at 2pm?", "how about january fifth at two pm", day=JAN_5,
               time=_at(14)),
    ),
    "schedule": (
        *_said("schedule", "Schedule a call with Dana Scully tomorrow at 10am", day=TOMORROW, time=_at(10),
               lead="Dana Scully"),
        *_said("schedule", "uh schedule a call with dana scully tomorrow at three pm", day=TOMORROW,
               time=_at(15), lead="Dana Scully"),
        *_said("schedule", "Book a meeting with Fox Mulder on Thursday at 2pm", day=THURSDAY, time=_at(14),
               lead="Fox Mulder"),
        *_said("schedule", "um book a call with fox mulder on friday", day=FRIDAY, lead="Fox Mulder"),
        *_said("schedule", "set up a call with Walter Skinner", lead="Walter Skinner"),
        *_said("schedule", "Schedule a call with Dana Scully on January 5th at 2pm", day=JAN_5, time=_at(14),
               lead="Dana Scully"),
    ),
    "mixed": _said(
        "mixed", "yes but not now", "yes no", "yeah no", "Sure, wait", "ok cancel", "yes, but wait",
        "go ahead... actually no", "yes, don't", "uh yes but not now", "sure but not yet",
    ),
}  # fmt: skip
KINDS = tuple(CATALOGUE)
PROPOSE_DANA = CATALOGUE["schedule"][0]
JANUARY_5TH = CATALOGUE["move_to"][-2]


def channels_for(utterance: Utterance) -> tuple[str, ...]:
    return ("text",) if utterance.typed_only else ("text", "voice")


# --- the reference model ----------------------------------------------------------------------


@dataclass
class Conversation:
    """One conversation as the model believes it is stored."""

    tenant: str
    cid: str
    state: str = IDLE
    lead: str | None = None  # awaiting: the proposal's lead; rescheduling: the request's
    start: dt.datetime | None = None  # awaiting: the proposal's start; rescheduling: the search anchor
    booked: tuple[str, dt.datetime] | None = None  # done after a booking: the event's lead and start
    written: dt.datetime | None = None  # the (fake) time of the last committed turn
    pending_when_written: bool = False
    deleted: bool = False  # the conversation key was removed, as its TTL would
    version: int = 0

    @property
    def keys(self) -> ConversationKeys:
        return ConversationKeys(self.tenant, self.cid)

    def __str__(self) -> str:
        return f"{self.tenant}/{self.cid}"


@dataclass(frozen=True)
class Expect:
    """One result the spec allows for a turn, and what the model becomes if it is the one."""

    outcome: str
    state: str
    lead: str | None = None  # as Conversation.lead
    start: dt.datetime | None = None  # as Conversation.start
    books: bool = False  # a new event for (lead, start)
    why: str = ""
    # the conversation as the turn found it, when the model cannot tell (a marker that may be gone)
    view: Conversation | None = field(default=None, compare=False)


class Reference:
    """SPEC section 2 as a model: what each turn may do, given what the model believes."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self.clock = clock
        self.conversations = {key: Conversation(*key) for key in CONVERSATIONS}
        self.blocks: dict[str, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
        self.events: dict[str, list[tuple[str, dt.datetime]]] = defaultdict(list)

    @property
    def now(self) -> dt.datetime:
        return self.clock()

    # the life of a conversation

    def alive(self, c: Conversation) -> bool:
        """The conversation key lives 600 s after the last turn (spec section 3)."""
        return c.written is not None and not c.deleted and self.now - c.written < TTL

    def marker(self, c: Conversation) -> str:
        """Whether a "yes" now must hear that a proposal expired: "yes", "no" or "maybe"."""
        if self.alive(c) or c.written is None or not c.pending_when_written:
            return "no"
        age = self.now - c.written
        return "yes" if age < MARKER_AT_LEAST else "no" if age >= MARKER_AT_MOST else "maybe"

    def booked_marker(self, c: Conversation) -> str:
        """Whether the marker of a booked call still lives (spec 4.1): "yes", "no" or "maybe"."""
        if self.alive(c) or c.written is None or c.state != DONE or c.booked is None:
            return "no"
        age = self.now - c.written
        return "yes" if age < MARKER_AT_LEAST else "no" if age >= MARKER_AT_MOST else "maybe"

    def views(self, c: Conversation) -> list[Conversation]:
        """How a turn may find the conversation: stored; expired after a booking, so done with the
        event (spec 4.1: never nothing_pending while the calendar holds it); or forgotten, afresh."""
        if self.alive(c):
            return [c]
        fresh = Conversation(c.tenant, c.cid)
        kept = Conversation(c.tenant, c.cid, state=DONE, booked=c.booked, version=c.version)
        marker = self.booked_marker(c)
        return [kept] if marker == "yes" else [kept, fresh] if marker == "maybe" else [fresh]

    def view(self, c: Conversation) -> Conversation:
        """The conversation as a turn most likely finds it (see ``views``)."""
        return self.views(c)[0]

    def version_floor(self, c: Conversation) -> int:
        """The reply's version must exceed this: versions grow while the record or its marker lives.

        A conversation forgotten entirely (nothing was pending, or the marker is gone too) starts
        a new record; an "expired" answer shows the marker lived, so that is checked on the reply.
        """
        carried = self.marker(c) == "yes" or self.booked_marker(c) == "yes"
        return c.version if self.alive(c) or carried else 0

    def in_state(self, state: str) -> list[Conversation]:
        return [c for c in self.conversations.values() if self.view(c).state == state]

    # what a turn may do

    def expect_answer(self, c: Conversation, m: Meaning) -> list[Expect]:
        views = self.views(c)
        if len(views) == 1:
            return self._answer(c, views[0], m)
        return [replace(e, view=v) for v in views for e in self._answer(c, v, m)]

    def _answer(self, c: Conversation, v: Conversation, m: Meaning) -> list[Expect]:
        if v.state == AWAITING:
            return self._awaiting(v, m)
        if v.state == RESCHEDULING:
            return self._rescheduling(v, m)
        return self._nothing_pending(c, v, m)

    def expect_propose(self, c: Conversation, lead: str, start: dt.datetime) -> list[Expect]:
        """ "replaces any pending proposal; a start that is not free becomes the first free slot at or after it"."""
        return self._offer(c.tenant, lead, start, PROPOSED, why="propose() via the API")

    def _nothing_pending(self, c: Conversation, v: Conversation, m: Meaning) -> list[Expect]:
        if m.kind == "schedule":
            return self._request(v.tenant, m)
        confirm = ALREADY_BOOKED if v.booked else NOTHING_PENDING
        # The spec's rows are "yes" (nothing_pending / already_booked); the rest is the README's
        # "unclear, hesitant or 'move it' text gets reprompted; 'yes' or 'no' gets nothing_pending".
        outcomes = {
            "confirm": [confirm],
            "idiom": [confirm, NOTHING_PENDING, REPROMPTED],
            "refuse": [NOTHING_PENDING],
            "mixed": [NOTHING_PENDING, REPROMPTED],
        }.get(m.kind, [REPROMPTED])
        stay = [Expect(o, v.state, why=f"{v.state}, nothing pending") for o in outcomes]
        # After an expiry any answer but a new request hears it (spec: "yes"; README: the rest).
        expired = Expect(EXPIRED, IDLE, why="a proposal of this conversation expired")
        marker = self.marker(c)
        return [expired] if marker == "yes" else [expired, *stay] if marker == "maybe" else stay

    def _awaiting(self, v: Conversation, m: Meaning) -> list[Expect]:
        assert v.lead is not None and v.start is not None
        same = Expect(REPROMPTED, AWAITING, v.lead, v.start, why="re-prompt with the same proposal")
        cancel = Expect(CANCELLED, DONE, why="a refusal cancels")
        if m.kind == "confirm":
            return self._confirm(v)
        if m.kind == "idiom":
            return [*self._confirm(v), same]
        if m.kind == "refuse":
            return [cancel]
        if m.kind == "mixed":
            return [cancel, same]
        if m.kind == "move":
            return self._offer(v.tenant, v.lead, v.start, RESCHEDULED, strictly=True, why="the next free slot")
        if m.kind == "move_to":
            return self._offer(v.tenant, v.lead, self._resolve(m, v.start), RESCHEDULED, why="a move to a time")
        if m.kind == "schedule":
            return self._request(v.tenant, m, (PROPOSED, RESCHEDULED)) + self._move(v, m)
        return [same]

    def _rescheduling(self, v: Conversation, m: Meaning) -> list[Expect]:
        assert v.lead is not None and v.start is not None
        ask = Expect(REPROMPTED, RESCHEDULING, v.lead, v.start, why="ask again for a time")
        cancel = Expect(CANCELLED, DONE, why="a refusal cancels")
        if m.kind == "refuse":
            return [cancel]
        if m.kind == "mixed":
            return [cancel, ask]
        if m.kind == "move_to":
            return self._offer(v.tenant, v.lead, self._resolve(m, v.start), RESCHEDULED, why="a time or a day")
        if m.kind == "schedule":
            again = self._move(v, m) if _names_time(m) else [ask]
            return self._request(v.tenant, m, (PROPOSED, RESCHEDULED)) + again
        return [ask]

    def _move(self, v: Conversation, m: Meaning) -> list[Expect]:
        """A schedule request read as a reschedule of what is pending (the spec has no row for it)."""
        assert v.lead is not None and v.start is not None
        if _names_time(m):
            return self._offer(v.tenant, v.lead, self._resolve(m, v.start), RESCHEDULED, why="read as a move")
        return self._offer(v.tenant, v.lead, v.start, RESCHEDULED, strictly=True, why="read as a move")

    def _confirm(self, v: Conversation) -> list[Expect]:
        """Book once if the slot is still free; else slot_taken with the first free slot after it."""
        assert v.lead is not None and v.start is not None
        start, end = v.start, v.start + SLOT
        if self._free(v.tenant, start, end) and start >= self.now:
            return [Expect(BOOKED, DONE, v.lead, start, books=True, why="a confirmation books")]
        taken = self._offer(v.tenant, v.lead, start, SLOT_TAKEN, strictly=True, why="the slot was taken")
        if any(e.state == RESCHEDULING for e in taken):
            taken.append(Expect(SLOT_TAKEN, RESCHEDULING, v.lead, start, why="taken, and no other slot"))
        return taken

    def _request(self, tenant: str, m: Meaning, outcomes: Iterable[str] = (PROPOSED,)) -> list[Expect]:
        """A new request: that time if free, else the first free slot at or after it; no time: from now."""
        assert m.lead is not None
        if m.day is None:
            assert m.time is None, "the catalogue names no time without a day in a new request"
            at = self.now
        else:
            at = dt.datetime.combine(self._day(m.day), m.time or dt.time(0, 0), tzinfo=UTC)
        found = self._offer(tenant, m.lead, at, PROPOSED, why="a schedule request")
        return [replace(e, outcome=o) if e.outcome == PROPOSED else e for e in found for o in outcomes]

    def _offer(
        self, tenant: str, lead: str, at: dt.datetime, outcome: str, *, strictly: bool = False, why: str
    ) -> list[Expect]:
        out = []
        for slot in self.first_free(tenant, at, strictly=strictly):
            if slot is None:
                out.append(Expect(NO_FREE_SLOT, RESCHEDULING, lead, at, why=f"{why}: no free slot"))
            else:
                out.append(Expect(outcome, AWAITING, lead, slot, why=why))
        return list(dict.fromkeys(out))

    # time and slots, from the spec's definitions

    def _resolve(self, m: Meaning, anchor: dt.datetime) -> dt.datetime:
        """In a reschedule a time without a day keeps the proposal's day, a day without a time its time."""
        day = self._day(m.day) if m.day is not None else anchor.date()
        return dt.datetime.combine(day, m.time or anchor.astimezone(UTC).time(), tzinfo=UTC)

    def _day(self, day: Day) -> dt.date:
        today = self.now.astimezone(UTC).date()
        if day[0] == "tomorrow":
            return today + dt.timedelta(days=1)
        if day[0] == "weekday":  # the next such day after today
            return today + dt.timedelta(days=(day[1] - today.weekday() - 1) % 7 + 1)
        this_year = dt.date(today.year, day[1], day[2])
        return this_year if this_year >= today else this_year.replace(year=today.year + 1)

    def first_free(self, tenant: str, at: dt.datetime, *, strictly: bool = False) -> list[dt.datetime | None]:
        """The first free slot at (or strictly after) ``at``, not in the past; [slot, None] when unsure."""
        floor = max(at, self.now)
        for offset in range(SURELY_BEYOND.days + 2):
            day = floor.date() + dt.timedelta(days=offset)
            if day.weekday() not in WORKING_DAYS:
                continue
            for k in range(SLOTS_PER_DAY):
                slot = dt.datetime.combine(day, DAY_START, tzinfo=UTC) + k * SLOT
                if slot < floor or (strictly and slot <= at) or not self._free(tenant, slot, slot + SLOT):
                    continue
                if slot - floor <= SURELY_WITHIN:
                    return [slot]
                return [slot, None] if slot - floor <= SURELY_BEYOND else [None]
        return [None]

    def _free(self, tenant: str, start: dt.datetime, end: dt.datetime) -> bool:
        busy = self.blocks[tenant] + [(s, s + SLOT) for _, s in self.events[tenant]]
        return not any(b_start < end and start < b_end for b_start, b_end in busy)

    # the model moves

    def apply(self, c: Conversation, e: Expect, version: int) -> None:
        before = e.view or self.view(c)
        keeps_booking = e.outcome == ALREADY_BOOKED or (before.state == DONE and e.state == DONE)
        c.booked = before.booked if keeps_booking else None
        if e.books:
            assert e.lead is not None and e.start is not None
            self.events[c.tenant].append((e.lead, e.start))
            c.booked = (e.lead, e.start)
        c.state = e.state
        c.lead, c.start = (e.lead, e.start) if e.state in (AWAITING, RESCHEDULING) else (None, None)
        c.written = self.now
        c.pending_when_written = e.state in (AWAITING, RESCHEDULING)
        c.deleted = False
        c.version = version


def _names_time(m: Meaning) -> bool:
    return m.day is not None or m.time is not None


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
        self.admin.flushdb()
        self.clock = FakeClock(START)
        self.calendar = InMemoryCalendar()
        self.model = Reference(self.clock)
        self.interruptions = [Interruption(), Interruption()]
        self.engines = [self._engine(i, client) for i, client in enumerate(self.connections.containers)]
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
        the other turn, then this one.
        """
        second = 1 - first
        seen: dict[str, Any] = {}

        def other_turn() -> None:
            seen["reply"] = self.say(second, other, meanwhile)
            seen["expected"] = self.model.expect_answer(c, utterance.meaning)
            seen["floor"] = self.model.version_floor(c)

        reply = self._interrupted(first, Checkpoint.DECIDED, other_turn, lambda: self._handle(first, c, utterance))
        assert "reply" in seen, "the interleaved turn never ran: the first turn never decided"
        what = f"engine {first} hears {utterance}, engine {second} hears {meanwhile} on {other} in between"
        self._settle(c, reply, seen["expected"], seen["floor"], what)
        return seen["reply"], reply

    def cross_mid_booking(self, first: int, c: Conversation, yes: Utterance, meanwhile: Utterance) -> None:
        """Engine ``first`` books on "yes"; the other engine's turn lands after the calendar call.

        Spec: exactly one event, and the next turn "finds the event by its idempotency key and
        completes the turn as booked". README: it does so whatever that turn says, and the turn
        that finds the work done answers already_booked.
        """
        booking = self.model.expect_answer(c, yes.meaning)
        assert [e.outcome for e in booking] == [BOOKED], f"{c} would not book on {yes}: {_show(booking)}"
        second = 1 - first
        seen: dict[str, Any] = {}

        def other_turn() -> None:
            floor = self.model.version_floor(c) + 1  # the first turn's intent was committed
            reply = self.engines[second].handle(c.cid, meanwhile.text, tenant_id=c.tenant)
            what = f"engine {second} hears {meanwhile} after engine {first}'s calendar call for {yes}"
            completes = replace(booking[0], why="a recorded confirmation is completed by the next turn")
            self._settle(c, reply, [completes], floor, what)
            seen["reply"] = reply

        reply = self._interrupted(first, Checkpoint.CALENDAR_CALLED, other_turn, lambda: self._handle(first, c, yes))
        assert "reply" in seen, "the other turn never ran: the confirmation never called the calendar"
        found_done = Expect(ALREADY_BOOKED, DONE, why="the turn that finds its booking completed")
        # This turn's last write lost to the other turn's, so it reports the version that stands.
        self._settle(c, reply, [found_done], seen["reply"].version - 1, f"engine {first}'s {yes}, completed")

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
        matching = [e for e in expected if _matches(reply, e)]
        assert matching, context
        e = matching[0]
        booked_before = (e.view or self.model.view(c)).booked
        self.model.apply(c, e, reply.version)
        self._check_event(reply, e, booked_before, context)

    def _check_event(
        self, reply: Reply, e: Expect, booked_before: tuple[str, dt.datetime] | None, context: str
    ) -> None:
        event = None if reply.event is None else (reply.event.lead.casefold(), reply.event.start)
        if e.books:
            assert e.lead is not None
            assert event == (e.lead.casefold(), e.start), f"booked, but the reply's event differs; {context}"
        elif e.outcome == ALREADY_BOOKED:
            assert booked_before is not None
            assert event == (booked_before[0].casefold(), booked_before[1]), f"wrong event; {context}"
        elif event is not None:
            assert booked_before is not None and event == (booked_before[0].casefold(), booked_before[1]), (
                f"an event this conversation did not book; {context}"
            )

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
            assert snapshot.proposal is not None and snapshot.proposal.start == c.start, f"{c}: {snapshot}"

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
    return p is not None and p.lead.casefold() == e.lead.casefold() and (p.start, p.end) == (e.start, e.start + SLOT)


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
}


def _table_cases() -> list[Any]:
    return [
        pytest.param(situation, kind, channel, id=f"{situation}-{kind}-{channel}")
        for situation in SITUATIONS
        for kind in KINDS
        for channel in ("text", "voice")
    ]


def _each_in_a_fresh_world(redis_url: str, cases: Iterable[tuple[str, Callable[[World], None]]]) -> None:
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


@pytest.mark.parametrize(("situation", "kind", "channel"), _table_cases())
def test_every_situation_answers_every_utterance_class_as_the_spec_says(
    redis_url: str, situation: str, kind: str, channel: str
) -> None:
    """Each utterance of the class, said in the situation, does what the model says.

    The situation is set up by engine 0; typed answers reach engine 1 (another container, which
    reads Redis), spoken ones engine 0 (which may answer from the record it remembers).
    """
    setup, state = SITUATIONS[situation]

    def case(utterance: Utterance) -> Callable[[World], None]:
        def run(world: World) -> None:
            c = setup(world)
            world.check()
            assert world.model.view(c).state == state, f"setup {situation} reached {world.model.view(c).state}"
            world.say(1 if channel == "text" else 0, c, utterance, channel)
            world.check()

        return run

    said = [u for u in CATALOGUE[kind] if channel in channels_for(u)]
    _each_in_a_fresh_world(redis_url, [(str(u), case(u)) for u in said])


# --- 2. interleaved containers: one turn lands between another's read and write ----------------

INTERLEAVED_SITUATIONS = ("awaiting", "rescheduling", "done_booked")
FIRST_OF_EACH_KIND = {kind: CATALOGUE[kind][0] for kind in KINDS} | {"move_to": JANUARY_5TH}


@pytest.mark.parametrize("situation", INTERLEAVED_SITUATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_turn_interleaved_with_another_containers_acts_as_if_it_ran_second(
    redis_url: str, situation: str, kind: str
) -> None:
    """The compare-and-set: the other container's turn is never lost, nothing is booked twice."""
    setup, _ = SITUATIONS[situation]

    def case(meanwhile: Utterance) -> Callable[[World], None]:
        def run(world: World) -> None:
            c = setup(world)
            world.interleave(0, c, FIRST_OF_EACH_KIND[kind], c, meanwhile)
            world.check()

        return run

    cases = [(f"meanwhile {other} {u}", case(u)) for other, u in FIRST_OF_EACH_KIND.items()]
    _each_in_a_fresh_world(redis_url, cases)


@pytest.mark.parametrize("kind", KINDS)
def test_a_turn_landing_between_the_calendar_call_and_the_last_write_completes_the_booking_once(
    redis_url: str, kind: str
) -> None:
    """A "yes" books; another container's turn arrives after the calendar call: one event, reported once."""

    def case(meanwhile: Utterance) -> Callable[[World], None]:
        def run(world: World) -> None:
            c = _awaiting(world)
            world.cross_mid_booking(0, c, CATALOGUE["confirm"][0], meanwhile)
            world.check()

        return run

    _each_in_a_fresh_world(redis_url, [(str(u), case(u)) for u in CATALOGUE[kind][:3]])


# --- 3. the stateful exploration ----------------------------------------------------------------

LEADS = ("Dana Scully", "Fox Mulder", "Monica Reyes")
PROPOSE_AT = (
    dt.timedelta(0),
    dt.timedelta(hours=1),
    dt.timedelta(minutes=97),
    dt.timedelta(days=1),
    dt.timedelta(days=3, hours=2),
)
ELAPSE_MINUTES = (1, 4, 9, 10, 11, 30, 61, 6 * 60 + 15, 25 * 60)
MAX_ELAPSED = dt.timedelta(days=3)
engines = st.sampled_from((0, 1))


def utterances(*kinds: str) -> st.SearchStrategy[Utterance]:
    return st.sampled_from(kinds or KINDS).flatmap(lambda kind: st.sampled_from(CATALOGUE[kind]))


class DialogMachine(RuleBasedStateMachine):
    """Two containers, four conversations, three tenants; the model is checked after every step.

    Hypothesis picks among the rules whose precondition holds: ten of the fourteen rules act on
    a pending proposal (or a new time being asked for), and the host's and operations' events
    share two rules, so pending proposals are confirmed, moved, refused, taken, expired and left
    waiting often.
    """

    def __init__(self) -> None:
        super().__init__()
        self.world = World(REDIS_URL)

    def teardown(self) -> None:
        self.world.close()

    # helpers

    def _in(self, state: str) -> list[Conversation]:
        return self.world.model.in_state(state)

    def _draw_conversation(self, data: st.DataObject, among: list[Conversation] | None = None) -> Conversation:
        choices = among or list(self.world.model.conversations.values())
        return data.draw(st.sampled_from(choices), label="conversation")

    def _say(self, data: st.DataObject, c: Conversation, *kinds: str, engine: int | None = None) -> Utterance:
        utterance = data.draw(utterances(*kinds), label="utterance")
        channel = data.draw(st.sampled_from(channels_for(utterance)), label="channel")
        if engine is None:
            engine = data.draw(engines, label="engine")
        self.world.say(engine, c, utterance, channel)
        return utterance

    def _awaiting(self) -> bool:
        return bool(self._in(AWAITING))

    # a pending proposal is answered

    @precondition(_awaiting)
    @rule(data=st.data())
    def a_pending_proposal_is_confirmed(self, data: st.DataObject) -> None:
        self._say(data, self._draw_conversation(data, self._in(AWAITING)), "confirm", "idiom")

    @precondition(_awaiting)
    @rule(data=st.data())
    def a_pending_proposal_is_refused(self, data: st.DataObject) -> None:
        self._say(data, self._draw_conversation(data, self._in(AWAITING)), "refuse", "mixed")

    @precondition(_awaiting)
    @rule(data=st.data())
    def a_pending_proposal_is_moved(self, data: st.DataObject) -> None:
        self._say(data, self._draw_conversation(data, self._in(AWAITING)), "move", "move_to", "schedule")

    @precondition(_awaiting)
    @rule(data=st.data())
    def a_pending_proposal_waits(self, data: st.DataObject) -> None:
        self._say(data, self._draw_conversation(data, self._in(AWAITING)), "hesitate", "unclear", "mixed")

    @precondition(_awaiting)
    @rule(data=st.data())
    def the_same_answer_arrives_by_text_and_by_voice(self, data: st.DataObject) -> None:
        c = self._draw_conversation(data, self._in(AWAITING))
        utterance = data.draw(utterances("confirm", "refuse", "move"), label="utterance")
        first = data.draw(engines, label="engine")
        self.world.say(first, c, utterance, "text")
        self.world.say(1 - first, c, utterance, "voice" if not utterance.typed_only else "text")

    @precondition(_awaiting)
    @rule(data=st.data())
    def a_pending_slot_is_taken_elsewhere(self, data: st.DataObject) -> None:
        c = self._draw_conversation(data, self._in(AWAITING))
        assert c.start is not None
        self.world.block(c.tenant, c.start, c.start + SLOT)

    @precondition(_awaiting)
    @rule(data=st.data())
    def a_pending_proposal_expires(self, data: st.DataObject) -> None:
        self.world.expire(self._draw_conversation(data, self._in(AWAITING)))

    @precondition(lambda self: bool(self._in(RESCHEDULING)))
    @rule(data=st.data())
    def a_new_time_is_asked_for(self, data: st.DataObject) -> None:
        self._say(data, self._draw_conversation(data, self._in(RESCHEDULING)))

    def _bookable(self) -> list[Conversation]:
        model, yes = self.world.model, CATALOGUE["confirm"][0].meaning
        return [c for c in self._in(AWAITING) if [e.outcome for e in model.expect_answer(c, yes)] == [BOOKED]]

    @precondition(lambda self: bool(self._bookable()))
    @rule(data=st.data())
    def another_turn_lands_mid_booking(self, data: st.DataObject) -> None:
        c = self._draw_conversation(data, self._bookable())
        yes = data.draw(utterances("confirm"), label="utterance")
        meanwhile = data.draw(utterances(), label="meanwhile")
        self.world.cross_mid_booking(data.draw(engines, label="first engine"), c, yes, meanwhile)

    @rule(data=st.data())
    def two_containers_answer_at_once(self, data: st.DataObject) -> None:
        c = self._draw_conversation(data, self._in(AWAITING))
        elsewhere = data.draw(st.integers(0, 3), label="meanwhile elsewhere") == 0  # mostly the same one
        other = self._draw_conversation(data) if elsewhere else c
        utterance = data.draw(utterances(), label="utterance")
        meanwhile = data.draw(utterances(), label="meanwhile")
        self.world.interleave(data.draw(engines, label="first engine"), c, utterance, other, meanwhile)

    # anything else anyone says

    @rule(data=st.data())
    def someone_says_anything(self, data: st.DataObject) -> None:
        forgotten = [c for c in self.world.model.conversations.values() if self.world.model.marker(c) != "no"]
        among = (forgotten or self._in(DONE)) if data.draw(st.booleans(), label="after an end") else None
        self._say(data, self._draw_conversation(data, among))

    @rule(data=st.data())
    def someone_asks_for_a_call(self, data: st.DataObject) -> None:
        self._say(data, self._draw_conversation(data), "schedule")

    # what hosts and operations do

    @rule(data=st.data())
    def the_host_acts(self, data: st.DataObject) -> None:
        """``propose`` via the API; a start in the past or empty text is ``InvalidInput``."""
        c, index = self._draw_conversation(data), data.draw(engines, label="engine")
        engine = self.world.engines[index]
        what = data.draw(st.sampled_from(("propose", "propose", "propose the past", "empty text")), label="act")
        now = self.world.clock()
        if what == "propose":
            lead = data.draw(st.sampled_from(LEADS), label="lead")
            start = now + data.draw(st.sampled_from(PROPOSE_AT), label="after")
            self.world.propose(index, c, lead, start)
        elif what == "propose the past":
            with pytest.raises(InvalidInput):
                engine.propose(c.cid, lead="Dana Scully", start=now - dt.timedelta(minutes=1), tenant_id=c.tenant)
        else:
            with pytest.raises(InvalidInput):
                engine.handle(c.cid, data.draw(st.sampled_from(("", " ", "\n\t ")), label="text"), tenant_id=c.tenant)

    @rule(data=st.data())
    def the_world_moves_on(self, data: st.DataObject) -> None:
        """A container restarts, a conversation expires, time passes, an hour gets busy."""
        what = data.draw(st.sampled_from(("restart", "expire", "time", "time", "busy")), label="event")
        alive = [c for c in self.world.model.conversations.values() if self.world.model.alive(c)]
        if what == "restart":
            self.world.restart(data.draw(engines, label="engine"))
        elif what == "expire" and alive:
            self.world.expire(self._draw_conversation(data, alive))
        elif what == "time" and self.world.clock() - START < MAX_ELAPSED:
            self.world.time_passes(data.draw(st.sampled_from(ELAPSE_MINUTES), label="minutes"))
        elif what == "busy":
            tenant = data.draw(st.sampled_from(("acme", "globex")), label="tenant")
            day = self.world.clock().date() + dt.timedelta(days=1)
            start = dt.datetime.combine(day, dt.time(data.draw(st.sampled_from((10, 14)), label="hour")), tzinfo=UTC)
            self.world.block(tenant, start, start + dt.timedelta(hours=1))

    @invariant()
    def redis_the_calendar_and_the_model_agree(self) -> None:
        self.world.check()


@pytest.mark.redis
class TestDialogMachine(DialogMachine.TestCase):
    """The stateful exploration, under the profile chosen by DIALOG_HYPOTHESIS_PROFILE."""

    settings = PROFILE


# --- engine bugs this file found (fixed in 8a0df7c), kept as regression tests ---------------------


def test_a_yes_to_a_proposal_whose_start_has_passed_books_nothing(redis_url: str) -> None:
    """Mon 08:55 propose 09:00; 9 minutes later (the conversation is alive) "yes": nothing may be booked."""
    world = World(redis_url)
    try:
        world.clock.set(START.replace(minute=55))
        engine = world.engines[0]
        engine.propose("c1", lead="Dana Scully", start=START.replace(hour=9), tenant_id="acme")
        world.clock.advance(minutes=9)
        reply = engine.handle("c1", "yes", tenant_id="acme")
        assert world.calendar.events("acme") == []
        assert (reply.outcome, reply.state) == (SLOT_TAKEN, AWAITING)
        assert reply.proposal is not None and reply.proposal.start == START.replace(hour=9, minute=30)
    finally:
        world.close()


def test_a_container_remembering_an_expired_conversation_books_nothing(redis_url: str) -> None:
    """A proposes (v1); 25 h pass (key and marker gone); B hears "hmm" (v1 again); A hears "yes": nothing booked."""
    world = World(redis_url)
    try:
        a, b = world.engines
        a.handle("c1", "Schedule a call with Dana Scully tomorrow at 10am", tenant_id="acme")
        world.time_passes(25 * 60)  # the conversation's 600 s and the marker's 1-24 h both elapse
        assert world.admin.keys("dialog:*") == []
        b.handle("c1", "hmm", tenant_id="acme")
        reply = a.handle("c1", "yes", tenant_id="acme")
        assert world.calendar.events("acme") == []
        assert (reply.outcome, reply.state) == (NOTHING_PENDING, IDLE)
    finally:
        world.close()
