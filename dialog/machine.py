"""The conversation state machine: states and transitions as data, driven by one shared Machine.

This module is the single definition of the dialog. The engine fires triggers through
:func:`fire`; the diagrams read :data:`TRANSITIONS`. Every call into pytransitions stays here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from transitions import Machine, MachineError

from dialog.errors import DialogError


class State(enum.StrEnum):
    IDLE = "idle"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    RESCHEDULING = "rescheduling"
    DONE = "done"


class Trigger(enum.StrEnum):
    PROPOSE = "propose"
    CONFIRM = "confirm"
    SLOT_TAKEN = "slot_taken"
    RESCHEDULE = "reschedule"
    OFFER = "offer"
    NO_SLOT = "no_slot"
    CANCEL = "cancel"
    REPROMPT = "reprompt"
    ACKNOWLEDGE = "acknowledge"
    PROPOSE_MOVE = "propose_move"
    PROPOSE_CANCEL = "propose_cancel"
    MOVE = "move"
    CALL_OFF = "call_off"
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class TransitionSpec:
    """One arrow of the dialog: ``trigger`` moves ``sources`` to ``dest`` ("=" stays put)."""

    trigger: Trigger
    sources: tuple[State, ...]
    dest: State | str
    label: str  # what the user says or what happens, as the diagrams show it


_S = State
_ANY = (_S.IDLE, _S.AWAITING_CONFIRMATION, _S.RESCHEDULING, _S.DONE)
_NOTHING_PENDING = (_S.IDLE, _S.DONE)
_PENDING = (_S.AWAITING_CONFIRMATION, _S.RESCHEDULING)

INITIAL = State.IDLE
STATES: tuple[State, ...] = _ANY
TRANSITIONS: tuple[TransitionSpec, ...] = (
    TransitionSpec(Trigger.PROPOSE, _ANY, _S.AWAITING_CONFIRMATION, '"schedule a call with Dana"'),
    TransitionSpec(Trigger.NO_SLOT, _ANY, _S.RESCHEDULING, "no free slot: ask for a day"),
    TransitionSpec(Trigger.CONFIRM, (_S.AWAITING_CONFIRMATION,), _S.DONE, '"yes" (books once)'),
    TransitionSpec(
        Trigger.SLOT_TAKEN,
        (_S.AWAITING_CONFIRMATION,),
        _S.AWAITING_CONFIRMATION,
        '"yes", but the slot was taken: next free slot',
    ),
    TransitionSpec(Trigger.RESCHEDULE, (_S.AWAITING_CONFIRMATION,), _S.RESCHEDULING, '"move it" / "3pm instead"'),
    TransitionSpec(Trigger.OFFER, (_S.RESCHEDULING,), _S.AWAITING_CONFIRMATION, "offer the new time"),
    TransitionSpec(Trigger.CANCEL, _PENDING, _S.DONE, '"no" / "cancel"'),
    TransitionSpec(Trigger.REPROMPT, _ANY, "=", '"not yet" / unclear: ask again'),
    TransitionSpec(Trigger.ACKNOWLEDGE, _NOTHING_PENDING, "=", '"yes" with nothing pending'),
    # Changing a booked call: proposed from done, confirmed or refused like a booking proposal.
    TransitionSpec(Trigger.PROPOSE_MOVE, (_S.DONE,), _S.AWAITING_CONFIRMATION, 'booked: "move the call to 3pm"'),
    TransitionSpec(Trigger.PROPOSE_CANCEL, (_S.DONE,), _S.AWAITING_CONFIRMATION, 'booked: "cancel the call"'),
    TransitionSpec(Trigger.MOVE, (_S.AWAITING_CONFIRMATION,), _S.DONE, '"yes" to a move (moves once)'),
    TransitionSpec(Trigger.CALL_OFF, (_S.AWAITING_CONFIRMATION,), _S.DONE, '"yes" to a cancellation (removes once)'),
    TransitionSpec(Trigger.KEEP, _PENDING, _S.DONE, '"no" to a move or cancellation: the call stands'),
)

# One Machine for the whole process (a new Machine costs 60-110 us; firing a trigger on a small
# per-turn model costs ~7 us). No model is ever added to it, so nothing accumulates; no
# callbacks run, so a failing side effect can never leave a half-applied state behind.
_MACHINE = Machine(
    model=None,
    states=[s.value for s in STATES],
    transitions=[
        {"trigger": t.trigger.value, "source": [s.value for s in t.sources], "dest": str(t.dest)} for t in TRANSITIONS
    ],
    initial=INITIAL.value,
    auto_transitions=False,
)


class TransitionNotAllowed(DialogError):
    """The engine asked for a trigger the dialog does not allow from the current state (a bug)."""


class _TurnModel:
    """The smallest thing pytransitions can move: a state attribute, nothing else."""

    __slots__ = ("state",)

    def __init__(self, state: State) -> None:
        self.state: str = state.value


def fire(state: State, trigger: Trigger) -> State:
    """Return the state ``trigger`` leads to from ``state``; refuse triggers the dialog forbids."""
    model = _TurnModel(state)
    try:
        _MACHINE.events[trigger.value].trigger(model)
    except MachineError as exc:
        raise TransitionNotAllowed(f"{trigger.value!r} is not allowed from {state.value!r}") from exc
    return State(model.state)


def allowed(state: State, trigger: Trigger) -> bool:
    """Whether ``trigger`` may fire from ``state`` (read from the same definition)."""
    return any(state in t.sources for t in TRANSITIONS if t.trigger is trigger)
