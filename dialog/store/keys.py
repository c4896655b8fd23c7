"""Every Redis key the engine writes, and every TTL, in one place.

A conversation's keys share the hash tag ``{tenant:conversation}``, so in Redis Cluster they
land in one slot and one Lua script may touch them all. Ids are percent-encoded, so no
character of an id (``{``, ``}``, ``:``, ``*``, newlines...) can close the tag or reach another
conversation's key.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

PREFIX = "dialog"
DEFAULT_TTL_SECONDS = 600
# The expired-proposal marker outlives the conversation, so a late "yes" hears that its
# proposal expired; the spec bounds its life to 1-24 h.
MARKER_EXTRA_SECONDS = 6 * 3600
MARKER_MIN_SECONDS = 3600
MARKER_MAX_SECONDS = 24 * 3600
# A record that could not be read is moved aside for inspection, and kept this long.
QUARANTINE_TTL_SECONDS = 7 * 24 * 3600
# A recorded confirmation must outlive any calendar outage: while one is outstanding, the
# conversation (and its replies) live this long instead of ``ttl_seconds``; the sweep settles
# it long before. Settling it brings the conversation's TTL back to ``ttl_seconds``.
PENDING_BOOKING_TTL_SECONDS = 30 * 24 * 3600
# The replies filed under message ids: the last this many, per conversation.
REMEMBERED_MESSAGES = 16
# The tokens of a conversation's writes are remembered this long, so a compare-and-set whose
# reply was lost and that redis-py sends again recognises its own landed write, however many
# writes landed after it. The retry comes within ~1.6 s (see redis_store's failure policy);
# a host's own, slower client policy still fits in 30 s.
WRITES_MEMORY_SECONDS = 30
# The history of applied turns: the last this many, kept this long after the last turn (and
# never less than the conversation itself lives).
HISTORY_ENTRIES = 200
DEFAULT_HISTORY_TTL_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class ConversationKeys:
    """The keys of one conversation of one tenant, computed once when the keys are made."""

    tenant_id: str
    conversation_id: str
    tag: str = field(init=False, compare=False, repr=False)
    # A hash: ``v`` the version, ``r`` the record.
    conversation: str = field(init=False, compare=False, repr=False)
    # What was pending, kept past the conversation's TTL to explain an expiry.
    expired_marker: str = field(init=False, compare=False, repr=False)
    # A list of the last replies, each ``<len(message_id)>|<message_id><reply>``, newest first.
    replies: str = field(init=False, compare=False, repr=False)
    # A sorted set of the conversation's recent write tokens, scored by when (ms) they landed.
    writes: str = field(init=False, compare=False, repr=False)
    # A list of the conversation's applied turns, oldest first (spec 4.5).
    history: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        tag = _tag(self.tenant_id, self.conversation_id)
        base = f"{PREFIX}:{tag}:"
        for name, value in (
            ("tag", tag),
            ("conversation", base + "conv"),
            ("expired_marker", base + "pending"),
            ("replies", base + "replies"),
            ("writes", base + "writes"),
            ("history", base + "history"),
        ):
            object.__setattr__(self, name, value)

    @property
    def all(self) -> list[str]:
        """The keys a turn reads and writes, in the order the store's scripts take them."""
        return [self.conversation, self.expired_marker, self.replies, self.writes, self.history]

    @classmethod
    def parse(cls, key: str) -> ConversationKeys | None:
        """The conversation a conversation key belongs to (None for any other key)."""
        match = _CONVERSATION_KEY.fullmatch(key)
        if match is None:
            return None
        return cls(unquote(match["tenant"]), unquote(match["conversation"]))

    def quarantine(self, stamp: int, kind: str = "conv") -> str:
        """Where an unreadable value of one of the conversation's keys is moved aside."""
        suffix = "" if kind == "conv" else f":{kind}"
        return f"{PREFIX}:{self.tag}:corrupt:{stamp}{suffix}"


def marker_ttl_seconds(conversation_ttl: int) -> int:
    """The marker's TTL: past the conversation's own, within the 1-24 h bounds."""
    wanted = conversation_ttl + MARKER_EXTRA_SECONDS
    return max(MARKER_MIN_SECONDS, min(MARKER_MAX_SECONDS, wanted))


def scan_pattern(tenant_id: str | None = None) -> str:
    """Matches every conversation key, or one tenant's (for sweeps and tests)."""
    tenant = "*" if tenant_id is None else _escape(tenant_id)
    return f"{PREFIX}:{{{tenant}:*}}:conv"


_CONVERSATION_KEY = re.compile(re.escape(PREFIX) + r":\{(?P<tenant>[^:{}]+):(?P<conversation>[^:{}]+)\}:conv")


@functools.lru_cache(maxsize=4096)
def _tag(tenant_id: str, conversation_id: str) -> str:
    """The hash tag of a conversation, computed once per recent conversation (a turn asks ~6 times)."""
    return "{" + _escape(tenant_id) + ":" + _escape(conversation_id) + "}"


def _escape(value: str) -> str:
    # Ids made only of characters quote() leaves alone need no quoting (the common case, and
    # measured at ~1.5 us a call); anything else is percent-encoded, so the mapping stays injective.
    if _PLAIN.fullmatch(value):
        return value
    return quote(value, safe="")


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")


@dataclass(frozen=True, slots=True)
class CalendarKeys:
    """The keys of one tenant's calendar (``RedisCalendar``).

    They share the hash tag ``{tenant}``, so a tenant's calendar is one cluster slot and one Lua
    script may check and write it atomically. The tenant id is percent-encoded as above, so the
    tag holds no ``:``, ``{`` or ``}`` and never equals a conversation's tag. An empty tenant id
    would make an empty tag, which Redis Cluster ignores; ``RedisCalendar`` refuses it.

    These keys are records, not conversation state: they carry no TTL (spec 4.2);
    ``RedisCalendar.trim`` removes what ended long ago.
    """

    tenant_id: str

    @property
    def tag(self) -> str:
        return "{" + _escape(self.tenant_id) + "}"

    @property
    def busy(self) -> str:
        """A sorted set of busy intervals scored by start (UTC epoch seconds), members ``<start>:<end>:<kind>:<id>``.

        ``kind`` is ``e`` (an event, ``id`` its event id) or ``b`` (a block).
        """
        return f"{PREFIX}:cal:{self.tag}:busy"

    @property
    def events(self) -> str:
        """A hash: event id -> the event as a JSON array ``[id, start, end, lead, idempotency key]``."""
        return f"{PREFIX}:cal:{self.tag}:events"

    @property
    def keys(self) -> str:
        """A hash of idempotency keys: ``b:<key>`` -> the event id it booked; ``m:<key>`` and
        ``c:<key>`` -> the result of that move or cancel (the event JSON, or ``""`` for none)."""
        return f"{PREFIX}:cal:{self.tag}:keys"

    @property
    def changes(self) -> str:
        """A sorted set of the ``m:``/``c:`` fields of ``keys``, scored by the end of the event they
        describe (or the cancel's time when it found nothing), so that ``trim`` finds old ones."""
        return f"{PREFIX}:cal:{self.tag}:changes"

    @property
    def meta(self) -> str:
        """A hash: ``longest`` the longest interval ever added (s), bounding overlap queries."""
        return f"{PREFIX}:cal:{self.tag}:meta"

    @property
    def all(self) -> list[str]:
        """Every key of the calendar, in the order the calendar's scripts take them."""
        return [self.busy, self.events, self.keys, self.changes, self.meta]

    @classmethod
    def parse(cls, key: str) -> CalendarKeys | None:
        """The tenant a calendar key belongs to (None for any other key)."""
        match = _CALENDAR_KEY.fullmatch(key)
        return None if match is None else cls(unquote(match["tenant"]))


# Matches every key of every tenant's calendar (for ``RedisCalendar.trim`` over all tenants).
CALENDAR_SCAN_PATTERN = f"{PREFIX}:cal:{{*}}:*"
_CALENDAR_KEY = re.compile(re.escape(PREFIX) + r":cal:\{(?P<tenant>[^:{}]+)\}:(?:busy|events|keys|changes|meta)")
