"""The wire format: the pydantic models of request and response bodies, and the documented errors."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import msgspec
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from dialog.calendar.base import Event
from dialog.machine import State
from dialog.results import Channel, HistoryEntry, Outcome, Proposal, Reply, Snapshot
from dialog.voice import Expectations

__all__ = [
    "AlternativeIn",
    "ErrorOut",
    "EventOut",
    "ExpectOut",
    "Health",
    "HistoryEntryOut",
    "HistoryOut",
    "MessageIn",
    "ProposalIn",
    "ProposalOut",
    "ReplyOut",
    "SnapshotOut",
    "error_responses",
    "reply_json",
]

Time = Annotated[
    dt.datetime,
    PlainSerializer(lambda t: t.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2026-11-24T10:00:00+00:00"}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Not blank: some character that Python's str.strip() keeps. \s alone is not enough: JSON Schema
# regexes do not count the separators U+001C-U+001F as whitespace, Python does.
_NOT_BLANK = r"[^\s\x1c-\x1f]"


class AlternativeIn(_Strict):
    """One of the recogniser's other hypotheses for a voice turn."""

    text: Annotated[str, Field(strict=True)]
    confidence: Annotated[float, Field(ge=0, le=1, strict=True)]


class MessageIn(_Strict):
    """What the user said. The tenant comes from the API key, never from here."""

    # The schema says what the validator enforces: text must hold something except on voice.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"channel": {"const": "voice"}}, "required": ["channel"]},
            "else": {"properties": {"text": {"pattern": _NOT_BLANK}}},
        }
    )

    channel: Channel = Channel.TEXT  # first: the check on text depends on it
    text: Annotated[
        str,
        Field(description="At most 4,096 bytes of UTF-8 (else 413); blank only on voice (nothing was heard)."),
    ]
    confidence: Annotated[
        float | None,
        Field(ge=0, le=1, strict=True, description="Voice: the recogniser's confidence in `text`; null: unknown."),
    ] = None
    alternatives: Annotated[
        list[AlternativeIn], Field(max_length=10, description="Voice: the recogniser's n-best alternatives.")
    ] = []

    @field_validator("text")
    @classmethod
    def _said_something_on_text(cls, text: str, info: ValidationInfo) -> str:
        text.encode("utf-8")  # lone surrogates raise UnicodeEncodeError, a ValueError: 422 on body.text
        if info.data.get("channel", Channel.TEXT) is Channel.TEXT and not re.search(_NOT_BLANK, text):
            raise ValueError("text is blank (on the voice channel an empty transcript is allowed)")
        return text


class ProposalIn(_Strict):
    """A proposal decided by the host's own NLU: ``start`` or the first free slot at or after it."""

    lead: Annotated[str, Field(pattern=_NOT_BLANK, description="Who the call is with; at most 256 bytes of UTF-8.")]
    start: Annotated[AwareDatetime, Field(description="With an offset; not in the past (else 422 invalid_input).")]
    channel: Channel = Channel.TEXT


class ProposalOut(BaseModel):
    start: Time
    end: Time
    lead: str
    kind: Literal["book", "move", "cancel"] = Field(
        "book", description='"book" a new call; "move" the booked call (`event`) to `start`; "cancel" it.'
    )

    @classmethod
    def of(cls, p: Proposal | None) -> ProposalOut | None:
        return None if p is None else cls(start=p.start, end=p.end, lead=p.lead, kind=p.kind)  # type: ignore[arg-type]


class EventOut(BaseModel):
    id: str
    start: Time
    end: Time
    lead: str

    @classmethod
    def of(cls, e: Event | None) -> EventOut | None:
        return None if e is None else cls(id=e.id, start=e.start, end=e.end, lead=e.lead)


class ExpectOut(BaseModel):
    """What the next turn is expected to contain (spec 4.4): phrases for ASR hints, JSGF and SRGS grammars."""

    phrases: list[str]
    jsgf: str
    srgs: str

    @classmethod
    def of(cls, e: Expectations) -> ExpectOut:
        return cls(phrases=list(e.phrases), jsgf=e.jsgf, srgs=e.srgs)


class ReplyOut(BaseModel):
    """One turn's answer: the state reached, what happened, what to tell the user."""

    conversation_id: str
    state: State
    outcome: Outcome
    text: str
    proposal: ProposalOut | None
    event: EventOut | None
    version: int
    channel: Channel
    expect: ExpectOut | None = Field(
        None, description="Voice turns: what the next turn is expected to contain (ASR hints and grammars)."
    )

    @classmethod
    def of(cls, r: Reply) -> ReplyOut:
        voice = r.channel is Channel.VOICE and r.expect is not None
        return cls(
            conversation_id=r.conversation_id,
            state=r.state,
            outcome=r.outcome,
            text=r.text,
            proposal=ProposalOut.of(r.proposal),
            event=EventOut.of(r.event),
            version=r.version,
            channel=r.channel,
            expect=ExpectOut.of(r.expect) if voice else None,
        )


_ENCODE = msgspec.json.Encoder().encode


def reply_json(r: Reply) -> bytes:
    """``ReplyOut.of(r).model_dump_json()``, as bytes, without building the models (a fifth of the time).

    The hot path answers with it; tests/test_server_hot.py holds it to the routes' answers.
    """
    p, e = r.proposal, r.event
    voice = r.channel is Channel.VOICE and r.expect is not None
    return _ENCODE(
        {
            "conversation_id": r.conversation_id,
            "state": r.state.value,
            "outcome": r.outcome.value,
            "text": r.text,
            "proposal": None
            if p is None
            else {"start": p.start.isoformat(), "end": p.end.isoformat(), "lead": p.lead, "kind": p.kind},
            "event": None
            if e is None
            else {"id": e.id, "start": e.start.isoformat(), "end": e.end.isoformat(), "lead": e.lead},
            "version": r.version,
            "channel": r.channel.value,
            "expect": {"phrases": list(r.expect.phrases), "jsgf": r.expect.jsgf, "srgs": r.expect.srgs}
            if voice
            else None,
        }
    )


class HistoryEntryOut(BaseModel):
    """One applied write: when, which version, whose words on which channel, what it did."""

    at: Time
    version: int
    channel: str
    text: str
    message_id: str | None
    state_from: State
    trigger: str
    state: State
    outcome: str = Field(description='a turn outcome, or "recorded": a confirmation written before its calendar call')
    event_id: str | None

    @classmethod
    def of(cls, e: HistoryEntry) -> HistoryEntryOut:
        return cls(**{name: getattr(e, name) for name in cls.model_fields})


class HistoryOut(BaseModel):
    conversation_id: str
    entries: list[HistoryEntryOut]


class SnapshotOut(BaseModel):
    """The conversation as stored."""

    conversation_id: str
    state: State
    proposal: ProposalOut | None
    event: EventOut | None
    version: int
    last_trigger: str | None
    last_source: State | None
    last_outcome: str | None
    booking_pending: bool

    @classmethod
    def of(cls, s: Snapshot) -> SnapshotOut:
        return cls(
            conversation_id=s.conversation_id,
            state=s.state,
            proposal=ProposalOut.of(s.proposal),
            event=EventOut.of(s.event),
            version=s.version,
            last_trigger=s.last_trigger,
            last_source=s.last_source,
            last_outcome=s.last_outcome,
            booking_pending=s.booking_pending,
        )


class ErrorOut(BaseModel):
    """Every error: a stable ``code`` to branch on, a ``message`` for people; ``field`` when one is at fault."""

    code: str
    message: str
    field: str | None = None


class Health(BaseModel):
    status: Literal["ok", "ready", "unavailable"]
    checks: dict[str, str] = {}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "no API key, or an unknown one (code unauthorized)",
        404: "no such conversation for this tenant (code not_found)",
        409: "the stored conversation could not be read; it was set aside, the next message starts afresh "
        "(code corrupt_state)",
        413: "text over 4,096 bytes of UTF-8 (text_too_large), or a body over 64 KiB (body_too_large)",
        422: "a body, query or header that does not match the schema, or an id that is not UTF-8 once "
        "percent-decoded (invalid_request), or values the engine refuses: empty text, an id over 256 bytes, "
        "a start in the past (invalid_input)",
        503: "Redis or the calendar is unreachable (store_unavailable, calendar_unavailable); see Retry-After",
    }
    errors: dict[int | str, dict[str, Any]] = {s: {"model": ErrorOut, "description": described[s]} for s in statuses}
    errors[500] = {"model": ErrorOut, "description": "an unexpected error; no details are given (internal_error)"}
    return errors
