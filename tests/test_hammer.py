"""Processes, for real: several containers hammer the same conversations; one is SIGKILLed mid-run.

Three worker processes (each its own engine) share one Redis and one CalDAV calendar
(Radicale); a fourth replaces the one killed. Afterwards the recovery sweep runs, then: each
proposal has at most one event, every event belongs to a confirmation the engine reported
(to a user or to the sweep), every reported booking is in the calendar, and each
conversation's stored state agrees with the calendar.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis

from dialog import Engine, RedisCalendar
from dialog.calendar.base import Calendar
from dialog.calendar.caldav import CalDAVCalendar, collection_name
from dialog.testing import FakeClock
from tests.conftest import MONDAY_8AM
from tests.fixtures_radicale import RadicaleServer
from tests.reliability import Table

CONVERSATIONS = 6
TURNS = int(os.environ.get("DIALOG_HAMMER_TURNS", "40"))


def worker(
    redis_url: str, caldav: str, tenant: str, seed: int, log: Path, turns: int = TURNS
) -> subprocess.Popen[bytes]:
    args = [redis_url, caldav, tenant, str(CONVERSATIONS), str(turns), str(seed), str(log)]
    return subprocess.Popen([sys.executable, "-m", "tests.hammer_worker", *args], stderr=subprocess.PIPE)


@pytest.mark.parametrize("backend", ["caldav", "redis"])
def test_three_processes_and_a_sigkill_leave_exactly_the_confirmed_bookings(
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
    reliability: Table,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    tenant = f"hammer-{os.getpid()}-{time.time_ns()}"
    client = redis.Redis.from_url(redis_url)
    calendar: Calendar
    if backend == "redis":
        caldav, calendar = "redis", RedisCalendar(client)
    else:
        radicale: RadicaleServer = request.getfixturevalue("radicale")
        caldav, calendar = radicale.url_with_credentials, CalDAVCalendar(radicale.url_with_credentials)
    engine = Engine(client, calendar=calendar, clock=FakeClock(MONDAY_8AM))
    for i in range(CONVERSATIONS):
        engine.handle(f"c{i}", f"schedule a call with Lead c{i} tomorrow at 10am", tenant_id=tenant)

    logs = [tmp_path / f"worker{i}.jsonl" for i in range(4)]
    # Worker 0 is the one killed: it gets far more turns than it can finish before the kill (it
    # once finished all of its turns in the 0.3 s before the signal, and exited 0).
    workers = [worker(redis_url, caldav, tenant, s, logs[s], TURNS * (50 if s == 0 else 1)) for s in range(3)]
    deadline = time.monotonic() + 60
    while logs[0].stat().st_size == 0 if logs[0].exists() else True:  # killed once it is under way
        assert time.monotonic() < deadline, "worker 0 never answered"
        time.sleep(0.05)
    time.sleep(0.3)
    workers[0].send_signal(signal.SIGKILL)
    workers.append(worker(redis_url, caldav, tenant, 3, logs[3]))
    for w in workers[1:]:
        _, err = w.communicate(timeout=240)
        assert w.returncode == 0, err.decode()[-2000:]
    assert workers[0].wait() == -signal.SIGKILL
    workers[0].stderr.close()  # type: ignore[union-attr]

    swept = engine.recover(tenant_id=tenant)
    lines = [json.loads(line) for log in logs if log.exists() for line in log.read_text().splitlines()]
    assert len(lines) > TURNS  # the survivors did their work
    assert not [line for line in lines if "error" in line], "no turn may surface an error"

    if backend == "redis":
        booked = calendar.events(tenant)
        keys = [e.idempotency_key for e in booked]
        overlaps = sum(a.end > b.start for a, b in itertools.pairwise(booked))
        assert overlaps == 0  # the overlap check and the write are one atomic step
    else:
        events = request.getfixturevalue("radicale").events(collection_name(tenant))
        keys = [str(e["UID"]) for e in events.values() if "X-DIALOG-LEAD" in e and e.get("STATUS") != "CANCELLED"]
    assert all(count == 1 for count in Counter(keys).values())  # at most one event per proposal
    reported = {line["event"] for line in lines if line["outcome"] in ("booked", "already_booked", "moved", "kept")}
    reported |= {r.event.idempotency_key for r in swept if r.event is not None}
    reliability.record(
        f"3 processes + 1 SIGKILLed, {calendar.__class__.__name__} ({4 * TURNS} turns)",
        expected=len(reported),
        found=len(set(keys)),
    )
    assert set(keys) == reported  # events exist exactly for the confirmations reported
    for i in range(CONVERSATIONS):
        snap = engine.snapshot(f"c{i}", tenant_id=tenant)
        assert snap is not None and not snap.booking_pending
        if snap.event is not None:
            assert snap.event.idempotency_key in keys
    booked = [line for line in lines if line["outcome"] == "booked"]
    assert booked, "the random answers should have confirmed something"
