"""Load check of the HTTP service: N concurrent clients against ``dialog serve --workers 2``.

    .venv/bin/python benchmarks/load.py [--clients 32] [--duration 15] [--workers 2]
    .venv/bin/python benchmarks/load.py --url http://127.0.0.1:8000 --key KEY   # a server you started

Without ``--url`` it starts a private ``redis-server`` and ``dialog serve`` on free loopback
ports (memory calendar, 256 API keys for 256 tenants so no tenant's calendar fills up), and
stops both at the end. Each client runs 3-turn conversations (propose -> "can we move it" ->
"yes") back to back, one request at a time, over its own keep-alive connection. Only
loopback addresses are used; the run is bounded by ``--duration``.

Prints requests/s, latency percentiles (p50, p90, p99, max) and the status codes seen.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

TURNS = ("Schedule a call with Dana Scully tomorrow at 10am", "can we move it", "yes")
TENANTS = 256


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)


async def client(number: int, url: str, keys: list[str], until: float, warmup_until: float, results: Results) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        conversation = 0
        while time.monotonic() < until:
            key = keys[(number * 7919 + conversation) % len(keys)]
            path = f"/v1/conversations/load-{number}-{conversation}-{uuid.uuid4().hex[:6]}/messages"
            for text in TURNS:
                started = time.monotonic()
                try:
                    response = await http.post(path, json={"text": text}, headers={"Authorization": f"Bearer {key}"})
                except httpx.HTTPError as exc:
                    results.errors[type(exc).__name__] += 1
                    continue
                if started >= warmup_until:
                    results.latencies.append(time.monotonic() - started)
                    results.statuses[response.status_code] += 1
            conversation += 1


async def run(url: str, keys: list[str], clients: int, duration: float, warmup: float) -> tuple[Results, float]:
    results = Results()
    start = time.monotonic()
    warmup_until, until = start + warmup, start + warmup + duration
    await asyncio.gather(*(client(i, url, keys, until, warmup_until, results) for i in range(clients)))
    return results, time.monotonic() - warmup_until


def report(results: Results, seconds: float, clients: int, workers: int | None) -> None:
    lat = sorted(results.latencies)
    if not lat:
        print("no requests completed")
        return

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000

    where = f"dialog serve --workers {workers}" if workers else "the server given"
    print(f"{clients} clients against {where}, {seconds:.1f} s measured (after warm-up)")
    print(f"  requests: {len(lat):,}   throughput: {len(lat) / seconds:,.0f} requests/s")
    print(
        f"  latency ms: p50 {pct(50):.1f}  p90 {pct(90):.1f}  p99 {pct(99):.1f}  max {lat[-1] * 1000:.1f}"
        f"  (mean {statistics.fmean(lat) * 1000:.1f})"
    )
    print(
        f"  statuses: {dict(sorted(results.statuses.items()))}"
        + (f"  errors: {dict(results.errors)}" if results.errors else "")
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout} s")


@contextmanager
def local_stack(workers: int) -> Iterator[tuple[str, list[str]]]:
    """A private redis-server and ``dialog serve --workers N`` on loopback; both stopped at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed; pass --url and --key for a server of your own")
    keys = [f"load-{uuid.uuid4().hex}" for _ in range(TENANTS)]
    with tempfile.TemporaryDirectory() as folder:
        redis_port, port = _free_port(), _free_port()
        redis_args = ["--port", str(redis_port), "--bind", "127.0.0.1", "--dir", folder, "--save", ""]
        redis = subprocess.Popen([binary, *redis_args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIALOG_")} | {
            "DIALOG_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "DIALOG_API_KEYS": ",".join(f"{key}=tenant-{i}" for i, key in enumerate(keys)),
        }
        command = [sys.executable, "-m", "dialog.cli", "serve", "--port", str(port), "--workers", str(workers)]
        with open(os.path.join(folder, "serve.log"), "wb") as log:
            server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait(f"http://127.0.0.1:{port}/readyz", server)
            yield f"http://127.0.0.1:{port}", keys
        finally:
            for process in (server, redis):
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured (default 15)")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring (default 2)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--url", help="a running server (loopback); then --key is needed")
    parser.add_argument("--key", action="append", help="API key for --url (repeat for more tenants)")
    args = parser.parse_args()
    if args.url:
        if not args.key:
            parser.error("--url needs --key")
        results, seconds = asyncio.run(run(args.url, args.key, args.clients, args.duration, args.warmup))
        report(results, seconds, args.clients, None)
        return
    with local_stack(args.workers) as (url, keys):
        results, seconds = asyncio.run(run(url, keys, args.clients, args.duration, args.warmup))
    report(results, seconds, args.clients, args.workers)


if __name__ == "__main__":
    main()
