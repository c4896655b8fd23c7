"""Reading records written by older schemas. Each reader returns today's ``Record``.

Schema 1 (dialog 0.1, first releases): a Redis hash ``{v: version, r: json}`` whose JSON holds
objects with field names, ``updated`` as a float and ``last.dest``. Read here, written back as
schema 2 by the conversation's next turn.
"""

from __future__ import annotations

import msgspec

from dialog.machine import State, Trigger
from dialog.results import Outcome
from dialog.store.record import (
    SCHEMA_VERSION,
    Booking,
    LastTransition,
    Record,
    Request,
    StoredProposal,
    check_record,
)


class _ProposalV1(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lead: str
    start: int
    end: int
    seq: int


class _BookingV1(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: str
    lead: str
    start: int
    end: int
    event_id: str | None = None


class _RequestV1(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lead: str
    anchor: int
    has_time: bool = True


class _LastV1(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    trigger: str
    source: str
    dest: str
    outcome: str


class _RecordV1(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    schema_version: int
    state: State
    proposal: _ProposalV1 | None = None
    request: _RequestV1 | None = None
    booking: _BookingV1 | None = None
    seq: int = 0
    last: _LastV1 | None = None
    updated: float = 0.0
    nonce: int = 0


_v1 = msgspec.json.Decoder(_RecordV1)


def from_v1(raw: bytes) -> Record:
    """A schema-1 record as today's; raises ``msgspec.DecodeError`` or ``ValueError`` when unreadable."""
    old = _v1.decode(raw)  # an unknown state, trigger or outcome below raises ValueError
    if old.schema_version != 1:
        raise ValueError(f"expected schema_version 1 in a schema-1 hash, found {old.schema_version}")
    p, r, b, last = old.proposal, old.request, old.booking, old.last
    record = Record(
        schema_version=SCHEMA_VERSION,
        state=old.state,
        proposal=StoredProposal(p.lead, p.start, p.end, p.seq) if p else None,
        request=Request(r.lead, r.anchor, r.has_time) if r else None,
        booking=Booking(b.key, b.lead, b.start, b.end, b.event_id) if b else None,
        seq=old.seq,
        last=LastTransition(Trigger(last.trigger), State(last.source), Outcome(last.outcome)) if last else None,
        updated=int(old.updated),
        nonce=old.nonce,
    )
    return check_record(record)
