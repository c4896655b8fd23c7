"""Every benchmark of the engine against the design it replaces, in one command, as one table.

    .venv/bin/python -m benchmarks.compare [--conversations N] [--rounds R] [--redis-url URL] [--no-cluster]

Each conversation is the same 3-turn dialog: propose (``engine.propose`` / the baseline's SET),
"move it", "yes". Every conversation has its own tenant, so the in-memory calendar never fills.

1. baseline (``benchmarks/baseline.py``) and engine on the same Redis, alternating, the database
   flushed before each run; the PING floor of one client; round trips per turn.
2. the same with two instances taking turns on every conversation (separate clients): instance A
   proposes, B moves, A confirms, so no per-instance cache can help.
3. ``AsyncEngine`` with 1, 8, 64 and 256 conversations in flight.
4. engine CPU per turn on an in-memory store (``benchmarks/memstore.py``), profiled with pyinstrument.
5. Redis memory per pending and per finished conversation (``MEMORY USAGE`` of its keys).
6. p50/p99 per turn, paced at half the maximum throughput measured in 1.
7. the engine on a local 3-master Redis Cluster, from 1 and 2 client processes.

Unless ``--redis-url`` is given, it starts a private redis-server (and the cluster) on free
ports, so its FLUSHDBs touch nobody's data.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.connection

from benchmarks import targets
from benchmarks.baseline import Baseline
from benchmarks.memstore import MemoryRedis, MemoryStore
from benchmarks.servers import LocalCluster, RedisProcess
from dialog import Engine, InMemoryCalendar
from dialog.engine import AsyncEngine
from dialog.store.keys import ConversationKeys
from dialog.testing import FakeClock

# Monday 23 Nov 2026 08:00 UTC; every dialog proposes Tuesday 10:00, moves to 10:30, books it.
NOW = dt.datetime(2026, 11, 23, 8, tzinfo=dt.UTC)
START = dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)
LEAD = "Dana Scully"
EXPECTED = ("proposed", "rescheduled", "booked")
IN_FLIGHT = (1, 8, 64, 256)


# --- counting and timing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One timed run: how many turns, in how long, how many round trips, how much client CPU."""

    turns: int
    seconds: float
    round_trips: int
    cpu_seconds: float

    @property
    def per_second(self) -> float:
        return self.turns / self.seconds

    @property
    def trips_per_turn(self) -> float:
        return self.round_trips / self.turns

    @property
    def cpu_us(self) -> float:
        return self.cpu_seconds / self.turns * 1e6


@contextlib.contextmanager
def round_trips() -> Iterator[list[int]]:
    """Counts packets sent by redis-py, sync and asyncio: a pipeline is one, a script call is one."""
    count = [0]
    sync_class, async_class = redis.connection.AbstractConnection, redis.asyncio.connection.AbstractConnection
    # redis-py leaves the sync one unannotated; both are called with what they were given
    sync_send: Callable[..., Any] = sync_class.send_packed_command
    async_send: Callable[..., Awaitable[Any]] = async_class.send_packed_command

    def sent(conn: Any, *args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return sync_send(conn, *args, **kwargs)

    async def sent_async(conn: Any, *args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return await async_send(conn, *args, **kwargs)

    with (
        mock.patch.object(sync_class, "send_packed_command", sent),
        mock.patch.object(async_class, "send_packed_command", sent_async),
    ):
        yield count


@contextlib.contextmanager
def timed(turns: int) -> Iterator[list[Run]]:
    """Times the block; the Run is in the yielded list afterwards."""
    result: list[Run] = []
    with round_trips() as count:
        cpu, wall = time.process_time(), time.perf_counter()
        yield result
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result.append(Run(turns, wall, count[0], cpu))


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --- the dialog -------------------------------------------------------------------------------------


def dialog(parties: Sequence[Any], conversation: int, tag: str) -> None:
    """The 3-turn dialog of one conversation: parties[0] proposes, [1] moves, [2] confirms."""
    tenant = f"{tag}-{conversation}"
    said = (
        parties[0].propose("c", lead=LEAD, start=START, tenant_id=tenant).outcome,
        parties[1].handle("c", "move it", tenant_id=tenant).outcome,
        parties[2].handle("c", "yes", tenant_id=tenant).outcome,
    )
    if said != EXPECTED:
        raise AssertionError(f"{type(parties[0]).__name__} said {said} in conversation {tenant}")


def run_dialogs(parties: Sequence[Any], n: int, tag: str) -> Run:
    with timed(3 * n) as result:
        for i in range(n):
            dialog(parties, i, tag)
    return result[0]


class Systems:
    """Builds engines and baselines on one Redis, each with its own client, a fresh calendar per run."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.admin = redis.Redis.from_url(url)
        self._clients = [redis.Redis.from_url(url) for _ in range(2)]

    def parties(self, kind: str, instances: int) -> list[Any]:
        calendar, clock = InMemoryCalendar(), FakeClock(NOW)
        if kind == "engine":
            made: list[Any] = [Engine(c, calendar=calendar, clock=clock) for c in self._clients[:instances]]
        else:
            made = [Baseline(c, calendar=calendar, clock=clock) for c in self._clients[:instances]]
        return [made[0], made[-1], made[0]]

    def run(self, kind: str, instances: int, n: int, tag: str) -> Run:
        self.admin.flushdb()
        return run_dialogs(self.parties(kind, instances), n, tag)


# --- 1, 2: baseline and engine, one and two instances -----------------------------------------------

SYNC_KINDS = (("baseline", 1), ("engine", 1), ("baseline", 2), ("engine", 2))


def sync_rounds(systems: Systems, n: int, rounds: int) -> dict[tuple[str, int], list[Run]]:
    for kind, instances in SYNC_KINDS:
        systems.run(kind, instances, min(n, 300), f"warm-{kind}{instances}")
    runs: dict[tuple[str, int], list[Run]] = defaultdict(list)
    for r in range(rounds):
        for kind, instances in SYNC_KINDS:
            runs[kind, instances].append(systems.run(kind, instances, n, f"r{r}-{kind}{instances}"))
    return runs


def ping_floor(client: redis.Redis, n: int = 10_000) -> float:
    started = time.perf_counter()
    for _ in range(n):
        client.ping()
    return n / (time.perf_counter() - started)


def median_run(runs: list[Run]) -> Run:
    return sorted(runs, key=lambda r: r.per_second)[len(runs) // 2]


# --- 3: AsyncEngine -----------------------------------------------------------------------------


async def async_dialogs(url: str, in_flight: int, n: int, tag: str) -> Run:
    """``n`` dialogs, ``in_flight`` of them at a time, on one AsyncEngine (one client, one pool)."""
    client = redis.asyncio.Redis.from_url(url, max_connections=in_flight)
    engine = AsyncEngine(client, calendar=InMemoryCalendar(), clock=FakeClock(NOW))

    async def worker(todo: Iterator[int], prefix: str) -> None:
        for i in todo:
            tenant = f"{prefix}-{i}"
            said = (
                (await engine.propose("c", lead=LEAD, start=START, tenant_id=tenant)).outcome,
                (await engine.handle("c", "move it", tenant_id=tenant)).outcome,
                (await engine.handle("c", "yes", tenant_id=tenant)).outcome,
            )
            if said != EXPECTED:
                raise AssertionError(f"AsyncEngine said {said} in conversation {tenant}")

    async def dialogs(count: int, prefix: str) -> None:
        todo = iter(range(count))
        await asyncio.gather(*(worker(todo, prefix) for _ in range(in_flight)))

    try:
        await dialogs(max(2 * in_flight, 200), f"warm-{tag}")  # every connection opened, scripts loaded
        with timed(3 * n) as result:
            await dialogs(n, tag)
        return result[0]
    finally:
        await engine.aclose()


async def async_ping_floor(url: str, in_flight: int, n: int) -> Run:
    """PINGs from ``in_flight`` coroutines on one redis.asyncio client: what any async engine is bounded by."""
    client = redis.asyncio.Redis.from_url(url, max_connections=in_flight)

    async def pinger(count: int) -> None:
        for _ in range(count):
            await client.ping()

    try:
        await asyncio.gather(*(pinger(10) for _ in range(in_flight)))
        with timed(n) as result:
            await asyncio.gather(*(pinger(n // in_flight) for _ in range(in_flight)))
        return result[0]
    finally:
        await client.aclose()


def async_runs(systems: Systems, n: int) -> dict[int, Run]:
    found = {}
    for k in IN_FLIGHT:
        systems.admin.flushdb()
        found[k] = asyncio.run(async_dialogs(systems.url, k, n, f"async{k}"))
    return found


# --- 4: CPU without Redis -----------------------------------------------------------------------


def memory_engine() -> Engine:
    """An engine whose store is in process memory (its Redis client is never used)."""
    engine = Engine(redis.Redis(), calendar=InMemoryCalendar(), clock=FakeClock(NOW), configure_client=False)
    engine._store = MemoryStore(ttl_seconds=engine.ttl_seconds)  # type: ignore[assignment]
    return engine


def memory_baseline() -> Baseline:
    """The baseline on a dict instead of Redis."""
    return Baseline(MemoryRedis(), calendar=InMemoryCalendar(), clock=FakeClock(NOW))


@dataclass(frozen=True)
class Cpu:
    """CPU µs per turn over chunks of 100 dialogs: the median chunk, the best, and the best by kind of turn."""

    median: float
    best: float
    best_by_kind: dict[str, float]


def cpu_per_turn(make: Callable[[], Any], n: int, rounds: int) -> Cpu:
    """CPU per turn, timed turn by turn. On a shared machine the best chunk is the code's own cost;
    the median also carries the neighbours' load (cache misses, a busy sibling hyperthread)."""
    chunks: list[dict[str, float]] = []
    run_dialogs([make()] * 3, 300, "warm")
    for r in range(rounds):
        party = make()
        for first in range(0, n, 100):
            cpu = dict.fromkeys(EXPECTED, 0.0)
            for i in range(first, min(first + 100, n)):
                for step, outcome in enumerate(EXPECTED):
                    started = time.process_time()
                    reply = _turn(party, step, f"cpu{r}-{i}")
                    cpu[outcome] += time.process_time() - started
                    assert reply.outcome == outcome, reply
            count = min(first + 100, n) - first
            chunks.append({k: v / count * 1e6 for k, v in cpu.items()})
    per_turn = [sum(c.values()) / 3 for c in chunks]
    by_kind = {k: min(c[k] for c in chunks) for k in EXPECTED}
    return Cpu(statistics.median(per_turn), min(per_turn), by_kind)


def _turn(party: Any, step: int, tenant: str) -> Any:
    """Turn ``step`` (0 propose, 1 move, 2 confirm) of the dialog."""
    if step == 0:
        return party.propose("c", lead=LEAD, start=START, tenant_id=tenant)
    return party.handle("c", "move it" if step == 1 else "yes", tenant_id=tenant)


# The steps of a turn, as (what, file, functions): their inclusive share of the profile.
STEPS = (
    ("state machine: machine.fire -> pytransitions", "dialog/machine.py", {"fire"}),
    ("reply: Engine._reply (text, Proposal, Event)", "dialog/engine.py", {"_reply"}),
    ("slot search: find_slot (grid, busy)", "dialog/calendar/slots.py", {"find_slot"}),
    ("understanding: understand (normalise, intents)", "dialog/understanding/intents.py", {"understand"}),
    ("key names: ConversationKeys.tag (urllib quote)", "dialog/store/keys.py", {"tag"}),
    ("store: load + commit (msgspec, nonce, keys)", "benchmarks/memstore.py", {"load", "commit"}),
    ("calendar: InMemoryCalendar.book (uuid4)", "dialog/calendar/memory.py", {"book"}),
    ("decision: turn.decide / turn.propose", "dialog/turn.py", {"decide", "propose"}),
    ("idempotency key: turn.idempotency_key (sha)", "dialog/turn.py", {"idempotency_key"}),
    ("record cache: RecordCache get/put", "dialog/store/cache.py", {"get", "put"}),
    ("input checks: dialog.inputs", "dialog/inputs.py", {"text", "identifier", "lead", "future_start", "channel"}),
)


@dataclass
class Profile:
    seconds: float  # sampled, profiler overhead included
    steps: list[tuple[str, float]]  # inclusive share of each step of STEPS
    functions: list[tuple[str, float]]  # top functions by self time
    files: list[tuple[str, float]]  # self time by file (or library)


def profile(n: int) -> Profile:
    """pyinstrument over ``n`` dialogs on the in-memory store."""
    from pyinstrument import Profiler

    engine = memory_engine()
    run_dialogs([engine] * 3, 300, "warm")
    profiler = Profiler(interval=0.0005)
    profiler.start()
    run_dialogs([engine] * 3, n, "profile")
    session = profiler.stop()
    by_function: dict[str, float] = defaultdict(float)
    by_file: dict[str, float] = defaultdict(float)
    by_step: dict[str, float] = defaultdict(float)

    def walk(frame: Any, inside: frozenset[str]) -> None:
        step = _step(frame)
        if step and step not in inside:  # count a step once, not again in its own recursion
            by_step[step] += frame.time
            inside = inside | {step}
        for child in frame.children:
            if child.is_synthetic:  # "[self]": time spent in ``frame`` itself
                by_function[f"{frame.function} ({_short(frame.file_path)}:{frame.line_no})"] += child.time
                by_file[_area(frame.file_path)] += child.time
            else:
                walk(child, inside)

    walk(session.root_frame(), frozenset())
    total = sum(by_function.values())

    def shares(table: dict[str, float], top: int) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in sorted(table.items(), key=lambda kv: -kv[1])[:top]]

    return Profile(total, shares(by_step, len(STEPS)), shares(by_function, 15), shares(by_file, 12))


def _step(frame: Any) -> str | None:
    if frame.is_synthetic:
        return None
    where, name = _short(frame.file_path), frame.function.rsplit(".", 1)[-1]
    return next((what for what, file, names in STEPS if where == file and name in names), None)


def _short(path: str | None) -> str:
    """A path as a reader knows it: ``dialog/turn.py``, ``transitions/core.py``, ``urllib/parse.py``."""
    if not path:
        return "?"
    for marker in ("site-packages/", "benchmarks/", "dialog/"):
        if marker in path:
            tail = path.rsplit(marker, 1)[1]
            return tail if marker == "site-packages/" else marker + tail
    stdlib = re.search(r"lib/python3\.\d+/(.*)", path)
    return stdlib[1] if stdlib else Path(path).name


def _area(path: str | None) -> str:
    short = _short(path)
    if short.startswith("dialog/"):
        return short
    return short.split("/", 1)[0].removesuffix(".py") if "/" in short else short


# --- 5: memory ------------------------------------------------------------------------------------


def memory_per_conversation(systems: Systems, n: int) -> dict[str, float]:
    """Bytes per conversation: MEMORY USAGE of one's keys, and used_memory growth over ``n``."""
    admin = systems.admin
    found: dict[str, float] = {}
    for kind in ("engine", "baseline"):
        admin.flushdb()
        parties = systems.parties(kind, 1)
        before = int(admin.info("memory")["used_memory"])
        for i in range(n):
            parties[0].propose("c", lead=LEAD, start=START, tenant_id=f"mem-{i}")
        found[f"{kind} pending, used_memory growth"] = (int(admin.info("memory")["used_memory"]) - before) / n
        found[f"{kind} pending"] = _usage(admin, kind, "mem-0")
        for i in range(n):
            parties[1].handle("c", "move it", tenant_id=f"mem-{i}")
            parties[2].handle("c", "yes", tenant_id=f"mem-{i}")
        found[f"{kind} finished"] = _usage(admin, kind, "mem-0")
    return found


def _usage(admin: redis.Redis, kind: str, tenant: str) -> float:
    keys = ConversationKeys(tenant, "c")
    names = [keys.conversation, keys.expired_marker] if kind == "engine" else [f"pending:{{{tenant}:c}}"]
    return sum(int(admin.memory_usage(name, samples=0) or 0) for name in names)


# --- 6: paced latency -------------------------------------------------------------------------


def paced(parties: Sequence[Any], rate: float, n: int, tag: str) -> tuple[list[float], list[float]]:
    """Turns sent at ``rate`` per second: (latency from the scheduled send, time in the call), seconds.

    The first counts from when the turn was due, so a slow turn also delays the ones queued behind
    it (no coordinated omission), and so does the sleep's own overshoot.
    """
    from_schedule: list[float] = []
    service: list[float] = []
    interval = 1 / rate
    t0 = time.perf_counter() + 0.01
    j = 0
    for i in range(n):
        tenant = f"{tag}-{i}"
        for step in range(3):
            due = t0 + j * interval
            j += 1
            ahead = due - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)  # no spinning: on a small machine it would steal the CPU Redis needs
            began = time.perf_counter()
            _turn(parties[step], step, tenant)
            done = time.perf_counter()
            from_schedule.append(done - due)
            service.append(done - began)
    return from_schedule, service


# --- 7: cluster (and the single Redis) from 1 and 2 processes ----------------------------------------


def _client(url: str) -> Any:
    if url.startswith("redis+cluster://"):
        from dialog.store.cluster import apply_cluster_failure_policy, cluster_from_url
        from dialog.store.redis_store import CONNECT_TIMEOUT, RETRIES, SOCKET_TIMEOUT

        client = cluster_from_url(url)
        apply_cluster_failure_policy(
            client, socket_timeout=SOCKET_TIMEOUT, connect_timeout=CONNECT_TIMEOUT, retries=RETRIES
        )
        return client
    return redis.Redis.from_url(url)


def _process_worker(url: str, n: int, tag: str, barrier: Any, results: Any) -> None:
    engine = Engine(_client(url), calendar=InMemoryCalendar(), clock=FakeClock(NOW))
    run_dialogs([engine] * 3, min(n, 200), f"warm-{tag}")
    barrier.wait()
    began = time.perf_counter()
    run = run_dialogs([engine] * 3, n, tag)
    results.put((run.turns, began, began + run.seconds, run.round_trips))


def processes(url: str, count: int, n: int, tag: str) -> Run:
    """``count`` processes, each an engine running ``n`` dialogs at once: aggregate turns/s."""
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(count), context.Queue()
    workers = [
        context.Process(target=_process_worker, args=(url, n, f"{tag}-p{p}", barrier, results)) for p in range(count)
    ]
    for w in workers:
        w.start()
    got = [results.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
        if w.exitcode != 0:
            raise RuntimeError(f"a benchmark process failed (exit code {w.exitcode})")
    turns, trips = sum(g[0] for g in got), sum(g[3] for g in got)
    return Run(turns, max(g[2] for g in got) - min(g[1] for g in got), trips, 0.0)


def flush_all(url: str) -> None:
    client = _client(url)
    if url.startswith("redis+cluster://"):
        client.flushdb(target_nodes=client.PRIMARIES)
    else:
        client.flushdb()
    client.close()


# --- the report -------------------------------------------------------------------------------


class Table:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str, str]] = []

    def add(self, section: str, what: str, figure: str, detail: str = "", target: str = "", met: str = "") -> None:
        self.rows.append((section, what, figure, detail, target, met))

    def render(self) -> str:
        header = ("#", "measurement", "figure", "detail", "target", "met")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(6)]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        out = [line.format(*header), line.format(*("-" * w for w in widths))]
        out += [line.format(*row).rstrip() for row in self.rows]
        return "\n".join(out)


def describe_machine(url: str, label: str | None) -> str:
    """Which code ran (the ``dialog`` package imported, its commit when it is a git checkout) and where."""
    import dialog

    where = Path(dialog.__file__).resolve().parent.parent
    git = ["git", "-C", str(where)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "dialog"], capture_output=True, text=True).stdout.strip()
    code = label or (f"commit {commit}{' + uncommitted changes in dialog/' if dirty else ''}" if commit else str(where))
    server = redis.Redis.from_url(url).info("server")["redis_version"]
    return (
        f"{code}; Python {platform.python_version()}, redis-py {redis.__version__}, "
        f"redis-server {server}; {os.cpu_count()} CPUs"
    )


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=2000, help="dialogs per run (3 turns each)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of baseline and engine")
    parser.add_argument("--redis-url", help="use this Redis (its database is flushed!) instead of a private one")
    parser.add_argument("--no-cluster", action="store_true", help="skip the Redis Cluster runs")
    parser.add_argument("--label", help="what code this is, for the header (default: the git commit of dialog/)")
    args = parser.parse_args()
    n, rounds = args.conversations, args.rounds

    with tempfile.TemporaryDirectory(prefix="dialog-bench-") as folder, contextlib.ExitStack() as stack:
        url = args.redis_url
        if url is None:
            server = RedisProcess(Path(folder) / "single").start()
            stack.callback(server.stop)
            url = server.url
        print(f"# {describe_machine(url, args.label)}")
        print(f"# load average at start: {load_average()}; {n:,} conversations ({3 * n:,} turns) per run")
        sys.stdout.flush()
        table = Table()
        report(table, Systems(url), n, rounds, url)
        if not args.no_cluster:
            cluster = LocalCluster(Path(folder) / "cluster").start()
            stack.callback(cluster.stop)
            cluster_rows(table, cluster.url, url, n)
        print(table.render())
        print(f"# load average at end: {load_average()}")
        print("\n".join(profile_lines()))


def report(table: Table, systems: Systems, n: int, rounds: int, url: str) -> None:
    floor = ping_floor(systems.admin)
    runs = sync_rounds(systems, n, rounds)
    base1, eng1 = median_run(runs["baseline", 1]), median_run(runs["engine", 1])
    base2, eng2 = median_run(runs["baseline", 2]), median_run(runs["engine", 2])
    table.add("1", "PING floor, one client", f"{floor:,.0f} RT/s", f"{1e6 / floor:,.0f} us per round trip")
    for label, run in (("baseline (GET / SET EX / DEL)", base1), ("engine", eng1)):
        table.add("1", label, f"{run.per_second:,.0f} turns/s", _detail(run))
    ratio1 = eng1.per_second / base1.per_second
    table.add("1", "engine / baseline", f"{ratio1:.2f}x", _ratios(runs, 1), *targets.ONE_ENGINE.columns(ratio1))
    trips = f"{eng1.trips_per_turn:.2f} RT/turn"
    detail = f"baseline {base1.trips_per_turn:.2f}"
    table.add("1", "engine round trips per turn", trips, detail, *targets.ROUND_TRIPS.columns(eng1.trips_per_turn))
    for label, run in (("two baselines taking turns", base2), ("two engines taking turns", eng2)):
        table.add("2", label, f"{run.per_second:,.0f} turns/s", _detail(run))
    ratio2 = eng2.per_second / base2.per_second
    table.add(
        "2", "two engines / two baselines", f"{ratio2:.2f}x", _ratios(runs, 2), *targets.TWO_ENGINES.columns(ratio2)
    )

    pings = asyncio.run(async_ping_floor(systems.url, 64, 64 * 150))
    detail = f"client CPU {pings.cpu_us:,.0f} us per PING"
    table.add("3", "asyncio PING floor, 64 in flight", f"{pings.per_second:,.0f} RT/s", detail)
    for k, run in async_runs(systems, n).items():
        detail = f"{run.trips_per_turn:.2f} RT/turn, CPU {run.cpu_us:,.0f} us/turn"
        table.add("3", f"AsyncEngine, {k} in flight", f"{run.per_second:,.0f} turns/s", detail)
        if k == 64:
            ratio = run.per_second / pings.per_second
            columns = targets.ASYNC_ENGINE.columns(ratio)
            table.add("3", "AsyncEngine at 64 / asyncio PING floor", f"{ratio:.2f}x", "", *columns)

    for label, make in (("engine", memory_engine), ("baseline", memory_baseline)):
        cpu = cpu_per_turn(make, n, rounds)
        kinds = ", ".join(f"{k} {v:,.0f}" for k, v in cpu.best_by_kind.items())
        target = targets.CPU_PER_TURN.columns(cpu.best) if label == "engine" else ("", "")
        figure = f"{cpu.best:,.0f} us best"
        detail = f"median {cpu.median:,.0f} us; best by turn: {kinds} us"
        table.add("4", f"{label} CPU per turn, in-memory store", figure, detail, *target)

    memory = memory_per_conversation(systems, min(n, 2000))
    pending = memory["engine pending"]
    table.add(
        "5",
        "Redis memory, pending conversation",
        f"{pending:,.0f} B",
        f"used_memory growth {memory['engine pending, used_memory growth']:,.0f} B",
        *targets.PENDING_MEMORY.columns(pending),
    )
    table.add("5", "Redis memory, finished conversation", f"{memory['engine finished']:,.0f} B", "")
    table.add(
        "5",
        "baseline memory, pending / finished",
        f"{memory['baseline pending']:,.0f} B / {memory['baseline finished']:,.0f} B",
        f"used_memory growth {memory['baseline pending, used_memory growth']:,.0f} B",
    )

    for kind, best in (("engine", eng1), ("baseline", base1)):
        rate = best.per_second / 2
        systems.admin.flushdb()
        late, service = paced(systems.parties(kind, 1), rate, max(n // 2, 100), f"paced-{kind}")
        p99 = percentile(service, 99) * 1e6
        detail = (
            f"p50 {percentile(service, 50) * 1e6:,.0f} us, p99.9 {percentile(service, 99.9) * 1e6:,.0f} us; "
            f"from the scheduled send: p99 {percentile(late, 99) * 1e6:,.0f} us"
        )
        target = targets.PACED_P99.columns(p99) if kind == "engine" else ("", "")
        table.add("6", f"{kind} p99 per turn at {rate:,.0f} turns/s", f"{p99:,.0f} us", detail, *target)

    table.add("7", "single Redis, 1 process", *_process_row(url, 1, n))
    table.add("7", "single Redis, 2 processes", *_process_row(url, 2, n))


def cluster_rows(table: Table, cluster_url: str, url: str, n: int) -> None:
    table.add("7", "3-master cluster, 1 process", *_process_row(cluster_url, 1, n))
    table.add("7", "3-master cluster, 2 processes", *_process_row(cluster_url, 2, n))


def _process_row(url: str, count: int, n: int) -> tuple[str, str]:
    flush_all(url)
    run = processes(url, count, n, f"proc{count}")
    return f"{run.per_second:,.0f} turns/s", f"{run.trips_per_turn:.2f} RT/turn"


def profile_lines(n: int = 1000) -> list[str]:
    try:
        found = profile(n)
    except ImportError:
        return ["no profile: pyinstrument is missing (pip install -e '.[bench]')"]
    lines = [f"pyinstrument, {n:,} dialogs ({3 * n:,} turns) on the in-memory store, {found.seconds:.2f} s sampled"]
    lines.append("inclusive share of the steps of a turn:")
    lines += [f"  {share:6.1%}  {name}" for name, share in found.steps]
    lines.append("self time by file or library:")
    lines += [f"  {share:6.1%}  {name}" for name, share in found.files]
    lines.append("top functions by self time:")
    lines += [f"  {share:6.1%}  {name}" for name, share in found.functions]
    return lines


def _detail(run: Run) -> str:
    return f"{run.trips_per_turn:.2f} RT/turn, client CPU {run.cpu_us:,.0f} us/turn"


def _ratios(runs: dict[tuple[str, int], list[Run]], instances: int) -> str:
    each = [
        e.per_second / b.per_second for b, e in zip(runs["baseline", instances], runs["engine", instances], strict=True)
    ]
    return "per round: " + ", ".join(f"{r:.2f}" for r in each)


if __name__ == "__main__":
    main()
