"""Property-based dialog tests: the engine against a reference model written by hand from the spec.

``Reference`` is written from shared/SPEC.md sections 2, 4.1 and 4.2 (and, where the spec is
silent, from the README's "Choices where the spec is silent"); it does not import ``dialog.machine``
or ``dialog.turn``. Per conversation it tracks the state, the pending proposal or request and its
kind (book a new call, move or cancel the booked one), the booked event, when the conversation was
last written and whether something was pending then (the expiry marker), and per tenant the busy
time and the events (booked, moved, removed). It computes free slots itself (UTC, Mon-Fri
09:00-17:00, 30-minute grid, 14-day horizon). Where the spec leaves a choice open, it allows each
reading the spec permits and follows the one the engine took.

Spec 4.2, as the model reads it: a conversation done with a booked call reads move words and times
as answers ("move it to 3pm" proposes moving the call: that time if free, else the first free slot
after it; a time keeps the call's day, a day its time; no time: the next free slot strictly after
it; none free: rescheduling the move), and a refusal that names a cancellation ("cancel the call",
"call it off") proposes cancelling it; a bare "no" changes nothing. A move or cancellation is then
confirmed (``moved``: the same event at its new time; ``call_cancelled``: the event removed, and
"cancel the call" confirms a cancellation), refused (``kept``), re-prompted or moved again like a
booking proposal; a new request naming someone replaces it with a booking proposal (the old call
stays in the calendar, forgotten by the conversation).

Three layers, cheapest and most certain first (``scripts/mutations.py`` runs this file with ``-x``):

1. An exhaustive table: every reachable situation (a booking, a move or a cancellation pending,
   a move waiting for a day, a booked, moved or cancelled call, expiries) x every utterance class
   x both channels (every utterance of the class; a sample of it in the rows of spec 4.2).
2. Interleaving tables: a second container's whole turn lands between one container's read and
   its compare-and-set (the result must be as if the turns had run one after the other), or
   between a confirmation's calendar call and its last write (one event, booked, moved or
   removed once).
3. A hypothesis ``RuleBasedStateMachine``: two engines (two redis-py clients, "two containers")
   on one Redis, one ``InMemoryCalendar`` and one ``FakeClock``, four conversations on three
   tenants; utterances drawn per intent class on both channels, ``propose`` via the API, the
   conversation key expiring, a container restarting, the clock advancing (which ages every
   ``dialog:*`` key's TTL by as much), busy time appearing, interleaved turns, booked calls
   moved and cancelled (proposed on one container, confirmed on the other, crossed by another
   turn). Rules are biased toward answering pending proposals: random stateful tests alone were
   measured catching a seeded bug in only 0-4 of 10 runs at small sizes.

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
MOVED, CALL_CANCELLED, KEPT = "moved", "call_cancelled", "kept"  # spec 4.2
OUTCOMES = frozenset(
    {PROPOSED, RESCHEDULED, BOOKED, ALREADY_BOOKED, CANCELLED, REPROMPTED, NOTHING_PENDING, EXPIRED}
    | {SLOT_TAKEN, NO_FREE_SLOT, MOVED, CALL_CANCELLED, KEPT}
)
# What a pending proposal (or a request waiting for a day) is for: ``reply.proposal.kind``.
BOOK, MOVE, CANCEL = "book", "move", "cancel"
PENDING = (AWAITING, RESCHEDULING)

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

    Classes: confirm, idiom (a fixed affirmative idiom: "may confirm"), refuse (a bare refusal),
    cancel (a refusal that names a cancellation: "cancel the call", "call it off"; spec 4.2),
    hesitate (deferrals too: "not right now", "I'll confirm later"; spec 4.3), unclear, question
    (about the proposal or anything else: "is that eastern time?"; issue 12: never a move, the
    proposal unchanged), move (no time), move_to (a time or a day; "no" + a time is a correction to
    it: "no, 11 instead"), schedule (a new request naming someone), mixed (a yes with a refusal or
    hesitation in it, naming no cancellation: never a confirmation).
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
        "refuse", "no", "nope", "never mind", "No, don't book it", "no thanks", "uh no", "nah forget it",
        "no don't book it",
    ),
    "cancel": _said(
        "cancel", "cancel the call", "call it off", "please cancel", "cancel", "um cancel it", "no, cancel the call",
        "ok cancel",
    ),
    "hesitate": _said(
        "hesitate", "not yet", "wait", "hmm", "?", "hold on", "let me think", "um wait", "hmm not yet",
        "uh let me check", "maybe", "not right now", "don't book it yet", "I'll confirm later",
    ),
    "unclear": _said("unclear", "tell me a joke", "lorem ipsum dolor", "uh the blue one"),
    "question": _said(
        "question", "is that eastern time?", "what's the weather like?", "uh who is this",
        "anything else free that day?",
    ),
    "move": _said(
        "move", "can we move it?", "another time", "change time", "uh can we move it", "can we reschedule",
        "can we move the call", "push the call back",
    ),
    "move_to": (
        *_said("move_to", "move it to 3pm", "no, 3pm instead", "uh make it three pm", time=_at(15)),
        *_said("move_to", "can we move the call to 2pm?", time=_at(14)),
        *_said("move_to", "um push the call to thursday", day=THURSDAY),
        *_said("move_to", "yes but make it 11am instead", "no, 11 instead", "no not 10, 11", time=_at(11)),
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
        "mixed", "yes but not now", "yes no", "yeah no", "Sure, wait", "yes, but wait", "go ahead... actually no",
        "yes, don't", "uh yes but not now", "sure but not yet",
    ),
}  # fmt: skip
KINDS = tuple(CATALOGUE)
PROPOSE_DANA = CATALOGUE["schedule"][0]
JANUARY_5TH = CATALOGUE["move_to"][-2]
MOVE_IT = CATALOGUE["move"][0]
CANCEL_THE_CALL = CATALOGUE["cancel"][0]


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
    kind: str = BOOK  # awaiting or rescheduling: what for (book a call, move or cancel the booked one)
    # the call this conversation booked, as the calendar holds it (lead, start): done after a
    # booking, and while a move or cancellation of it is pending
    booked: tuple[str, dt.datetime] | None = None
    written: dt.datetime | None = None  # the (fake) time of the last committed turn
    pending_when_written: bool = False
    deleted: bool = False  # the conversation key was removed, as its TTL would
    version: int = 0
    expired: bool = False  # only in a view: the turn finds the marker of an expired proposal

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
    kind: str = BOOK  # as Conversation.kind
    books: bool = False  # a new event for (lead, start)
    moves: bool = False  # the booked call's event moves to ``start`` (same id)
    removes: bool = False  # the booked call's event is removed
    why: str = ""
    # the conversation as the turn found it, when the model cannot tell (a marker that may be gone)
    view: Conversation | None = field(default=None, compare=False)


class Reference:
    """SPEC sections 2, 4.1 and 4.2 as a model: what each turn may do, given what the model believes."""

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
        event (spec 4.1: never nothing_pending while the calendar holds it); expired with a proposal
        pending, so told it expired (spec 2); or forgotten, afresh.

        A move or cancellation of a booked call that expired is both at once (the README's choice
        where the spec is silent): the answer says the change expired (spec 2) and the conversation
        stays done with the booked call (4.1).
        """
        if self.alive(c):
            return [c]
        fresh = Conversation(c.tenant, c.cid)
        kept = Conversation(c.tenant, c.cid, state=DONE, booked=c.booked, version=c.version)
        expired = Conversation(c.tenant, c.cid, version=c.version, expired=True)
        change_expired = replace(kept, expired=True)
        if self.booked_marker(c) != "no":
            marker, lived = self.booked_marker(c), [kept]
        else:
            marker, lived = self.marker(c), [change_expired] if c.booked is not None else [expired]
        return lived if marker == "yes" else [*lived, fresh] if marker == "maybe" else [fresh]

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
        # After an expiry any answer but a new request hears it (spec: "yes"; README: the rest).
        if v.expired and v.booked is not None:
            return [Expect(EXPIRED, DONE, why="a move or cancellation of the booked call expired; the call stands")]
        if v.expired:
            return [Expect(EXPIRED, IDLE, why="a proposal of this conversation expired")]
        if v.state == DONE and v.booked is not None:
            changes = self._change_booked(v, m)
            if changes:
                return changes
        confirm = ALREADY_BOOKED if v.booked else NOTHING_PENDING
        # The spec's rows are "yes" (nothing_pending / already_booked); the rest is the README's
        # "unclear, hesitant or 'move it' text gets reprompted; 'yes' or 'no' gets nothing_pending".
        outcomes = {
            "confirm": [confirm],
            "idiom": [confirm, NOTHING_PENDING, REPROMPTED],
            "refuse": [NOTHING_PENDING],
            "cancel": [NOTHING_PENDING],
            "mixed": [NOTHING_PENDING, REPROMPTED],
            "question": [REPROMPTED],  # issue 12: answered (the timezone) or asked again, nothing moves
        }.get(m.kind, [REPROMPTED])
        return [Expect(o, v.state, why=f"{v.state}, nothing pending") for o in outcomes]

    def _change_booked(self, v: Conversation, m: Meaning) -> list[Expect]:
        """Spec 4.2, done with a booked call: move words propose moving it, "cancel the call" cancelling it."""
        assert v.booked is not None
        lead, at = v.booked
        if m.kind == "move":
            return self._offer(v.tenant, lead, at, PROPOSED, strictly=True, kind=MOVE, why="move the booked call")
        if m.kind == "move_to":
            return self._offer(v.tenant, lead, self._resolve(m, at), PROPOSED, kind=MOVE, why="move it to a time")
        if m.kind == "cancel":
            return [Expect(PROPOSED, AWAITING, lead, at, kind=CANCEL, why="cancel the booked call?")]
        return []

    def _awaiting(self, v: Conversation, m: Meaning) -> list[Expect]:
        assert v.lead is not None and v.start is not None
        same = Expect(REPROMPTED, AWAITING, v.lead, v.start, kind=v.kind, why="re-prompt with the same proposal")
        no = self._refused(v)
        if m.kind == "confirm":
            return self._confirm(v)
        if m.kind == "idiom":
            return [*self._confirm(v), same]
        if m.kind == "cancel":  # "cancel the call" answers "shall I cancel your call?" with a yes
            return self._confirm(v) if v.kind == CANCEL else [no]
        if m.kind == "refuse":
            return [no]
        if m.kind == "mixed":
            return [no, same]
        if m.kind == "question":  # issue 12 / spec 4.3: a question moves nothing
            return [same]
        # "move it" on a cancellation of the booked call: a move of it
        kind = BOOK if v.kind == BOOK else MOVE
        if m.kind == "move":
            at = v.start
            return self._offer(v.tenant, v.lead, at, RESCHEDULED, strictly=True, kind=kind, why="the next free slot")
        if m.kind == "move_to":
            at = self._resolve(m, v.start)
            return self._offer(v.tenant, v.lead, at, RESCHEDULED, kind=kind, why="a move to a time")
        if m.kind == "schedule":
            request = self._request(v.tenant, m, (PROPOSED, RESCHEDULED))
            # a change of the booked call is replaced by a new booking proposal (4.2, the brief)
            return request + self._move(v, m) if v.kind == BOOK else request
        return [same]

    def _refused(self, v: Conversation) -> Expect:
        """A refusal cancels a booking proposal; the booked call stands when a change of it is refused."""
        if v.kind == BOOK:
            return Expect(CANCELLED, DONE, why="a refusal cancels")
        return Expect(KEPT, DONE, why="a refused change keeps the booked call")

    def _rescheduling(self, v: Conversation, m: Meaning) -> list[Expect]:
        assert v.lead is not None and v.start is not None
        ask = Expect(REPROMPTED, RESCHEDULING, v.lead, v.start, kind=v.kind, why="ask again for a time")
        no = self._refused(v)
        if m.kind in ("refuse", "cancel"):
            return [no]
        if m.kind == "mixed":
            return [no, ask]
        if m.kind == "question":  # nothing moves; the time is still to be given
            return [ask]
        if m.kind == "move_to":
            at = self._resolve(m, v.start)
            return self._offer(v.tenant, v.lead, at, RESCHEDULED, kind=v.kind, why="a time or a day")
        if m.kind == "schedule":
            again = self._move(v, m) if _names_time(m) else [ask]
            return self._request(v.tenant, m, (PROPOSED, RESCHEDULED)) + again
        return [ask]

    def _move(self, v: Conversation, m: Meaning) -> list[Expect]:
        """A schedule request read as a reschedule of what is pending (the spec has no row for it)."""
        assert v.lead is not None and v.start is not None
        if _names_time(m):
            at = self._resolve(m, v.start)
            return self._offer(v.tenant, v.lead, at, RESCHEDULED, kind=v.kind, why="read as a move")
        return self._offer(v.tenant, v.lead, v.start, RESCHEDULED, strictly=True, kind=v.kind, why="read as a move")

    def _confirm(self, v: Conversation) -> list[Expect]:
        """Book (or move) once if the slot is still free and not begun; else slot_taken with the
        first free slot after it. A cancellation always removes the call."""
        assert v.lead is not None and v.start is not None
        if v.kind == CANCEL:
            return [Expect(CALL_CANCELLED, DONE, removes=True, why="a confirmed cancellation removes the call")]
        start, end = v.start, v.start + SLOT
        if self._free(v.tenant, start, end, but=v.booked) and start >= self.now:
            if v.kind == MOVE:
                return [Expect(MOVED, DONE, v.lead, start, moves=True, why="a confirmed move moves the call")]
            return [Expect(BOOKED, DONE, v.lead, start, books=True, why="a confirmation books")]
        taken = self._offer(v.tenant, v.lead, start, SLOT_TAKEN, strictly=True, kind=v.kind, why="the slot was taken")
        if any(e.state == RESCHEDULING for e in taken):
            taken.append(Expect(SLOT_TAKEN, RESCHEDULING, v.lead, start, kind=v.kind, why="taken, and no other slot"))
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
        self,
        tenant: str,
        lead: str,
        at: dt.datetime,
        outcome: str,
        *,
        strictly: bool = False,
        kind: str = BOOK,
        why: str,
    ) -> list[Expect]:
        out = []
        for slot in self.first_free(tenant, at, strictly=strictly):
            if slot is None:
                out.append(Expect(NO_FREE_SLOT, RESCHEDULING, lead, at, kind=kind, why=f"{why}: no free slot"))
            else:
                out.append(Expect(outcome, AWAITING, lead, slot, kind=kind, why=why))
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

    def _free(
        self, tenant: str, start: dt.datetime, end: dt.datetime, but: tuple[str, dt.datetime] | None = None
    ) -> bool:
        """No busy time and no event (but ``but``, the call being moved) overlaps [start, end)."""
        events = [(s, s + SLOT) for lead, s in self.events[tenant] if (lead, s) != but]
        return not any(b_start < end and start < b_end for b_start, b_end in self.blocks[tenant] + events)

    # the model moves

    def apply(self, c: Conversation, e: Expect, version: int) -> None:
        before = e.view or self.view(c)
        booked, events = before.booked, self.events[c.tenant]
        pending = e.state in PENDING
        if e.books:
            assert e.lead is not None and e.start is not None
            booked = (e.lead, e.start)
            events.append(booked)
        elif e.moves:
            assert booked is not None and e.start is not None, f"{c}: a move with no booked call"
            events.remove(booked)
            booked = (booked[0], e.start)
            events.append(booked)
        elif e.removes:
            assert booked is not None, f"{c}: a cancellation with no booked call"
            events.remove(booked)
            booked = None
        elif not (
            e.outcome in (ALREADY_BOOKED, KEPT)
            or (before.state == DONE and e.state == DONE)
            or (pending and e.kind != BOOK)  # a move or cancellation of the call is pending
        ):
            booked = None  # a new booking proposal (or an expiry) forgets the call; it stays in the calendar
        c.booked = booked
        c.state = e.state
        c.lead, c.start = (e.lead, e.start) if pending else (None, None)
        c.kind = e.kind if pending else BOOK
        c.written = self.now
        c.pending_when_written = pending
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
    w.say(0, c, Utterance("move it to 9am", Meaning("move_to", time=_at(9))))
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


# The rows of sections 2 and 4.1 say every utterance of the catalogue. The engine reads words
# after a booking as it reads them while a proposal is pending (and without one, as with nothing
# pending), so how each utterance is understood is covered there; these rows of spec 4.2 say a
# sample of each class (every third utterance, and the last), which keeps this file's runtime near
# what it was before 4.2.
SAMPLED = frozenset({
    "awaiting_move", "awaiting_move_slot_taken", "awaiting_move_passed", "awaiting_cancel", "rescheduling_move",
    "done_moved", "done_call_cancelled", "awaiting_move_then_expired", "awaiting_cancel_then_expired",
})  # fmt: skip


def _table_utterances(situation: str, kind: str, channel: str) -> list[Utterance]:
    said = [u for u in CATALOGUE[kind] if channel in channels_for(u)]
    if situation not in SAMPLED:
        return said
    return [u for i, u in enumerate(said) if i % 3 == 0 or i == len(said) - 1]


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

    def case(utterance: Utterance, first: bool) -> Callable[[World], None]:
        def run(world: World) -> None:
            c = setup(world)
            if first:  # the setup is the same every time (a fresh world, the same clock): check it once
                world.check()
            assert world.model.view(c).state == state, f"setup {situation} reached {world.model.view(c).state}"
            world.say(1 if channel == "text" else 0, c, utterance, channel)
            world.check()

        return run

    said = _table_utterances(situation, kind, channel)
    _each_in_a_fresh_world(redis_url, [(str(u), case(u, i == 0)) for i, u in enumerate(said)])


# --- 2. interleaved containers: one turn lands between another's read and write ----------------

INTERLEAVED_SITUATIONS = ("awaiting", "rescheduling", "done_booked", "awaiting_move", "awaiting_cancel")
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


@pytest.mark.parametrize("situation", ("awaiting", "awaiting_move", "awaiting_cancel"))
@pytest.mark.parametrize("kind", KINDS)
def test_a_turn_landing_between_the_calendar_call_and_the_last_write_completes_the_confirmation_once(
    redis_url: str, kind: str, situation: str
) -> None:
    """A "yes" books (moves, cancels); another container's turn arrives after the calendar call:
    one event, booked, moved or removed once."""
    setup, _ = SITUATIONS[situation]

    def case(meanwhile: Utterance) -> Callable[[World], None]:
        def run(world: World) -> None:
            c = setup(world)
            world.cross_mid_confirmation(0, c, CATALOGUE["confirm"][0], meanwhile)
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


# The hypothesis layer draws the classes and utterances it drew before issue 12, in the same order,
# so that the ci profile's derandomized examples, which the mutation check was calibrated on, stay
# the same; their meanings are today's ("what's the weather like?" and "uh who is this" are
# questions now: drawn where an unclear answer is, read as questions by the model). Issue 12's new
# utterances (questions, deferrals, corrections) are covered by layer 1: every one, in every
# situation, on both channels.
_DRAWN_BEFORE_ISSUE_12 = {
    "unclear": ("what's the weather like?", "tell me a joke", "lorem ipsum dolor", "uh who is this"),
    "hesitate": tuple(u.text for u in CATALOGUE["hesitate"][:11]),
    "move_to": tuple(u.text for u in CATALOGUE["move_to"] if u.text not in ("no, 11 instead", "no not 10, 11")),
}
_BY_TEXT = {u.text: u for kind in KINDS for u in CATALOGUE[kind]}
STATEFUL_CATALOGUE: dict[str, tuple[Utterance, ...]] = {
    kind: tuple(_BY_TEXT[text] for text in _DRAWN_BEFORE_ISSUE_12[kind])
    if kind in _DRAWN_BEFORE_ISSUE_12
    else CATALOGUE[kind]
    for kind in KINDS
    if kind != "question"
}
STATEFUL_KINDS = tuple(STATEFUL_CATALOGUE)


def utterances(*kinds: str) -> st.SearchStrategy[Utterance]:
    return st.sampled_from(kinds or STATEFUL_KINDS).flatmap(lambda kind: st.sampled_from(STATEFUL_CATALOGUE[kind]))


class DialogMachine(RuleBasedStateMachine):
    """Two containers, four conversations, three tenants; the model is checked after every step.

    Hypothesis picks among the rules whose precondition holds: thirteen of the seventeen rules act
    on a pending proposal (or a new time being asked for) or a booked call, and the host's and
    operations' events share two rules, so pending proposals are confirmed, moved, refused,
    taken, expired and left waiting often, and booked calls are moved and cancelled (spec 4.2).
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

    def _confirmable(self) -> list[Conversation]:
        """Awaiting a proposal a "yes" books, moves or cancels (its slot is still free)."""
        model, yes = self.world.model, CATALOGUE["confirm"][0].meaning
        done = ([BOOKED], [MOVED], [CALL_CANCELLED])
        return [c for c in self._in(AWAITING) if [e.outcome for e in model.expect_answer(c, yes)] in done]

    @precondition(lambda self: bool(self._confirmable()))
    @rule(data=st.data())
    def another_turn_lands_mid_confirmation(self, data: st.DataObject) -> None:
        c = self._draw_conversation(data, self._confirmable())
        yes = data.draw(utterances("confirm"), label="utterance")
        meanwhile = data.draw(utterances(), label="meanwhile")
        self.world.cross_mid_confirmation(data.draw(engines, label="first engine"), c, yes, meanwhile)

    # spec 4.2: a booked call is moved or cancelled in the conversation

    def _booked(self) -> list[Conversation]:
        """Done with a booked call, as a turn would find it."""
        model = self.world.model
        return [c for c in model.conversations.values() if (v := model.view(c)).state == DONE and v.booked]

    def _changing(self) -> list[Conversation]:
        """Awaiting the confirmation of a move or a cancellation of the booked call."""
        return [c for c in self._in(AWAITING) if self.world.model.view(c).kind != BOOK]

    @precondition(lambda self: bool(self._booked()))
    @rule(data=st.data())
    def a_booked_call_is_changed_and_confirmed_elsewhere(self, data: st.DataObject) -> None:
        """One container hears "move it" or "cancel the call"; the answer mostly reaches the other,
        sometimes after the new time was taken."""
        c, first = self._draw_conversation(data, self._booked()), data.draw(engines, label="engine")
        self._say(data, c, "move", "move_to", "cancel", engine=first)
        v = self.world.model.view(c)
        if v.state != AWAITING:
            return
        if v.kind == MOVE and data.draw(st.integers(0, 3), label="taken meanwhile") == 0:
            assert v.start is not None
            self.world.block(c.tenant, v.start, v.start + SLOT)
        answer = data.draw(st.sampled_from(("confirm", "confirm", "cancel", "refuse", "move_to")), label="answer")
        self._say(data, c, answer, engine=1 - first if data.draw(st.integers(0, 3), label="same") else first)

    @precondition(lambda self: bool(self._changing()))
    @rule(data=st.data())
    def a_change_of_the_booked_call_is_answered(self, data: st.DataObject) -> None:
        kinds = ("confirm", "idiom", "refuse", "cancel", "mixed", "move", "move_to", "hesitate", "schedule")
        self._say(data, self._draw_conversation(data, self._changing()), *kinds)

    @precondition(lambda self: bool(self._booked() or self._changing()))
    @rule(data=st.data())
    def two_containers_change_the_booked_call_at_once(self, data: st.DataObject) -> None:
        """The other container's turn lands between this one's read and its write."""
        c = self._draw_conversation(data, self._booked() + self._changing())
        kinds = ("confirm", "cancel", "refuse", "move", "move_to")
        utterance = data.draw(utterances(*kinds), label="utterance")
        meanwhile = data.draw(utterances(*kinds, "schedule", "hesitate"), label="meanwhile")
        self.world.interleave(data.draw(engines, label="first engine"), c, utterance, c, meanwhile)

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
        keys = ConversationKeys("acme", "c1")  # (the history, spec 4.5, lives on: 30 days)
        assert world.admin.exists(keys.conversation, keys.expired_marker) == 0
        b.handle("c1", "hmm", tenant_id="acme")
        reply = a.handle("c1", "yes", tenant_id="acme")
        assert world.calendar.events("acme") == []
        assert (reply.outcome, reply.state) == (NOTHING_PENDING, IDLE)
    finally:
        world.close()
