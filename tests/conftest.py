"""Shared fixtures: the real Redis, a hand-moved clock, engines, and private redis-server processes."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from dialog import Engine, InMemoryCalendar
from dialog.testing import FakeClock

# Re-exported for the test files that still import them from here; new code imports tests.support.
from tests.support import RedisServer as RedisServer
from tests.support import free_port as free_port

pytest_plugins = ["tests.fixtures_radicale", "tests.reliability"]
# A database per test run (1-11, by process id), flushed around each test: two suites running
# at once on one machine (two developers, a benchmark) don't wipe each other's keys.
REDIS_URL = os.environ.get("DIALOG_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{1 + os.getpid() % 11}")
# Monday 23 Nov 2026, 08:00 UTC: before working hours, so "tomorrow at 10am" is Tue 24 Nov 10:00.
MONDAY_8AM = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


def _reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _reachable(REDIS_URL):
        if os.environ.get("CI"):
            pytest.fail(f"CI=true and Redis at {REDIS_URL} is unreachable", pytrace=False)
        pytest.skip(f"Redis at {REDIS_URL} is unreachable")
    return REDIS_URL


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY_8AM)


@pytest.fixture
def calendar() -> InMemoryCalendar:
    return InMemoryCalendar()


@pytest.fixture
def engine(redis_client: redis.Redis, calendar: InMemoryCalendar, clock: FakeClock) -> Engine:
    return Engine(redis_client, calendar=calendar, clock=clock)


@pytest.fixture
def make_engine(
    redis_url: str, redis_client: redis.Redis, calendar: InMemoryCalendar, clock: FakeClock
) -> Iterator[Callable[..., Engine]]:
    """Another engine on the same Redis and calendar, with its own client ("another container")."""

    clients: list[redis.Redis] = []

    def make(**options: object) -> Engine:
        options.setdefault("calendar", calendar)
        options.setdefault("clock", clock)
        clients.append(redis.Redis.from_url(redis_url))
        return Engine(clients[-1], **options)  # type: ignore[arg-type]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed", pytrace=False)
    started: list[RedisServer] = []

    def start(*, appendonly: bool = False) -> RedisServer:
        server = RedisServer(tmp_path, appendonly=appendonly)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.kill()
