"""Checks on what callers pass in: text, ids, channels, times. Refusals are ``InvalidInput``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dialog.errors import InvalidInput
from dialog.results import Channel

MAX_TEXT_BYTES = 4096
MAX_ID_BYTES = 256
# A start may lie at most this far ahead (spec 4.1).
MAX_AHEAD = dt.timedelta(days=366)


def text(value: object, **where: str | None) -> str:
    """Non-empty, valid Unicode, at most 4,096 bytes of UTF-8."""
    checked = _unicode(value, "text", MAX_TEXT_BYTES, **where)
    if not checked.strip():
        raise InvalidInput("text is empty", field="text", **where)
    return checked


def identifier(value: object, field: str) -> str:
    """A conversation or tenant id: any characters, non-empty, at most 256 bytes of UTF-8."""
    checked = _unicode(value, field, MAX_ID_BYTES)
    if not checked:
        raise InvalidInput(f"{field} is empty", field=field)
    return checked


def lead(value: object, **where: str | None) -> str:
    checked = _unicode(value, "lead", MAX_ID_BYTES, **where).strip()
    if not checked:
        raise InvalidInput("lead is empty", field="lead", **where)
    return checked


def channel(value: object) -> Channel:
    try:
        return Channel(value if isinstance(value, str) else repr(value))
    except ValueError:
        raise InvalidInput(f"channel must be 'text' or 'voice', not {value!r}", field="channel") from None


def future_start(value: object, now: dt.datetime, **where: str | None) -> dt.datetime:
    """An aware datetime that is not in the past."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput("start must be a timezone-aware datetime", field="start", **where)
    if value < now:
        raise InvalidInput(f"start {value.isoformat()} is in the past", field="start", **where)
    if value - now > MAX_AHEAD:
        raise InvalidInput(f"start {value.isoformat()} is more than a year ahead", field="start", **where)
    return value


def message_id(value: object, **where: str | None) -> str | None:
    """A caller's message id: None, or 1-256 bytes of valid Unicode."""
    if value is None:
        return None
    checked = _unicode(value, "message_id", MAX_ID_BYTES, **where)
    if not checked:
        raise InvalidInput("message_id is empty", field="message_id", **where)
    return checked


def _unicode(value: object, field: str, limit: int, **where: str | None) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, not {type(value).__name__}", field=field, **where)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} is not valid Unicode (lone surrogates)", field=field, **where) from None
    if size > limit:
        raise InvalidInput(f"{field} is {size} bytes; the limit is {limit}", field=field, **where)
    return value


MAX_ALTERNATIVES = 10


@dataclass(frozen=True, slots=True)
class Hearing:
    """What a recogniser said about a voice transcript: its confidence and its n-best alternatives."""

    confidence: float | None
    alternatives: tuple[tuple[str, float], ...]


def transcript(value: object, **where: str | None) -> str:
    """A voice transcript: like ``text``, but empty is allowed (silence, nothing recognised)."""
    checked = _unicode(value, "text", MAX_TEXT_BYTES, **where)
    return checked.strip()


def hearing(confidence: object, alternatives: object) -> Hearing | None:
    """Confidences in [0, 1]; at most 10 alternatives, each a (transcript, confidence) pair."""
    if confidence is None and not alternatives:
        return None
    pairs: list[tuple[str, float]] = []
    if alternatives is not None:
        if not isinstance(alternatives, list | tuple) or len(alternatives) > MAX_ALTERNATIVES:
            raise InvalidInput(f"alternatives must be a list of at most {MAX_ALTERNATIVES} pairs", field="alternatives")
        for item in alternatives:
            if not isinstance(item, list | tuple) or len(item) != 2:
                raise InvalidInput("each alternative is a (transcript, confidence) pair", field="alternatives")
            pairs.append((_unicode(item[0], "alternatives", MAX_TEXT_BYTES), _score(item[1], "alternatives")))
    return Hearing(None if confidence is None else _score(confidence, "confidence"), tuple(pairs))


def _score(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidInput(f"{field}: a confidence is a number from 0 to 1, not {value!r}", field=field)
    return float(value)
