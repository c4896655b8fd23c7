"""schemathesis against the app's own OpenAPI: generated requests never get a 500, responses match the schema.

Bounded for CI: 30 examples per operation, derandomized, no example database. The app runs
in-process on the real Redis (the run's test database) with an in-memory calendar and a fixed clock.

schemathesis generates the cases and validates the responses; httpx sends them (ASGITransport).
Its own sender is requests, which the caldav extra's urllib3-future replaces under it, so checks
that re-send a request themselves (``ignored_auth``) are run here by hand instead: without the
key, every conversation endpoint must answer 401.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS

from dialog import InMemoryCalendar
from dialog.engine import AsyncEngine
from dialog.server import Metrics, create_app
from dialog.testing import FakeClock
from tests.conftest import MONDAY_8AM, REDIS_URL

KEY = "schema-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}

# Built at import, as schemathesis needs the schema to generate the tests; nothing connects to
# Redis until a request runs (the redis_url fixture skips or fails first when it is unreachable).
_metrics = Metrics()
_engine = AsyncEngine(
    redis.asyncio.Redis.from_url(REDIS_URL),
    calendar=InMemoryCalendar(),
    clock=FakeClock(MONDAY_8AM),
    checkpoint=_metrics.checkpoint,
)
_app = create_app(_engine, api_keys={KEY: "schema-tenant"}, metrics=_metrics)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)


class _Sender:
    """httpx on the app in-process, on one event loop for the module (the engine's Redis client lives there)."""

    def __init__(self) -> None:
        self.runner = asyncio.Runner()
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=_app), base_url="http://testserver")

    def send(self, kwargs: dict[str, Any]) -> httpx.Response:
        kwargs = dict(kwargs)
        if "data" in kwargs:
            kwargs["content"] = kwargs.pop("data")
        kwargs.pop("cookies", None)
        return self.runner.run(self.http.request(**kwargs))

    def close(self) -> None:
        self.runner.run(self.http.aclose())
        self.runner.run(_engine.aclose())
        self.runner.close()


@pytest.fixture(scope="module")
def sender(redis_url: str) -> Iterator[_Sender]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    sender = _Sender()
    yield sender
    sender.close()
    client.flushdb()
    client.close()


_RESENDING: list[Any] = [check for check in CHECKS.get_all() if check.__name__ == "ignored_auth"]
# A start in the past is schema-valid but refused (422 invalid_input): the schema cannot say "future".
_PAST_START: list[Any] = [check for check in CHECKS.get_all() if check.__name__ == "positive_data_acceptance"]


@schema.parametrize()
@settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_the_api_conforms_to_its_own_schema(sender: _Sender, case: schemathesis.Case[Any]) -> None:
    kwargs = case.as_transport_kwargs(headers=AUTH)
    response = sender.send(kwargs)
    assert response.status_code < 500, (response.status_code, response.text)
    excluded = _RESENDING + (_PAST_START if case.operation.path.endswith("/proposals") else [])
    case.validate_response(response, headers=kwargs["headers"], excluded_checks=excluded)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/conversations/c/messages"),
        ("POST", "/v1/conversations/c/proposals"),
        ("GET", "/v1/conversations/c"),
        ("GET", "/v1/conversations/c/diagram"),
    ],
)
def test_every_operation_that_declares_auth_enforces_it(sender: _Sender, method: str, path: str) -> None:
    assert sender.send({"method": method, "url": path, "json": {}}).status_code == 401
    operation = schema[path.replace("/conversations/c", "/conversations/{conversation_id}", 1)][method]
    assert operation.definition.raw.get("security"), "the operation should declare the bearer scheme"
