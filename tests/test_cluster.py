"""The engine unchanged on Redis Cluster: a local 3-master cluster, the acceptance flows, the race.

The cluster is started once for the module (``redis-server --cluster-enabled yes`` on three free
ports, ``redis-cli --cluster create``) and flushed around each test. A conversation's keys share
one hash tag, so its load pipeline and its CAS script stay in one slot; conversations spread
over all three masters, so ``recover()`` must scan every node.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster
from redis.crc import key_slot

from dialog import Engine, InMemoryCalendar, StoreUnavailable
from dialog.engine import AsyncEngine, Checkpoint
from dialog.store.cluster import apply_cluster_failure_policy, cluster_from_url, is_cluster_url
from dialog.store.keys import ConversationKeys
from dialog.store.redis_store import CONNECT_TIMEOUT, RETRIES, SOCKET_TIMEOUT
from dialog.testing import FakeClock
from tests.conftest import MONDAY_8AM
from tests.support import LocalCluster, first_slots, paused, start_cluster
from tests.test_concurrency import _race

pytestmark = pytest.mark.slow

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"
# "tomorrow at 10am" on MONDAY_8AM is Tue 24 Nov 10:00.
TUE_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)


# --- a local cluster ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    started = start_cluster(tmp_path_factory.mktemp("cluster"), masters=3)
    yield started
    started.stop()


@pytest.fixture
def cluster_client(cluster: LocalCluster) -> Iterator[RedisCluster]:
    client = cluster_from_url(cluster.url)
    client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    client.close()


@pytest.fixture
def make_engine(
    cluster: LocalCluster, cluster_client: RedisCluster, calendar: InMemoryCalendar, clock: FakeClock
) -> Iterator[Callable[..., Engine]]:
    """An engine with its own RedisCluster client ("another container"), same calendar and clock."""
    clients: list[RedisCluster] = []

    def make(**options: object) -> Engine:
        options.setdefault("calendar", calendar)
        options.setdefault("clock", clock)
        clients.append(cluster_from_url(cluster.url))
        return Engine(clients[-1], **options)  # type: ignore[arg-type]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()


# --- the acceptance flows -------------------------------------------------------------------------


def test_the_whole_dialog_runs_on_a_cluster_client(engine: Engine, calendar: InMemoryCalendar) -> None:
    replies = [engine.handle("c1", text) for text in (PROPOSE, "can we move it", "yes", "yes")]
    assert [(r.outcome, r.state) for r in replies] == [
        ("proposed", "awaiting_confirmation"),
        ("rescheduled", "awaiting_confirmation"),
        ("booked", "done"),
        ("already_booked", "done"),
    ]
    assert len(calendar.events("default")) == 1
    assert replies[3].event == replies[2].event == calendar.events("default")[0]
    snapshot = engine.snapshot("c1")
    assert snapshot is not None and snapshot.version == replies[3].version


def test_propose_then_yes_books_the_proposed_slot(engine: Engine, calendar: InMemoryCalendar) -> None:
    assert engine.propose("c1", lead="Dana Scully", start=TUE_10).outcome == "proposed"
    reply = engine.handle("c1", "sounds good")
    assert reply.outcome == "booked"
    assert [(e.lead, e.start) for e in calendar.events("default")] == [("Dana Scully", TUE_10)]


def test_yes_after_the_proposal_expired_says_it_expired(
    make_engine: Callable[..., Engine], calendar: InMemoryCalendar
) -> None:
    """The conversation key's TTL really elapses (1 s); the marker, in the same slot, outlives it."""
    engine = make_engine(ttl_seconds=1)
    engine.handle("c1", PROPOSE)
    time.sleep(1.2)
    assert engine.snapshot("c1") is None
    reply = engine.handle("c1", "yes")
    assert (reply.outcome, reply.state) == ("expired", "idle")
    assert "Dana Scully" in reply.text
    assert engine.handle("c1", "yes").outcome == "nothing_pending"
    assert calendar.events("default") == []


def test_a_tenant_can_never_confirm_another_tenants_conversation(engine: Engine, calendar: InMemoryCalendar) -> None:
    proposed = engine.handle("c1", PROPOSE, tenant_id="acme")
    intruder = engine.handle("c1", "yes", tenant_id="globex")
    assert (intruder.outcome, intruder.proposal, intruder.event) == ("nothing_pending", None, None)
    assert calendar.events("acme") == calendar.events("globex") == []
    acme = engine.snapshot("c1", tenant_id="acme")
    assert acme is not None and (acme.state, acme.version) == ("awaiting_confirmation", proposed.version)
    assert engine.handle("c1", "yes", tenant_id="acme").outcome == "booked"
    assert len(calendar.events("acme")) == 1 and calendar.events("globex") == []


def test_the_async_engine_runs_on_an_asyncio_cluster_client(
    cluster: LocalCluster, cluster_client: RedisCluster, calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    async def dialog() -> list[str]:
        client = cluster_from_url(cluster.url, asynchronous=True)
        apply_cluster_failure_policy(
            client, socket_timeout=SOCKET_TIMEOUT, connect_timeout=CONNECT_TIMEOUT, retries=RETRIES
        )
        engine = AsyncEngine(client, calendar=calendar, clock=clock)
        try:
            return [(await engine.handle("c1", text)).outcome for text in (PROPOSE, "can we move it", "yes", "yes")]
        finally:
            await engine.aclose()

    assert asyncio.run(dialog()) == ["proposed", "rescheduled", "booked", "already_booked"]
    assert len(calendar.events("default")) == 1


# --- keys and slots -------------------------------------------------------------------------------

ODD_IDS = ["c1", "{c1}", "a}b{c", "x:y:z", "*", "tenant:c1", "Ω ünïcode", "new\nline", "x" * 256]


@pytest.mark.parametrize("conversation_id", ODD_IDS)
def test_every_key_of_a_conversation_is_in_one_slot(
    engine: Engine, cluster_client: RedisCluster, conversation_id: str
) -> None:
    """Whatever the id, the keys the engine writes (record, expiry marker) share the tag's slot."""
    engine.handle(conversation_id, PROPOSE, tenant_id="acme:{x}")
    keys = ConversationKeys("acme:{x}", conversation_id)
    written = [k.decode() for k in cluster_client.scan_iter(match="*", count=1000)]
    assert keys.conversation in written and keys.expired_marker in written
    assert {key_slot(k.encode()) for k in written} == {key_slot(keys.conversation.encode())}


def _masters_holding(client: RedisCluster, conversation_ids: list[str]) -> int:
    keys = [ConversationKeys("default", c).conversation for c in conversation_ids]
    # redis-py leaves get_node_from_key unannotated
    return len({client.get_node_from_key(k).name for k in keys})  # type: ignore[no-untyped-call]


def test_conversations_spread_over_every_master(engine: Engine, cluster_client: RedisCluster) -> None:
    """So the other tests really cross nodes: 30 conversations land on all three masters."""
    for i in range(30):
        engine.handle(f"c{i}", PROPOSE)
    assert _masters_holding(cluster_client, [f"c{i}" for i in range(30)]) == 3


# --- concurrency and recovery ---------------------------------------------------------------------


def test_two_engines_answering_yes_to_the_same_50_conversations_book_exactly_50_events(
    make_engine: Callable[..., Engine], calendar: InMemoryCalendar
) -> None:
    first, second = make_engine(), make_engine()
    slots = first_slots(50)
    for i in range(50):
        first.propose(f"c{i}", lead=f"Lead {i}", start=slots[i])
    replies = _race([first, second], lambda e, i: e.handle(f"c{i}", "yes"), 50)

    assert len(calendar.events("default")) == 50
    outcomes: dict[str, Counter[str]] = {}
    for r in replies:
        outcomes.setdefault(r.conversation_id, Counter())[r.outcome] += 1
    assert len(outcomes) == 50
    assert all(c == Counter(booked=1, already_booked=1) for c in outcomes.values())


class Crash(BaseException):
    """The process dies here: nothing in the engine may catch it."""


def _crash_after_recording(point: Checkpoint) -> None:
    if point is Checkpoint.INTENT_COMMITTED:
        raise Crash(point.value)


def test_recover_settles_confirmations_left_on_every_node(
    make_engine: Callable[..., Engine], calendar: InMemoryCalendar, cluster_client: RedisCluster
) -> None:
    """recover() scans all masters: 30 confirmations recorded, then crashed, are all booked once."""
    engine, doomed = make_engine(), make_engine(checkpoint=_crash_after_recording)
    slots = first_slots(30)
    for i in range(30):
        engine.propose(f"c{i}", lead=f"Lead {i}", start=slots[i])
        with pytest.raises(Crash):
            doomed.handle(f"c{i}", "yes")
    assert calendar.events("default") == []
    assert _masters_holding(cluster_client, [f"c{i}" for i in range(30)]) == 3

    settled = make_engine().recover()
    assert sorted(r.conversation_id for r in settled) == sorted(f"c{i}" for i in range(30))
    assert {r.outcome for r in settled} == {"booked"}
    assert len(calendar.events("default")) == 30
    assert make_engine().recover() == []


# --- failure timing -------------------------------------------------------------------------------


def test_a_hung_node_is_store_unavailable_within_2_s_with_the_engines_policy(
    cluster: LocalCluster, engine: Engine, cluster_client: RedisCluster
) -> None:
    """The engine's timeouts and bounded retry, given to every node (``apply_cluster_failure_policy``)."""
    apply_cluster_failure_policy(
        engine.redis, socket_timeout=SOCKET_TIMEOUT, connect_timeout=CONNECT_TIMEOUT, retries=RETRIES
    )
    engine.handle("c1", PROPOSE)
    port = engine.redis.get_node_from_key(ConversationKeys("default", "c1").conversation).port
    with paused(cluster.pid_of(port)):
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            engine.handle("c1", "yes")
        assert time.monotonic() - started < 2.0
    cluster.wait_ok()
    assert engine.handle("c1", "yes").outcome in ("booked", "already_booked")


def test_the_engine_gives_a_cluster_client_its_failure_policy(cluster: LocalCluster) -> None:
    client = cluster_from_url(cluster.url)
    try:
        Engine(client)
        assert client.nodes_manager.connection_kwargs.get("socket_timeout") == SOCKET_TIMEOUT
    finally:
        client.close()


def test_a_cluster_with_no_reachable_node_is_store_unavailable(tmp_path: Path) -> None:
    lone = start_cluster(tmp_path, masters=1)
    client = cluster_from_url(lone.url)
    try:
        engine = Engine(client, calendar=InMemoryCalendar(), clock=FakeClock(MONDAY_8AM))
        engine.handle("c1", PROPOSE)
        lone.stop()
        with pytest.raises(StoreUnavailable):
            engine.handle("c1", "yes")
    finally:
        client.close()
        lone.stop()


# --- URLs -----------------------------------------------------------------------------------------


def test_cluster_urls_name_one_or_more_startup_nodes(cluster: LocalCluster, cluster_client: RedisCluster) -> None:
    assert is_cluster_url("redis+cluster://h:1") and is_cluster_url("rediss+cluster://h:1")
    assert not is_cluster_url("redis://h:1")
    several = ",".join(f"127.0.0.1:{p}" for p in cluster.ports)
    client = cluster_from_url(f"redis+cluster://{several}")
    try:
        assert {n.port for n in client.get_primaries()} == set(cluster.ports)
    finally:
        client.close()


def test_engine_from_a_cluster_url(cluster: LocalCluster, cluster_client: RedisCluster) -> None:
    engine = Engine.from_url(cluster.url, calendar=InMemoryCalendar(), clock=FakeClock(MONDAY_8AM))
    assert isinstance(engine.redis, RedisCluster)
    assert engine.handle("c1", PROPOSE).outcome == "proposed"
