"""Two ``dialog serve`` processes ("containers") share one Redis and one CalDAV calendar.

A conversation alternates between them turn by turn; one is killed with SIGKILL while it
answers the confirmation, then restarted; the conversation still ends with exactly one event,
read back from Radicale by an independent client.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures_radicale import PASSWORD, USER, RadicaleServer
from tests.support import RedisServer, free_port, stop

KEY = "multi-key-5b0c7a1e9d"
PROPOSE = "Schedule a call with Dana Scully tomorrow at 10am"


class DialogServe:
    """``python -m dialog.cli serve`` on a loopback port; restartable on the same port."""

    def __init__(self, env: dict[str, str], log: Path, *, port: int | None = None, workers: int = 1) -> None:
        self.env, self.log, self.workers = env, log, workers
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DialogServe:
        command = [sys.executable, "-m", "dialog.cli", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = 30.0) -> DialogServe:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"dialog serve exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dialog serve was not ready within {timeout} s:\n{self.log.read_text()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, as when a container is killed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        stop(self.process, timeout=10)
        self.process = None


def serve_env(**variables: str) -> dict[str, str]:
    """The test's environment without any DIALOG_* of the caller's, plus ``variables``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIALOG_")}
    return env | {"PYTHONUNBUFFERED": "1"} | variables


@pytest.fixture
def dialog_serve(tmp_path: Path) -> Iterator[Callable[..., DialogServe]]:
    """Start ``dialog serve`` processes; every one still running is stopped at the end."""
    started: list[DialogServe] = []

    def make(env: dict[str, str], name: str, **options: Any) -> DialogServe:
        started.append(DialogServe(env, tmp_path / f"{name}.log", **options))
        return started[-1]

    yield make
    for server in started:
        server.stop()


def say(server: DialogServe, conversation: str, text: str, *, timeout: float = 15) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/v1/conversations/{conversation}/messages",
        json={"text": text},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=timeout,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.slow
def test_a_conversation_alternates_between_two_containers_and_survives_a_sigkill(
    redis_server: Callable[..., RedisServer],
    radicale: RadicaleServer,
    dialog_serve: Callable[..., DialogServe],
) -> None:
    tenant = f"multi-{uuid.uuid4().hex[:10]}"  # letters, digits and "-": the collection has the same name
    env = serve_env(
        DIALOG_REDIS_URL=redis_server().url,
        DIALOG_CALENDAR_URL=radicale.url,
        DIALOG_CALENDAR_USER=USER,
        DIALOG_CALENDAR_PASSWORD=PASSWORD,
        DIALOG_API_KEYS=f"{KEY}={tenant}",
    )
    a, b = dialog_serve(env, "a").start(), dialog_serve(env, "b").start()
    a.wait_ready(), b.wait_ready()
    conversation = "call-dana"

    proposed = say(a, conversation, PROPOSE)
    moved = say(b, conversation, "can we move it")
    waited = say(a, conversation, "hmm")
    assert [r["outcome"] for r in (proposed, moved, waited)] == ["proposed", "rescheduled", "reprompted"]
    assert waited["proposal"] == moved["proposal"] != proposed["proposal"]

    # B is killed while it answers "yes": as soon as A sees the confirmation recorded (the
    # calendar call is then under way), or the turn done if it was quicker than the look.
    confirm = threading.Thread(target=_try_say, args=(b, conversation, "yes"))
    confirm.start()
    _wait_for_confirmation(a, conversation)
    b.kill()
    confirm.join(timeout=20)

    b.start().wait_ready()  # the same container comes back on the same port
    first = say(a, conversation, "yes")
    second = say(b, conversation, "yep")
    assert first["outcome"] in ("booked", "already_booked") and second["outcome"] == "already_booked"
    assert first["state"] == second["state"] == "done"
    assert first["event"] == second["event"] is not None

    stored = radicale.events(tenant)  # the independent client: one VEVENT, the one the API reported
    assert [str(event["UID"]) for event in stored.values()] == [first["event"]["id"]]
    start = stored.popitem()[1].decoded("DTSTART")
    assert start.isoformat() == moved["proposal"]["start"]

    logs = a.log.read_text() + b.log.read_text()
    assert KEY not in logs and PASSWORD not in logs
    turns = [json.loads(line) for line in logs.splitlines() if line.startswith('{"ts"')]  # the app's JSON lines
    assert any(t.get("conversation_id") == conversation and t.get("tenant") == tenant for t in turns)


def _try_say(server: DialogServe, conversation: str, text: str) -> None:
    with contextlib.suppress(httpx.TransportError, AssertionError):  # the server dies under the request
        say(server, conversation, text, timeout=10)


def _wait_for_confirmation(server: DialogServe, conversation: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        while time.monotonic() < deadline:
            snapshot = http.get(f"/v1/conversations/{conversation}").json()
            if snapshot["booking_pending"] or snapshot["state"] == "done":
                return
    raise AssertionError("the confirmation was never recorded")
