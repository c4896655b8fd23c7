"""The Node client in examples/node/ against a real ``dialog serve``: the example route books once
when the frontend retries a message, and a 503 is retried once with the same Idempotency-Key.

Needs Node 20+ (built-in fetch); skipped without it, except under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import RedisServer, paused
from tests.test_multicontainer import DialogServe, serve_env

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "node"
KEY = "node-key-8c1d2e7f90"
TENANT = "node-tenant"


@pytest.fixture(scope="module")
def node() -> str:
    binary = shutil.which("node")
    reason = "node is not installed"
    if binary is not None:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.strip()
        if int(version.lstrip("v").split(".")[0]) >= 20:
            return binary
        reason = f"node {version} is older than 20 (no built-in fetch)"
    if os.environ.get("CI"):
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def redis(redis_server: Callable[..., RedisServer]) -> RedisServer:
    """A private redis-server: the 503 test pauses it."""
    return redis_server()


@pytest.fixture
def served(redis: RedisServer, tmp_path: Path) -> Iterator[DialogServe]:
    env = serve_env(DIALOG_REDIS_URL=redis.url, DIALOG_API_KEYS=f"{KEY}={TENANT}")
    serve = DialogServe(env, tmp_path / "serve.log").start()
    try:
        yield serve.wait_ready()
    finally:
        serve.stop()


def node_env(served: DialogServe, **variables: str) -> dict[str, str]:
    return {**os.environ, "DIALOG_URL": served.url, "DIALOG_API_KEY": KEY, **variables}


def history(served: DialogServe, conversation: str) -> list[dict[str, object]]:
    response = httpx.get(
        f"{served.url}/v1/conversations/{conversation}/history", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    entries: list[dict[str, object]] = response.json()["entries"]
    return entries


def requests_logged(served: DialogServe, path: str) -> list[int]:
    """The status of every request to ``path`` in the server's JSON log lines, in order."""
    statuses = []
    for line in served.log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "request" and record.get("path") == path:
                statuses.append(int(record["status"]))
    return statuses


@pytest.mark.slow
def test_the_readmes_route_answers_and_maps_errors(node: str, served: DialogServe, tmp_path: Path) -> None:
    """The README's `js` block, beside a copy of the client, called with Express-like req and res."""
    (block,) = re.findall(r"```js\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    shutil.copy(EXAMPLES / "dialog-client.mjs", tmp_path / "dialog-client.mjs")
    (tmp_path / "route.mjs").write_text(block)
    driver = """
import { aiChat } from "./route.mjs";
async function say(message, messageId) {
  const res = {
    code: 200,
    status(code) { this.code = code; return this; },
    json(body) { this.body = body; return this; },
  };
  await aiChat({ body: { conversationId: "readme-js", message, messageId } }, res);
  console.log(JSON.stringify({ status: res.code, ...res.body }));
}
await say("Schedule a call with Dana Scully tomorrow at 10am");
await say("yes", "m-yes");
await say("yes", "m-yes");
await say("x".repeat(5000));
"""
    (tmp_path / "driver.mjs").write_text(driver)
    result = subprocess.run(
        [node, str(tmp_path / "driver.mjs")], capture_output=True, text=True, timeout=60, env=node_env(served)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    proposed, booked, again, too_long = (json.loads(line) for line in result.stdout.splitlines())
    assert (proposed["status"], proposed["outcome"]) == (200, "proposed")
    assert (booked["status"], booked["outcome"]) == (200, "booked")
    assert again == booked  # the same messageId: the first answer, nothing applied again
    assert too_long["status"] == 400 and "4096" in too_long["error"].replace(",", ""), too_long


def test_the_clients_own_tests_pass(node: str) -> None:
    """Requests, headers, retries and errors, on a stand-in fetch (node --test)."""
    result = subprocess.run(
        [node, "--test", str(EXAMPLES / "dialog-client.test.mjs")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout


@pytest.mark.slow
def test_the_example_route_books_once_when_the_frontend_retries(node: str, served: DialogServe) -> None:
    conversation = f"node-{uuid.uuid4().hex[:8]}"
    result = subprocess.run(
        [node, str(EXAMPLES / "example.mjs")],
        capture_output=True,
        text=True,
        timeout=60,
        env=node_env(served, EXAMPLE_CONVERSATION=conversation),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    booked = [line for line in result.stdout.splitlines() if line.startswith("host> Booked")]
    assert len(booked) == 2 and booked[0] == booked[1], result.stdout  # the retry got the first answer
    assert "[done / booked]" in booked[1]  # not "already_booked": the retry was not applied again
    entries = history(served, conversation)
    assert [e["outcome"] for e in entries] == ["proposed", "recorded", "booked"]
    assert requests_logged(served, f"/v1/conversations/{conversation}/messages") == [200, 200, 200]


@pytest.mark.slow
def test_a_503_is_retried_once_with_the_same_idempotency_key(
    node: str, served: DialogServe, redis: RedisServer
) -> None:
    """Redis paused: the first attempt is a 503; Redis back before Retry-After ends: the retry is
    applied, once."""
    script = (
        'import { handle } from "./dialog-client.mjs";'
        'const reply = await handle("c503", "Schedule a call with Dana Scully tomorrow at 10am", { messageId: "m-1" });'
        "console.log(JSON.stringify(reply));"
    )
    path = "/v1/conversations/c503/messages"
    assert redis.process is not None
    with paused(redis.process.pid):
        client = subprocess.Popen(
            [node, "--input-type=module", "-e", script],
            cwd=EXAMPLES,
            env=node_env(served),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while requests_logged(served, path) != [503]:
            assert client.poll() is None, client.communicate()
            assert time.monotonic() < deadline, "no 503 while Redis was paused"
            time.sleep(0.05)
    out, err = client.communicate(timeout=30)
    assert client.returncode == 0, out + err
    assert json.loads(out)["outcome"] == "proposed"
    assert requests_logged(served, path) == [503, 200]
    assert [(e["outcome"], e["message_id"]) for e in history(served, "c503")] == [("proposed", "m-1")]
