"""The design ``dialog`` replaces, kept as the benchmark's yardstick: a plain pending-action store.

One JSON value per conversation: ``SET ... EX 600`` when something is proposed, ``GET`` at the
start of every turn, ``DEL`` once it is booked. A regex decides "yes" and another "move"; there is
no locking, no version, no idempotency key (two "yes" at once book twice, a crash between the
calendar call and the ``DEL`` books again on the next "yes"). Round trips: 1 to propose, 2 to
move (GET, SET), 2 to confirm (GET, DEL): 5 per 3-turn dialog, 1.67 per turn.

It uses the same calendar as the engine (a move looks for the next free slot, a "yes" books),
so the comparison measures the conversation machinery, not the calendar.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from dialog.calendar.base import Calendar
from dialog.calendar.slots import find_slot

TTL_SECONDS = 600
YES = re.compile(r"\b(yes|yeah|yep|sure|ok|okay|go ahead|sounds good)\b", re.IGNORECASE)
MOVE = re.compile(r"\b(move|another time|change|reschedule)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class BaselineReply:
    outcome: str  # "proposed", "rescheduled", "booked", "nothing_pending", "reprompted"
    text: str


class Baseline:
    """``propose`` and ``handle`` as the old service did them: GET / SET EX / DEL, nothing more."""

    def __init__(self, client: Any, *, calendar: Calendar, clock: Any) -> None:
        self.redis = client
        self.calendar = calendar
        self.clock = clock

    def propose(self, conversation_id: str, *, lead: str, start: dt.datetime, tenant_id: str) -> BaselineReply:
        end = start + self.calendar.schedule(tenant_id).slot
        self._save(tenant_id, conversation_id, {"lead": lead, "start": start.isoformat(), "end": end.isoformat()})
        return BaselineReply("proposed", f"Shall I book {lead} at {start:%H:%M}?")

    def handle(self, conversation_id: str, text: str, *, tenant_id: str) -> BaselineReply:
        raw = self.redis.get(_key(tenant_id, conversation_id))
        if raw is None:
            return BaselineReply("nothing_pending", "Nothing is waiting for confirmation.")
        pending = json.loads(raw)
        start, end = dt.datetime.fromisoformat(pending["start"]), dt.datetime.fromisoformat(pending["end"])
        if YES.search(text):
            self.calendar.book(tenant_id, lead=pending["lead"], start=start, end=end, idempotency_key=uuid.uuid4().hex)
            self.redis.delete(_key(tenant_id, conversation_id))
            return BaselineReply("booked", f"Booked {pending['lead']} at {start:%H:%M}.")
        if MOVE.search(text):
            slot = find_slot(self.calendar, tenant_id, at_or_after=start, now=self.clock(), strictly_after=True)
            if slot is None:
                return BaselineReply("reprompted", "No other time is free.")
            end = slot + self.calendar.schedule(tenant_id).slot
            self._save(tenant_id, conversation_id, {**pending, "start": slot.isoformat(), "end": end.isoformat()})
            return BaselineReply("rescheduled", f"How about {slot:%H:%M}?")
        return BaselineReply("reprompted", f"Shall I book {pending['lead']} at {start:%H:%M}?")

    def _save(self, tenant_id: str, conversation_id: str, pending: dict[str, str]) -> None:
        self.redis.set(_key(tenant_id, conversation_id), json.dumps(pending), ex=TTL_SECONDS)


def _key(tenant_id: str, conversation_id: str) -> str:
    return f"pending:{{{tenant_id}:{conversation_id}}}"
