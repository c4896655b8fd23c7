"""Private Redis servers for the benchmarks: one standalone server, or a local 3-master cluster.

Private so a benchmark's ``FLUSHDB`` never touches anyone's data, and so the cluster exists only
for the run. Each server is a child ``redis-server`` on a free loopback port, without persistence.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

CLUSTER_BUS_OFFSET = 10000  # a cluster node also listens on port + 10000 (its bus)


def free_port(*, bus: bool = False) -> int:
    """A free loopback port; with ``bus``, one whose cluster bus port (port + 10000) is free too."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not bus:
            return port
        if port + CLUSTER_BUS_OFFSET <= 65535 and _bindable(port + CLUSTER_BUS_OFFSET):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class RedisProcess:
    """One ``redis-server`` in ``folder`` on a free port; ``extra`` are more command-line options."""

    def __init__(self, folder: Path, *extra: str, bus: bool = False) -> None:
        self.folder = folder
        self.port = free_port(bus=bus)
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.folder.mkdir(parents=True, exist_ok=True)
        options = ["--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        options += ["--save", "", "--appendonly", "no", *self.extra]
        self.process = subprocess.Popen([binary, *options], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(lambda: redis.Redis(port=self.port, socket_connect_timeout=0.5).ping(), "redis-server did not start")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


class LocalCluster:
    """Three masters, no replicas, every slot covered: ``redis-cli --cluster create`` on loopback."""

    def __init__(self, folder: Path, masters: int = 3) -> None:
        self.nodes = [RedisProcess(folder / f"node{i}", *_CLUSTER_OPTIONS, bus=True) for i in range(masters)]

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> LocalCluster:
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            subprocess.run(
                ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
            )
            _wait(self._ok, "the cluster did not reach cluster_state:ok")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def _ok(self) -> bool:
        return all(redis.Redis(port=node.port).cluster("info")["cluster_state"] == "ok" for node in self.nodes)


# cluster-node-timeout is short so a node that a run kills is noticed quickly; the config file
# lives in each node's own folder (--dir), so parallel clusters never share one.
_CLUSTER_OPTIONS = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")


def _wait(ready: Callable[[], object], failure: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.02)
