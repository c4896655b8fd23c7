"""The conversation state machine: the one definition of the dialog, read by the engine and the diagrams.

Three tables, all data:

- :data:`TRANSITIONS`: the arrows. Which trigger moves which states where.
- :data:`RULES`: the decisions. Given the state, what the user meant or what happened (a
  :class:`Cue`) and the facts of the turn (:class:`Fact`), which trigger fires and what the
  turn reports. The first rule that matches decides; ``dialog.turn`` only builds the record the
  chosen transition writes.
- the internal state :data:`CONFIRMING`: a confirmation recorded (an outbox of one) whose
  calendar call has not been settled. It is never stored as such and never in a reply (a reply
  says ``awaiting_confirmation``, spec section 1); the machine and the diagrams show it, because
  it is the most delicate moment of a turn: whoever loads the conversation next settles it first.

pytransitions checks the definition: every arrow is compiled into one shared ``Machine`` at
import, and every rule's trigger must be an arrow from its state. The engine fires arrows through
a dict compiled from the same data (0.3 us against 7-10 us through ``Machine``; measured in
``benchmarks/README.md``); ``tests/test_machine.py`` checks both agree on every pair.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from dataclasses import dataclass
from typing import Final

from transitions import Machine, MachineError

from dialog.errors import DialogError


class State(enum.StrEnum):
    """The four public states: stored, and in every reply."""

    IDLE = "idle"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    RESCHEDULING = "rescheduling"
    DONE = "done"


# The internal state of a recorded, unsettled confirmation (see the module's docstring).
CONFIRMING: Final = "confirming"
Node = str  # a state of the machine: a State, or CONFIRMING


class Trigger(enum.StrEnum):
    PROPOSE = "propose"
    NO_SLOT = "no_slot"
    RECORD = "record"  # a "yes", recorded before the calendar is called
    CONFIRM = "confirm"  # the calendar holds the booking
    SLOT_TAKEN = "slot_taken"
    RESCHEDULE = "reschedule"
    OFFER = "offer"
    CANCEL = "cancel"
    REPROMPT = "reprompt"
    ACKNOWLEDGE = "acknowledge"
    PROPOSE_MOVE = "propose_move"
    PROPOSE_CANCEL = "propose_cancel"
    MOVE = "move"  # the calendar holds the call at its new time
    CALL_OFF = "call_off"  # the calendar no longer holds the call
    KEEP = "keep"


class Cue(enum.StrEnum):
    """What the user meant (``dialog.understanding.Intent``), or what happened."""

    CONFIRM = "confirm"
    REFUSE = "refuse"
    HESITATE = "hesitate"
    UNCLEAR = "unclear"
    QUESTION = "question"
    RESCHEDULE = "reschedule"
    SCHEDULE = "schedule"
    CORRECTION = "correction"
    UNREADABLE = "unreadable"  # a day or time that could not be read (spec 4.3)
    PROPOSE = "propose"  # a host's own proposal (``engine.propose``)
    # settling a recorded confirmation with the calendar
    BOOKED = "booked"
    MOVED = "moved"
    CALLED_OFF = "called_off"
    TAKEN = "taken"  # the slot was taken, or has begun
    GONE = "gone"  # the call to move is no longer in the calendar


class Fact(enum.StrEnum):
    """What else a decision may depend on, computed by ``dialog.turn`` for each turn."""

    EXPIRED = "expired"  # the conversation expired: its marker answers
    BOOKED = "booked"  # a call is booked
    CHANGE = "change"  # what is pending moves or cancels the booked call (not a new booking)
    CANCELLING = "cancelling"  # what is pending cancels the booked call
    CANCELS = "cancels"  # the words name a cancellation ("call it off")
    LEAD = "lead"  # the words name a person
    NEW_LEAD = "new_lead"  # ... not the one being scheduled
    TIME = "time"  # the words name a day or time
    SAME_TIME = "same_time"  # ... the proposal's own, said with only affirmative words
    BEGUN = "begun"  # the proposal's slot has begun
    REQUEST = "request"  # the words ask for a new call ("schedule a call with ...")


class Act(enum.StrEnum):
    """What the turn builds for a rule (``dialog.turn``); the trigger says which arrow it takes."""

    STAY = "stay"  # nothing changes but the last transition
    RECORD = "record"  # record the confirmation (booking, move or cancellation): an outbox of one
    SEARCH = "search"  # find a slot: offer it with the rule's trigger, or NO_SLOT when none is free
    CLEAR = "clear"  # drop what is pending
    PROPOSE_CANCEL = "propose_cancel"  # propose cancelling the booked call
    SETTLE = "settle"  # commit what the calendar now holds


class Outcome(enum.StrEnum):
    """What one turn did."""

    PROPOSED = "proposed"
    RESCHEDULED = "rescheduled"
    BOOKED = "booked"
    ALREADY_BOOKED = "already_booked"
    CANCELLED = "cancelled"
    REPROMPTED = "reprompted"
    NOTHING_PENDING = "nothing_pending"
    EXPIRED = "expired"
    SLOT_TAKEN = "slot_taken"
    NO_FREE_SLOT = "no_free_slot"
    MOVED = "moved"  # the booked call moved (same event id)
    CALL_CANCELLED = "call_cancelled"  # the booked call was removed from the calendar
    KEPT = "kept"  # a move or cancellation was refused: the booked call stands


@dataclass(frozen=True, slots=True)
class TransitionSpec:
    """One arrow of the dialog: ``trigger`` moves ``sources`` to ``dest`` ("=" stays put)."""

    trigger: Trigger
    sources: tuple[Node, ...]
    dest: Node
    label: str  # what the diagrams write on the arrow: what the user meant, or what happened


@dataclass(frozen=True, slots=True)
class Rule:
    """In ``sources``, on one of ``cues``, when every fact of ``when`` holds and none of
    ``unless``: fire ``trigger``, build ``act``, report ``outcome`` (None: the act's own). A
    search that finds no free slot fires NO_SLOT instead and reports ``none_free``."""

    sources: tuple[Node, ...]
    cues: tuple[Cue, ...]
    trigger: Trigger
    act: Act
    outcome: Outcome | None = None
    when: frozenset[Fact] = frozenset()
    unless: frozenset[Fact] = frozenset()
    none_free: Outcome = Outcome.NO_FREE_SLOT


_S = State
_IDLE, _AWAITING, _RESCHEDULING, _DONE = _S.IDLE, _S.AWAITING_CONFIRMATION, _S.RESCHEDULING, _S.DONE
_PUBLIC: tuple[Node, ...] = (_IDLE, _AWAITING, _RESCHEDULING, _DONE)
_ANY: tuple[Node, ...] = (*_PUBLIC, CONFIRMING)
_NOTHING_PENDING: tuple[Node, ...] = (_IDLE, _DONE)
_PENDING: tuple[Node, ...] = (_AWAITING, _RESCHEDULING)

INITIAL = State.IDLE
STATES: tuple[Node, ...] = _ANY
TRANSITIONS: tuple[TransitionSpec, ...] = (
    TransitionSpec(Trigger.PROPOSE, _PUBLIC, _AWAITING, "schedule (a free slot)"),
    TransitionSpec(Trigger.NO_SLOT, _ANY, _RESCHEDULING, "none free"),
    TransitionSpec(Trigger.RECORD, (_AWAITING,), CONFIRMING, "confirm (recorded first)"),
    TransitionSpec(Trigger.CONFIRM, (CONFIRMING,), _DONE, "booked (exactly once)"),
    TransitionSpec(Trigger.SLOT_TAKEN, (_AWAITING, CONFIRMING), _AWAITING, "taken or begun: next free slot"),
    TransitionSpec(Trigger.RESCHEDULE, (_AWAITING,), _AWAITING, "reschedule (a free slot)"),
    TransitionSpec(Trigger.OFFER, (_RESCHEDULING,), _AWAITING, "reschedule to a day (a free slot)"),
    TransitionSpec(Trigger.CANCEL, _PENDING, _DONE, "refuse"),
    TransitionSpec(Trigger.REPROMPT, _PUBLIC, "=", "hesitate / question / unclear"),
    TransitionSpec(Trigger.ACKNOWLEDGE, _NOTHING_PENDING, "=", "anything with nothing pending"),
    # Changing a booked call: proposed from done, confirmed or refused like a booking proposal.
    TransitionSpec(Trigger.PROPOSE_MOVE, (_DONE,), _AWAITING, "booked: reschedule"),
    TransitionSpec(Trigger.PROPOSE_CANCEL, (_DONE,), _AWAITING, "booked: cancel"),
    TransitionSpec(Trigger.MOVE, (CONFIRMING,), _DONE, "moved (exactly once)"),
    TransitionSpec(Trigger.CALL_OFF, (CONFIRMING,), _DONE, "called off (exactly once)"),
    TransitionSpec(Trigger.KEEP, (*_PENDING, CONFIRMING), _DONE, "refuse a change: the call stands"),
)

_F = Fact
_C = Cue
# Every cue that comes from the user's words.
_WORDS = (
    _C.CONFIRM, _C.REFUSE, _C.HESITATE, _C.UNCLEAR, _C.QUESTION, _C.RESCHEDULE, _C.SCHEDULE, _C.CORRECTION,
    _C.UNREADABLE,
)
_NOT_UNDERSTOOD = (_C.HESITATE, _C.UNCLEAR, _C.QUESTION, _C.UNREADABLE)
_TIMES = (_C.RESCHEDULE, _C.SCHEDULE, _C.CORRECTION)


def _rule(
    sources: tuple[Node, ...] | Node,
    cues: tuple[Cue, ...] | Cue,
    trigger: Trigger,
    act: Act,
    outcome: Outcome | None = None,
    *,
    when: tuple[Fact, ...] = (),
    unless: tuple[Fact, ...] = (),
) -> Rule:
    return Rule(
        sources if isinstance(sources, tuple) else (sources,),
        cues if isinstance(cues, tuple) else (cues,),
        trigger,
        act,
        outcome,
        frozenset(when),
        frozenset(unless),
        # a taken slot with none free after it is still told as taken
        none_free=Outcome.SLOT_TAKEN if outcome is Outcome.SLOT_TAKEN else Outcome.NO_FREE_SLOT,
    )


# The decisions, first match wins. Written from shared/SPEC.md sections 2 and 4.
RULES: tuple[Rule, ...] = (
    # A host's proposal, from any state at rest.
    _rule(_PUBLIC, _C.PROPOSE, Trigger.PROPOSE, Act.SEARCH, Outcome.PROPOSED),
    # Nothing pending: a new request; a change of the booked call; else say how things stand.
    _rule(_NOTHING_PENDING, _C.SCHEDULE, Trigger.PROPOSE, Act.SEARCH, Outcome.PROPOSED),
    # a new request whose day cannot be read: asked about, whatever expired before it
    _rule(_NOTHING_PENDING, _C.UNREADABLE, Trigger.REPROMPT, Act.STAY, Outcome.REPROMPTED, when=(_F.REQUEST,)),
    _rule(_NOTHING_PENDING, _WORDS, Trigger.ACKNOWLEDGE, Act.STAY, Outcome.EXPIRED,
          when=(_F.EXPIRED,)),
    _rule(_DONE, (_C.RESCHEDULE, _C.CORRECTION), Trigger.PROPOSE_MOVE, Act.SEARCH, Outcome.PROPOSED,
          when=(_F.BOOKED,)),
    _rule(_DONE, _C.REFUSE, Trigger.PROPOSE_CANCEL, Act.PROPOSE_CANCEL, Outcome.PROPOSED,
          when=(_F.BOOKED, _F.CANCELS)),
    _rule(_NOTHING_PENDING, _NOT_UNDERSTOOD, Trigger.REPROMPT, Act.STAY, Outcome.REPROMPTED),
    _rule(_NOTHING_PENDING, _C.CONFIRM, Trigger.ACKNOWLEDGE, Act.STAY, Outcome.ALREADY_BOOKED, when=(_F.BOOKED,)),
    _rule(_NOTHING_PENDING, _WORDS, Trigger.ACKNOWLEDGE, Act.STAY, Outcome.NOTHING_PENDING),
    # Awaiting a confirmation.
    _rule(_AWAITING, (_C.QUESTION, _C.UNREADABLE, _C.HESITATE, _C.UNCLEAR), Trigger.REPROMPT, Act.STAY,
          Outcome.REPROMPTED),
    _rule(_AWAITING, (_C.CONFIRM, _C.REFUSE), Trigger.RECORD, Act.RECORD, Outcome.CALL_CANCELLED,
          when=(_F.CANCELLING, _F.CANCELS)),  # "cancel the call" answers "shall I cancel it?" with a yes
    _rule(_AWAITING, _C.CONFIRM, Trigger.SLOT_TAKEN, Act.SEARCH, Outcome.SLOT_TAKEN, when=(_F.BEGUN,),
          unless=(_F.CANCELLING,)),
    _rule(_AWAITING, _C.CONFIRM, Trigger.RECORD, Act.RECORD, Outcome.CALL_CANCELLED, when=(_F.CANCELLING,)),
    _rule(_AWAITING, _C.CONFIRM, Trigger.RECORD, Act.RECORD, Outcome.MOVED, when=(_F.CHANGE,)),
    _rule(_AWAITING, _C.CONFIRM, Trigger.RECORD, Act.RECORD, Outcome.BOOKED),
    _rule(_PENDING, _C.REFUSE, Trigger.KEEP, Act.CLEAR, Outcome.KEPT, when=(_F.CHANGE,)),
    _rule(_PENDING, _C.REFUSE, Trigger.CANCEL, Act.CLEAR, Outcome.CANCELLED),
    _rule(_AWAITING, _C.SCHEDULE, Trigger.PROPOSE, Act.SEARCH, Outcome.PROPOSED, when=(_F.LEAD,)),
    _rule(_AWAITING, _C.CORRECTION, Trigger.PROPOSE, Act.SEARCH, Outcome.PROPOSED,
          when=(_F.LEAD,), unless=(_F.CHANGE,)),  # "not Dana, Priya Nair": the other person
    _rule(_AWAITING, _C.RESCHEDULE, Trigger.SLOT_TAKEN, Act.SEARCH, Outcome.SLOT_TAKEN,
          when=(_F.SAME_TIME, _F.BEGUN), unless=(_F.CHANGE,)),
    _rule(_AWAITING, _C.RESCHEDULE, Trigger.RECORD, Act.RECORD, Outcome.BOOKED,
          when=(_F.SAME_TIME,), unless=(_F.CHANGE,)),  # "Tuesday at 10 is fine": the proposal itself
    _rule(_AWAITING, _TIMES, Trigger.RESCHEDULE, Act.SEARCH, Outcome.RESCHEDULED),
    # Rescheduling: waiting for a day or time.
    _rule(_RESCHEDULING, _C.SCHEDULE, Trigger.PROPOSE, Act.SEARCH, Outcome.PROPOSED, when=(_F.NEW_LEAD,)),
    _rule(_RESCHEDULING, _TIMES, Trigger.OFFER, Act.SEARCH, Outcome.RESCHEDULED, when=(_F.TIME,)),
    _rule(_RESCHEDULING, _WORDS, Trigger.REPROMPT, Act.STAY, Outcome.REPROMPTED),
    # Settling a recorded confirmation with what the calendar did.
    _rule(CONFIRMING, _C.BOOKED, Trigger.CONFIRM, Act.SETTLE, Outcome.BOOKED),
    _rule(CONFIRMING, _C.MOVED, Trigger.MOVE, Act.SETTLE, Outcome.MOVED),
    _rule(CONFIRMING, _C.CALLED_OFF, Trigger.CALL_OFF, Act.SETTLE, Outcome.CALL_CANCELLED),
    _rule(CONFIRMING, _C.TAKEN, Trigger.SLOT_TAKEN, Act.SEARCH, Outcome.SLOT_TAKEN),
    _rule(CONFIRMING, _C.GONE, Trigger.KEEP, Act.SETTLE, Outcome.NOTHING_PENDING),
)

# One Machine for the whole process, built from TRANSITIONS: it checks the definition (unknown
# states, duplicate arrows) at import, and ``fire_checked`` fires through it.
_MACHINE = Machine(
    model=None,
    states=[str(s) for s in STATES],  # plain names: given Enum members, pytransitions keys on their names
    transitions=[
        {"trigger": t.trigger.value, "source": [str(s) for s in t.sources], "dest": str(t.dest)} for t in TRANSITIONS
    ],
    initial=INITIAL.value,
    auto_transitions=False,
)


class TransitionNotAllowed(DialogError):
    """The engine asked for a trigger the dialog does not allow from the current state (a bug)."""


class NoRule(DialogError):
    """No rule decides this state and cue (a gap in :data:`RULES`: a bug)."""


def _compile_arrows() -> dict[tuple[Node, Trigger], Node]:
    arrows: dict[tuple[Node, Trigger], Node] = {}
    for spec in TRANSITIONS:
        for source in spec.sources:
            arrows[(source, spec.trigger)] = source if spec.dest == "=" else spec.dest
    return arrows


def _compile_rules() -> dict[tuple[Node, Cue], tuple[Rule, ...]]:
    by_pair: dict[tuple[Node, Cue], list[Rule]] = defaultdict(list)
    for rule in RULES:
        for source in rule.sources:
            if (source, rule.trigger) not in _ARROWS:
                raise TypeError(f"rule {rule} fires {rule.trigger.value!r}, not an arrow from {source!r}")
            for cue in rule.cues:
                by_pair[(source, cue)].append(rule)
    return {pair: tuple(rules) for pair, rules in by_pair.items()}


_ARROWS = _compile_arrows()
_RULES = _compile_rules()


def choose(node: Node, cue: Cue, facts: frozenset[Fact] | set[Fact]) -> Rule:
    """The rule that decides ``cue`` in ``node`` given ``facts``: the first that matches."""
    for rule in _RULES.get((node, cue), ()):
        if rule.when <= facts and not (rule.unless & facts):
            return rule
    raise NoRule(f"no rule for {cue.value!r} in {node!r} with {sorted(facts)}")


def fire(node: Node, trigger: Trigger) -> Node:
    """The state ``trigger`` leads to from ``node``; refuse triggers the dialog forbids."""
    try:
        return _ARROWS[(node, trigger)]
    except KeyError:
        raise TransitionNotAllowed(f"{trigger.value!r} is not allowed from {node!r}") from None


class _TurnModel:
    """The smallest thing pytransitions can move: a state attribute, nothing else."""

    __slots__ = ("state",)

    def __init__(self, node: Node) -> None:
        self.state: str = str(node)


def fire_checked(node: Node, trigger: Trigger) -> Node:
    """:func:`fire` through pytransitions' Machine (the reference the compiled arrows are tested against)."""
    model = _TurnModel(node)
    try:
        _MACHINE.events[trigger.value].trigger(model)
    except MachineError as exc:
        raise TransitionNotAllowed(f"{trigger.value!r} is not allowed from {node!r}") from exc
    return model.state


def allowed(node: Node, trigger: Trigger) -> bool:
    """Whether ``trigger`` may fire from ``node`` (read from the same definition)."""
    return (node, trigger) in _ARROWS


def label(source: Node, trigger: Trigger) -> str:
    """What the diagrams write on an arrow: the cues whose rules fire it, each with the facts its
    first rule needs in brackets; an arrow no rule names (NO_SLOT, after a search) keeps its own."""
    said: dict[str, str] = {}
    for rule in RULES:
        if rule.trigger is not trigger or source not in rule.sources:
            continue
        facts = " [" + ", ".join(sorted(f.value for f in rule.when)) + "]" if rule.when else ""
        names = ("anything else",) if set(rule.cues) >= set(_WORDS) else tuple(c.value for c in rule.cues)
        for name in names:  # a cue that fires the arrow unconditionally is shown bare
            said[name] = name if not facts or said.get(name) == name else said.get(name, name + facts)
    if set(_QUIET) <= said.keys():  # the four that re-prompt, as one
        said = {k: v for k, v in said.items() if k not in _QUIET} | {"unclear": "not understood"}
    if not said:
        return next(t.label for t in TRANSITIONS if t.trigger is trigger and source in t.sources)
    return " / ".join(said.values()).replace("_", " ")


_QUIET = ("hesitate", "unclear", "question", "unreadable")


def public(node: Node) -> State:
    """The state a reply and the stored record say: a recorded confirmation still awaits."""
    return _PUBLIC_OF[node]


_PUBLIC_OF: dict[Node, State] = {**{s.value: s for s in State}, CONFIRMING: State.AWAITING_CONFIRMATION}
