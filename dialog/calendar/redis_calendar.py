"""A calendar in Redis: events, busy time and idempotency keys of each tenant, shared by every process.

Layout (``dialog.store.keys.CalendarKeys``): per tenant, five keys under one hash tag, so a
tenant's calendar is one cluster slot:

* ``busy``: a sorted set of every busy interval (events and blocks), scored by start in UTC epoch
  seconds, member ``<start>:<end>:<kind>:<id>``; an overlap query reads
  ``ZRANGEBYSCORE busy (start - longest) (end`` and keeps what ends after ``start``;
* ``events``: a hash, event id -> ``[id, start, end, lead, idempotency key, note]`` (JSON,
  msgspec; the note is the booking's evidence, spec 4.5). Records written before the note existed
  have five elements and read with the note ""; a reader ignores elements after the sixth;
* ``keys``: a hash of idempotency keys: ``b:<key>`` -> event id; ``m:<key>``/``c:<key>`` -> the
  result of that move/cancel, so a replay returns it and changes nothing more;
* ``changes``: a sorted set of those ``m:``/``c:`` fields, scored by the end of their event;
* ``meta``: a hash, ``longest`` the longest interval ever added, in whole seconds.

Times are stored as UTC epoch seconds (an integer, with a decimal fraction only for sub-second
times) and returned as aware datetimes in the tenant's timezone (``schedule(tenant).tz``).

Every call is one round trip: a Lua script (``EVALSHA``; redis-py loads it once per server on
``NOSCRIPT``) that first checks the Redis type of every key it reads, then reads, checks and writes
atomically; so two processes can never book overlapping events for one tenant. ``events()`` is one
``HVALS``; ``trim()`` is one script call per batch.

Retention: the calendar's keys have no TTL (they are records, not conversation state: spec 4.2).
Old events are removed with :meth:`RedisCalendar.trim`, e.g. from a daily job::

    RedisCalendar(client).trim(before=now - dt.timedelta(days=90))   # every tenant (SCAN)

which removes the events (and blocks) that ended at or before the cutoff, their booking
idempotency keys and busy entries, and the move/cancel results of events that ended by then.

Errors: every redis-py error becomes ``CalendarUnavailable`` (chained ``from`` it); a calendar key
holding another Redis type, or an event record that cannot be read, is ``CalendarUnavailable``
naming the key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import msgspec
import redis
from redis.exceptions import RedisClusterException

from dialog.calendar.base import Event, Interval, Schedule
from dialog.errors import CalendarUnavailable, EventNotFound, InvalidInput, SlotTaken
from dialog.store import keys as K

# Shared by every script. KEYS: busy, events, keys, changes, meta (CalendarKeys.all).
_PRELUDE = """
local WANT = {'zset', 'hash', 'hash', 'zset', 'hash'}
local function foreign()
  for i, key in ipairs(KEYS) do
    local kind = redis.call('TYPE', key)['ok']
    if kind ~= 'none' and kind ~= WANT[i] then return {'wrongtype', key, kind, WANT[i]} end
  end
  return false
end
local function longest()
  return tonumber(redis.call('HGET', KEYS[5], 'longest') or '0') or 0
end
local function grow(s, e)
  local length = math.ceil(tonumber(e) - tonumber(s))
  if length > longest() then redis.call('HSET', KEYS[5], 'longest', string.format('%d', length)) end
end
-- a busy member: start, end, kind (e or b), id
local function member(m)
  return string.match(m, '^([^:]+):([^:]+):(%a):(.+)$')
end
-- an event record: '["<id>",' start end ',<lead>,<key>]' or ',<lead>,<key>,<note>]' (and
-- whatever a later version appends): the tail after the end time is kept verbatim by a move
local function span(record)
  return string.match(record, '^(%["[^"]*",)([^,]+),([^,]+)(,.*)$')
end
-- the busy members overlapping [s, e), but the event `except`; with `limit` > 0, up to about that
-- many. Those starting in [s, e) all overlap; of those starting before s (at most `longest` s
-- before), only the ones ending after s do.
local function overlapping(s, e, except, limit)
  local found = {}
  local start = tonumber(s)
  local from = string.format('%.17g', start - longest() - 1)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], from, '(' .. s)) do
    local _, m_end, _, id = member(m)
    if m_end and tonumber(m_end) > start and id ~= except then
      found[#found + 1] = m
      if #found == limit then return found end
    end
  end
  local within
  if limit > 0 then
    within = redis.call('ZRANGEBYSCORE', KEYS[1], s, '(' .. e, 'LIMIT', 0, limit + 1)
  else
    within = redis.call('ZRANGEBYSCORE', KEYS[1], s, '(' .. e)
  end
  for _, m in ipairs(within) do
    if except == '' or select(4, member(m)) ~= except then found[#found + 1] = m end
  end
  return found
end
local function add(s, e, kind, id)
  redis.call('ZADD', KEYS[1], s, s .. ':' .. e .. ':' .. kind .. ':' .. id)
  grow(s, e)
end
"""


def _script(body: str) -> str:
    return _PRELUDE + "local bad = foreign()\nif bad then return bad end\n" + body


# ARGV: block id, start, end.
BLOCK_SCRIPT = _script("add(ARGV[2], ARGV[3], 'b', ARGV[1])\nreturn {'ok'}\n")

# ARGV: start, end. Returns {'ok', member...}: every busy member overlapping [start, end).
BUSY_SCRIPT = _script(
    """
local found = overlapping(ARGV[1], ARGV[2], '', 0)
table.insert(found, 1, 'ok')
return found
"""
)

# ARGV: idempotency key, new event id, start, end, event record.
# Returns {'existing', record} (the key booked it before), {'taken'}, or {'booked', record}.
BOOK_SCRIPT = _script(
    """
local field = 'b:' .. ARGV[1]
local known = redis.call('HGET', KEYS[3], field)
if known then
  local record = redis.call('HGET', KEYS[2], known)
  if record then return {'existing', record} end
end
if #overlapping(ARGV[3], ARGV[4], '', 1) > 0 then return {'taken'} end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[5])
redis.call('HSET', KEYS[3], field, ARGV[2])
add(ARGV[3], ARGV[4], 'e', ARGV[2])
return {'booked', ARGV[5]}
"""
)

# ARGV: idempotency key. Returns {'ok', record or false}.
FIND_SCRIPT = _script(
    """
local known = redis.call('HGET', KEYS[3], 'b:' .. ARGV[1])
if not known then return {'ok', false} end
return {'ok', redis.call('HGET', KEYS[2], known)}
"""
)

# ARGV: idempotency key, event id, start, end.
# Returns {'done', record} (a replay), {'missing'}, {'taken'}, {'moved', record}, or {'corrupt', key, id}.
MOVE_SCRIPT = _script(
    """
local field = 'm:' .. ARGV[1]
local done = redis.call('HGET', KEYS[3], field)
if done then return {'done', done} end
local record = redis.call('HGET', KEYS[2], ARGV[2])
if not record then return {'missing'} end
local head, s0, e0, tail = span(record)
if not head then return {'corrupt', KEYS[2], ARGV[2]} end
if #overlapping(ARGV[3], ARGV[4], ARGV[2], 1) > 0 then return {'taken'} end
local moved = head .. ARGV[3] .. ',' .. ARGV[4] .. tail
redis.call('ZREM', KEYS[1], s0 .. ':' .. e0 .. ':e:' .. ARGV[2])
add(ARGV[3], ARGV[4], 'e', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], moved)
redis.call('HSET', KEYS[3], field, moved)
redis.call('ZADD', KEYS[4], ARGV[4], field)
return {'moved', moved}
"""
)

# ARGV: idempotency key, event id, now. Returns {'done', record or ''} (a replay),
# {'cancelled', record or ''} ('' when the event was already gone), or {'corrupt', key, id}.
CANCEL_SCRIPT = _script(
    """
local field = 'c:' .. ARGV[1]
local done = redis.call('HGET', KEYS[3], field)
if done then return {'done', done} end
local record = redis.call('HGET', KEYS[2], ARGV[2])
local score = ARGV[3]
if record then
  local head, s0, e0 = span(record)
  local ok, decoded = pcall(cjson.decode, record)
  if not head or not ok or type(decoded) ~= 'table' or type(decoded[5]) ~= 'string' then
    return {'corrupt', KEYS[2], ARGV[2]}
  end
  redis.call('HDEL', KEYS[2], ARGV[2])
  local booking = 'b:' .. decoded[5]
  if redis.call('HGET', KEYS[3], booking) == ARGV[2] then redis.call('HDEL', KEYS[3], booking) end
  redis.call('ZREM', KEYS[1], s0 .. ':' .. e0 .. ':e:' .. ARGV[2])
  score = e0
else
  record = ''
end
redis.call('HSET', KEYS[3], field, record)
redis.call('ZADD', KEYS[4], score, field)
return {'cancelled', record}
"""
)

# ARGV: cutoff, offset, batch size. Examines up to a batch of busy members that start before the
# cutoff, from `offset` (the members an earlier batch kept), and removes those that ended at or
# before it (an event with its record and booking key); then up to a batch of move/cancel results
# of events that ended by then. Returns {'ok', events removed, members kept, members examined,
# results removed}.
TRIM_SCRIPT = _script(
    """
local cutoff = tonumber(ARGV[1])
local batch = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', ARGV[2], ARGV[3])
local removed, kept = 0, 0
for _, m in ipairs(batch) do
  local _, m_end, kind, id = member(m)
  if m_end and tonumber(m_end) <= cutoff then
    redis.call('ZREM', KEYS[1], m)
    if kind == 'e' then
      local record = redis.call('HGET', KEYS[2], id)
      if record then
        local ok, decoded = pcall(cjson.decode, record)
        if ok and type(decoded) == 'table' and type(decoded[5]) == 'string' then
          local booking = 'b:' .. decoded[5]
          if redis.call('HGET', KEYS[3], booking) == id then redis.call('HDEL', KEYS[3], booking) end
        end
        redis.call('HDEL', KEYS[2], id)
      end
      removed = removed + 1
    end
  else
    kept = kept + 1
  end
end
local results = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, field in ipairs(results) do
  redis.call('HDEL', KEYS[3], field)
  redis.call('ZREM', KEYS[4], field)
end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('DEL', KEYS[5]) end
return {'ok', removed, kept, #batch, #results}
"""
)

_SCRIPTS = {
    "block": BLOCK_SCRIPT,
    "busy": BUSY_SCRIPT,
    "book": BOOK_SCRIPT,
    "find": FIND_SCRIPT,
    "move": MOVE_SCRIPT,
    "cancel": CANCEL_SCRIPT,
    "trim": TRIM_SCRIPT,
}
_TRIM_BATCH = 500
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


class _Record(msgspec.Struct, array_like=True, frozen=True):
    """A stored event: ``[id, start, end, lead, idempotency key, note]``.

    A time is an int, or a Decimal when it has a fraction. The note (the booking's evidence) is
    optional: records written before it existed have five elements. Elements after the sixth are
    ignored, so a record a later version extends still reads here.
    """

    id: str
    start: int | decimal.Decimal
    end: int | decimal.Decimal
    lead: str
    key: str
    note: str = ""


_RECORD = msgspec.json.Decoder(_Record)


class RedisCalendar:
    """Events, busy time and idempotency keys of each tenant in Redis: durable, shared by every process.

    ``client`` is a synchronous redis-py client (``redis.Redis`` or ``redis.cluster.RedisCluster``).
    Schedules are process configuration, as in ``InMemoryCalendar``: ``schedule()`` does no I/O.
    """

    def __init__(
        self, client: Any, schedule: Schedule | None = None, *, schedules: Mapping[str, Schedule] | None = None
    ) -> None:
        self._client = client
        self._default = schedule or Schedule()
        self._schedules: dict[str, Schedule] = dict(schedules or {})
        # register_script does no I/O: it hashes the source; the first call loads it on NOSCRIPT
        self._scripts = {name: client.register_script(source) for name, source in _SCRIPTS.items()}

    def __repr__(self) -> str:
        return f"RedisCalendar({self._client!r})"

    def set_schedule(self, tenant_id: str, schedule: Schedule) -> None:
        self._schedules[tenant_id] = schedule

    def schedule(self, tenant_id: str) -> Schedule:
        return self._schedules.get(tenant_id, self._default)

    def block(self, tenant_id: str, start: dt.datetime, end: dt.datetime) -> None:
        """Mark [start, end) busy for the tenant (one round trip)."""
        _check_interval(start, end)
        self._run("block", tenant_id, f"blk_{uuid.uuid4().hex}", _token(start), _token(end))

    def busy(self, tenant_id: str, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        """Busy time and events overlapping [start, end), ordered by start (one round trip)."""
        _check_interval(start, end)
        reply = self._run("busy", tenant_id, _token(start), _token(end))
        tz = self.schedule(tenant_id).tz
        keys = self._keys(tenant_id)
        return [_interval(raw, tz, keys) for raw in reply[1:]]

    def book(
        self, tenant_id: str, *, lead: str, start: dt.datetime, end: dt.datetime, idempotency_key: str, note: str = ""
    ) -> Event:
        """Create the event once (overlap check and write in one script, one round trip).

        The same key again returns the first event (with its first note) and books nothing;
        ``SlotTaken`` when [start, end) overlaps busy time or another event. ``note`` (the
        booking's evidence) is stored in the event's record and kept by a move.
        """
        _check_interval(start, end)
        event_id = f"evt_{uuid.uuid4().hex}"
        record = _record(event_id, start, end, lead, idempotency_key, note)
        reply = self._run("book", tenant_id, idempotency_key, event_id, _token(start), _token(end), record)
        if _text(reply[0]) == "taken":
            raise SlotTaken("the slot overlaps busy time or another event", tenant_id=tenant_id)
        return self._event(tenant_id, reply[1])

    def find(self, tenant_id: str, idempotency_key: str) -> Event | None:
        """The event booked under ``idempotency_key``, if any (one round trip)."""
        _utf8(idempotency_key, "idempotency_key")
        reply = self._run("find", tenant_id, idempotency_key)
        return None if reply[1] is None else self._event(tenant_id, reply[1])

    def events(self, tenant_id: str) -> list[Event]:
        """Every event of the tenant, ordered by start (one ``HVALS``)."""
        keys = self._keys(tenant_id)
        with _translated(keys, keys.events):
            raws = self._client.hvals(keys.events)
        return sorted((self._event(tenant_id, raw) for raw in raws), key=lambda e: (e.start, e.id))

    def move(
        self, tenant_id: str, event_id: str, *, start: dt.datetime, end: dt.datetime, idempotency_key: str
    ) -> Event:
        """Move the event to [start, end), keeping its id; idempotent by key (one script, one round trip).

        ``SlotTaken`` when the new time overlaps busy time or another event (the event itself does
        not count); ``EventNotFound`` when the tenant has no such event.
        """
        _check_interval(start, end)
        _utf8(event_id, "event_id")
        _utf8(idempotency_key, "idempotency_key")
        reply = self._run("move", tenant_id, idempotency_key, event_id, _token(start), _token(end))
        status = _text(reply[0])
        if status == "missing":
            raise EventNotFound(f"no event {event_id!r}", tenant_id=tenant_id)
        if status == "taken":
            raise SlotTaken("the new time overlaps busy time or another event", tenant_id=tenant_id)
        return self._event(tenant_id, reply[1])

    def cancel(self, tenant_id: str, event_id: str, *, idempotency_key: str) -> Event | None:
        """Remove the event; returns it as it was, or None when it was already gone; idempotent by key."""
        _utf8(event_id, "event_id")
        _utf8(idempotency_key, "idempotency_key")
        reply = self._run("cancel", tenant_id, idempotency_key, event_id, _token(dt.datetime.now(dt.UTC)))
        return None if not reply[1] else self._event(tenant_id, reply[1])

    def trim(self, tenant_id: str | None = None, *, before: dt.datetime) -> int:
        """Retention: remove what ended at or before ``before``; returns how many events were removed.

        Removes the tenant's events that ended by then, with their booking idempotency keys and
        busy entries, blocks that ended by then, and the move/cancel results recorded for events
        that ended by then (a cancel that found nothing: by the time it was made). Every tenant's
        calendar when ``tenant_id`` is None (found by ``SCAN``, on every node of a cluster). Runs in
        batches of a few hundred entries, each one atomic script call, so Redis is never blocked
        for long. Events are records: nothing else ever removes them (no TTL).
        """
        if before.tzinfo is None:
            raise InvalidInput("the cutoff must be a timezone-aware datetime", field="before")
        if tenant_id is not None:
            return self._trim(tenant_id, _token(before))
        tenants: set[str] = set()
        with _translated(K.CalendarKeys("*")):
            for raw in self._client.scan_iter(match=K.CALENDAR_SCAN_PATTERN, count=500):
                keys = K.CalendarKeys.parse(_text(raw))
                if keys is not None:
                    tenants.add(keys.tenant_id)
        return sum(self._trim(tenant, _token(before)) for tenant in sorted(tenants))

    def _trim(self, tenant_id: str, cutoff: str) -> int:
        removed, offset = 0, 0
        while True:
            reply = self._run("trim", tenant_id, cutoff, offset, _TRIM_BATCH)
            removed += int(reply[1])
            offset += int(reply[2])
            if int(reply[3]) < _TRIM_BATCH and int(reply[4]) < _TRIM_BATCH:
                return removed

    def _keys(self, tenant_id: str) -> K.CalendarKeys:
        _utf8(tenant_id, "tenant_id")
        if not tenant_id:
            raise InvalidInput("tenant_id is empty", field="tenant_id")
        return K.CalendarKeys(tenant_id)

    def _run(self, script: str, tenant_id: str, *args: str | int | bytes) -> list[Any]:
        """One script call on the tenant's keys; raises ``CalendarUnavailable`` for foreign data."""
        keys = self._keys(tenant_id)
        with _translated(keys):
            reply: list[Any] = self._scripts[script](keys=keys.all, args=list(args))
        status = _text(reply[0])
        if status == "wrongtype":
            key, kind, wanted = (_text(part) for part in reply[1:4])
            raise CalendarUnavailable(
                f"the calendar key {key!r} holds a Redis {kind}, not a {wanted}", tenant_id=tenant_id
            )
        if status == "corrupt":
            raise CalendarUnavailable(
                f"the event {_text(reply[2])!r} at {_text(reply[1])!r} cannot be read", tenant_id=tenant_id
            )
        return reply

    def _event(self, tenant_id: str, raw: Any) -> Event:
        keys = self._keys(tenant_id)
        try:
            r = _RECORD.decode(_bytes(raw))
            tz = self.schedule(tenant_id).tz
            return Event(r.id, _time(r.start, tz), _time(r.end, tz), r.lead, r.key, r.note)
        except (msgspec.DecodeError, ValueError, OverflowError, OSError, decimal.InvalidOperation) as exc:
            raise CalendarUnavailable(
                f"an event at {keys.events!r} cannot be read: {exc}", tenant_id=tenant_id
            ) from exc


def _record(event_id: str, start: dt.datetime, end: dt.datetime, lead: str, key: str, note: str) -> bytes:
    """The stored event: its times as the same number tokens the busy set's members hold."""
    _utf8(lead, "lead")
    _utf8(key, "idempotency_key")
    _utf8(note, "note")
    raw = [event_id, msgspec.Raw(_token(start).encode()), msgspec.Raw(_token(end).encode()), lead, key, note]
    return msgspec.json.encode(raw)


def _token(value: dt.datetime) -> str:
    """UTC epoch seconds, exactly: an integer, or a decimal fraction for sub-second times."""
    micros = (value - _EPOCH) // _MICROSECOND
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    if fraction == 0:
        return f"{sign}{seconds}"
    return f"{sign}{seconds}.{fraction:06d}".rstrip("0")


def _time(seconds: int | decimal.Decimal, tz: dt.tzinfo) -> dt.datetime:
    if isinstance(seconds, int):
        return dt.datetime.fromtimestamp(seconds, tz)  # exact for whole seconds, and fast
    return (_EPOCH + dt.timedelta(microseconds=int(seconds * 1_000_000))).astimezone(tz)


def _seconds(token: str) -> int | decimal.Decimal:
    return decimal.Decimal(token) if "." in token else int(token)


def _interval(raw: Any, tz: dt.tzinfo, keys: K.CalendarKeys) -> Interval:
    start, end, *_ = _text(raw).split(":", 3)
    try:
        return _time(_seconds(start), tz), _time(_seconds(end), tz)
    except (ValueError, OverflowError, OSError, decimal.InvalidOperation) as exc:
        raise CalendarUnavailable(
            f"a busy entry at {keys.busy!r} cannot be read: {_text(raw)!r}", tenant_id=keys.tenant_id
        ) from exc


def _check_interval(start: dt.datetime, end: dt.datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("calendar times must be timezone-aware datetimes", field="start")
    if end <= start:
        raise InvalidInput("an interval must end after it starts", field="end")


def _utf8(value: str, field: str) -> None:
    try:
        value.encode()
    except UnicodeEncodeError:
        raise InvalidInput(f"{field} is not valid Unicode (lone surrogates)", field=field) from None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


@contextlib.contextmanager
def _translated(keys: K.CalendarKeys, key: str | None = None) -> Iterator[None]:
    """Turns redis-py's errors into ``CalendarUnavailable`` naming the tenant (and the key, if known)."""
    try:
        yield
    except redis.ResponseError as exc:
        if "WRONGTYPE" in str(exc):  # the scripts check types first; for HVALS and a last line of defence
            where = repr(key) if key is not None else f"the calendar of {keys.tenant_id!r}"
            raise CalendarUnavailable(
                f"the calendar key {where} holds another Redis type ({exc})", tenant_id=keys.tenant_id
            ) from exc
        raise CalendarUnavailable(f"Redis refused a calendar call: {exc}", tenant_id=keys.tenant_id) from exc
    except (redis.RedisError, RedisClusterException) as exc:
        # a cluster client with no reachable node raises RedisClusterException, not a RedisError
        raise CalendarUnavailable(
            f"Redis is unavailable: {type(exc).__name__}: {exc}", tenant_id=keys.tenant_id
        ) from exc


__all__ = ["RedisCalendar"]
