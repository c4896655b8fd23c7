"""The HTTP service against its framework's floor: ``dialog serve`` beside a minimal FastAPI app.

    .venv/bin/python -m benchmarks.load [--clients 1,32] [--duration 8] [--warmup 2] [--rounds 3]
    .venv/bin/python -m benchmarks.load --url http://127.0.0.1:8000 --key KEY   # a dialog server you started

The floor (``floor_app``) is what the framework costs at least: FastAPI parses the same JSON body
as ``POST /v1/conversations/{id}/messages`` with pydantic, does one Redis GET and one SET
(``redis.asyncio``) and answers a small JSON object. ``dialog serve`` answers the 3-turn dialog
of ``benchmarks/compare.py``: a proposal (``POST .../proposals``), "move it", "yes", each
conversation new, with the memory calendar and 4,096 API keys for 4,096 tenants (each client
books in tenants of its own, so a tenant's calendar holds a few bookings at most, as compare.py
gives every conversation a tenant of its own). The floor gets the same three requests per
conversation, all on its one route.

Both run on one uvicorn worker, each in a subprocess on a free loopback port, started afresh for
every run, beside one private ``redis-server`` flushed before each run. Runs alternate between
the two apps (the order swaps every round); each figure is the median of ``--rounds``.

The load generator is a raw asyncio HTTP/1.1 client (an ``asyncio.Protocol`` per keep-alive
connection, request bytes written by hand, the response read as its status line and
Content-Length) so that it is not the bottleneck: it prints its own CPU, which must stay under
half a core. Server CPU per request comes from ``/proc/PID/stat`` over the measured window,
Redis's from ``INFO cpu``.

Redis round trips are counted by the server process itself: it runs under a launcher
(``--serve``) that counts every packet redis-py sends (``send_packed_command``, sync and asyncio;
a pipeline is one packet, a script call is one) and reports the count on SIGUSR1, read at the
start and end of the measured window. Divided by the HTTP requests answered in that window, this
gives round trips per HTTP turn; the floor's 2.00 checks the method.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import redis
import redis.asyncio
from fastapi import FastAPI
from pydantic import BaseModel

from benchmarks import targets
from benchmarks.servers import RedisProcess, free_port

App = Literal["dialog", "floor"]
APPS: tuple[App, App] = ("dialog", "floor")
TENANTS = 4096  # in a keys file: DIALOG_API_KEYS would pass the 128 KiB limit of one variable
LEAD = "Dana Scully"
MOVE, YES = "move it", "yes"
# Each dialog turn's reply names this outcome; anything else is counted as unexpected.
EXPECTED = (b'"outcome":"proposed"', b'"outcome":"rescheduled"', b'"outcome":"booked"')
ROOT = Path(__file__).resolve().parent.parent


# --- the floor ----------------------------------------------------------------------------------


class FloorAlternative(BaseModel):
    text: str
    confidence: float


class FloorMessage(BaseModel):
    """The body of ``POST .../messages``, without the service's own checks."""

    channel: Literal["text", "voice"] = "text"
    text: str
    confidence: float | None = None
    alternatives: list[FloorAlternative] = []


def floor_app() -> FastAPI:
    """FastAPI + pydantic + one Redis GET and one SET per request (``uvicorn --factory``)."""
    client = redis.asyncio.Redis.from_url(os.environ["LOAD_FLOOR_REDIS_URL"])
    app = FastAPI()

    @app.post("/v1/conversations/{conversation_id}/messages")
    async def message(conversation_id: str, body: FloorMessage) -> dict[str, Any]:
        key = f"floor:{conversation_id}"
        before = await client.get(key)
        version = 1 + (int(before) if before else 0)
        await client.set(key, version, ex=3600)
        return {"conversation_id": conversation_id, "version": version, "text": body.text}

    return app


# --- the server under test, in a subprocess ------------------------------------------------------


def serve(app: App, port: int, counts: Path) -> None:
    """Run ``app`` on ``port`` (one worker), counting redis-py packets; SIGUSR1 writes the count to ``counts``."""
    import redis.asyncio.connection
    import redis.connection

    sent = [0]
    signals = [0]
    sync_class, async_class = redis.connection.AbstractConnection, redis.asyncio.connection.AbstractConnection
    sync_send: Any = sync_class.send_packed_command
    async_send: Any = async_class.send_packed_command

    def counted(conn: Any, *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return sync_send(conn, *args, **kwargs)

    async def counted_async(conn: Any, *args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return await async_send(conn, *args, **kwargs)

    def report(signum: int, frame: object) -> None:
        signals[0] += 1
        scratch = counts.with_suffix(".tmp")
        scratch.write_text(f"{signals[0]} {sent[0]}")
        scratch.replace(counts)

    sync_class.send_packed_command = counted  # type: ignore[method-assign,assignment]
    async_class.send_packed_command = counted_async  # type: ignore[method-assign,assignment]
    signal.signal(signal.SIGUSR1, report)
    if app == "dialog":
        from dialog.cli import main

        raise SystemExit(main(["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]))
    import uvicorn

    uvicorn.run(
        "benchmarks.load:floor_app", factory=True, host="127.0.0.1", port=port, access_log=False, log_level="warning"
    )


def _keys_file(folder: Path, keys: Sequence[str]) -> Path:
    path = folder / "keys"
    if not path.exists():
        path.write_text("".join(f"{key}=tenant-{i}\n" for i, key in enumerate(keys)))
    return path


class Server:
    """One app in its own process (``python -m benchmarks.load --serve APP``): CPU and round-trip readings."""

    def __init__(self, app: App, redis_url: str, keys: Sequence[str], folder: Path) -> None:
        self.app, self.port = app, free_port()
        self.counts = folder / f"{app}-{self.port}.counts"
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIALOG_")} | {
            "DIALOG_REDIS_URL": redis_url,
            "DIALOG_API_KEYS_FILE": str(_keys_file(folder, keys)),
            "DIALOG_CALENDAR_URL": "memory://",
            "LOAD_FLOOR_REDIS_URL": redis_url,
        }
        command = [sys.executable, "-m", "benchmarks.load", "--serve", app, "--port", str(self.port)]
        command += ["--counts", str(self.counts)]
        with open(folder / f"{app}.log", "ab") as log:
            self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self._reports = 0

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"{self.app} exited with {self.process.returncode}")
            try:  # /healthz and the floor's 404 both prove it listens, without touching Redis
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"{self.app} did not answer within {timeout} s")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def round_trips(self, timeout: float = 5) -> int:
        """The server's count of Redis packets so far (asked by SIGUSR1, answered in ``counts``)."""
        self._reports += 1
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                seen, count = map(int, self.counts.read_text().split())
            except (FileNotFoundError, ValueError):
                seen = 0
            if seen == self._reports:
                return count
            time.sleep(0.002)
        raise SystemExit(f"{self.app} did not report its round trips")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the load generator --------------------------------------------------------------------------


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request at a time: status and body of each response."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head = self.buffer.find(b"\r\n\r\n")
        if head < 0 or self.waiter is None:
            return
        length = 0
        for line in bytes(self.buffer[:head]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        end = head + 4 + length
        if len(self.buffer) >= end:
            status, body = int(self.buffer[9:12]), bytes(self.buffer[head + 4 : end])
            del self.buffer[:end]
            waiter, self.waiter = self.waiter, None
            waiter.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionError("the server closed the connection"))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


def post(port: int, path: str, body: dict[str, Any], key: str) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


def next_working_day() -> dt.datetime:
    """09:00 UTC on the first Monday-Friday at least two days ahead (within the default horizon)."""
    day = dt.datetime.now(dt.UTC).replace(hour=9, minute=0, second=0, microsecond=0) + dt.timedelta(days=2)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def conversation(app: App, port: int, key: str, cid: str, start: dt.datetime) -> list[bytes]:
    """The three requests of one conversation, as bytes."""
    path = f"/v1/conversations/{cid}"
    if app == "dialog":
        first = post(port, f"{path}/proposals", {"lead": LEAD, "start": start.isoformat()}, key)
    else:
        first = post(port, f"{path}/messages", {"text": f"{LEAD} at {start.isoformat()}"}, key)
    return [
        first,
        post(port, f"{path}/messages", {"text": MOVE}, key),
        post(port, f"{path}/messages", {"text": YES}, key),
    ]


@dataclass
class Tally:
    """What the clients saw in the measured window."""

    start: float = 0.0
    end: float = float("inf")
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: int = 0
    sample: bytes = b""  # the first unexpected reply


async def client(app: App, number: int, clients: int, port: int, keys: Sequence[str], tally: Tally, run: str) -> None:
    loop = asyncio.get_running_loop()
    per_client = max(1, len(keys) // clients)
    _, conn = await loop.create_connection(Connection, "127.0.0.1", port)
    start, slot = next_working_day(), 0
    clock = time.perf_counter
    try:
        while clock() < tally.end:
            # Client i takes tenants i, i + clients, ...: no two clients book in one calendar, and a
            # tenant's conversations take its working days' slots in turn (80 before one repeats).
            key = keys[(number + clients * (slot % per_client)) % len(keys)]
            nth = slot // per_client
            cid = f"load-{run}-{number}-{slot}"
            at = start + dt.timedelta(days=nth // 16 % 5, minutes=30 * (nth % 16))
            for turn, data in enumerate(conversation(app, port, key, cid, at)):
                sent = clock()
                status, body = await conn.request(data)
                done = clock()
                if tally.start <= done <= tally.end:  # completed in the window, as the server's counts are
                    tally.latencies.append(done - sent)
                    tally.statuses[status] += 1
                    if (app == "dialog" and EXPECTED[turn] not in body) or status != 200:
                        tally.unexpected += 1
                        tally.sample = tally.sample or body
            slot += 1
    finally:
        assert conn.transport is not None
        conn.transport.close()


@dataclass(frozen=True)
class Measure:
    """One run of one app."""

    app: App
    clients: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    server_cpu: float
    redis_cpu: float
    client_cpu: float
    round_trips: int
    connections: int  # new Redis connections in the window (each costs a few packets more)
    statuses: dict[int, int]
    unexpected: int
    sample: bytes

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def server_ms(self) -> float:
        return self.server_cpu / self.requests * 1000

    @property
    def trips(self) -> float:
        return self.round_trips / self.requests

    @property
    def client_cores(self) -> float:
        return self.client_cpu / self.seconds


def redis_readings(client: redis.Redis) -> tuple[float, int]:
    """Redis's CPU seconds so far, and the connections it has accepted."""
    info: dict[str, Any] = client.info()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"]), int(info["total_connections_received"])


async def drive(
    app: App,
    server: Server | None,
    store: redis.Redis | None,
    port: int,
    keys: Sequence[str],
    clients: int,
    warmup: float,
    duration: float,
) -> tuple[Tally, dict[str, float]]:
    """Warm up, then measure ``duration`` seconds; readings at both ends of the window."""
    tally, run = Tally(), uuid.uuid4().hex[:8]
    now = time.perf_counter()
    tally.start, tally.end = now + warmup, now + warmup + duration
    readings: dict[str, float] = {}

    async def mark(at: float, suffix: str) -> None:
        await asyncio.sleep(at - time.perf_counter())
        readings["cpu" + suffix] = time.process_time()
        if server is not None:
            readings["server" + suffix] = server.cpu_seconds()
            readings["trips" + suffix] = server.round_trips()
        if store is not None:
            readings["redis" + suffix], connections = redis_readings(store)
            readings["connections" + suffix] = connections

    tasks = [client(app, i, clients, port, keys, tally, run) for i in range(clients)]
    await asyncio.gather(*tasks, mark(tally.start, "0"), mark(tally.end, "1"))
    return tally, readings


def measure(app: App, redis_url: str, keys: Sequence[str], clients: int, args: argparse.Namespace) -> Measure:
    folder = Path(args.folder)
    store = redis.Redis.from_url(redis_url)
    store.flushall()
    server = Server(app, redis_url, keys, folder)
    try:
        server.wait_ready()
        tally, r = asyncio.run(drive(app, server, store, server.port, keys, clients, args.warmup, args.duration))
    finally:
        server.stop()
        store.close()
    return summarise(app, clients, tally, args.duration, r)


def summarise(app: App, clients: int, tally: Tally, seconds: float, r: dict[str, float]) -> Measure:
    lat = sorted(tally.latencies)
    if not lat:
        raise SystemExit(f"{app}: no request completed in the measured window")
    return Measure(
        app=app,
        clients=clients,
        requests=len(lat),
        seconds=seconds,
        p50_ms=lat[len(lat) // 2] * 1000,
        p99_ms=lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1000,
        server_cpu=r.get("server1", 0) - r.get("server0", 0),
        redis_cpu=r.get("redis1", 0) - r.get("redis0", 0),
        connections=int(r.get("connections1", 0) - r.get("connections0", 0)),
        client_cpu=r["cpu1"] - r["cpu0"],
        round_trips=int(r.get("trips1", 0) - r.get("trips0", 0)),
        statuses=dict(sorted(tally.statuses.items())),
        unexpected=tally.unexpected,
        sample=tally.sample,
    )


def line(m: Measure) -> str:
    return (
        f"  {m.app:<6} {m.clients:>2} clients: {m.per_second:>7,.0f} req/s  p50 {m.p50_ms:6.2f} ms  "
        f"p99 {m.p99_ms:6.2f} ms  server CPU {m.server_ms:.3f} ms/req  Redis CPU {m.redis_cpu / m.requests * 1e6:.0f} "
        f"us/req  {m.trips:.3f} RT/req ({m.connections} new connections)  load generator {m.client_cores:.2f} cores"
        f"  statuses {m.statuses}"
        + (f"\n    UNEXPECTED replies: {m.unexpected}, the first: {m.sample[:300]!r}" if m.unexpected else "")
    )


def median(runs: list[Measure], attribute: str) -> float:
    return float(statistics.median(getattr(m, attribute) for m in runs))


def table(results: dict[tuple[App, int], list[Measure]], client_counts: Sequence[int]) -> None:
    print(
        "\n| clients | dialog req/s | floor req/s | dialog / floor | server CPU ms/req (dialog, floor) "
        "| Redis RT per HTTP turn (dialog, floor) | p50 / p99 ms dialog | load generator CPU (max) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n in client_counts:
        d, f = results[("dialog", n)], results[("floor", n)]
        ratio = median(d, "per_second") / median(f, "per_second")
        generator = max(m.client_cores for m in d + f)
        print(
            f"| {n} | {median(d, 'per_second'):,.0f} | {median(f, 'per_second'):,.0f} | {ratio:.2f}x "
            f"| {median(d, 'server_ms'):.2f}, {median(f, 'server_ms'):.2f} "
            f"| {median(d, 'trips'):.2f}, {median(f, 'trips'):.2f} "
            f"| {median(d, 'p50_ms'):.2f} / {median(d, 'p99_ms'):.2f} | {generator:.2f} cores |"
        )
    if 32 in client_counts:
        d, f = results[("dialog", 32)], results[("floor", 32)]
        ratio, trips = median(d, "per_second") / median(f, "per_second"), median(d, "trips")
        for target, measured, shown in (
            (targets.HTTP_FLOOR, ratio, f"{ratio:.2f}x"),
            (targets.HTTP_ROUND_TRIPS, trips, f"{trips:.2f} RT/turn"),
        ):
            bound, met = target.columns(measured)
            print(f"\n{target.figure}: {shown}, target {bound}, met: {met}", end="")
        print()
    busy = max(m.client_cores for runs in results.values() for m in runs)
    if busy >= 0.5:
        print(f"\nWARNING: the load generator used {busy:.2f} cores (over half a core): it may be the bottleneck")
    if any(m.unexpected or set(m.statuses) != {200} for runs in results.values() for m in runs):
        print("\nWARNING: some replies were not 200 or not the expected outcome (see the runs above)")


def compare(args: argparse.Namespace) -> None:
    keys = [f"load-{uuid.uuid4().hex}" for _ in range(TENANTS)]
    results: dict[tuple[App, int], list[Measure]] = {}
    print(
        f"# {args.rounds} rounds, {args.warmup:g} s warm-up + {args.duration:g} s measured per run; "
        f"load average at start {os.getloadavg()[0]:.2f}; {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as folder:
        args.folder = folder
        store = RedisProcess(Path(folder) / "redis").start()
        try:
            for clients in args.clients:
                for round_ in range(args.rounds):
                    for app in APPS if round_ % 2 == 0 else APPS[::-1]:
                        m = measure(app, store.url, keys, clients, args)
                        results.setdefault((app, clients), []).append(m)
                        print(line(m), flush=True)
        finally:
            store.stop()
    print(f"# load average at end {os.getloadavg()[0]:.2f}")
    table(results, args.clients)


def against(url: str, keys: Sequence[str], args: argparse.Namespace) -> None:
    """Drive a server somebody else started (say, under a profiler): req/s, latency, the generator's CPU."""
    port = int(url.rstrip("/").rpartition(":")[2])
    for clients in args.clients:
        tally, r = asyncio.run(drive(args.app, None, None, port, keys, clients, args.warmup, args.duration))
        print(line(summarise(args.app, clients, tally, args.duration, r)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,32", help="comma-separated client counts (default 1,32)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per run (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring (default 2)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each app per client count (default 3)")
    parser.add_argument("--url", help="only drive a server already running on loopback (needs --key)")
    parser.add_argument("--key", action="append", help="an API key of --url (repeat for more tenants)")
    parser.add_argument("--app", choices=APPS, default="dialog", help="what --url runs (default dialog)")
    parser.add_argument("--serve", choices=APPS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--counts", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.counts)
        return
    args.clients = [int(n) for n in args.clients.split(",")]
    if args.url:
        if not args.key:
            parser.error("--url needs --key")
        against(args.url, args.key, args)
        return
    compare(args)


if __name__ == "__main__":
    main()
