"""The embedded Valkey server: fast to start and stop, also after a crash left a stale port file;
data kept across restarts; a port file naming somebody else's server is not trusted."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dialog import embedded
from tests.support import free_port

# Generous bounds: both take about 0.05 s here; before the fix, each took about 4 s
# (redis-py's default retry sleeping on a dead port, and on the connection SHUTDOWN closes).
START_BOUND = 1.5
STOP_BOUND = 1.5


def _valkey_available() -> bool:
    try:
        embedded._binary()
    except embedded.EmbeddedUnavailable:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _valkey_available(), reason="no embedded Valkey server on this platform (fakeredis stands in)"
)


@pytest.fixture
def started() -> Iterator[list[Path]]:
    """Folders whose servers this test started; stopped at the end whatever happened."""
    folders: list[Path] = []
    yield folders
    for folder in folders:
        stop(folder)


def start(folder: Path, started: list[Path]) -> tuple[str, float]:
    began = time.perf_counter()
    address = embedded.url(folder)
    elapsed = time.perf_counter() - began
    if folder.resolve() in embedded._STARTED:
        started.append(folder)
    return address, elapsed


def stop(folder: Path) -> float:
    process = embedded._STARTED.pop(folder.resolve(), None)
    if process is None:
        return 0.0
    port = int((folder / "port").read_text())
    began = time.perf_counter()
    embedded._stop(process, port, folder / "port")
    return time.perf_counter() - began


def test_start_and_stop_are_fast_and_the_port_file_goes_with_the_server(tmp_path: Path, started: list[Path]) -> None:
    address, start_time = start(tmp_path, started)
    assert redis.Redis.from_url(address).ping()
    assert start_time < START_BOUND
    assert stop(tmp_path) < STOP_BOUND
    assert not (tmp_path / "port").exists()  # the next start does not probe a dead port


@pytest.mark.parametrize("stale", ["dead port", "port 1", "garbage"])
def test_a_stale_port_file_costs_no_seconds(tmp_path: Path, started: list[Path], stale: str) -> None:
    """A crash (SIGKILL, power cut) leaves the port file behind; the next start must not wait on it."""
    content = {"dead port": str(free_port()), "port 1": "1", "garbage": "not a port"}[stale]
    (tmp_path / "port").write_text(content)
    began = time.perf_counter()
    assert embedded._running_port(tmp_path / "port", tmp_path.resolve()) is None
    assert time.perf_counter() - began < START_BOUND
    address, start_time = start(tmp_path, started)
    assert start_time < START_BOUND
    assert redis.Redis.from_url(address).ping()


def test_a_running_server_on_the_folder_is_reused(tmp_path: Path, started: list[Path]) -> None:
    first, _ = start(tmp_path, started)
    second, elapsed = start(tmp_path, started)
    assert second == first
    assert elapsed < START_BOUND


def test_a_port_file_naming_another_server_is_not_trusted(tmp_path: Path, started: list[Path]) -> None:
    """After a crash the port may have gone to another server (another folder's, or a Redis
    holding somebody's data): the embedded server for this folder starts afresh instead."""
    other, mine = tmp_path / "other", tmp_path / "mine"
    other_address, _ = start(other, started)
    mine.mkdir()
    (mine / "port").write_text((other / "port").read_text())
    address, _ = start(mine, started)
    assert address != other_address


def test_data_survives_a_stop_and_a_start(tmp_path: Path, started: list[Path]) -> None:
    address, _ = start(tmp_path, started)
    redis.Redis.from_url(address).set("kept", "yes")
    stop(tmp_path)
    address, _ = start(tmp_path, started)
    assert redis.Redis.from_url(address).get("kept") == b"yes"


def test_data_survives_a_crashed_cli_whose_server_was_killed(tmp_path: Path, started: list[Path]) -> None:
    """SIGKILL of the server itself: the append-only file (fsync every second) still has the key."""
    address, _ = start(tmp_path, started)
    client = redis.Redis.from_url(address)
    client.set("kept", "yes")
    time.sleep(1.2)  # appendfsync everysec
    process = embedded._STARTED.pop(tmp_path.resolve())
    process.kill()
    process.wait()
    started.remove(tmp_path)
    address, start_time = start(tmp_path, started)  # the port file is stale now
    assert start_time < START_BOUND
    assert redis.Redis.from_url(address).get("kept") == b"yes"


@pytest.mark.slow
def test_a_cli_run_starts_and_exits_fast_even_with_a_stale_port_file(tmp_path: Path) -> None:
    """`dialog chat` with nothing to say, as a user runs it: twice, then after a crash."""
    env = {**os.environ, "DIALOG_HOME": str(tmp_path), "DIALOG_REDIS_URL": ""}
    timings = []
    for stale in (False, False, True):
        if stale:
            (tmp_path / "port").write_text(str(free_port()))
        began = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "dialog.cli", "chat"], input="", capture_output=True, text=True, timeout=60, env=env
        )
        timings.append(time.perf_counter() - began)
        assert result.returncode == 0, result.stderr
        assert "fakeredis" not in result.stdout
    assert max(timings) < 3.0, timings  # about 0.3 s each here; 8 to 9 s before
