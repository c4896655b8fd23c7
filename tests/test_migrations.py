"""Records of schema 1 (a hash {v, r} of JSON objects), as stored by dialog 0.1, still work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from dialog import Engine, InMemoryCalendar
from dialog.store.keys import ConversationKeys
from dialog.store.migrations import from_v1
from dialog.store.record import SCHEMA_VERSION

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "records_schema_v1.json").read_text())


def store_v1(client: redis.Redis, conversation: str, fixture: dict[str, object]) -> ConversationKeys:
    keys = ConversationKeys("default", conversation)
    client.hset(keys.conversation, mapping={"v": str(fixture["v"]), "r": json.dumps(fixture["r"])})
    client.expire(keys.conversation, 600)
    return keys


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_schema_1_fixture_migrates_field_for_field(name: str) -> None:
    old = FIXTURES[name]["r"]
    record = from_v1(json.dumps(old).encode())
    assert record.schema_version == SCHEMA_VERSION
    assert (record.state.value, record.seq) == (old["state"], old["seq"])
    assert record.last is not None and (record.last.trigger, record.last.source, record.last.outcome) == (
        old["last"]["trigger"],
        old["last"]["source"],
        old["last"]["outcome"],
    )
    for field in ("proposal", "booking"):
        if old.get(field):
            migrated = getattr(record, field)
            assert {k: getattr(migrated, k) for k in old[field]} == old[field]


def test_a_pending_schema_1_proposal_is_confirmed_and_rewritten_as_schema_2(
    engine: Engine, calendar: InMemoryCalendar, redis_client: redis.Redis
) -> None:
    keys = store_v1(redis_client, "c1", FIXTURES["awaiting"])
    snapshot = engine.snapshot("c1")
    assert snapshot is not None and snapshot.state == "awaiting_confirmation"
    assert snapshot.proposal is not None and snapshot.proposal.lead == "Dana Scully"

    reply = engine.handle("c1", "yes")
    assert (reply.outcome, reply.state) == ("booked", "done")
    assert reply.version == int(FIXTURES["awaiting"]["v"]) + 2  # intent, then done: versions keep growing
    assert redis_client.type(keys.conversation) == b"string"
    stored = redis_client.get(keys.conversation)
    assert isinstance(stored, bytes)
    token, _, record = stored.partition(b"|")
    assert token.startswith(b"%d." % reply.version) and record.startswith(b"[2,")
    assert len(calendar.events("default")) == 1


def test_a_booked_schema_1_conversation_stays_booked(
    engine: Engine, calendar: InMemoryCalendar, redis_client: redis.Redis
) -> None:
    store_v1(redis_client, "c2", FIXTURES["booked"])
    reply = engine.handle("c2", "yes")
    assert reply.outcome == "already_booked"
    assert reply.event is not None and reply.event.id == FIXTURES["booked"]["r"]["booking"]["event_id"]
    assert calendar.events("default") == []  # nothing booked again


def test_an_unknown_schema_in_a_schema_1_hash_is_refused() -> None:
    bad = dict(FIXTURES["awaiting"]["r"], schema_version=7)
    with pytest.raises(ValueError, match="schema_version 1"):
        from_v1(json.dumps(bad).encode())
