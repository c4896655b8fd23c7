"""Turns per second and per-turn latency of the synchronous engine against a real Redis.

    .venv/bin/python -m benchmarks.turns [--redis-url URL] [--conversations N]

Each conversation is the 3-turn dialog propose -> "move it" -> "yes" (one tenant per
conversation, so the in-memory calendar never fills up). The database is flushed first.
Prints the PING floor, turns/s, p50/p99 per turn, and Redis round trips per turn.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time

import redis

from benchmarks.compare import round_trips
from dialog import Engine, InMemoryCalendar
from dialog.testing import FakeClock

TURNS = ("Schedule a call with Dana Scully tomorrow at 10am", "can we move it", "yes")


def ping_floor(client: redis.Redis, n: int = 5000) -> float:
    started = time.perf_counter()
    for _ in range(n):
        client.ping()
    return n / (time.perf_counter() - started)


def run(engine: Engine, conversations: int) -> list[float]:
    latencies: list[float] = []
    for i in range(conversations):
        for text in TURNS:
            started = time.perf_counter()
            engine.handle("bench", text, tenant_id=f"t{i}")
            latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--conversations", type=int, default=3000)
    args = parser.parse_args()

    client = redis.Redis.from_url(args.redis_url)
    client.flushdb()
    engine = Engine(client, calendar=InMemoryCalendar(), clock=FakeClock(dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)))
    run(engine, 200)  # warm up: scripts loaded, connections open
    client.flushdb()

    floor = ping_floor(client)
    with round_trips() as trips:
        started = time.perf_counter()
        latencies = run(engine, args.conversations)
        elapsed = time.perf_counter() - started
    client.flushdb()

    cuts = statistics.quantiles(latencies, n=100)
    print(f"PING floor:        {floor:,.0f} round trips/s (one client)")
    print(f"engine:            {len(latencies) / elapsed:,.0f} turns/s over {len(latencies):,} turns")
    print(f"latency per turn:  p50 {cuts[49] * 1e6:,.0f} us, p99 {cuts[98] * 1e6:,.0f} us")
    print(f"round trips/turn:  {trips[0] / len(latencies):.2f}")


if __name__ == "__main__":
    main()
