"""Engine(replicas=N): a write is reported only once N replicas hold it (issue 10, finding 10).

With asynchronous replication a failover can lose the last writes, and a user told "booked"
could get a second event. WAIT after each write, pipelined with the compare-and-set (one round
trip), turns that loss into a StoreUnavailable that a retry with the same message_id resolves.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dialog import Engine, InMemoryCalendar, StoreUnavailable
from dialog.testing import FakeClock
from tests.support import RedisServer

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    primary = RedisServer(tmp_path).start()
    folder = tmp_path / "replica"
    folder.mkdir()
    replica = RedisServer(folder, extra=["--replicaof", "127.0.0.1", str(primary.port)]).start()
    client = redis.Redis(port=primary.port)
    deadline = time.monotonic() + 10
    while client.info("replication").get("slave0", {}).get("state") != "online":
        assert time.monotonic() < deadline, "the replica never connected"
        time.sleep(0.05)
    yield primary, replica
    client.close()
    replica.stop()
    primary.stop()


@pytest.mark.slow
def test_a_write_no_replica_acknowledged_is_store_unavailable_and_its_retry_is_not_applied_twice(
    primary_and_replica: tuple[RedisServer, RedisServer], clock: FakeClock
) -> None:
    primary, replica = primary_and_replica
    calendar = InMemoryCalendar()
    engine = Engine(redis.Redis(port=primary.port), calendar=calendar, clock=clock, replicas=1)
    proposed = engine.handle("c1", PROPOSE, message_id="m1")
    assert proposed.outcome == "proposed"

    replica.pause()  # the replica falls behind
    try:
        with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
            engine.handle("c1", "can we move it", message_id="m2")
    finally:
        replica.resume()
    retried = engine.handle("c1", "can we move it", message_id="m2")  # the write had landed on the primary
    assert retried.outcome == "rescheduled" and retried.version == 2
    assert retried.proposal is not None and retried.proposal.start.minute == 30  # moved once, not twice


def test_replicas_on_a_cluster_client_is_refused() -> None:
    from dialog import InvalidInput
    from dialog.store.redis_store import RedisStore

    class ClusterLike:  # what the store recognises a cluster client by; never connects
        nodes_manager = None

        def get_node_from_key(self, key: str) -> None:
            return None

    with pytest.raises(InvalidInput):
        RedisStore(ClusterLike(), ttl_seconds=600, replicas=1)
