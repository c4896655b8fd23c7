"""The stored conversation record and its schema version, encoded with msgspec.

Schema 2 (today's) stores each struct as a JSON array (field names cost more memory than the
values) in a plain Redis string ``<version>|<json>``; schema 1 stored the same fields as JSON
objects in a hash ``{v: version, r: json}``, and is migrated on read (``dialog.store.migrations``).
"""

from __future__ import annotations

import datetime as dt

import msgspec

from dialog.machine import State, Trigger
from dialog.results import Outcome

SCHEMA_VERSION = 2
# Epoch seconds a stored time may take: 2000-01-01 .. 9999-12-31 (datetime's own range ends there).
MIN_EPOCH = 946_684_800
MAX_EPOCH = 253_402_214_400
MAX_SLOT_SECONDS = 24 * 3600


class StoredProposal(msgspec.Struct, frozen=True, array_like=True):
    """A proposal as stored: times are UTC epoch seconds; ``seq`` numbers it in its conversation.

    ``kind``: "book" a new call, "move" the booked call to ``start``, or "cancel" it.
    """

    lead: str
    start: int
    end: int
    seq: int
    kind: str = "book"


class Booking(msgspec.Struct, frozen=True, array_like=True):
    """A confirmed proposal. ``event_id`` is None while the calendar call is outstanding (outbox).

    ``message_id`` and ``channel`` are the confirming turn's: whoever settles the booking files
    its reply under that message id, worded for that channel.
    """

    key: str
    lead: str
    start: int
    end: int
    event_id: str | None = None
    message_id: str | None = None
    channel: str = "text"
    said: str = ""  # the words that confirmed it: the booking's evidence


class Request(msgspec.Struct, frozen=True, array_like=True):
    """While rescheduling: whom the call is with and the time the next answer is relative to.

    ``kind`` is "move" while looking for a new time for the booked call, else "book".
    """

    lead: str
    anchor: int
    has_time: bool = True
    kind: str = "book"


class Change(msgspec.Struct, frozen=True, array_like=True):
    """A confirmed move or cancellation of the booked call, recorded before the calendar call (outbox).

    Settled like a booking: whoever loads the record next calls the calendar with ``key``
    (idempotent), then clears it. ``start``/``end`` are the new time of a move.
    """

    kind: str  # "move" | "cancel"
    key: str
    event_id: str
    start: int
    end: int
    message_id: str | None = None
    channel: str = "text"
    said: str = ""


class LastTransition(msgspec.Struct, frozen=True, array_like=True):
    """The last arrow the conversation took (its destination is the record's state)."""

    trigger: Trigger
    source: State
    outcome: Outcome


class Record(msgspec.Struct, frozen=True, array_like=True):
    """One conversation. The version travels beside it, so a CAS never parses JSON."""

    schema_version: int
    state: State
    proposal: StoredProposal | None = None
    request: Request | None = None
    booking: Booking | None = None
    seq: int = 0
    last: LastTransition | None = None
    updated: int = 0
    change: Change | None = None
    # The key of the last confirmation settled as slot_taken: a turn whose calendar call for it
    # landed after that commit undoes its event (the conversation told the user nothing was booked).
    dropped: str | None = None
    # Set by the store on every write: two writers that computed the same record still write
    # different bytes, so a retried script can tell its own landed write from another's.
    nonce: int = 0

    @property
    def booking_channel(self) -> str:
        """The channel the (last) confirmation came on."""
        if self.change is not None:
            return self.change.channel
        return self.booking.channel if self.booking is not None else "text"

    @property
    def outstanding(self) -> bool:
        """A confirmation (of a booking, a move or a cancellation) awaits its calendar call."""
        return self.change is not None or self.pending_booking is not None

    @property
    def booked(self) -> Booking | None:
        """The call this conversation booked, as the calendar holds it."""
        b = self.booking
        return b if b is not None and b.event_id is not None else None

    @property
    def pending_booking(self) -> Booking | None:
        """A confirmation recorded whose calendar call has not been seen to succeed."""
        if self.booking is not None and self.booking.event_id is None:
            return self.booking
        return None


class ExpiredMarker(msgspec.Struct, frozen=True, array_like=True):
    """What was pending (or booked) when the conversation was last written, and its version.

    A booked marker lets a "yes" that arrives after the conversation expired still hear
    ``already_booked`` with the event, never ``nothing_pending``.
    """

    version: int
    lead: str
    start: int
    booking: Booking | None = None
    kind: str = "book"  # what was pending: a booking proposal, or a move or cancellation of ``booking``


class HistoryEntry(msgspec.Struct, frozen=True, array_like=True):
    """One applied write of a conversation, appended in the same script that applies it (spec 4.5).

    ``at`` is epoch milliseconds of the engine's clock; ``trigger`` and ``outcome`` name what the
    write did ("recorded": a confirmation recorded before its calendar call); ``text`` and
    ``channel`` are the words that caused it (for a settled confirmation: the confirming words).
    """

    at: int
    version: int
    channel: str
    text: str
    message_id: str | None
    state_from: str
    trigger: str
    state: str
    outcome: str
    event_id: str | None = None


class StoredReply(msgspec.Struct, frozen=True, array_like=True):
    """A turn's reply, filed under its ``message_id`` so a retried message gets it back unchanged."""

    version: int
    state: State
    outcome: str
    text: str
    channel: str
    proposal: tuple[str, int, int] | None = None  # lead, start, end
    event: tuple[str, int, int, str, str] | None = None  # id, start, end, lead, idempotency key
    kind: str = "book"


_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(Record)
_marker_decoder = msgspec.json.Decoder(ExpiredMarker)
_reply_decoder = msgspec.json.Decoder(StoredReply)


def encode(value: Record | ExpiredMarker | StoredReply | HistoryEntry) -> bytes:
    return _encoder.encode(value)


def decode_record(raw: bytes) -> Record:
    """Decode a schema-2 record; raises ``msgspec.DecodeError`` or ``ValueError`` when unreadable."""
    record = _record_decoder.decode(raw)
    if record.schema_version != SCHEMA_VERSION:
        raise ValueError(f"unknown schema_version {record.schema_version}")
    return check_record(record)


def decode_marker(raw: bytes) -> ExpiredMarker:
    """Decode a marker; raises like ``decode_record`` when it is unreadable or inconsistent."""
    marker = _marker_decoder.decode(raw)
    _check_epoch("marker start", marker.start)
    _check_positive("marker version", marker.version)
    if marker.booking is not None:
        _check_booking(marker.booking)
    return marker


_history_decoder = msgspec.json.Decoder(HistoryEntry)


def decode_history(raw: bytes) -> HistoryEntry:
    return _history_decoder.decode(raw)


def decode_reply(raw: bytes) -> StoredReply:
    reply = _reply_decoder.decode(raw)
    if reply.proposal is not None:
        _check_span("reply proposal", reply.proposal[1], reply.proposal[2])
    if reply.event is not None:
        _check_span("reply event", reply.event[1], reply.event[2])
    return reply


# --- semantic checks: a record that decodes but contradicts itself is as unreadable as bytes -----


def check_record(record: Record) -> Record:
    """``record`` if its fields agree with each other and with its state, else ``ValueError``."""
    for name in ("seq", "updated", "nonce"):
        if getattr(record, name) < 0:
            raise ValueError(f"{name} is negative")
    if record.proposal is not None:
        _check_span("proposal", record.proposal.start, record.proposal.end)
    if record.request is not None:
        _check_epoch("request anchor", record.request.anchor)
    if record.booking is not None:
        _check_booking(record.booking)
    if record.change is not None:
        _check_change(record)
    _check_state(record)
    return record


def _check_state(record: Record) -> None:
    state = record.state
    if state is State.AWAITING_CONFIRMATION and record.proposal is None:
        raise ValueError("awaiting_confirmation without a proposal")
    if state is State.RESCHEDULING and record.request is None:
        raise ValueError("rescheduling without a request")
    if record.pending_booking is not None and state is not State.AWAITING_CONFIRMATION:
        raise ValueError(f"a confirmation outstanding in state {state.value}")
    changes = (record.proposal.kind if record.proposal else "book", record.request.kind if record.request else "book")
    if any(kind not in _KINDS for kind in changes):
        raise ValueError(f"unknown proposal kind in {changes}")
    if changes != ("book", "book") and record.booked is None:
        raise ValueError("a change of the booked call without a booked call")


_KINDS = frozenset({"book", "move", "cancel"})


def _check_change(record: Record) -> None:
    change = record.change
    assert change is not None
    if change.kind not in ("move", "cancel"):
        raise ValueError(f"unknown change {change.kind!r}")
    _check_span("change", change.start, change.end)
    booked = record.booked
    if booked is None or booked.event_id != change.event_id:
        raise ValueError("a change of a call this conversation did not book")
    if record.state is not State.AWAITING_CONFIRMATION:
        raise ValueError(f"a change outstanding in state {record.state.value}")


def _check_booking(booking: Booking) -> None:
    _check_span("booking", booking.start, booking.end)
    if not booking.key:
        raise ValueError("a booking without an idempotency key")
    if booking.channel not in ("text", "voice"):
        raise ValueError(f"unknown channel {booking.channel!r}")


def _check_span(what: str, start: int, end: int) -> None:
    _check_epoch(f"{what} start", start)
    _check_epoch(f"{what} end", end)
    if not 0 < end - start <= MAX_SLOT_SECONDS:
        raise ValueError(f"{what} ends {end - start} s after it starts")


def _check_epoch(what: str, value: int) -> None:
    if not MIN_EPOCH <= value <= MAX_EPOCH:
        raise ValueError(f"{what} {value} is out of range")


def _check_positive(what: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{what} {value} is not positive")


def utc(epoch: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)
