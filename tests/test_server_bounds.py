"""HTTP bounds on a real ``dialog serve`` (uvicorn): bodies over 64 KiB, streamed or not, and ids that are not UTF-8.

A body is refused with 413 as soon as it passes the limit, without the rest being read: a
chunked body (no ``Content-Length``) of 20 MB gets its answer long before it is all sent, and the
server's memory does not grow by the body's size.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

KEY = "bounds-key-4e1f0a9c2b"
AUTH = f"Authorization: Bearer {KEY}\r\n"
BODY_BYTES = 20 * 1024 * 1024
CHUNK = b"a" * 64 * 1024


class Served:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process, self.port = process, port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        """Resident memory of the server process (one worker: uvicorn serves in this process)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/PID/status")

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)


@pytest.fixture(scope="module")
def served(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc to read the server's memory")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALOG_")}
    env |= {
        "PYTHONUNBUFFERED": "1",
        "DIALOG_REDIS_URL": redis_url,
        "DIALOG_CALENDAR_URL": "memory://",
        "DIALOG_API_KEYS": f"{KEY}=bounds",
    }
    port = free_port()
    log = tmp_path_factory.mktemp("bounds") / "serve.log"
    command = [sys.executable, "-m", "dialog.cli", "serve", "--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Served(process, port)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"dialog serve exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dialog serve was not ready within 30 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    headers = {name.lower(): value for name, value in response.getheaders()}
    return response.status, headers, response.read()


def _answered(sock: socket.socket) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


@pytest.mark.slow
def test_a_chunked_body_over_64_kib_is_413_before_it_is_all_sent(served: Served) -> None:
    before = served.rss_bytes()
    sent = 0
    with served.connect() as sock:
        sock.sendall(
            b"POST /v1/conversations/c1/messages HTTP/1.1\r\nHost: dialog\r\n"
            + AUTH.encode()
            + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b'8\r\n{"text":\r\n'
        )
        while sent < BODY_BYTES and not _answered(sock):
            try:
                sock.sendall(b"%x\r\n%b\r\n" % (len(CHUNK), CHUNK))
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed; the answer is waiting to be read
            sent += len(CHUNK)
        assert sent < BODY_BYTES, "the whole 20 MB body was sent before any answer"
        status, headers, body = _read_response(sock)
    assert status == 413, body
    assert headers["content-type"] == "application/json"
    assert headers.get("connection") == "close"  # the rest of the body is not read
    assert httpx.Response(status, content=body).json()["code"] == "body_too_large"
    grown = served.rss_bytes() - before
    assert grown < 30 * 1024 * 1024, f"the server grew by {grown} bytes"


@pytest.mark.slow
def test_a_content_length_over_64_kib_is_413_before_any_of_it_is_sent(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(
            b"POST /v1/conversations/c1/messages HTTP/1.1\r\nHost: dialog\r\n"
            + AUTH.encode()
            + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % BODY_BYTES
        )
        status, headers, body = _read_response(sock)
    assert status == 413 and httpx.Response(status, content=body).json()["code"] == "body_too_large"
    assert headers.get("connection") == "close"


@pytest.mark.slow
@pytest.mark.parametrize("route", ["/messages", "/proposals", "", "/diagram"])
def test_an_id_that_is_not_utf8_is_422_over_the_wire(served: Served, route: str) -> None:
    body = {"/messages": {"text": "hi"}, "/proposals": {"lead": "x", "start": "2030-01-01T10:00:00+00:00"}}.get(route)
    method = "POST" if body is not None else "GET"
    for raw in ("%FF", "%FE", "a%C3", "%C3%28"):
        response = httpx.request(
            method,
            f"{served.url}/v1/conversations/{raw}{route}",
            json=body,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=10,
        )
        assert response.status_code == 422, (raw, route, response.text)
        assert response.json()["code"] == "invalid_request"
        assert response.json()["field"] == "path.conversation_id"
