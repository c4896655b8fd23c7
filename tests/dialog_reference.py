"""The reference model of the property suites: the dialog written by hand from the spec.

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

It is independent of the engine on purpose: nothing here may import ``dialog.machine``,
``dialog.turn`` or ``dialog.flow`` (``tests/test_dialog_properties_table.py`` checks it), so that
a bug in the engine's definition of the dialog cannot be copied into the model that judges it.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from dialog.store.keys import ConversationKeys
from tests.conftest import MONDAY_8AM

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
