"""A slow or hung calendar never delays turns that need no calendar call, nor other tenants' turns.

Finding 9 of issue 10: with Radicale stopped, 18 "move it" turns took 5-15 s, and 6 "hmm" turns
that need no calendar call took 15 s too, because the schedule lookup of every turn shared
asyncio's default thread pool with the hung calendar calls. Now the schedule is read inline
and calendar calls run on the engine's own threads, bounded in time, a few per tenant.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio

from dialog import CalendarUnavailable, InMemoryCalendar, Reply
from dialog.calendar.base import Interval
from dialog.calendar.caldav import CalDAVCalendar
from dialog.engine import AsyncEngine
from dialog.testing import FakeClock
from tests.fixtures_radicale import PASSWORD, USER, RadicaleServer
from tests.support import paused

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"


async def timed(turn: Awaitable[Reply]) -> tuple[object, float]:
    began = time.monotonic()
    try:
        return await turn, time.monotonic() - began
    except CalendarUnavailable as exc:
        return exc, time.monotonic() - began


class HangingCalendar(InMemoryCalendar):
    """An in-memory calendar whose busy-time queries hang, for one tenant, until released."""

    def __init__(self, tenant: str) -> None:
        super().__init__()
        self.hung_tenant = tenant
        self.hanging = False
        self.release = threading.Event()

    def busy(self, tenant_id: str, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        if self.hanging and tenant_id == self.hung_tenant:
            self.release.wait(30)
        return super().busy(tenant_id, start, end)


def test_one_tenants_hung_calendar_delays_neither_its_calendar_free_turns_nor_other_tenants(
    redis_url: str, redis_client: object, clock: FakeClock
) -> None:
    calendar = HangingCalendar("slow")

    async def run() -> tuple[list[tuple[object, float]], list[tuple[object, float]], list[tuple[object, float]]]:
        engine = AsyncEngine(
            redis.asyncio.Redis.from_url(redis_url),
            calendar=calendar,
            clock=clock,
            calendar_timeout=1.0,
            calendar_in_thread=True,
        )
        try:
            for tenant in ("slow", "fast"):
                for i in range(20):
                    await engine.handle(f"c{i}", PROPOSE, tenant_id=tenant)
            calendar.hanging = True
            moves = [timed(engine.handle(f"c{i}", "can we move it", tenant_id="slow")) for i in range(18)]
            hmms = [timed(engine.handle(f"c{i}", "hmm", tenant_id="slow")) for i in range(18, 20)]
            others = [timed(engine.handle(f"c{i}", "can we move it", tenant_id="fast")) for i in range(20)]
            results = await asyncio.gather(*moves, *hmms, *others)
            return results[:18], results[18:20], results[20:]
        finally:
            calendar.release.set()
            await engine.aclose()

    moves, hmms, others = asyncio.run(run())
    assert all(isinstance(r, CalendarUnavailable) for r, _ in moves)
    assert max(t for _, t in moves) < 5.0  # bounded: 1 s each, queued behind at most 4 hung calls per tenant
    assert all(isinstance(r, Reply) and r.outcome == "reprompted" for r, _ in hmms)
    assert max(t for _, t in hmms) < 0.5
    assert all(isinstance(r, Reply) and r.outcome == "rescheduled" for r, _ in others)
    assert max(t for _, t in others) < 0.5


@pytest.mark.slow
def test_a_frozen_caldav_server_fails_calendar_turns_in_time_and_delays_no_calendar_free_turn(
    redis_url: str, redis_client: object, clock: FakeClock, radicale_server: Callable[[], RadicaleServer]
) -> None:
    server = radicale_server()  # a private one: this test freezes it
    calendar = CalDAVCalendar(server.url, username=USER, password=PASSWORD)

    async def run() -> tuple[list[tuple[object, float]], list[tuple[object, float]]]:
        client = redis.asyncio.Redis.from_url(redis_url)
        engine = AsyncEngine(client, calendar=calendar, clock=clock, calendar_timeout=1.0)
        try:
            for i in range(10):
                await engine.handle(f"c{i}", PROPOSE, tenant_id="acme")
            assert server.process is not None
            with paused(server.process.pid):
                moves = [timed(engine.handle(f"c{i}", "can we move it", tenant_id="acme")) for i in range(6)]
                hmms = [timed(engine.handle(f"c{i}", "hmm", tenant_id="acme")) for i in range(6, 10)]
                results = await asyncio.gather(*moves, *hmms)
            return results[:6], results[6:]
        finally:
            await engine.aclose()

    moves, hmms = asyncio.run(run())
    assert all(isinstance(r, CalendarUnavailable) for r, _ in moves), moves
    assert max(t for _, t in moves) < 5.0
    assert all(isinstance(r, Reply) and r.outcome == "reprompted" for r, _ in hmms)
    assert max(t for _, t in hmms) < 0.5
