"""Persistence on the real Redis: keys, TTLs, versions, compare-and-set, corrupt records, outages."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import redis
from redis.crc import key_slot

from dialog import CorruptState, Engine, InMemoryCalendar, StoreUnavailable
from dialog.store.keys import MARKER_MAX_SECONDS, MARKER_MIN_SECONDS, WRITES_MEMORY_SECONDS, ConversationKeys
from dialog.store.record import SCHEMA_VERSION, HistoryEntry
from dialog.store.redis_store import RedisStore
from dialog.testing import FakeClock
from tests.support import RedisServer, free_port, paused

SCHEDULE = "schedule a call with Dana Scully tomorrow at 10am"
ODD_IDS = ["a}b{c", "{x}", ":", "*", "a:b", "new\nline", "tab\tid", "é👍", "%41", "x" * 256, " "]


@pytest.mark.parametrize("conversation_id", ODD_IDS)
def test_a_conversations_keys_share_one_cluster_slot_whatever_the_id(conversation_id: str) -> None:
    keys = ConversationKeys("acme}{", conversation_id)
    slots = {key_slot(k.encode()) for k in (keys.conversation, keys.expired_marker, keys.quarantine(1))}
    assert len(slots) == 1
    assert keys.tag.count("{") == 1 and keys.tag.count("}") == 1


def test_no_two_ids_share_a_key() -> None:
    pairs = [(t, c) for t in ["acme", "acme:x", "acme%3Ax", "a"] for c in [*ODD_IDS, "x:acme", "b"]]
    keys = {ConversationKeys(t, c).conversation for t, c in pairs}
    assert len(keys) == len(pairs)


def test_every_key_has_a_ttl_and_the_conversation_ttl_is_refreshed_each_turn(
    engine: Engine, redis_client: redis.Redis
) -> None:
    engine.handle("c1", SCHEDULE)
    conv = ConversationKeys("default", "c1")
    keys = set(redis_client.scan_iter("dialog:*"))
    # the conversation, its expiry marker, its recent write tokens (for a lost reply's retry), its history
    assert keys == {k.encode() for k in (conv.conversation, conv.expired_marker, conv.writes, conv.history)}
    for key in keys:
        assert redis_client.pttl(key) > 0
    assert redis_client.pttl(conv.writes) <= WRITES_MEMORY_SECONDS * 1000
    assert redis_client.pttl(conv.history) > redis_client.pttl(conv.conversation)  # spec 4.5: outlives it
    assert 590_000 < redis_client.pttl(conv.conversation) <= 600_000
    assert MARKER_MIN_SECONDS * 1000 <= redis_client.pttl(conv.expired_marker) <= MARKER_MAX_SECONDS * 1000
    assert redis_client.pttl(conv.expired_marker) > redis_client.pttl(conv.conversation) + 3_000_000

    redis_client.pexpire(conv.conversation, 5_000)
    engine.handle("c1", "hmm")
    assert redis_client.pttl(conv.conversation) > 590_000


def test_the_marker_goes_when_nothing_is_pending(engine: Engine, redis_client: redis.Redis) -> None:
    engine.handle("c1", SCHEDULE)
    engine.handle("c1", "no")
    conv = ConversationKeys("default", "c1")
    assert redis_client.exists(conv.expired_marker) == 0
    assert 0 < redis_client.pttl(conv.conversation) <= 600_000


def test_after_a_booking_the_marker_remembers_it_so_a_late_yes_hears_already_booked(
    engine: Engine, redis_client: redis.Redis
) -> None:
    engine.handle("c1", SCHEDULE)
    booked = engine.handle("c1", "yes")
    conv = ConversationKeys("default", "c1")
    assert MARKER_MIN_SECONDS * 1000 <= redis_client.pttl(conv.expired_marker) <= MARKER_MAX_SECONDS * 1000
    redis_client.delete(conv.conversation)  # the conversation's TTL ran out
    late = engine.handle("c1", "yes", channel="voice")
    assert late.outcome == "already_booked"
    assert late.event == booked.event


def test_the_record_carries_its_schema_version_and_the_version_only_grows(
    engine: Engine, redis_client: redis.Redis
) -> None:
    versions = [engine.handle("c1", text).version for text in [SCHEDULE, "hmm", "move it", "no", "yes"]]
    assert versions == sorted(set(versions))
    stored = redis_client.get(ConversationKeys("default", "c1").conversation)
    assert isinstance(stored, bytes)
    token, _, record = stored.partition(b"|")
    assert int(token.split(b".")[0]) == versions[-1]  # "<version>.<write nonce>"
    assert json.loads(record)[0] == SCHEMA_VERSION == 2  # schema 2: structs as JSON arrays


def test_a_stale_compare_and_set_is_refused_and_returns_what_stands(engine: Engine, redis_client: redis.Redis) -> None:
    engine.handle("c1", SCHEDULE)
    store = RedisStore(redis_client, ttl_seconds=600)
    keys = ConversationKeys("default", "c1")
    stale = store.load(keys)
    engine.handle("c1", "move it")  # another writer moves the version on
    entry = HistoryEntry(0, 0, "text", "test", None, "idle", "reprompt", "idle", "reprompted")
    result = store.commit(keys, stale, stale.record, entry)  # type: ignore[arg-type]
    assert not result.ok
    assert result.stored.version == stale.version + 1
    assert result.stored.record is not None and result.stored.record.proposal != stale.record.proposal  # type: ignore[union-attr]


def test_tenants_never_see_each_others_conversations(engine: Engine, calendar: InMemoryCalendar) -> None:
    engine.handle("shared-id", SCHEDULE, tenant_id="acme")
    other = engine.handle("shared-id", "yes", tenant_id="globex")
    assert other.outcome == "nothing_pending"
    assert engine.snapshot("shared-id", tenant_id="globex") is not None
    acme = engine.snapshot("shared-id", tenant_id="acme")
    assert acme is not None and acme.state == "awaiting_confirmation"
    assert calendar.events("acme") == calendar.events("globex") == []


# --- unreadable records ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        b"\xff\xfe garbage",
        b'{"schema_version": 1, "state": "awaiting_conf',
        b'{"schema_version": 99, "state": "idle"}',
        b'{"schema_version": 1}',
        b'{"schema_version": 1, "state": "flying"}',
    ],
)
def test_an_unreadable_record_is_corrupt_state_and_kept_aside(
    engine: Engine, redis_client: redis.Redis, record: bytes
) -> None:
    conv = ConversationKeys("default", "c1")
    redis_client.hset(conv.conversation, mapping={"v": 3, "r": record})
    with pytest.raises(CorruptState) as caught:
        engine.handle("c1", "yes")
    kept_at = caught.value.kept_at
    assert kept_at is not None and kept_at.startswith(f"dialog:{conv.tag}:corrupt:")
    assert redis_client.hget(kept_at, "r") == record
    assert redis_client.pttl(kept_at) > 0
    # The conversation starts afresh; the bad value stays for inspection.
    assert engine.handle("c1", "yes").outcome == "nothing_pending"
    assert redis_client.hget(kept_at, "r") == record


@pytest.mark.parametrize("record", [b'7|[2, "idle"', b'7|[9,"idle"]', b'x|[2,"idle"]', b"7|{}"])
def test_an_unreadable_schema_2_record_is_corrupt_state(
    engine: Engine, redis_client: redis.Redis, record: bytes
) -> None:
    conv = ConversationKeys("default", "c1")
    redis_client.set(conv.conversation, record)
    with pytest.raises(CorruptState) as caught:
        engine.handle("c1", "yes")
    assert caught.value.kept_at is not None and redis_client.get(caught.value.kept_at) == record


def test_a_value_of_another_redis_type_is_corrupt_state(engine: Engine, redis_client: redis.Redis) -> None:
    conv = ConversationKeys("default", "c1")
    redis_client.rpush(conv.conversation, b"a", b"b")
    with pytest.raises(CorruptState, match="holds a Redis list"):
        engine.handle("c1", "yes")
    assert engine.handle("c1", "yes").outcome == "nothing_pending"


def test_foreign_data_under_the_conversation_key_is_corrupt_state(engine: Engine, redis_client: redis.Redis) -> None:
    conv = ConversationKeys("default", "c1")
    redis_client.set(conv.conversation, b"someone else's string")
    with pytest.raises(CorruptState) as caught:
        engine.snapshot("c1")
    assert caught.value.kept_at is not None
    assert redis_client.get(caught.value.kept_at) == b"someone else's string"
    assert "c1" in str(caught.value)


# --- outages --------------------------------------------------------------------------------


def test_a_refused_port_is_store_unavailable_within_2_seconds(calendar: InMemoryCalendar, clock: FakeClock) -> None:
    engine = Engine(redis.Redis(port=free_port()), calendar=calendar, clock=clock)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        engine.handle("c1", SCHEDULE)
    assert time.monotonic() - started < 2.0


def test_a_hung_redis_is_store_unavailable_within_2_seconds_and_nothing_is_written(
    redis_server: Callable[..., RedisServer], calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    server = redis_server()
    engine = Engine(redis.Redis.from_url(server.url), calendar=calendar, clock=clock)
    engine.handle("c1", SCHEDULE)
    assert server.process is not None
    with paused(server.process.pid):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            engine.handle("c1", "yes")
        assert time.monotonic() - started < 2.0
    assert calendar.events("default") == []  # nothing booked without committed state
    # The write sent before the hang may still land when Redis wakes: a whole, recorded
    # confirmation (never half a record). Either way the next answer books exactly once.
    snap = engine.snapshot("c1")
    assert snap is not None and snap.state == "awaiting_confirmation"
    assert engine.handle("c1", "yes").outcome == "booked"
    assert len(calendar.events("default")) == 1


def test_a_conversation_that_expires_mid_turn_is_told_it_expired(
    redis_client: redis.Redis, calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    """The key vanishes between this turn's load and its compare-and-set (the TTL fires)."""
    from dialog.engine import Checkpoint

    conv = ConversationKeys("default", "c1")
    Engine(redis_client, calendar=calendar, clock=clock).handle("c1", SCHEDULE)

    def expire_once(point: Checkpoint) -> None:
        if point is Checkpoint.DECIDED and redis_client.exists(conv.conversation):
            redis_client.delete(conv.conversation)

    reply = Engine(redis_client, calendar=calendar, clock=clock, checkpoint=expire_once).handle("c1", "yes")
    assert (reply.outcome, reply.state) == ("expired", "idle")
    assert calendar.events("default") == []
