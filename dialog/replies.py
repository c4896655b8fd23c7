"""What the user reads or hears: (outcome, state, channel) and the proposal -> one plain sentence or two.

Times are said in the tenant's timezone: "Tue 24 Nov, 10:00 (Europe/Berlin)" on text,
"Tuesday the 24th at 10 AM" on voice. No emoji, no markup, never an empty reply.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, TypeVar

from dialog.calendar.base import Event, Schedule
from dialog.machine import State
from dialog.results import Channel, Outcome, Proposal

_T = TypeVar("_T")

HELP = 'I can schedule calls for you, for example: "schedule a call with Dana tomorrow at 10am".'
UNHEARD = "Sorry, I didn't catch that. "


@dataclass(slots=True)
class Said:
    """The facts a reply may mention."""

    outcome: Outcome
    state: State
    channel: Channel
    schedule: Schedule
    proposal: Proposal | None = None
    event: Event | None = None
    requested: dt.datetime | None = None
    expired_lead: str | None = None
    expired_start: dt.datetime | None = None
    expired_kind: str = "book"
    # ("unreadable", words: "" if nothing was heard) | ("timezone", "")
    # | ("reason", "taken" | "hours" | "day" | "grid" | "past")
    note: tuple[str, str] | None = None


def render(said: Said) -> str:
    return _RENDERERS[said.outcome](said, _Words(said.channel, said.schedule))


_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class _Words:
    """Formats times and leads for one channel."""

    def __init__(self, channel: Channel, schedule: Schedule) -> None:
        self.voice = channel is Channel.VOICE
        self.schedule = schedule

    # Names by index rather than strftime (locale-independent, and ~5x cheaper on every reply).
    def when(self, value: dt.datetime) -> str:
        local = value.astimezone(self.schedule.tz)
        if self.voice:
            return f"{_DAYS[local.weekday()]} the {_ordinal(local.day)} at {_spoken_time(local)}"
        day = f"{_DAYS[local.weekday()][:3]} {local.day} {_MONTHS[local.month]}"
        return f"{day}, {local.hour:02d}:{local.minute:02d} ({self.schedule.timezone})"

    def day(self, value: dt.datetime) -> str:
        local = value.astimezone(self.schedule.tz)
        if self.voice:
            return f"{_DAYS[local.weekday()]} the {_ordinal(local.day)}"
        return f"{_DAYS[local.weekday()][:3]} {local.day} {_MONTHS[local.month]}"

    @staticmethod
    def call(lead: str | None) -> str:
        return f"a call with {lead}" if lead else "a call"

    @staticmethod
    def your_call(lead: str | None) -> str:
        return f"your call with {lead}" if lead else "your call"


_REASONS = {
    "taken": "{} is already taken.",
    "hours": "{} is outside working hours.",
    "day": "{} is not a working day.",
    "grid": "{} is not on the slot grid.",
    "past": "{} is in the past.",
}


def _not_offered(s: Said, w: _Words) -> str:
    """Why the time asked for is not the one offered (spec 4.3: the true reason)."""
    if not s.requested:
        return ""
    reason = s.note[1] if s.note is not None and s.note[0] == "reason" else "taken"
    if reason == "day":
        return f"{w.day(s.requested)} is not a working day. "
    if reason == "grid":
        return f"Calls start every {s.schedule.slot_minutes} minutes, so {w.when(s.requested)} can't be booked. "
    return _REASONS.get(reason, "{} isn't free.").format(w.when(s.requested)) + " "


def _proposed(s: Said, w: _Words) -> str:
    p = _need(s.proposal)
    lead_in = _not_offered(s, w)
    return f"{lead_in}{_question(s, w, p)}"


def _rescheduled(s: Said, w: _Words) -> str:
    p = _need(s.proposal)
    lead_in = _not_offered(s, w)
    if p.kind == "move":
        return f"{lead_in}How about {w.when(p.start)} instead? {_question(s, w, p)}"
    return f"{lead_in}How about {w.when(p.start)} instead? Shall I book {w.call(p.lead)} then?"


def _question(s: Said, w: _Words, p: Proposal) -> str:
    """What a proposal asks: to book a call, or to move or cancel the booked one."""
    if p.kind == "move":
        was = f" from {w.when(s.event.start)}" if s.event is not None else ""
        return f"Shall I move {w.your_call(p.lead)}{was} to {w.when(p.start)}?"
    if p.kind == "cancel":
        return f"Shall I cancel {w.your_call(p.lead)} on {w.when(p.start)}?"
    return f"Shall I book {w.call(p.lead)} on {w.when(p.start)}?"


def _moved(s: Said, w: _Words) -> str:
    e = _need(s.event)
    return f"Moved: {w.your_call(e.lead)} is now on {w.when(e.start)}."


def _call_cancelled(s: Said, w: _Words) -> str:
    e = s.event
    what = f"{w.your_call(e.lead)} on {w.when(e.start)}" if e is not None else "your call"
    return f"Cancelled: {what} is no longer in the calendar."


def _kept(s: Said, w: _Words) -> str:
    e = s.event
    if e is None:
        return "Okay, nothing was changed."
    return f"Okay, nothing was changed: {w.your_call(e.lead)} stays on {w.when(e.start)}."


def _booked(s: Said, w: _Words) -> str:
    e = _need(s.event)
    return f"Booked: {w.call(e.lead)} on {w.when(e.start)}."


def _already_booked(s: Said, w: _Words) -> str:
    e = s.event
    if e is None:
        return "That is already booked; nothing new was booked."
    return f"That is already booked: {w.call(e.lead)} on {w.when(e.start)}. Nothing new was booked."


def _cancelled(s: Said, w: _Words) -> str:
    return "Okay, I won't book it. Nothing was booked."


def _reprompted(s: Said, w: _Words) -> str:
    return _lead_note(s) + _reprompt_body(s, w)


def _lead_note(s: Said) -> str:
    if s.note is None:
        return ""
    kind, words = s.note
    if kind == "unreadable":  # no words: nothing was heard (an empty transcript on voice)
        return f'Sorry, I couldn\'t read "{words}" as a day or time, so nothing was changed. ' if words else UNHEARD
    if kind == "timezone":
        return f"All times are in {zone_in_words(s.schedule.timezone)}. "
    return ""


# The answer to "is that eastern time?": the zone's everyday name and its city; any other zone by
# its IANA name ("Asia/Kolkata time").
_ZONE_NAMES: Final = {
    **dict.fromkeys(("America/New_York", "America/Detroit", "America/Toronto", "America/Indiana/Indianapolis"),
                    "Eastern Time"),
    **dict.fromkeys(("America/Chicago", "America/Winnipeg"), "Central Time"),
    **dict.fromkeys(("America/Denver", "America/Edmonton", "America/Phoenix", "America/Boise"), "Mountain Time"),
    **dict.fromkeys(("America/Los_Angeles", "America/Vancouver"), "Pacific Time"),
    "America/Anchorage": "Alaska Time", "Pacific/Honolulu": "Hawaii Time",
    **dict.fromkeys(("Europe/London", "Europe/Belfast"), "UK Time"), "Europe/Dublin": "Irish Time",
    **dict.fromkeys(("Europe/Lisbon", "Atlantic/Canary"), "Western European Time"),
    **dict.fromkeys(
        ("Europe/Berlin", "Europe/Paris", "Europe/Madrid", "Europe/Rome", "Europe/Amsterdam", "Europe/Brussels",
         "Europe/Vienna", "Europe/Zurich", "Europe/Stockholm", "Europe/Oslo", "Europe/Copenhagen", "Europe/Warsaw",
         "Europe/Prague", "Europe/Budapest", "Europe/Luxembourg"),
        "Central European Time",
    ),
    **dict.fromkeys(("Europe/Athens", "Europe/Helsinki", "Europe/Kyiv", "Europe/Kiev", "Europe/Bucharest",
                     "Europe/Sofia", "Europe/Riga", "Europe/Vilnius", "Europe/Tallinn"), "Eastern European Time"),
    "Asia/Tokyo": "Japan Time",
    **dict.fromkeys(("Australia/Sydney", "Australia/Melbourne", "Australia/Brisbane"), "Australian Eastern Time"),
}  # fmt: skip


def zone_in_words(timezone: str) -> str:
    """ "Eastern Time (New York)" for America/New_York, "UTC" for UTC, else "Asia/Kolkata time"."""
    if timezone in ("UTC", "Etc/UTC", "GMT", "Etc/GMT"):
        return "UTC"
    name = _ZONE_NAMES.get(timezone)
    if name is None:
        return f"{timezone} time"
    return f"{name} ({timezone.rsplit('/', 1)[-1].replace('_', ' ')})"


def _reprompt_body(s: Said, w: _Words) -> str:
    if s.state is State.AWAITING_CONFIRMATION and s.proposal is not None:
        p = s.proposal
        if w.voice:  # spoken: one plain question the recogniser's grammar can answer (spec 4.4)
            return f"{_question(s, w, p)} Please say yes or no."
        if p.kind != "book":
            return f"{_question(s, w, p)} Say yes to do it, or no to keep the call as it is."
        return f"{_question(s, w, p)} Say yes to book it, no to cancel, or name another time."
    if s.state is State.RESCHEDULING:
        return "Which day or time would suit you instead? Or say cancel."
    return HELP


def _nothing_pending(s: Said, w: _Words) -> str:
    return "There is nothing waiting for confirmation, so nothing was booked. " + HELP


def _expired(s: Said, w: _Words) -> str:
    at = f" on {w.when(s.expired_start)}" if s.expired_start else ""
    if s.expired_kind in ("move", "cancel") and s.event is not None:
        verb = "move" if s.expired_kind == "move" else "cancel"
        return (
            f"Sorry, the proposal to {verb} {w.your_call(s.expired_lead)} expired, so nothing was changed: "
            f"it stays on {w.when(s.event.start)}."
        )
    what = w.call(s.expired_lead)
    return f"Sorry, the proposal to book {what}{at} expired, so nothing was booked. Ask me again and I'll find a time."


def _slot_taken(s: Said, w: _Words) -> str:
    taken = f"{w.when(s.requested)} was" if s.requested else "That slot was"
    moving = s.proposal is not None and s.proposal.kind == "move"
    head = f"Sorry, {taken} taken in the meantime, so {'the call was not moved' if moving else 'nothing was booked'}."
    if s.proposal is None:
        return (
            f"{head} There's no free slot in the next {w.schedule.horizon_days} days. Which other day would suit you?"
        )
    return f"{head} The next free slot is {w.when(s.proposal.start)}. Shall I book that instead?"


def _no_free_slot(s: Said, w: _Words) -> str:
    since = f" from {w.day(s.requested)}" if s.requested else ""
    return f"There's no free slot in the {w.schedule.horizon_days} days{since}. Which other day would suit you?"


_RENDERERS = {
    Outcome.PROPOSED: _proposed,
    Outcome.RESCHEDULED: _rescheduled,
    Outcome.BOOKED: _booked,
    Outcome.ALREADY_BOOKED: _already_booked,
    Outcome.CANCELLED: _cancelled,
    Outcome.REPROMPTED: _reprompted,
    Outcome.NOTHING_PENDING: _nothing_pending,
    Outcome.EXPIRED: _expired,
    Outcome.SLOT_TAKEN: _slot_taken,
    Outcome.NO_FREE_SLOT: _no_free_slot,
    Outcome.MOVED: _moved,
    Outcome.CALL_CANCELLED: _call_cancelled,
    Outcome.KEPT: _kept,
}


def _need(value: _T | None) -> _T:
    assert value is not None, "the engine passes what this outcome mentions"
    return value


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _spoken_time(value: dt.datetime) -> str:
    hour = value.hour % 12 or 12
    half = "AM" if value.hour < 12 else "PM"
    if value.hour == 12 and value.minute == 0:
        return "noon"
    return f"{hour} {half}" if value.minute == 0 else f"{hour}:{value.minute:02d} {half}"
