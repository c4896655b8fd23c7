"""The stored conversation record and its schema version, encoded with msgspec.

Schema 2 (today's) stores each struct as a JSON array (field names cost more memory than the
values) in a plain Redis string ``<version>|<json>``; schema 1 stored the same fields as JSON
objects in a hash ``{v: version, r: json}``, and is migrated on read (``dialog.store.migrations``).
"""

from __future__ import annotations

import msgspec

from dialog.machine import State

SCHEMA_VERSION = 2


class StoredProposal(msgspec.Struct, frozen=True, array_like=True):
    """A proposal as stored: times are UTC epoch seconds; ``seq`` numbers it in its conversation."""

    lead: str
    start: int
    end: int
    seq: int


class Booking(msgspec.Struct, frozen=True, array_like=True):
    """A confirmed proposal. ``event_id`` is None while the calendar call is outstanding (outbox)."""

    key: str
    lead: str
    start: int
    end: int
    event_id: str | None = None


class Request(msgspec.Struct, frozen=True, array_like=True):
    """While rescheduling: whom the call is with and the time the next answer is relative to."""

    lead: str
    anchor: int
    has_time: bool = True


class LastTransition(msgspec.Struct, frozen=True, array_like=True):
    """The last arrow the conversation took (its destination is the record's state)."""

    trigger: str
    source: str
    outcome: str


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
    # Set by the store on every write: two writers that computed the same record still write
    # different bytes, so a retried script can tell its own landed write from another's.
    nonce: int = 0

    @property
    def pending_booking(self) -> Booking | None:
        """A confirmation recorded whose calendar call has not been seen to succeed."""
        if self.booking is not None and self.booking.event_id is None:
            return self.booking
        return None


class ExpiredMarker(msgspec.Struct, frozen=True, array_like=True):
    """What was pending when the conversation was last written, and its version."""

    version: int
    lead: str
    start: int


_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(Record)
_marker_decoder = msgspec.json.Decoder(ExpiredMarker)


def encode(value: Record | ExpiredMarker) -> bytes:
    return _encoder.encode(value)


def decode_record(raw: bytes) -> Record:
    """Decode a schema-2 record; raises ``msgspec.DecodeError`` or ``ValueError`` when unreadable."""
    record = _record_decoder.decode(raw)
    if record.schema_version != SCHEMA_VERSION:
        raise ValueError(f"unknown schema_version {record.schema_version}")
    return record


def decode_marker(raw: bytes) -> ExpiredMarker:
    return _marker_decoder.decode(raw)
