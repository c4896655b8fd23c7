"""What the tests (and ``scripts/soak.py``) share besides fixtures: free loopback ports, private
redis-servers and a local Redis Cluster, pausing a process, stopping one, and the grid's slots.

Fixtures stay in ``conftest.py``; this module holds plain functions and classes, so that a test
file, a worker process or a script can import them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis

from benchmarks.servers import free_port as free_port  # one home: the benchmarks start servers too
from dialog import Schedule
from dialog.calendar.slots import grid

# --- ports and processes ------------------------------------------------------------------------


def wait_until(ready: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Polls ``ready`` until it is true; ``RuntimeError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.02)


def stop(process: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if ``process`` is still running after ``timeout`` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def paused(pid: int) -> Iterator[None]:
    """SIGSTOP ``pid`` for the block (a hung server: it accepts nothing and answers nothing), SIGCONT after."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def pings(port: int) -> bool:
    """Whether a Redis on loopback ``port`` answers PING."""
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# --- private Redis servers ----------------------------------------------------------------------


class RedisServer:
    """A private redis-server in ``folder`` on a free loopback port, without RDB snapshots.

    ``appendonly`` turns on the AOF with ``appendfsync always``; ``extra`` are more command-line
    options (``--replicaof 127.0.0.1 PORT``). It can be paused and resumed from other threads.
    """

    def __init__(self, folder: Path, *, appendonly: bool = False, extra: Sequence[str] = ()) -> None:
        self.folder = folder
        self.port = free_port()
        self.appendonly = appendonly
        self.extra = tuple(extra)
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        options = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder), "--save", ""]
        options += ["--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always", *self.extra]
        self.process = subprocess.Popen([binary, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        process = self.process
        wait_until(lambda: process.poll() is not None or pings(self.port), "redis-server to start", timeout)
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {process.returncode} at start")
        return self

    def pause(self) -> None:
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        with self._lock:
            process, self.process = self.process, None
        stop(process, timeout=10)

    def kill(self) -> None:
        """SIGKILL, as when the machine dies: nothing is flushed."""
        with self._lock:
            process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.wait()


class LocalCluster:
    """Masters on loopback with every slot assigned, no replicas; one folder per node."""

    def __init__(self, folder: Path, masters: int) -> None:
        self.folder = folder
        self.ports = [free_port(bus=True) for _ in range(masters)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start(self) -> LocalCluster:
        for port in self.ports:
            self.processes[port] = self._node(port)
        for port in self.ports:
            wait_until(functools.partial(pings, port), f"redis-server on {port}")
        if len(self.ports) >= 3:
            addresses = [f"127.0.0.1:{port}" for port in self.ports]
            subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
            )
        else:  # redis-cli wants 3 masters; one node can take every slot itself
            first = redis.Redis(port=self.ports[0])
            first.cluster("ADDSLOTSRANGE", 0, 16383)
            first.close()
        self.wait_ok()
        return self

    def wait_ok(self, timeout: float = 15.0) -> None:
        """Until every node reports ``cluster_state:ok``."""
        wait_until(lambda: all(cluster_ok(p) for p in self.ports), "cluster_state:ok on every node", timeout)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)

    def pid_of(self, port: int) -> int:
        return self.processes[port].pid

    def _node(self, port: int) -> subprocess.Popen[bytes]:
        folder = self.folder / str(port)
        folder.mkdir(parents=True)
        options = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--cluster-enabled", "yes"]
        options += ["--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no"]
        # long enough that a node paused for a second is not marked failed
        options += ["--cluster-node-timeout", "5000"]
        return subprocess.Popen(["redis-server", *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_cluster(folder: Path, masters: int) -> LocalCluster:
    """A started :class:`LocalCluster`; the test is skipped without redis-server and redis-cli (fails under CI)."""
    missing = [tool for tool in ("redis-server", "redis-cli") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI=true and {', '.join(missing)} is not installed", pytrace=False)
        pytest.skip(f"{', '.join(missing)} is not installed")
    cluster = LocalCluster(folder, masters)
    try:
        return cluster.start()
    except BaseException:
        cluster.stop()
        raise


def cluster_ok(port: int) -> bool:
    """Whether the cluster node on ``port`` reports ``cluster_state:ok``."""
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        return bool(client.cluster("info")["cluster_state"] == "ok")
    except redis.RedisError:
        return False
    finally:
        client.close()


# --- the calendar -------------------------------------------------------------------------------


def first_slots(n: int, day: dt.date = dt.date(2026, 11, 24)) -> list[dt.datetime]:
    """The first ``n`` slots of the default schedule's grid from ``day`` (Tue 24 Nov 2026) on."""
    found: list[dt.datetime] = []
    while len(found) < n:
        found.extend(grid(Schedule(), day))
        day += dt.timedelta(days=1)
    return found[:n]
