"""Engine(replicas=N): a write is reported only once N replicas hold it (issue 10, finding 10).

With asynchronous replication a failover can lose the last writes, and a user told "booked"
could get a second event. WAIT after each write, pipelined with the compare-and-set (one round
trip), turns that loss into a StoreUnavailable that a retry with the same message_id resolves.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dialog import Engine, InMemoryCalendar, StoreUnavailable
from dialog.testing import FakeClock
from tests.conftest import RedisServer, free_port

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[RedisServer, subprocess.Popen[bytes]]]:
    primary = RedisServer(tmp_path)
    primary.start()
    port = free_port()
    folder = tmp_path / "replica"
    folder.mkdir()
    binary = shutil.which("redis-server") or "redis-server"
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", ""]
    replica = subprocess.Popen([*args, "--replicaof", "127.0.0.1", str(primary.port)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=primary.port)
    deadline = time.monotonic() + 10
    while client.info("replication").get("slave0", {}).get("state") != "online":
        assert time.monotonic() < deadline, "the replica never connected"
        time.sleep(0.05)
    yield primary, replica
    replica.kill()
    replica.wait()
    primary.stop()


@pytest.mark.slow
def test_a_write_no_replica_acknowledged_is_store_unavailable_and_its_retry_is_not_applied_twice(
    primary_and_replica: tuple[RedisServer, subprocess.Popen[bytes]], clock: FakeClock
) -> None:
    primary, replica = primary_and_replica
    calendar = InMemoryCalendar()
    engine = Engine(redis.Redis(port=primary.port), calendar=calendar, clock=clock, replicas=1)
    proposed = engine.handle("c1", PROPOSE, message_id="m1")
    assert proposed.outcome == "proposed"

    os.kill(replica.pid, signal.SIGSTOP)  # the replica falls behind
    try:
        with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
            engine.handle("c1", "can we move it", message_id="m2")
    finally:
        os.kill(replica.pid, signal.SIGCONT)
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
