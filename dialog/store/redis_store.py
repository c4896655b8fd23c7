"""The conversation store on Redis: one-round-trip load, Lua compare-and-set, quarantine.

Every write is a compare-and-set on the version stored in front of the record
(``<version>|<json>``), which Lua reads without parsing JSON; a lost race returns the current
record in the same round trip, so the engine can decide again without reading twice. Records
of an older schema are read through ``dialog.store.migrations``. Redis errors are translated
here and never leave this module.
"""

from __future__ import annotations

import contextlib
import inspect
import random
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import msgspec
import redis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from dialog.errors import CorruptState, InvalidInput, StoreUnavailable
from dialog.machine import State
from dialog.store import keys as K
from dialog.store.cluster import apply_cluster_failure_policy, is_cluster_client
from dialog.store.migrations import from_v1
from dialog.store.record import (
    Booking,
    ExpiredMarker,
    HistoryEntry,
    Record,
    StoredReply,
    decode_history,
    decode_marker,
    decode_record,
    decode_reply,
    encode,
)

# What a turn needs to know, in one round trip: the conversation in any schema, the expired
# marker, and the reply filed under the caller's message id, each with its Redis type checked
# here, so that a foreign value at any key is reported, never a WRONGTYPE error mid-script.
# {kind, a, b, marker, reply, writes}: kind 0 none; 2 a string "<version>.<nonce>|<json>" (schema
# 2) in a; 1 a schema-1 hash, version in a and record in b; -1 another Redis type, named in a. The
# marker and the reply are false (none), a string, or {type name} when the key holds another
# type; writes and history are false, or {type name} when the write-token set is not a sorted
# set or the history not a list.
_CURRENT = """
local function conversation()
  local kind = redis.call('TYPE', KEYS[1])['ok']
  if kind == 'none' then return {0, false, false} end
  if kind == 'string' then return {2, redis.call('GET', KEYS[1]), false} end
  if kind == 'hash' then
    return {1, redis.call('HGET', KEYS[1], 'v'), redis.call('HGET', KEYS[1], 'r')}
  end
  return {-1, kind, false}
end
local function marker()
  local kind = redis.call('TYPE', KEYS[2])['ok']
  if kind == 'none' then return false end
  if kind == 'string' then return redis.call('GET', KEYS[2]) end
  return {kind}
end
local function reply(id)
  local kind = redis.call('TYPE', KEYS[3])['ok']
  if kind == 'none' then return false end
  if kind ~= 'list' then return {kind} end
  if id == '' then return false end
  local prefix = #id .. '|' .. id
  for _, item in ipairs(redis.call('LRANGE', KEYS[3], 0, -1)) do
    if string.sub(item, 1, #prefix) == prefix then return string.sub(item, #prefix + 1) end
  end
  return false
end
local function own(key, wanted)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'none' or kind == wanted then return false end
  return {kind}
end
local function current(id)
  local c = conversation()
  return {c[1], c[2], c[3], marker(), reply(id), own(KEYS[4], 'zset'), own(KEYS[5], 'list')}
end
local function token_of(cur)
  if cur[1] == 0 then return '0' end
  if cur[1] == 2 then return string.match(cur[2], '^(%d+%.%d+)|') end
  if cur[1] == 1 then return string.match(cur[2] or '', '^(%d+)$') end
  return nil
end
"""

# KEYS: conversation, expired marker, replies, write tokens, history. ARGV: message id ('' none).
LOAD_SCRIPT = _CURRENT + "return current(ARGV[1])\n"

# KEYS: conversation, expired marker, replies, write tokens, history.
# ARGV: expected token ("0": must not exist), new token, record, ttl ms, marker ('' deletes),
# marker ttl ms, this turn's message id ('' none), replies to keep, write-token memory ms, the
# history entry, history ttl ms, history entries to keep, then pairs of (message id, reply) to
# file. Writes only when the conversation stands at the expected
# token, every key holds its own type, and the message has no reply filed yet (a retried message
# is never applied again). Returns {1} when written, or when this very write landed before
# (redis-py sent the script again after its reply was lost; other writes may have landed since),
# else the current state (see _CURRENT) to decide again on.
CAS_SCRIPT = (
    _CURRENT
    + """
local cur = current(ARGV[7])
if cur[6] or cur[7] then return cur end
local token = token_of(cur)
if token == ARGV[2] or redis.call('ZSCORE', KEYS[4], ARGV[2]) then return {1} end
local expected = ARGV[1]
if expected == '0?' then  -- a blind create: only where nothing stands, not even an expiry marker
  if cur[1] ~= 0 or cur[4] then return cur end
  expected = '0'
end
if token ~= expected or type(cur[4]) == 'table' or cur[5] then return cur end
redis.call('SET', KEYS[1], ARGV[2] .. '|' .. ARGV[3], 'PX', ARGV[4])
if ARGV[5] == '' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])
end
for i = 13, #ARGV, 2 do
  redis.call('LPUSH', KEYS[3], #ARGV[i] .. '|' .. ARGV[i] .. ARGV[i + 1])
end
if #ARGV > 12 then redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[8]) - 1) end
redis.call('RPUSH', KEYS[5], ARGV[10])
redis.call('LTRIM', KEYS[5], -tonumber(ARGV[12]), -1)
redis.call('PEXPIRE', KEYS[5], ARGV[11])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[4], now, ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[9]))
redis.call('PEXPIRE', KEYS[4], ARGV[9])
return {1}
"""
)

# KEYS: a key, where to move it. ARGV: ttl ms. Moves an unreadable value aside.
QUARANTINE_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
"""

# The engine's failure timing: an unreachable Redis surfaces within ~1.6 s (3 tries of at most
# 0.4 s plus at most 0.35 s of backoff), inside the 2 s the spec allows. redis-py's default
# retry was measured stalling ~3 s on a refused port.
SOCKET_TIMEOUT = 0.4
CONNECT_TIMEOUT = 0.3
RETRIES = 2


def failure_policy() -> Retry:
    return Retry(ExponentialWithJitterBackoff(cap=0.2, base=0.05), RETRIES)


def apply_failure_policy(client: Any) -> None:
    """Give ``client`` the engine's timeouts and bounded retry (new connections pick them up)."""
    if is_cluster_client(client):
        apply_cluster_failure_policy(
            client, socket_timeout=SOCKET_TIMEOUT, connect_timeout=CONNECT_TIMEOUT, retries=RETRIES
        )
        return
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    if pool is None or not isinstance(kwargs, dict):
        return  # not a redis-py client: left as the host built it
    kwargs.update(socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT)
    if inspect.iscoroutinefunction(pool.disconnect):
        # redis.asyncio: connections are made on first use, from these kwargs.
        kwargs["retry"] = AsyncRetry(ExponentialWithJitterBackoff(cap=0.2, base=0.05), RETRIES)
        client.retry = kwargs["retry"]
        return
    if hasattr(client, "set_retry"):
        client.set_retry(failure_policy())
    else:
        kwargs["retry"] = failure_policy()
    # A connection keeps the timeouts it was made with, even when it reconnects: drop the ones
    # the host made before handing the client over, not only their sockets.
    pool.disconnect()
    pool.reset()


# The token of a conversation not read (a create-if-absent write): see CAS_SCRIPT.
BLIND = "0?"


@dataclass(slots=True)
class Stored:
    """A conversation as read: ``version`` 0 and ``record`` None when there is none."""

    version: int
    record: Record | None
    marker: ExpiredMarker | None = None
    # What the compare-and-set compares: "<version>.<write nonce>", so a conversation that
    # expired and started again at the same version can't be mistaken for its previous life.
    token: str = "0"
    # The reply already filed under the message id this read asked about.
    replay: StoredReply | None = None


@dataclass(slots=True)
class Commit:
    """The answer to a compare-and-set: ``ok``, and the record as it now stands."""

    ok: bool
    stored: Stored


class _Unreadable(Exception):
    """A value at one of the conversation's keys cannot be used; it is moved aside (CorruptState)."""

    def __init__(self, why: str, kind: str = "conv") -> None:
        super().__init__(why)
        self.kind = kind  # which key: "conv", "pending" (the marker), "replies" or "writes"


_TOKEN = re.compile(rb"([0-9]{1,15})\.([0-9]{1,20})")
_V1_VERSION = re.compile(rb"[0-9]{1,15}")


class StoreCodec:
    """The pure half of the store: script arguments out, Redis replies in. No I/O."""

    def __init__(self, ttl_seconds: int, history_ttl_seconds: int = K.DEFAULT_HISTORY_TTL_SECONDS) -> None:
        self.ttl_ms = ttl_seconds * 1000
        self.pending_ttl_ms = max(K.PENDING_BOOKING_TTL_SECONDS, ttl_seconds) * 1000
        self.marker_ttl_ms = K.marker_ttl_seconds(ttl_seconds) * 1000
        # the history lives at least as long as the conversation, whatever its TTL
        self.history_ttl_ms = max(history_ttl_seconds * 1000, self.pending_ttl_ms)

    def cas_args(
        self,
        expected: Stored,
        record: Record,
        message_id: str | None,
        receipts: Sequence[Receipt],
        entry: HistoryEntry,
    ) -> tuple[list[Any], Stored]:
        """Arguments of the CAS script writing ``record`` as the next version, stamped with a nonce."""
        version = expected.version + 1
        nonce = random.getrandbits(48)
        record = msgspec.structs.replace(record, nonce=nonce)
        written = Stored(version, record, None, f"{version}.{nonce}")
        marker = _marker_for(record, version)
        # A recorded confirmation must survive the conversation's TTL until it is settled.
        ttl = self.pending_ttl_ms if record.outstanding else self.ttl_ms
        # "0?": written blind (nothing was read); the script writes only where nothing stands
        expect = expected.token if expected.record else ("0?" if expected.token == BLIND else "0")
        args: list[Any] = [expect, written.token, encode(record), ttl, encode(marker) if marker else b""]
        args += [self.marker_ttl_ms, message_id or "", K.REMEMBERED_MESSAGES, K.WRITES_MEMORY_SECONDS * 1000]
        entry = msgspec.structs.replace(entry, version=version)
        args += [encode(entry), self.history_ttl_ms, K.HISTORY_ENTRIES]
        for receipt in receipts:
            args += [receipt.message_id, receipt.reply]
        return args, written

    def loaded(self, current: list[Any]) -> Stored:
        """The conversation from the load script's answer (see ``_CURRENT``); ``_Unreadable`` if unusable."""
        token, record = self._parse(current)
        marker = _marker(current[3])
        replay = _reply(current[4])
        if current[5] is not None:
            raise _Unreadable(f"the write-token key holds a Redis {_as_text(current[5][0])}", "writes")
        if current[6] is not None:
            raise _Unreadable(f"the history key holds a Redis {_as_text(current[6][0])}", "history")
        version = int(token.partition(".")[0])
        if record is None and marker is not None:
            version = marker.version  # versions keep growing across an expiry
        return Stored(version, record, marker, token, replay)

    def committed(self, reply: list[Any], written: Stored) -> Commit:
        if len(reply) == 1:
            return Commit(True, written)
        return Commit(False, self.loaded(reply))

    @staticmethod
    def _parse(current: list[Any]) -> tuple[str, Record | None]:
        kind, a, b = int(current[0]), current[1], current[2]
        try:
            if kind == 0:
                return "0", None
            if kind == 2:
                header, _, payload = _as_bytes(a).partition(b"|")
                token = _TOKEN.fullmatch(header)
                if token is None or int(token[1]) < 1:
                    raise ValueError(f"the version token {header[:40]!r} is not <version>.<nonce>")
                return header.decode(), decode_record(payload)
            if kind == 1:
                if a is None or _V1_VERSION.fullmatch(_as_bytes(a)) is None or int(a) < 1:
                    raise ValueError(f"the schema-1 version {a!r} is not a positive number")
                return _as_text(a), from_v1(_as_bytes(b))
        except (TypeError, ValueError, OverflowError, msgspec.DecodeError) as exc:
            raise _Unreadable(f"the stored record cannot be read: {exc}") from exc
        raise _Unreadable(f"the conversation key holds a Redis {_as_text(a)}, not a conversation")

    @staticmethod
    def corrupt(keys: K.ConversationKeys, why: str, key: str, kept_at: str | None) -> CorruptState:
        return CorruptState(
            why, key=key, kept_at=kept_at, tenant_id=keys.tenant_id, conversation_id=keys.conversation_id
        )


@dataclass(slots=True)
class Receipt:
    """A reply to file under a message id, in the same write as the state it reports."""

    message_id: str
    reply: bytes


def _key_of(keys: K.ConversationKeys, kind: str) -> str:
    kinds = {
        "conv": keys.conversation,
        "pending": keys.expired_marker,
        "replies": keys.replies,
        "writes": keys.writes,
        "history": keys.history,
    }
    return kinds[kind]


def _quarantine_keys(keys: K.ConversationKeys, kind: str) -> list[str]:
    return [_key_of(keys, kind), keys.quarantine(int(time.time() * 1000), kind)]


QUARANTINE_ARGS = [K.QUARANTINE_TTL_SECONDS * 1000]


class RedisStore:
    """Load and compare-and-set conversations on a synchronous redis-py client.

    With ``replicas=N`` every write is followed, in the same round trip (a pipeline), by
    ``WAIT N replica_timeout_ms``: a write that fewer than N replicas acknowledged in time is
    ``StoreUnavailable`` (it may have landed: retry with the same message id). Not on a cluster.
    """

    def __init__(
        self,
        client: Any,
        *,
        ttl_seconds: int,
        history_ttl_seconds: int = K.DEFAULT_HISTORY_TTL_SECONDS,
        replicas: int = 0,
        replica_timeout_ms: int = 250,
    ) -> None:
        if replicas and replica_timeout_ms >= SOCKET_TIMEOUT * 1000:
            raise InvalidInput(  # else the socket times out first and the write is retried blind
                f"replica_timeout_ms must be under the socket timeout ({SOCKET_TIMEOUT * 1000:.0f} ms)",
                field="replica_timeout_ms",
            )
        if replicas and is_cluster_client(client):
            raise InvalidInput("replicas=N (WAIT after each write) is not supported on Redis Cluster", field="replicas")
        self._replicas, self._replica_timeout_ms = replicas, replica_timeout_ms
        self._client = client
        self._codec = StoreCodec(ttl_seconds, history_ttl_seconds)
        self._load = client.register_script(LOAD_SCRIPT)
        self._cas = client.register_script(CAS_SCRIPT)
        self._quarantine = client.register_script(QUARANTINE_SCRIPT)

    def load(self, keys: K.ConversationKeys, message_id: str | None = None) -> Stored:
        """Read the record, the expiry marker and the message's filed reply in one round trip."""
        try:
            with _translated(keys):
                current = self._load(keys=keys.all, args=[message_id or ""])
            return self._codec.loaded(current)
        except _Unreadable as exc:
            self._corrupt(keys, exc)

    def commit(
        self,
        keys: K.ConversationKeys,
        expected: Stored,
        record: Record,
        entry: HistoryEntry,
        message_id: str | None = None,
        receipts: Sequence[Receipt] = (),
    ) -> Commit:
        """Write ``record`` as version ``expected.version + 1`` if nobody wrote in between."""
        args, written = self._codec.cas_args(expected, record, message_id, receipts, entry)
        try:
            with _translated(keys):
                reply = self._replicated(keys, args) if self._replicas else self._cas(keys=keys.all, args=args)
            return self._codec.committed(reply, written)
        except _Unreadable as exc:
            self._corrupt(keys, exc)

    def _replicated(self, keys: K.ConversationKeys, args: list[Any]) -> Any:
        """The compare-and-set and WAIT in one round trip; too few replicas is StoreUnavailable."""
        for _ in range(2):
            pipe = self._client.pipeline(transaction=False)
            pipe.evalsha(self._cas.sha, len(keys.all), *keys.all, *args)
            pipe.execute_command("WAIT", self._replicas, self._replica_timeout_ms)  # on the write's connection
            reply, acked = pipe.execute(raise_on_error=False)
            if not isinstance(reply, redis.exceptions.NoScriptError):
                break
            self._client.script_load(CAS_SCRIPT)  # first use on this server; nothing ran
        if isinstance(reply, Exception):
            raise reply
        if len(reply) == 1 and int(acked) < self._replicas:
            raise StoreUnavailable(
                f"the write reached {int(acked)} of {self._replicas} replicas within {self._replica_timeout_ms} ms; "
                "it may have landed: retry with the same message_id",
                tenant_id=keys.tenant_id,
                conversation_id=keys.conversation_id,
            )
        return reply

    def history(self, keys: K.ConversationKeys) -> list[HistoryEntry]:
        """The conversation's applied turns, oldest first (one round trip)."""
        try:
            with _translated(keys, "history"):
                raw = self._client.lrange(keys.history, 0, -1)
            return _entries(raw)
        except _Unreadable as exc:
            self._corrupt(keys, exc)

    def conversations(self, tenant_id: str | None = None) -> Iterator[K.ConversationKeys]:
        """Every stored conversation (of one tenant, or all), by SCAN: for sweeps, not for turns."""
        with _translated(K.ConversationKeys(tenant_id or "*", "*")):
            for raw in self._client.scan_iter(match=K.scan_pattern(tenant_id), count=500):
                keys = K.ConversationKeys.parse(_as_text(raw))
                if keys is not None:
                    yield keys

    def _corrupt(self, keys: K.ConversationKeys, exc: _Unreadable) -> NoReturn:
        names = _quarantine_keys(keys, exc.kind)
        with _translated(keys):
            moved = self._quarantine(keys=names, args=QUARANTINE_ARGS)
        raise StoreCodec.corrupt(keys, str(exc), names[0], names[1] if moved else None) from exc


class AsyncRedisStore:
    """The same store on a ``redis.asyncio`` client: same scripts, same codec, awaited I/O."""

    def __init__(
        self, client: Any, *, ttl_seconds: int, history_ttl_seconds: int = K.DEFAULT_HISTORY_TTL_SECONDS
    ) -> None:
        self._client = client
        self._codec = StoreCodec(ttl_seconds, history_ttl_seconds)
        self._load = client.register_script(LOAD_SCRIPT)
        self._cas = client.register_script(CAS_SCRIPT)
        self._quarantine = client.register_script(QUARANTINE_SCRIPT)

    async def load(self, keys: K.ConversationKeys, message_id: str | None = None) -> Stored:
        try:
            with _translated(keys):
                current = await self._load(keys=keys.all, args=[message_id or ""])
            return self._codec.loaded(current)
        except _Unreadable as exc:
            await self._corrupt(keys, exc)

    async def commit(
        self,
        keys: K.ConversationKeys,
        expected: Stored,
        record: Record,
        entry: HistoryEntry,
        message_id: str | None = None,
        receipts: Sequence[Receipt] = (),
    ) -> Commit:
        args, written = self._codec.cas_args(expected, record, message_id, receipts, entry)
        try:
            with _translated(keys):
                reply = await self._cas(keys=keys.all, args=args)
            return self._codec.committed(reply, written)
        except _Unreadable as exc:
            await self._corrupt(keys, exc)

    async def history(self, keys: K.ConversationKeys) -> list[HistoryEntry]:
        try:
            with _translated(keys, "history"):
                raw = await self._client.lrange(keys.history, 0, -1)
            return _entries(raw)
        except _Unreadable as exc:
            await self._corrupt(keys, exc)

    async def conversations(self, tenant_id: str | None = None) -> list[K.ConversationKeys]:
        found: list[K.ConversationKeys] = []
        with _translated(K.ConversationKeys(tenant_id or "*", "*")):
            async for raw in self._client.scan_iter(match=K.scan_pattern(tenant_id), count=500):
                keys = K.ConversationKeys.parse(_as_text(raw))
                if keys is not None:
                    found.append(keys)
        return found

    async def _corrupt(self, keys: K.ConversationKeys, exc: _Unreadable) -> NoReturn:
        names = _quarantine_keys(keys, exc.kind)
        with _translated(keys):
            moved = await self._quarantine(keys=names, args=QUARANTINE_ARGS)
        raise StoreCodec.corrupt(keys, str(exc), names[0], names[1] if moved else None) from exc


def _marker_for(record: Record, version: int) -> ExpiredMarker | None:
    """Remember what is pending (or booked), so a word after the TTL can be answered truthfully."""
    if record.proposal is not None:
        p = record.proposal
        return ExpiredMarker(version, p.lead, p.start, _booked(record), p.kind)
    if record.request is not None:
        r = record.request
        return ExpiredMarker(version, r.lead, r.anchor, _booked(record), r.kind)
    booked = _booked(record)
    if booked is not None and record.state is State.DONE:
        return ExpiredMarker(version, booked.lead, booked.start, booked, "booked")
    return None


def _booked(record: Record) -> Booking | None:
    b = record.booking
    return b if b is not None and b.event_id is not None else None


def _marker(raw: Any) -> ExpiredMarker | None:
    if raw is None:
        return None
    if isinstance(raw, list):
        raise _Unreadable(f"the expired-proposal marker holds a Redis {_as_text(raw[0])}", "pending")
    try:
        return decode_marker(_as_bytes(raw))
    except (ValueError, OverflowError, msgspec.DecodeError) as exc:
        raise _Unreadable(f"the expired-proposal marker cannot be read: {exc}", "pending") from exc


def _reply(raw: Any) -> StoredReply | None:
    if raw is None:
        return None
    if isinstance(raw, list):
        raise _Unreadable(f"the replies key holds a Redis {_as_text(raw[0])}", "replies")
    try:
        return decode_reply(_as_bytes(raw))
    except (ValueError, OverflowError, msgspec.DecodeError) as exc:
        raise _Unreadable(f"a filed reply cannot be read: {exc}", "replies") from exc


def _entries(raw: list[Any]) -> list[HistoryEntry]:
    try:
        return [decode_history(_as_bytes(item)) for item in raw]
    except (ValueError, msgspec.DecodeError) as exc:
        raise _Unreadable(f"a history entry cannot be read: {exc}", "history") from exc


def _as_text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _as_bytes(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


@contextlib.contextmanager
def _translated(keys: K.ConversationKeys, kind: str = "conv") -> Iterator[None]:
    """Turns redis-py's errors into ``StoreUnavailable`` naming the conversation."""
    try:
        yield
    except redis.ResponseError as exc:
        if "WRONGTYPE" in str(exc):  # the scripts check types first; kept as a last line of defence
            raise _Unreadable(f"a conversation key holds foreign data ({exc})", kind) from exc
        raise _unavailable(keys, exc) from exc
    except (redis.RedisError, RedisClusterException) as exc:
        # a cluster client with no reachable node raises RedisClusterException, not a RedisError
        raise _unavailable(keys, exc) from exc


def _unavailable(keys: K.ConversationKeys, exc: Exception) -> StoreUnavailable:
    return StoreUnavailable(
        f"Redis is unavailable: {type(exc).__name__}: {exc}",
        tenant_id=keys.tenant_id,
        conversation_id=keys.conversation_id,
    )
