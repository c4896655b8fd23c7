"""What the engine hands back: a turn's reply, the pending proposal, a stored snapshot."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from dialog.calendar.base import Event
from dialog.machine import Outcome as Outcome  # defined with the machine, whose rules report it
from dialog.machine import State, Trigger


class Channel(enum.StrEnum):
    TEXT = "text"
    VOICE = "voice"


@dataclass(frozen=True, slots=True)
class Proposal:
    """A call offered for confirmation; times are aware, in the tenant's timezone.

    ``kind``: "book" a new call; "move" the booked call (``reply.event``) to ``start``; "cancel" it.
    """

    lead: str
    start: dt.datetime
    end: dt.datetime
    kind: str = "book"


@dataclass(frozen=True, slots=True)
class Transition:
    """The arrow a turn took: from ``source`` by ``trigger`` to ``dest`` (the machine's own names)."""

    source: State
    trigger: Trigger
    dest: State


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to one turn: the state reached, what happened, and what to tell the user."""

    conversation_id: str
    tenant_id: str
    state: State
    outcome: Outcome
    text: str
    proposal: Proposal | None
    event: Event | None
    version: int
    channel: Channel = Channel.TEXT
    # The transition this turn's write took; None when the turn wrote nothing of its own (a replayed
    # message, or the answer about a confirmation another turn settled).
    transition: Transition | None = None
    # What the next turn is expected to contain (ASR hints and grammars; dialog.voice.Expectations).
    expect: Any = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A conversation as stored right now."""

    conversation_id: str
    tenant_id: str
    state: State
    proposal: Proposal | None
    event: Event | None
    version: int
    last_trigger: str | None
    last_source: State | None
    last_outcome: str | None
    booking_pending: bool


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One applied write of a conversation (spec 4.5), as ``engine.history`` returns it.

    ``outcome`` is one of the turn outcomes, or "recorded" for a confirmation recorded before
    its calendar call (the entry that settles it follows). ``text`` and ``channel`` are the words
    that caused the write; for a settled confirmation, the words that confirmed it.
    """

    at: dt.datetime
    version: int
    channel: str
    text: str
    message_id: str | None
    state_from: State
    trigger: str
    state: State
    outcome: str
    event_id: str | None
