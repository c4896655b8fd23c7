"""Shared fixtures: the real Redis, a hand-moved clock, engines, and private redis-server processes."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from dialog import Engine, InMemoryCalendar
from dialog.testing import FakeClock

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A private redis-server on a free loopback port, started and stopped by a test."""

    def __init__(self, folder: Path, *, appendonly: bool = False) -> None:
        self.folder = folder
        self.port = free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed", pytrace=False)
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "always",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not _reachable(self.url):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=5)
        self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    started: list[RedisServer] = []

    def start(**options: bool) -> RedisServer:
        server = RedisServer(tmp_path, **options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process is not None:
            server.process.kill()
            server.process.wait()
