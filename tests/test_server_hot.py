"""The hot path (``dialog/server/hot.py``) answers exactly as the routes do, and only what they would accept.

Every request below goes to two apps on the same Redis, each with its own calendar: one with the
hot path in front, one without (``app.state.hot_path.enabled = False``: every request through
FastAPI's routes). The
status, the headers a client reads, the body (conversation and event ids aside) and the log lines
must be the same.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio
from fastapi import FastAPI

from dialog import InMemoryCalendar
from dialog.engine import AsyncEngine
from dialog.inputs import MAX_TEXT_BYTES
from dialog.server import Metrics, create_app
from dialog.testing import FakeClock

KEY = "key-hot-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
TOMORROW_10 = dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC).isoformat()  # the clock stands at Mon 23 Nov 08:00

# (method, path under the conversation, headers, body: JSON-able, or bytes sent as they are)
Request = tuple[str, str, dict[str, str], Any]
DIALOG: list[Request] = [
    ("POST", "/messages", AUTH, {"text": "Schedule a call with Dana Scully tomorrow at 10am"}),
    ("POST", "/messages", AUTH | {"Idempotency-Key": "k1"}, {"text": "can we move it"}),
    ("POST", "/messages", AUTH | {"Idempotency-Key": "k1"}, {"text": "can we move it"}),  # a retry
    ("POST", "/messages", AUTH, {"text": "yes", "channel": "text", "confidence": None, "alternatives": []}),
    ("POST", "/proposals", AUTH, {"lead": "Fox Mulder", "start": TOMORROW_10}),
    ("POST", "/messages", {"Authorization": f"bearer   {KEY}  "}, {"text": "no"}),  # FastAPI strips; any case
    ("POST", "/messages", AUTH, {"text": "", "channel": "voice", "alternatives": [{"text": "yes", "confidence": 0.4}]}),
    ("POST", "/messages", AUTH, {"text": "yes", "channel": "voice", "confidence": 0.3}),
]
REFUSALS: list[Request] = [
    ("POST", "/messages", {}, {"text": "hi"}),
    ("POST", "/messages", {"Authorization": "Bearer nope"}, {"text": "hi"}),
    ("POST", "/messages", {"Authorization": f"Basic {KEY}"}, {"text": "hi"}),
    ("POST", "/messages", AUTH, {"text": "   "}),
    ("POST", "/messages", AUTH, {"text": "hi", "extra": 1}),
    ("POST", "/messages", AUTH, {"text": "hi", "confidence": 2}),
    ("POST", "/messages", AUTH, {"text": "x" * (MAX_TEXT_BYTES + 1)}),
    ("POST", "/messages", AUTH, b"{not json"),
    ("POST", "/messages", AUTH, b""),
    ("POST", "/messages", AUTH, [1, 2]),
    ("POST", "/messages", AUTH | {"Content-Type": "text/plain"}, b'{"text": "hi"}'),
    ("POST", "/messages", AUTH | {"Idempotency-Key": "k" * 257}, {"text": "hi"}),
    ("POST", "/proposals", AUTH, {"lead": "Dana", "start": "2020-01-01T10:00:00+00:00"}),  # past: the engine
    ("POST", "/proposals", AUTH, {"lead": "Dana", "start": "2026-11-24T10:00:00"}),  # no offset
    ("GET", "", AUTH, None),
]


class Apps:
    """The two apps, each behind its own httpx client, driven from sync tests on one event loop."""

    def __init__(self, redis_url: str, clock: FakeClock) -> None:
        self.runner = asyncio.Runner()
        self.apps: dict[str, FastAPI] = {}
        self.http: dict[str, httpx.AsyncClient] = {}
        for name in ("hot", "routes"):
            metrics = Metrics()
            engine = AsyncEngine(
                redis.asyncio.Redis.from_url(redis_url),
                calendar=InMemoryCalendar(),
                clock=clock,
                checkpoint=metrics.checkpoint,
            )
            app = create_app(engine, api_keys={KEY: "hot-tenant"}, metrics=metrics)
            app.state.hot_path.enabled = name == "hot"
            self.apps[name] = app
            self.http[name] = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dialog")

    def send(self, name: str, conversation: str, request: Request) -> httpx.Response:
        method, path, headers, body = request
        content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
        headers = ({"Content-Type": "application/json"} if body is not None else {}) | headers
        url = f"/v1/conversations/{conversation}{path}"
        return self.runner.run(self.http[name].request(method, url, content=content, headers=headers))

    def close(self) -> None:
        for name, http in self.http.items():
            self.runner.run(http.aclose())
            self.runner.run(self.apps[name].state.dialog.engine.aclose())
        self.runner.close()


@pytest.fixture
def apps(redis_url: str, redis_client: redis.Redis, clock: FakeClock) -> Iterator[Apps]:
    both = Apps(redis_url, clock)
    yield both
    both.close()


def _seen(response: httpx.Response, conversation: str) -> tuple[int, dict[str, str], str]:
    headers = {k: v for k, v in response.headers.items() if k in ("content-type", "retry-after", "www-authenticate")}
    text = response.text.replace(conversation, "CONVERSATION")
    return response.status_code, headers, re.sub(r"evt_[0-9a-f]+", "EVENT", text)


def _logged(caplog: pytest.LogCaptureFixture) -> list[tuple[Any, ...]]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "dialog.server"]
    caplog.clear()
    return [(e["event"], e.get("status"), e.get("code"), e.get("outcome"), e.get("trigger")) for e in lines]


@pytest.mark.parametrize("requests", [DIALOG, REFUSALS], ids=["dialog", "refusals"])
def test_the_hot_path_answers_as_the_routes_do(
    apps: Apps, caplog: pytest.LogCaptureFixture, requests: list[Request]
) -> None:
    caplog.set_level(logging.INFO, logger="dialog.server")
    statuses = []
    for i, request in enumerate(requests):
        seen = {}
        for name in ("hot", "routes"):
            conversation = f"{name}-{len(requests)}"
            seen[name] = (_seen(apps.send(name, conversation, request), conversation), _logged(caplog))
        assert seen["hot"] == seen["routes"], f"request {i}: {request}"
        statuses.append(seen["hot"][0][0])
    if requests is DIALOG:
        assert set(statuses) == {200}
    else:
        assert all(status >= 400 for status in statuses)


def test_only_well_formed_turns_skip_the_routes(apps: Apps) -> None:
    """The hot path hands a request to the full stack only when the routes must decide."""
    apps.send("hot", "well-formed", ("GET", "", AUTH, None))  # the first request builds the stack
    hot = apps.apps["hot"].state.hot_path
    full_stack = hot.app
    handed: list[str] = []

    async def spy(scope: Any, receive: Any, send: Any) -> None:
        handed.append(scope["path"])
        await full_stack(scope, receive, send)

    hot.app = spy
    handed.clear()
    for request in DIALOG:
        apps.send("hot", "well-formed", request)
    assert handed == []
    for request in REFUSALS:
        apps.send("hot", "refused", request)
    # All but one: the start in the past is the engine's refusal, answered on the hot path as the
    # routes answer it.
    assert len(handed) == len(REFUSALS) - 1


def test_middleware_of_the_hosts_own_sees_every_request(apps: Apps) -> None:
    """A host that adds middleware to the app gets every turn through it: no hot path then."""
    seen: list[str] = []
    app = apps.apps["hot"]

    @app.middleware("http")
    async def host(request: Any, call_next: Any) -> Any:
        seen.append(request.url.path)
        return await call_next(request)

    for request in DIALOG[:2]:
        assert apps.send("hot", "host", request).status_code == 200
    assert seen == ["/v1/conversations/host/messages"] * 2
