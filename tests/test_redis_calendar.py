"""RedisCalendar: the in-memory calendar's contract on the real Redis, two processes, restarts, retention.

The contract tests run on both backends (``InMemoryCalendar`` is the reference semantics), so the
two are held to the same behaviour; the rest is Redis's own: real subprocesses racing for the same
times, a restart, round trips, ``trim``, foreign data, cluster slots, and the measured figures
(run with ``-s`` to see them).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.retry import Retry

from dialog.calendar.base import Calendar, Event, Schedule
from dialog.calendar.memory import InMemoryCalendar
from dialog.calendar.redis_calendar import RedisCalendar
from dialog.calendar.slots import find_slot
from dialog.errors import CalendarUnavailable, EventNotFound, InvalidInput, SlotTaken
from dialog.store.cluster import cluster_from_url
from dialog.store.keys import CalendarKeys
from tests.calendar_worker import BOOKINGS, race_slot
from tests.support import start_cluster

UTC = dt.UTC
TUE_10 = dt.datetime(2026, 11, 24, 10, tzinfo=UTC)
HALF_HOUR = dt.timedelta(minutes=30)
ROOT = Path(__file__).resolve().parent.parent
ODD_TENANTS = ["acme", "a{b}", "a}b{c", "x:y:z", "*", "a%7Bb%7D", "Ω ünïcode", "new\nline"]

Backend = InMemoryCalendar | RedisCalendar


def at(hours: float) -> dt.datetime:
    """Tue 24 Nov 2026 10:00 UTC plus ``hours``."""
    return TUE_10 + dt.timedelta(hours=hours)


@pytest.fixture(params=["memory", "redis"])
def cal(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        return InMemoryCalendar()
    return RedisCalendar(request.getfixturevalue("redis_client"))


@pytest.fixture
def rcal(redis_client: redis.Redis) -> RedisCalendar:
    return RedisCalendar(redis_client)


# --- the contract, on both backends ---------------------------------------------------------------


def test_both_backends_are_calendars(cal: Backend) -> None:
    assert isinstance(cal, Calendar)


def test_booking_is_idempotent_by_key(cal: Backend) -> None:
    first = cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    assert first.id.startswith("evt_") and (first.lead, first.idempotency_key) == ("Dana", "k1")
    assert (first.start, first.end) == (at(0), at(0.5))
    again = cal.book("acme", lead="Someone else", start=at(3), end=at(4), idempotency_key="k1")
    assert again == first
    assert cal.events("acme") == [first]


def test_an_overlap_with_an_event_is_slot_taken_and_touching_is_not(cal: Backend) -> None:
    cal.book("acme", lead="Dana", start=at(0), end=at(1), idempotency_key="k1")
    for start, end in [(at(0), at(1)), (at(-0.5), at(0.25)), (at(0.5), at(2)), (at(0.25), at(0.5)), (at(-1), at(3))]:
        with pytest.raises(SlotTaken):
            cal.book("acme", lead="Fox", start=start, end=end, idempotency_key=f"k-{start}-{end}")
    before = cal.book("acme", lead="Fox", start=at(-1), end=at(0), idempotency_key="before")
    after = cal.book("acme", lead="Fox", start=at(1), end=at(2), idempotency_key="after")
    assert [e.idempotency_key for e in cal.events("acme")] == ["before", "k1", "after"]
    assert before.end == at(0) and after.start == at(1)


def test_an_overlap_with_a_block_is_slot_taken_however_long_the_block(cal: Backend) -> None:
    cal.block("acme", at(-72), at(48))  # starts days before the slot asked for
    with pytest.raises(SlotTaken):
        cal.book("acme", lead="Fox", start=at(0), end=at(0.5), idempotency_key="k1")
    with pytest.raises(SlotTaken):
        cal.book("acme", lead="Fox", start=at(47.5), end=at(49), idempotency_key="k2")
    cal.book("acme", lead="Fox", start=at(48), end=at(48.5), idempotency_key="k3")
    assert cal.find("acme", "k1") is None and cal.events("acme")[0].idempotency_key == "k3"


def test_find_returns_the_event_booked_under_a_key(cal: Backend) -> None:
    event = cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    assert cal.find("acme", "k1") == event
    assert cal.find("acme", "k2") is None
    assert cal.find("other", "k1") is None


def test_events_are_ordered_by_start(cal: Backend) -> None:
    for hours in [5, 1, 3, -2, 4]:
        cal.book("acme", lead=f"L{hours}", start=at(hours), end=at(hours + 0.5), idempotency_key=f"k{hours}")
    assert [e.start for e in cal.events("acme")] == [at(h) for h in [-2, 1, 3, 4, 5]]
    assert cal.events("nobody") == []


def test_busy_returns_what_overlaps_the_window_only(cal: Backend) -> None:
    cal.block("acme", at(0), at(1))
    cal.book("acme", lead="Dana", start=at(2), end=at(2.5), idempotency_key="k1")
    cal.block("acme", at(-30), at(30))
    cal.book("acme", lead="Fox", start=at(40), end=at(41), idempotency_key="k2")
    assert sorted(cal.busy("acme", at(0), at(3))) == [(at(-30), at(30)), (at(0), at(1)), (at(2), at(2.5))]
    assert sorted(cal.busy("acme", at(30), at(40))) == []  # both edges only touch
    assert sorted(cal.busy("acme", at(40.5), at(40.75))) == [(at(40), at(41))]
    assert cal.busy("other", at(0), at(100)) == []


def test_sub_second_times_come_back_exactly(cal: Backend) -> None:
    start = at(0) + dt.timedelta(microseconds=123_457)
    event = cal.book("acme", lead="Dana", start=start, end=start + dt.timedelta(seconds=1.5), idempotency_key="k")
    assert (event.start, event.end) == (start, start + dt.timedelta(seconds=1.5))
    assert cal.busy("acme", start, start + dt.timedelta(microseconds=1)) == [(event.start, event.end)]
    assert cal.busy("acme", start + dt.timedelta(seconds=1.5), at(1)) == []
    old = dt.datetime(1969, 7, 20, 20, 17, 40, 500_000, tzinfo=UTC)  # before the epoch
    moon = cal.book("acme", lead="Neil", start=old, end=old + dt.timedelta(hours=2), idempotency_key="moon")
    assert moon.start == old and cal.find("acme", "moon") == moon


def test_move_keeps_the_id_and_frees_the_old_time(cal: Backend) -> None:
    event = cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    moved = cal.move("acme", event.id, start=at(5), end=at(6), idempotency_key="m1")
    assert (moved.id, moved.lead, moved.idempotency_key) == (event.id, "Dana", "k1")
    assert (moved.start, moved.end) == (at(5), at(6))
    assert cal.events("acme") == [moved] and cal.find("acme", "k1") == moved
    assert cal.busy("acme", at(-1), at(1)) == [] and cal.busy("acme", at(4), at(7)) == [(at(5), at(6))]
    cal.book("acme", lead="Fox", start=at(0), end=at(0.5), idempotency_key="k2")  # the old time is free


def test_a_replayed_move_returns_the_first_result_and_changes_nothing_more(cal: Backend) -> None:
    event = cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    first = cal.move("acme", event.id, start=at(5), end=at(5.5), idempotency_key="m1")
    second = cal.move("acme", event.id, start=at(7), end=at(7.5), idempotency_key="m2")
    assert cal.move("acme", event.id, start=at(9), end=at(9.5), idempotency_key="m1") == first
    assert cal.move("acme", "evt_whatever", start=at(9), end=at(9.5), idempotency_key="m2") == second
    assert cal.events("acme") == [second]


def test_moving_onto_busy_time_is_slot_taken_but_onto_its_own_time_is_not(cal: Backend) -> None:
    event = cal.book("acme", lead="Dana", start=at(0), end=at(1), idempotency_key="k1")
    cal.book("acme", lead="Fox", start=at(2), end=at(3), idempotency_key="k2")
    cal.block("acme", at(4), at(5))
    for start, end in [(at(2.5), at(3.5)), (at(4.5), at(5.5)), (at(1), at(4.25))]:
        with pytest.raises(SlotTaken):
            cal.move("acme", event.id, start=start, end=end, idempotency_key=f"m-{start}")
    assert cal.find("acme", "k1") == event  # a refused move changes nothing, and is not recorded
    shifted = cal.move("acme", event.id, start=at(0.5), end=at(1.5), idempotency_key=f"m-{at(2.5)}")
    assert (shifted.start, shifted.end) == (at(0.5), at(1.5))


def test_moving_an_event_the_calendar_does_not_hold_is_event_not_found(cal: Backend) -> None:
    event = cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    with pytest.raises(EventNotFound):
        cal.move("acme", "evt_nope", start=at(1), end=at(1.5), idempotency_key="m1")
    with pytest.raises(EventNotFound):
        cal.move("other", event.id, start=at(1), end=at(1.5), idempotency_key="m1")  # another tenant's
    cal.cancel("acme", event.id, idempotency_key="c1")
    with pytest.raises(EventNotFound):
        cal.move("acme", event.id, start=at(1), end=at(1.5), idempotency_key="m1")


def test_cancel_removes_the_event_once_and_a_replay_returns_the_same(cal: Backend) -> None:
    event = cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    assert cal.cancel("acme", event.id, idempotency_key="c1") == event
    assert cal.events("acme") == [] and cal.find("acme", "k1") is None and cal.busy("acme", at(-1), at(1)) == []
    assert cal.cancel("acme", event.id, idempotency_key="c1") == event  # replay: same result
    assert cal.cancel("acme", event.id, idempotency_key="c2") is None  # already gone
    assert cal.cancel("acme", "evt_nope", idempotency_key="c3") is None
    again = cal.book("acme", lead="Fox", start=at(0), end=at(0.5), idempotency_key="k2")  # the time is free
    assert cal.cancel("acme", again.id, idempotency_key="c1") == event  # c1 is spent: nothing changes
    assert cal.events("acme") == [again]


def test_a_moved_event_cancels_as_moved(cal: Backend) -> None:
    event = cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    moved = cal.move("acme", event.id, start=at(2), end=at(2.5), idempotency_key="m1")
    assert cal.cancel("acme", event.id, idempotency_key="c1") == moved
    assert cal.busy("acme", at(-10), at(10)) == [] and cal.events("acme") == []


@pytest.mark.parametrize("tenant", ODD_TENANTS)
def test_tenants_are_isolated_whatever_their_ids_hold(cal: Backend, tenant: str) -> None:
    others = [t for t in ODD_TENANTS if t != tenant]
    for other in others:
        cal.book(other, lead="Other", start=at(0), end=at(0.5), idempotency_key="k1")
        cal.block(other, at(1), at(2))
    mine = cal.book(tenant, lead="Mine", start=at(0), end=at(0.5), idempotency_key="k1")  # same time, same key
    assert cal.events(tenant) == [mine] and cal.find(tenant, "k1") == mine
    assert cal.busy(tenant, at(-5), at(5)) == [(at(0), at(0.5))]
    theirs = cal.events(others[0])[0]
    with pytest.raises(EventNotFound):
        cal.move(tenant, theirs.id, start=at(3), end=at(4), idempotency_key="m1")
    assert cal.cancel(tenant, theirs.id, idempotency_key="c1") is None
    assert all(len(cal.events(other)) == 1 for other in others)


def test_naive_or_empty_intervals_are_invalid_input(cal: Backend) -> None:
    naive = dt.datetime(2026, 11, 24, 10)
    with pytest.raises(InvalidInput):
        cal.book("acme", lead="Dana", start=naive, end=naive + HALF_HOUR, idempotency_key="k1")
    with pytest.raises(InvalidInput):
        cal.book("acme", lead="Dana", start=at(1), end=at(1), idempotency_key="k1")
    with pytest.raises(InvalidInput):
        cal.block("acme", at(2), at(1))
    with pytest.raises(InvalidInput):
        cal.move("acme", "evt_x", start=at(2), end=at(1), idempotency_key="m1")
    assert cal.events("acme") == []


def test_both_backends_agree_on_a_random_history(redis_client: redis.Redis) -> None:
    """Differential: the same random operations on both backends give the same outcomes and calendars."""
    rng = random.Random(11)
    memory, stored = InMemoryCalendar(), RedisCalendar(redis_client)
    ids: dict[str, tuple[str, str]] = {}  # memory id -> (memory id, redis id), by booking key
    mapping: dict[str, str] = {}

    def outcome(call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = call(*args, **kwargs)
        except (SlotTaken, EventNotFound) as exc:
            return type(exc).__name__
        return result

    def shape(event: Event | None, backend: str) -> tuple[object, ...] | None:
        if event is None:
            return None
        event_id = event.id if backend == "memory" else {v: k for k, v in mapping.items()}[event.id]
        return (event_id, event.start, event.end, event.lead, event.idempotency_key)

    for step in range(400):
        tenant = rng.choice(["t1", "t2"])
        start = at(rng.randrange(0, 40) / 4)
        end = start + dt.timedelta(minutes=rng.choice([15, 30, 60, 120]))
        op = rng.random()
        if op < 0.1:
            memory.block(tenant, start, end)
            stored.block(tenant, start, end)
            continue
        if op < 0.55 or not ids:
            key = f"k{rng.randrange(60)}"
            booking = {"lead": f"L{step}", "start": start, "end": end, "idempotency_key": key}
            a = outcome(memory.book, tenant, **booking)
            b = outcome(stored.book, tenant, **booking)
            if isinstance(a, Event) and isinstance(b, Event):
                mapping.setdefault(a.id, b.id)
                ids[a.id] = (a.id, b.id)
        else:
            memory_id, redis_id = rng.choice(sorted(ids.values()))
            key = f"x{rng.randrange(30)}"
            if op < 0.85:
                change = {"start": start, "end": end, "idempotency_key": "m" + key}
                a = outcome(memory.move, tenant, memory_id, **change)
                b = outcome(stored.move, tenant, redis_id, **change)
            else:
                a = outcome(memory.cancel, tenant, memory_id, idempotency_key="c" + key)
                b = outcome(stored.cancel, tenant, redis_id, idempotency_key="c" + key)
        if isinstance(a, str) or isinstance(b, str):
            assert a == b, step
        else:
            assert shape(a, "memory") == shape(b, "redis"), step
    for tenant in ["t1", "t2"]:
        assert [shape(e, "memory") for e in memory.events(tenant)] == [shape(e, "redis") for e in stored.events(tenant)]
        assert sorted(memory.busy(tenant, at(-1), at(20))) == sorted(stored.busy(tenant, at(-1), at(20)))


# --- Redis only -----------------------------------------------------------------------------------


def test_times_come_back_in_the_tenants_timezone(redis_client: redis.Redis) -> None:
    berlin = Schedule(timezone="Europe/Berlin")
    cal = RedisCalendar(redis_client, schedules={"berlin": berlin})
    event = cal.book("berlin", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    assert event.start == at(0) and event.start.tzinfo == ZoneInfo("Europe/Berlin") and event.start.hour == 11
    assert cal.busy("berlin", at(-1), at(1))[0][0].tzinfo == ZoneInfo("Europe/Berlin")
    other = cal.book("utc", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    assert other.start.tzinfo == ZoneInfo("UTC") and cal.schedule("utc") == Schedule()


def test_the_calendar_keys_are_tagged_per_tenant_and_have_no_ttl(
    rcal: RedisCalendar, redis_client: redis.Redis
) -> None:
    tenant = "a{b}:*"
    event = rcal.book(tenant, lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    rcal.move(tenant, event.id, start=at(1), end=at(1.5), idempotency_key="m1")
    keys = CalendarKeys(tenant)
    assert keys.busy == "dialog:cal:{a%7Bb%7D%3A%2A}:busy"
    written = sorted(k.decode() for k in redis_client.scan_iter(match="*"))
    assert written == sorted(keys.all)
    assert {key_slot(k.encode()) for k in written} == {key_slot(b"a%7Bb%7D%3A%2A")}
    assert all(redis_client.ttl(k) == -1 for k in written)
    assert {CalendarKeys.parse(k) for k in written} == {keys}
    assert CalendarKeys.parse("dialog:{acme:c1}:conv") is None


def test_two_processes_booking_the_same_times_never_overlap(redis_url: str, redis_client: redis.Redis) -> None:
    """Two real processes, released together, book 20 contested slots each: one of each pair wins."""
    tenant, go, ready = "race:{t}", "test:go", "test:ready"
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.calendar_worker", "race", redis_url, tenant, name, go, ready],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ["a", "b"]
    ]
    deadline = time.monotonic() + 30
    while int(redis_client.get(ready) or 0) < 2:
        assert time.monotonic() < deadline, "the workers did not start"
        assert all(w.poll() is None for w in workers), [w.communicate() for w in workers]
        time.sleep(0.01)
    redis_client.lpush(go, "go", "go")  # the barrier: each worker takes one token and starts
    outputs = [w.communicate(timeout=60) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    a, b = ([json.loads(line) for line in out.splitlines()] for out, _ in outputs)
    assert len(a) == len(b) == BOOKINGS
    for mine, theirs in zip(a, b, strict=True):
        assert {mine["outcome"], theirs["outcome"]} == {"booked", "taken"}, (mine, theirs)
    events = RedisCalendar(redis_client).events(tenant)
    assert len(events) == BOOKINGS
    for earlier, later in itertools.pairwise(events):
        assert earlier.end <= later.start
    won = {r["id"]: f"{name}-{r['i']}" for name, rows in [("a", a), ("b", b)] for r in rows if r["id"]}
    assert {e.id: e.idempotency_key for e in events} == won
    for event in events:
        name, i = event.idempotency_key.split("-")
        assert (event.start, event.end) == race_slot(name, int(i))


def test_a_booking_made_by_a_process_that_exited_is_seen_after_a_restart(redis_url: str) -> None:
    start, end = at(24), at(24.5)  # Wed 25 Nov 10:00
    args = ["once", redis_url, "acme", "Dana", start.isoformat(), end.isoformat(), "k-restart"]
    done = subprocess.run(
        [sys.executable, "-m", "tests.calendar_worker", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    booked = json.loads(done.stdout)
    client = redis.Redis.from_url(redis_url)  # a new process's view: a new client, a new calendar
    try:
        cal = RedisCalendar(client)
        assert [e.id for e in cal.events("acme")] == [booked["id"]]
        assert cal.busy("acme", start - dt.timedelta(hours=1), end) == [(start, end)]
        event = cal.find("acme", "k-restart")
        assert event is not None and event.id == booked["id"] and (event.start, event.end) == (start, end)
        offered = find_slot(cal, "acme", at_or_after=start, now=at(0))
        assert offered == end  # never the booked slot
        with pytest.raises(SlotTaken):
            cal.book("acme", lead="Fox", start=start, end=end, idempotency_key="k-other")
    finally:
        client.flushdb()
        client.close()


class CountingRedis(redis.Redis):
    """A client that records the name of every command it sends (each one round trip)."""

    sent: list[str]

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]).upper())
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]  # unannotated in redis-py


@pytest.fixture
def counting(redis_url: str, redis_client: redis.Redis) -> Iterator[CountingRedis]:
    pool = redis.ConnectionPool.from_url(redis_url)
    client = CountingRedis(connection_pool=pool)
    client.sent = []
    yield client
    client.close()
    pool.disconnect()


def test_book_busy_find_move_and_cancel_are_one_round_trip_each(counting: CountingRedis) -> None:
    cal = RedisCalendar(counting)

    def sent(call: Any) -> list[str]:
        counting.sent.clear()
        call()
        return list(counting.sent)

    # a script's first call on a server that does not know it yet: EVALSHA (NOSCRIPT), SCRIPT LOAD,
    # EVALSHA; then one EVALSHA per call
    first = sent(lambda: cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k0"))
    assert first in (["EVALSHA"], ["EVALSHA", "SCRIPT LOAD", "EVALSHA"])
    assert sent(lambda: cal.book("acme", lead="Dana", start=at(1), end=at(1.5), idempotency_key="k1")) == ["EVALSHA"]
    assert sent(lambda: cal.book("acme", lead="Dana", start=at(1), end=at(1.5), idempotency_key="k1")) == ["EVALSHA"]
    booked = cal.book("acme", lead="Dana", start=at(1), end=at(1.5), idempotency_key="k1")
    with pytest.raises(SlotTaken):
        cal.book("acme", lead="Fox", start=at(1), end=at(1.5), idempotency_key="k2")
    assert counting.sent[-1] == "EVALSHA"
    for _ in range(2):  # each script loaded by its first call
        assert sent(lambda: cal.busy("acme", at(-1), at(24)))[-1] == "EVALSHA"
        assert sent(lambda: cal.find("acme", "k1"))[-1] == "EVALSHA"
        assert sent(lambda: cal.move("acme", booked.id, start=at(3), end=at(3.5), idempotency_key="m"))[-1] == "EVALSHA"
        assert sent(lambda: cal.cancel("acme", "evt_none", idempotency_key="c"))[-1] == "EVALSHA"
    assert sent(lambda: cal.busy("acme", at(-1), at(24))) == ["EVALSHA"]
    assert sent(lambda: cal.find("acme", "k1")) == ["EVALSHA"]
    assert sent(lambda: cal.move("acme", booked.id, start=at(4), end=at(4.5), idempotency_key="m2")) == ["EVALSHA"]
    assert sent(lambda: cal.cancel("acme", booked.id, idempotency_key="c2")) == ["EVALSHA"]
    assert sent(lambda: cal.events("acme")) == ["HVALS"]
    assert sent(lambda: cal.schedule("acme")) == []


def test_book_and_busy_send_one_packet_each(rcal: RedisCalendar, monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted on the wire too (as tests/test_round_trips.py does): no hidden retries or reads."""
    rcal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="warm")
    rcal.busy("acme", at(0), at(1))
    count = [0]
    original: Callable[..., object] = redis.connection.AbstractConnection.send_packed_command  # unannotated

    def counted(conn: redis.connection.AbstractConnection, *args: Any, **kwargs: Any) -> None:
        count[0] += 1
        original(conn, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    rcal.book("acme", lead="Dana", start=at(1), end=at(1.5), idempotency_key="k1")
    assert count[0] == 1
    rcal.busy("acme", at(0), at(24))
    assert count[0] == 2


def _texts(values: Iterable[object]) -> set[str]:
    """Members or fields as text; the client (no decode_responses) must have returned bytes."""
    found = set()
    for value in values:
        assert isinstance(value, bytes), value
        found.add(value.decode())
    return found


def test_trim_removes_only_what_ended_before_the_cutoff(rcal: RedisCalendar, redis_client: redis.Redis) -> None:
    old = rcal.book("acme", lead="Old", start=at(0), end=at(1), idempotency_key="old")
    edge = rcal.book("acme", lead="Edge", start=at(1), end=at(2), idempotency_key="edge")  # ends at the cutoff
    running = rcal.book("acme", lead="Running", start=at(2), end=at(4), idempotency_key="running")
    new = rcal.book("acme", lead="New", start=at(5), end=at(6), idempotency_key="new")
    moved = rcal.book("acme", lead="Moved", start=at(-5), end=at(-4), idempotency_key="moved")
    rcal.move("acme", moved.id, start=at(7), end=at(8), idempotency_key="move-late")  # now ends late
    gone = rcal.book("acme", lead="Gone", start=at(-3), end=at(-2.5), idempotency_key="gone")
    rcal.cancel("acme", gone.id, idempotency_key="cancel-old")
    rcal.move("acme", old.id, start=at(-10), end=at(-9), idempotency_key="move-early")
    rcal.block("acme", at(-20), at(-19))
    rcal.block("acme", at(1.5), at(2.5))
    rcal.book("other", lead="Other", start=at(0), end=at(1), idempotency_key="old")

    assert rcal.trim("acme", before=at(2)) == 2  # old (moved earlier) and edge
    assert [e.id for e in rcal.events("acme")] == [running.id, new.id, moved.id]
    assert rcal.find("acme", "old") is None and rcal.find("acme", "edge") is None
    assert rcal.busy("acme", at(-30), at(2)) == [(at(1.5), at(2.5))]
    assert len(rcal.busy("acme", at(-30), at(30))) == 4
    keys = CalendarKeys("acme")
    fields = _texts(redis_client.hkeys(keys.keys))
    assert fields == {"b:running", "b:new", "b:moved", "m:move-late"}  # old results and keys are gone
    assert _texts(redis_client.zrange(keys.changes, 0, -1)) == {"m:move-late"}
    assert not any(edge.id in m or old.id in m for m in _texts(redis_client.zrange(keys.busy, 0, -1)))
    assert redis_client.hlen(keys.events) == 3
    assert len(rcal.events("other")) == 1  # another tenant is untouched
    replay = rcal.move("acme", moved.id, start=at(7), end=at(8), idempotency_key="move-late")
    assert replay == rcal.find("acme", "moved")
    assert rcal.trim("acme", before=at(2)) == 0


def test_trim_without_a_tenant_trims_every_tenant_in_batches(rcal: RedisCalendar, redis_client: redis.Redis) -> None:
    tenants = ["acme", "a{b}:*", "zeta"]
    for tenant in tenants:
        for i in range(600):  # more than a batch of old events per tenant
            rcal.book(tenant, lead="L", start=at(-1000 + i), end=at(-1000 + i + 0.5), idempotency_key=f"k{i}")
        rcal.block(tenant, at(-2000), at(5))  # still running at the cutoff: kept
        rcal.book(tenant, lead="L", start=at(10), end=at(11), idempotency_key="future")
    redis_client.set("dialog:{acme:c1}:conv", "not a calendar key")
    assert rcal.trim(before=at(0)) == 3 * 600
    for tenant in tenants:
        assert [e.idempotency_key for e in rcal.events(tenant)] == ["future"]
        assert redis_client.hkeys(CalendarKeys(tenant).keys) == [b"b:future"]
        assert len(rcal.busy(tenant, at(-3000), at(3000))) == 2
    assert redis_client.get("dialog:{acme:c1}:conv") == b"not a calendar key"


def test_a_foreign_type_at_a_calendar_key_is_calendar_unavailable_naming_it(
    rcal: RedisCalendar, redis_client: redis.Redis
) -> None:
    keys = CalendarKeys("acme")
    for key in keys.all:
        redis_client.flushdb()
        redis_client.rpush(key, "foreign")
        calls: list[Callable[[], object]] = [
            lambda: rcal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k"),
            lambda: rcal.busy("acme", at(0), at(1)),
            lambda: rcal.find("acme", "k"),
            lambda: rcal.block("acme", at(0), at(1)),
            lambda: rcal.move("acme", "evt_x", start=at(0), end=at(1), idempotency_key="m"),
            lambda: rcal.cancel("acme", "evt_x", idempotency_key="c"),
            lambda: rcal.trim("acme", before=at(0)),
        ]
        for call in calls:
            with pytest.raises(CalendarUnavailable) as caught:
                call()
            assert key in str(caught.value) and "list" in str(caught.value)
        assert redis_client.lrange(key, 0, -1) == [b"foreign"]  # kept for inspection
    redis_client.flushdb()
    redis_client.set(keys.events, "foreign")
    with pytest.raises(CalendarUnavailable, match="holds another Redis type") as caught:
        rcal.events("acme")
    assert keys.events in str(caught.value) and not isinstance(caught.value.__cause__, CalendarUnavailable)


def test_an_unreadable_event_record_is_calendar_unavailable(rcal: RedisCalendar, redis_client: redis.Redis) -> None:
    event = rcal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k")
    redis_client.hset(CalendarKeys("acme").events, event.id, "not json")
    calls: list[Callable[[], object]] = [
        lambda: rcal.events("acme"),
        lambda: rcal.find("acme", "k"),
        lambda: rcal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k"),
        lambda: rcal.move("acme", event.id, start=at(1), end=at(2), idempotency_key="m"),
        lambda: rcal.cancel("acme", event.id, idempotency_key="c"),
    ]
    for call in calls:
        with pytest.raises(CalendarUnavailable, match="cannot be read"):
            call()


def test_an_unreachable_redis_is_calendar_unavailable() -> None:
    client = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    cal = RedisCalendar(client)
    assert cal.schedule("acme") == Schedule()  # no I/O
    calls: list[Callable[[], object]] = [
        lambda: cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k"),
        lambda: cal.busy("acme", at(0), at(1)),
        lambda: cal.events("acme"),
        lambda: cal.trim(before=at(0)),
    ]
    for call in calls:
        with pytest.raises(CalendarUnavailable) as caught:
            call()
        assert isinstance(caught.value.__cause__, redis.RedisError)
    client.close()


def test_ids_and_text_redis_cannot_store_are_invalid_input(rcal: RedisCalendar) -> None:
    with pytest.raises(InvalidInput):
        rcal.book("", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k")
    with pytest.raises(InvalidInput):
        rcal.book("acme", lead="\ud800", start=at(0), end=at(0.5), idempotency_key="k")
    with pytest.raises(InvalidInput):
        rcal.find("acme\udfff", "k")
    with pytest.raises(InvalidInput):
        rcal.trim("acme", before=dt.datetime(2026, 1, 1))


def test_text_any_character_round_trips(rcal: RedisCalendar) -> None:
    lead, key = 'Zoë "Z" \\ O\'Brien,\n]}{[', 'key:{x}],"\u0000\u2028'
    event = rcal.book("acme", lead=lead, start=at(0), end=at(0.5), idempotency_key=key)
    assert (event.lead, event.idempotency_key) == (lead, key)
    assert rcal.find("acme", key) == event
    moved = rcal.move("acme", event.id, start=at(1), end=at(1.5), idempotency_key=key)
    assert (moved.lead, moved.idempotency_key) == (lead, key)
    assert rcal.cancel("acme", event.id, idempotency_key=key) == moved
    assert rcal.find("acme", key) is None and rcal.events("acme") == []


# --- Redis Cluster --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_tenants_calendar_is_one_slot_and_works_on_a_cluster(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path, masters=3)
    client = cluster_from_url(cluster.url)
    try:
        cal = RedisCalendar(client)
        tenants = [f"tenant-{i}" for i in range(12)] + ODD_TENANTS
        for tenant in tenants:
            event = cal.book(tenant, lead="Dana", start=at(0), end=at(0.5), idempotency_key="k")
            with pytest.raises(SlotTaken):
                cal.book(tenant, lead="Fox", start=at(0.25), end=at(1), idempotency_key="k2")
            cal.block(tenant, at(-30), at(-29))
            cal.move(tenant, event.id, start=at(2), end=at(2.5), idempotency_key="m")
            assert cal.busy(tenant, at(-40), at(40)) == [(at(-30), at(-29)), (at(2), at(2.5))]
        written = [k.decode() for k in client.scan_iter(match="dialog:cal:*", count=1000)]
        by_tenant: dict[str, set[int]] = {}
        for key in written:
            parsed = CalendarKeys.parse(key)
            assert parsed is not None
            by_tenant.setdefault(parsed.tenant_id, set()).add(client.keyslot(key))
        assert set(by_tenant) == set(tenants) and all(len(slots) == 1 for slots in by_tenant.values())
        masters = {client.get_node_from_key(CalendarKeys(t).busy).name for t in tenants}
        assert len(masters) > 1  # tenants spread, so trim must scan every node
        assert cal.trim(before=at(10)) == len(tenants)
        assert all(cal.events(t) == [] for t in tenants)
    finally:
        client.close()
        cluster.stop()


# --- figures (printed; run with -s) ---------------------------------------------------------------


def test_figures_memory_per_event_and_time_per_call(redis_client: redis.Redis) -> None:
    """Redis memory per booked event (MEMORY USAGE deltas over 1,000 events) and µs per call."""
    cal = RedisCalendar(redis_client)
    keys = CalendarKeys("acme")

    def usage() -> int:
        return sum(int(redis_client.memory_usage(k, samples=0) or 0) for k in keys.all)

    def booked(i: int) -> Event:  # an engine-like booking: a 32-hex-digit key, a person's name
        lead = f"Dana Scully {i}"
        return cal.book("acme", lead=lead, start=at(i), end=at(i + 0.5), idempotency_key=uuid.uuid4().hex)

    figures: dict[str, float] = {}
    booked(-100)  # the keys exist, the script is loaded
    before = usage()
    timings = []
    for i in range(1000):
        started = time.perf_counter()
        booked(i)
        timings.append(time.perf_counter() - started)
    after = usage()
    figures["bytes per event (1,000 events on one tenant)"] = (after - before) / 1000
    figures["bytes of the tenant's calendar"] = after
    figures["µs per book (median)"] = statistics.median(timings) * 1e6
    for window in [10, 24 * 16]:
        timings, found = [], []
        for i in range(200):
            started = time.perf_counter()
            found = cal.busy("acme", at(i), at(i + window))
            timings.append(time.perf_counter() - started)
        figures[f"µs per busy over {window} h ({len(found)} intervals, median)"] = statistics.median(timings) * 1e6
    timings = []
    for i in range(200):
        started = time.perf_counter()
        with pytest.raises(SlotTaken):
            cal.book("acme", lead="Fox", start=at(i), end=at(i + 0.5), idempotency_key=f"fox{i}")
        timings.append(time.perf_counter() - started)
    figures["µs per refused book (median)"] = statistics.median(timings) * 1e6
    encodings = {k.rsplit(":", 1)[1]: redis_client.object("encoding", k) for k in keys.all}
    print(f"\nencodings: {encodings}")
    for name, value in figures.items():
        print(f"{name}: {value:.0f}")
    assert figures["bytes per event (1,000 events on one tenant)"] < 1024


# --- the booking's evidence (spec 4.5): a note kept with the event ----------------------------------

NOTE = 'Confirmed by "uh yeah sure" on the voice channel, message m-1 (dialog).'


def stored_record(client: redis.Redis, tenant: str, event_id: str) -> Any:
    """The event's record as Redis holds it, decoded by an independent JSON reader."""
    raw = client.hget(CalendarKeys(tenant).events, event_id)
    assert isinstance(raw, bytes)
    return json.loads(raw)


def test_a_bookings_note_comes_back_and_survives_a_move_and_a_cancel(cal: Backend) -> None:
    event = cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1", note=NOTE)
    assert event.note == NOTE
    assert [e.note for e in cal.events("acme")] == [NOTE]
    found = cal.find("acme", "k1")
    assert found is not None and found.note == NOTE
    again = cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1", note="another")
    assert again.note == NOTE  # the first booking's evidence, not the replay's
    moved = cal.move("acme", event.id, start=at(2), end=at(2.5), idempotency_key="m1")
    assert moved.note == NOTE and (moved.start, moved.end) == (at(2), at(2.5))
    assert [e.note for e in cal.events("acme")] == [NOTE]
    replayed = cal.move("acme", event.id, start=at(4), end=at(4.5), idempotency_key="m1")
    assert replayed.note == NOTE and replayed.start == at(2)
    gone = cal.cancel("acme", event.id, idempotency_key="c1")
    assert gone is not None and gone.note == NOTE
    again_gone = cal.cancel("acme", event.id, idempotency_key="c1")
    assert again_gone is not None and again_gone.note == NOTE


def test_a_booking_without_a_note_reads_with_an_empty_one(cal: Backend) -> None:
    event = cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    assert event.note == "" and [e.note for e in cal.events("acme")] == [""]


def test_the_note_is_not_part_of_an_events_identity(cal: Backend) -> None:
    event = cal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1", note=NOTE)
    other_view = Event(event.id, event.start, event.end, "Dana", "k1", "something else")
    assert event == other_view and hash(event) == hash(other_view)


def test_another_process_reads_the_note_and_a_move_from_it_keeps_it(redis_url: str, rcal: RedisCalendar) -> None:
    event = rcal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1", note=NOTE)
    client = redis.Redis.from_url(redis_url)  # another process's connection and calendar
    try:
        other = RedisCalendar(client, schedules={"acme": Schedule(timezone="Europe/Berlin")})
        found = other.find("acme", "k1")
        assert found is not None and found.note == NOTE and found.start.tzinfo == ZoneInfo("Europe/Berlin")
        assert [e.note for e in other.events("acme")] == [NOTE]
        moved = other.move("acme", event.id, start=at(3), end=at(3.5), idempotency_key="m1")
        assert moved.note == NOTE
    finally:
        client.close()
    (seen,) = rcal.events("acme")
    assert seen.note == NOTE and (seen.start, seen.end) == (at(3), at(3.5))


def test_the_record_holds_the_note_as_a_sixth_element_and_a_move_keeps_it(
    rcal: RedisCalendar, redis_client: redis.Redis
) -> None:
    event = rcal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1", note=NOTE)
    booked = [event.id, int(at(0).timestamp()), int(at(0.5).timestamp()), "Dana", "k1", NOTE]
    assert stored_record(redis_client, "acme", event.id) == booked
    rcal.move("acme", event.id, start=at(1), end=at(1.5), idempotency_key="m1")  # rewritten in Lua
    moved = [event.id, int(at(1).timestamp()), int(at(1.5).timestamp()), "Dana", "k1", NOTE]
    assert stored_record(redis_client, "acme", event.id) == moved


def test_any_character_in_a_note_round_trips_through_book_move_and_cancel(rcal: RedisCalendar) -> None:
    note = 'said "ja, klar" \\ ]}{[,\n\u0000\u2028 Zoë, message m-1'
    event = rcal.book("acme", lead='Dana, "D"', start=at(0), end=at(0.5), idempotency_key="k,1]", note=note)
    assert event.note == note and rcal.events("acme")[0].note == note
    moved = rcal.move("acme", event.id, start=at(1), end=at(1.5), idempotency_key="m1")
    assert moved.note == note and moved.lead == 'Dana, "D"' and moved.idempotency_key == "k,1]"
    gone = rcal.cancel("acme", event.id, idempotency_key="c1")  # the cancel script decodes the record
    assert gone is not None and gone.note == note and rcal.events("acme") == []
    with pytest.raises(InvalidInput):
        rcal.book("acme", lead="Dana", start=at(2), end=at(2.5), idempotency_key="k2", note="\ud800")


def test_a_record_written_before_notes_existed_still_reads_moves_and_cancels(
    rcal: RedisCalendar, redis_client: redis.Redis
) -> None:
    event = rcal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1")
    events_key = CalendarKeys("acme").events
    old = [event.id, int(at(0).timestamp()), int(at(0.5).timestamp()), "Dana", "k1"]
    redis_client.hset(events_key, event.id, json.dumps(old, separators=(",", ":")))  # as earlier versions wrote it

    (listed,) = rcal.events("acme")
    assert listed == event and listed.note == ""
    found = rcal.find("acme", "k1")
    assert found is not None and found.note == "" and found.lead == "Dana"
    moved = rcal.move("acme", event.id, start=at(1), end=at(1.5), idempotency_key="m1")
    assert moved.note == "" and (moved.start, moved.end) == (at(1), at(1.5))
    assert rcal.busy("acme", at(-1), at(2)) == [(at(1), at(1.5))]  # the old time is free
    still_old = [event.id, int(at(1).timestamp()), int(at(1.5).timestamp()), "Dana", "k1"]
    assert stored_record(redis_client, "acme", event.id) == still_old  # the move kept its form
    gone = rcal.cancel("acme", event.id, idempotency_key="c1")
    assert gone is not None and gone.note == "" and rcal.events("acme") == []


def test_a_record_a_later_version_extends_still_reads(rcal: RedisCalendar, redis_client: redis.Redis) -> None:
    event = rcal.book("acme", lead="Dana", start=at(0), end=at(0.5), idempotency_key="k1", note=NOTE)
    events_key = CalendarKeys("acme").events
    newer = [event.id, int(at(0).timestamp()), int(at(0.5).timestamp()), "Dana", "k1", NOTE, {"x": 1}]
    redis_client.hset(events_key, event.id, json.dumps(newer, separators=(",", ":")))
    (listed,) = rcal.events("acme")
    assert listed == event and listed.note == NOTE
    redis_client.hset(events_key, event.id, json.dumps([event.id, 1, 2, "Dana"]))  # too short: unreadable
    with pytest.raises(CalendarUnavailable, match="cannot be read"):
        rcal.events("acme")
