"""The HTTP service in-process: every endpoint, auth and tenant isolation, error shapes, metrics, logs.

The app runs on the real Redis (the run's test database) with an in-memory calendar and a clock moved by hand.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio
from fastapi import FastAPI

from dialog import InMemoryCalendar
from dialog.engine import AsyncEngine
from dialog.server import Metrics, create_app
from dialog.server.auth import KeyRing
from dialog.server.config import ConfigError, Settings, parse_api_keys, settings_from_env
from dialog.store.keys import ConversationKeys
from dialog.testing import FakeClock
from tests.conftest import free_port

PROPOSE = "Schedule a call with Dana Scully tomorrow at 10am"
KEYS = {"key-acme-0123456789": "acme", "key-globex-987654321": "globex"}
ACME = {"Authorization": "Bearer key-acme-0123456789"}
GLOBEX = {"Authorization": "Bearer key-globex-987654321"}
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


class TestClient:
    """httpx on the app in-process (ASGITransport), driven from sync tests on one event loop."""

    __test__ = False

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._runner = asyncio.Runner()
        self._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dialog")

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        return self._runner.run(self._http.request(method, url, **options))

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.request("POST", url, **options)

    def delete(self, url: str, **options: Any) -> httpx.Response:
        return self.request("DELETE", url, **options)

    def close(self) -> None:
        self._runner.run(self._http.aclose())
        self._runner.run(self.app.state.dialog.engine.aclose())
        self._runner.close()


AppFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(
    redis_url: str, redis_client: redis.Redis, calendar: InMemoryCalendar, clock: FakeClock
) -> Iterator[AppFactory]:
    """A TestClient on a fresh app; ``url`` points its engine elsewhere (a closed port: Redis down)."""
    clients: list[TestClient] = []

    def make(
        *, url: str = redis_url, calendar_: Any = calendar, keys: dict[str, str] = KEYS, **options: Any
    ) -> TestClient:
        metrics = Metrics()
        engine = AsyncEngine(
            redis.asyncio.Redis.from_url(url), calendar=calendar_, clock=clock, checkpoint=metrics.checkpoint
        )
        clients.append(TestClient(create_app(engine, api_keys=keys, metrics=metrics, **options)))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: AppFactory) -> TestClient:
    return make_client()


def say(
    client: TestClient, conversation: str, text: str, headers: dict[str, str] = ACME, **body: Any
) -> httpx.Response:
    return client.post(f"/v1/conversations/{conversation}/messages", json={"text": text, **body}, headers=headers)


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert an error response: its status, JSON content type and stable code; return the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code and isinstance(body["message"], str)
    assert "Traceback" not in response.text
    return body


# --- turns --------------------------------------------------------------------------------------


def test_a_conversation_over_http_books_exactly_once(client: TestClient, calendar: InMemoryCalendar) -> None:
    proposed = say(client, "c1", PROPOSE)
    assert proposed.status_code == 200
    body = proposed.json()
    assert body | {"text": None, "proposal": None} == {
        "conversation_id": "c1",
        "state": "awaiting_confirmation",
        "outcome": "proposed",
        "text": None,
        "proposal": None,
        "event": None,
        "version": 1,
        "channel": "text",
        "expect": None,  # voice turns carry what the next turn is expected to contain
    }
    assert body["proposal"] == {
        "start": "2026-11-24T10:00:00+00:00",
        "end": "2026-11-24T10:30:00+00:00",
        "lead": "Dana Scully",
        "kind": "book",
    }
    assert "Dana Scully" in body["text"]

    moved = say(client, "c1", "can we move it").json()
    assert (moved["outcome"], moved["proposal"]["start"]) == ("rescheduled", "2026-11-24T10:30:00+00:00")

    booked = say(client, "c1", "uh yeah sure", channel="voice").json()
    assert (booked["state"], booked["outcome"], booked["channel"], booked["proposal"]) == (
        "done",
        "booked",
        "voice",
        None,
    )
    event = booked["event"]
    assert set(event) == {"id", "start", "end", "lead"} and ISO_WITH_OFFSET.match(event["start"])

    again = say(client, "c1", "yes").json()
    assert (again["outcome"], again["event"]) == ("already_booked", event)
    assert again["version"] > booked["version"] > moved["version"] > 1
    assert len(calendar.events("acme")) == 1


def test_times_carry_the_tenant_timezone_offset(client: TestClient, calendar: InMemoryCalendar) -> None:
    from dialog import Schedule

    calendar.set_schedule("acme", Schedule(timezone="America/New_York"))
    proposal = say(client, "ny", PROPOSE).json()["proposal"]
    assert proposal["start"] == "2026-11-24T10:00:00-05:00"


def test_a_proposal_from_the_hosts_own_nlu(client: TestClient, clock: FakeClock) -> None:
    start = (clock() + dt.timedelta(days=1)).replace(hour=14, minute=0).isoformat()
    response = client.post("/v1/conversations/p1/proposals", json={"lead": "Fox Mulder", "start": start}, headers=ACME)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["outcome"], body["state"], body["proposal"]["lead"]) == (
        "proposed",
        "awaiting_confirmation",
        "Fox Mulder",
    )
    assert body["proposal"]["start"] == "2026-11-24T14:00:00+00:00"
    assert say(client, "p1", "yes").json()["outcome"] == "booked"


def test_a_proposal_needs_an_aware_future_start(client: TestClient, clock: FakeClock) -> None:
    naive = client.post(
        "/v1/conversations/p1/proposals", json={"lead": "Dana", "start": "2026-11-24T10:00:00"}, headers=ACME
    )
    error(naive, 422, "invalid_request")
    past = (clock() - dt.timedelta(hours=1)).isoformat()
    body = error(
        client.post("/v1/conversations/p1/proposals", json={"lead": "Dana", "start": past}, headers=ACME),
        422,
        "invalid_input",
    )
    assert body["field"] == "start"
    empty = client.post(
        "/v1/conversations/p1/proposals", json={"lead": " ", "start": clock().isoformat()}, headers=ACME
    )
    assert error(empty, 422, "invalid_request")["field"] == "body.lead"
    too_long = client.post(
        "/v1/conversations/p1/proposals", json={"lead": "D" * 257, "start": clock().isoformat()}, headers=ACME
    )
    assert error(too_long, 422, "invalid_input")["field"] == "lead"


def test_get_a_conversation_or_404(client: TestClient) -> None:
    error(client.get("/v1/conversations/nobody", headers=ACME), 404, "not_found")
    say(client, "c1", PROPOSE)
    snapshot = client.get("/v1/conversations/c1", headers=ACME).json()
    assert snapshot["state"] == "awaiting_confirmation" and snapshot["version"] == 1
    assert (snapshot["last_trigger"], snapshot["last_source"], snapshot["booking_pending"]) == (
        "propose",
        "idle",
        False,
    )
    assert snapshot["proposal"]["lead"] == "Dana Scully"


def test_any_id_travels_percent_encoded(client: TestClient) -> None:
    weird = "a b:{c}*ü?#%"
    path = "/v1/conversations/" + urllib.parse.quote(weird, safe="")
    assert client.post(path + "/messages", json={"text": PROPOSE}, headers=ACME).json()["conversation_id"] == weird
    assert client.get(path, headers=ACME).json()["conversation_id"] == weird


CONVERSATION_ROUTES = [
    ("POST", "/messages", {"text": PROPOSE}),
    ("POST", "/proposals", {"lead": "Dana Scully", "start": "2026-11-24T10:00:00+00:00"}),
    ("GET", "", None),
    ("GET", "/diagram", None),
]


@pytest.mark.parametrize(
    ("method", "route", "body"), CONVERSATION_ROUTES, ids=["message", "proposal", "get", "diagram"]
)
def test_an_id_that_is_not_utf8_after_percent_decoding_is_422(
    client: TestClient, method: str, route: str, body: dict[str, str] | None
) -> None:
    # Decoded leniently, %FF and %FE would both be U+FFFD: one conversation under two ids.
    for raw in ("%FF", "%FE", "a%C3", "%ED%A0%80"):  # %ED%A0%80: a UTF-16 surrogate, not UTF-8
        response = client.request(method, f"/v1/conversations/{raw}{route}", json=body, headers=ACME)
        assert error(response, 422, "invalid_request")["field"] == "path.conversation_id", raw
        assert "UTF-8" in response.json()["message"]
        # The key is checked first: without one, 401 whatever the id.
        error(client.request(method, f"/v1/conversations/{raw}{route}", json=body), 401, "unauthorized")
    error(client.get("/v1/conversations/%EF%BF%BD", headers=ACME), 404, "not_found")  # nothing was written


def test_an_id_in_percent_encoded_utf8_still_works(client: TestClient) -> None:
    assert say(client, "%C3%A9", PROPOSE).json()["conversation_id"] == "é"
    assert client.get("/v1/conversations/%C3%A9", headers=ACME).json()["conversation_id"] == "é"
    assert client.get("/v1/conversations/%C3%A9/diagram?format=mermaid", headers=ACME).status_code == 200
    response = client.post(
        "/v1/conversations/%C3%A9/proposals",
        json={"lead": "Dana Scully", "start": "2026-11-24T11:00:00+00:00"},
        headers=ACME,
    )
    assert (response.status_code, response.json()["conversation_id"]) == (200, "é")


# --- Idempotency-Key ----------------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_is_not_applied_again(client: TestClient) -> None:
    """Needs the engine's ``message_id=`` (SPEC 4.1, "A turn is applied once")."""
    first = client.post(
        "/v1/conversations/c1/messages", json={"text": PROPOSE}, headers=ACME | {"Idempotency-Key": "k1"}
    )
    assert first.status_code == 200, first.text
    again = client.post(
        "/v1/conversations/c1/messages", json={"text": PROPOSE}, headers=ACME | {"Idempotency-Key": "k1"}
    )
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert (again.json()["outcome"], again.json()["version"]) == ("proposed", 1)
    moved = client.post(
        "/v1/conversations/c1/messages", json={"text": "move it"}, headers=ACME | {"Idempotency-Key": "k2"}
    )
    assert moved.json()["outcome"] == "rescheduled" and moved.json()["version"] > first.json()["version"]
    assert moved.json()["proposal"] != first.json()["proposal"]
    assert client.get("/v1/conversations/c1", headers=ACME).json()["version"] == moved.json()["version"]


def test_a_retried_proposal_with_the_same_idempotency_key_is_not_applied_again(client: TestClient) -> None:
    """Needs the engine's ``message_id=`` (SPEC 4.1, "A turn is applied once")."""
    key = ACME | {"Idempotency-Key": "p" * 256}  # the longest key
    body = {"lead": "Dana Scully", "start": "2026-11-24T10:00:00+00:00"}
    first = client.post("/v1/conversations/c1/proposals", json=body, headers=key)
    assert first.status_code == 200, first.text
    # The same key, even with another body: the first reply, nothing applied.
    again = client.post("/v1/conversations/c1/proposals", json=body | {"lead": "Fox Mulder"}, headers=key)
    assert again.json() == first.json()
    assert client.get("/v1/conversations/c1", headers=ACME).json()["version"] == first.json()["version"]


@pytest.mark.parametrize(
    "value", ["", "k" * 257, ("é" * 129).encode(), b"\xffk"], ids=["empty", "257-bytes", "258-bytes-utf8", "not-utf8"]
)
@pytest.mark.parametrize("route", ["/messages", "/proposals"])
def test_an_idempotency_key_is_1_to_256_bytes(client: TestClient, route: str, value: str | bytes) -> None:
    body = {"/messages": {"text": PROPOSE}, "/proposals": {"lead": "x", "start": "2026-11-24T10:00:00+00:00"}}[route]
    response = client.post(f"/v1/conversations/c1{route}", json=body, headers=ACME | {"Idempotency-Key": value})
    assert error(response, 422, "invalid_request")["field"] == "header.Idempotency-Key"
    error(client.get("/v1/conversations/c1", headers=ACME), 404, "not_found")  # nothing was applied


def test_an_idempotency_key_of_256_bytes_of_utf8_is_one_key(client: TestClient) -> None:
    """Needs the engine's ``message_id=``: the key's bytes, read as UTF-8, are the engine's message id."""
    key = ACME | {"Idempotency-Key": ("é" * 128).encode()}  # 128 characters, 256 bytes
    first = client.post("/v1/conversations/c1/messages", json={"text": PROPOSE}, headers=key)
    assert first.status_code == 200, first.text
    again = client.post("/v1/conversations/c1/messages", json={"text": "can we move it"}, headers=key)
    assert again.json() == first.json()


def test_the_idempotency_key_is_documented(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for route in ("messages", "proposals"):
        parameters = schema["paths"][f"/v1/conversations/{{conversation_id}}/{route}"]["post"]["parameters"]
        (header,) = [p for p in parameters if p["in"] == "header"]
        assert header["name"] == "Idempotency-Key" and not header.get("required", False)
        assert header["description"] == "A retry with the same key is not applied again; the first reply is returned."
        assert (header["schema"]["minLength"], header["schema"]["maxLength"]) == (1, 256)


def test_the_diagram_as_svg_and_mermaid(client: TestClient) -> None:
    error(client.get("/v1/conversations/c1/diagram", headers=ACME), 404, "not_found")
    say(client, "c1", PROPOSE)
    svg = client.get("/v1/conversations/c1/diagram", headers=ACME)
    assert svg.status_code == 200 and svg.headers["content-type"] == "image/svg+xml"
    assert b"<svg" in svg.content and b"awaiting_confirmation" in svg.content
    mermaid = client.get("/v1/conversations/c1/diagram?format=mermaid", headers=ACME)
    assert mermaid.headers["content-type"].startswith("text/vnd.mermaid")
    assert mermaid.text.startswith("stateDiagram-v2") and "class awaiting_confirmation current" in mermaid.text
    error(client.get("/v1/conversations/c1/diagram?format=png", headers=ACME), 422, "invalid_request")


# --- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic a2V5LWFjbWU6"},
        {"Authorization": "Bearer "},
        {"Authorization": "key-acme-0123456789"},
    ],
    ids=["none", "wrong", "basic", "empty", "no-scheme"],
)
def test_without_a_valid_key_every_conversation_endpoint_is_401(client: TestClient, headers: dict[str, str]) -> None:
    for method, path, body in [
        ("POST", "/v1/conversations/c1/messages", {"text": "hi"}),
        ("POST", "/v1/conversations/c1/proposals", {"lead": "x", "start": "2030-01-01T10:00:00+00:00"}),
        ("GET", "/v1/conversations/c1", None),
        ("GET", "/v1/conversations/c1/diagram", None),
    ]:
        response = client.request(method, path, json=body, headers=headers)
        error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_key_never_reaches_another_tenants_conversation(client: TestClient, calendar: InMemoryCalendar) -> None:
    say(client, "shared-id", PROPOSE, headers=ACME)
    # Same conversation id, other key: a different conversation, in globex's namespace.
    error(client.get("/v1/conversations/shared-id", headers=GLOBEX), 404, "not_found")
    error(client.get("/v1/conversations/shared-id/diagram", headers=GLOBEX), 404, "not_found")
    assert say(client, "shared-id", "yes", headers=GLOBEX).json()["outcome"] == "nothing_pending"
    assert calendar.events("acme") == [] and calendar.events("globex") == []
    mine = client.get("/v1/conversations/shared-id", headers=ACME).json()
    assert (mine["state"], mine["version"]) == ("awaiting_confirmation", 1)
    # The body cannot name a tenant either.
    sneaky = say(client, "shared-id", "yes", headers=GLOBEX, tenant_id="acme")
    error(sneaky, 422, "invalid_request")
    assert say(client, "shared-id", "yes", headers=ACME).json()["outcome"] == "booked"
    assert len(calendar.events("acme")) == 1 and calendar.events("globex") == []


def test_the_key_ring_maps_keys_to_tenants() -> None:
    ring = KeyRing({"k1": "a", "k2": "b"})
    assert (ring.tenant("k1"), ring.tenant("k2"), ring.tenant("k3"), ring.tenant("")) == ("a", "b", None, None)
    assert ring.tenant_for_header("bearer  k2 ") == "b" and ring.tenant_for_header("Token k2") is None
    assert "k1" not in repr(ring)


# --- errors -------------------------------------------------------------------------------------


def test_text_over_4096_bytes_is_413_before_the_engine(client: TestClient) -> None:
    body = error(say(client, "big", "é" * 2049), 413, "text_too_large")  # 2,049 characters, 4,098 bytes
    assert "4098" in body["message"]
    error(client.get("/v1/conversations/big", headers=ACME), 404, "not_found")  # nothing was written
    assert say(client, "big", "a" * 4096).status_code == 200


def test_a_body_over_64_kib_is_413(client: TestClient) -> None:
    response = client.post("/v1/conversations/c1/messages", content=b'{"text": "' + b"a" * 70_000 + b'"}', headers=ACME)
    error(response, 413, "body_too_large")


def test_a_streamed_body_over_64_kib_is_413_before_it_is_all_read(client: TestClient) -> None:
    """No Content-Length (chunked): the body is counted as it arrives and refused once over the limit."""
    pulled = 0

    async def twenty_megabytes() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b'{"text": "'
        for _ in range(320):
            pulled += 1
            yield b"a" * 64 * 1024

    response = client.post("/v1/conversations/c1/messages", content=twenty_megabytes(), headers=ACME)
    error(response, 413, "body_too_large")
    assert response.headers["connection"] == "close"
    assert pulled < 10  # the rest was never read
    error(client.get("/v1/conversations/c1", headers=ACME), 404, "not_found")

    async def small() -> AsyncIterator[bytes]:
        for piece in (b'{"text": ', b'"', PROPOSE.encode(), b'"}'):
            yield piece

    json_type = ACME | {"Content-Type": "application/json"}
    assert client.post("/v1/conversations/c1/messages", content=small(), headers=json_type).status_code == 200


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"not json", None),
        (b'{"text": "\xff\xfe"}', "body"),  # not UTF-8
        (b"{}", "body.text"),
        (b'{"text": 42}', "body.text"),
        (b'{"text": "hi", "channel": "fax"}', "body.channel"),
        (b'{"text": "hi", "extra": 1}', "body.extra"),
        (b"[]", "body"),
    ],
)
def test_an_invalid_body_is_422_with_a_stable_code(client: TestClient, content: bytes, field: str | None) -> None:
    response = client.post(
        "/v1/conversations/c1/messages", content=content, headers=ACME | {"Content-Type": "application/json"}
    )
    body = error(response, 422, "invalid_request")
    if field is not None:
        assert body["field"] == field


@pytest.mark.parametrize(
    ("conversation", "text", "code", "field"),
    [
        ("c1", " \t\x1c ", "invalid_request", "body.text"),  # the schema's pattern: something not blank
        ("c1", "\ud800", "invalid_request", "body.text"),
        ("x" * 257, "hi", "invalid_input", "conversation_id"),  # the engine's limit: 256 bytes
        ("é" * 129, "hi", "invalid_input", "conversation_id"),
    ],
    ids=["blank", "lone-surrogate", "long-id", "long-id-in-bytes"],
)
def test_text_and_ids_that_cannot_be_a_turn_are_422(
    client: TestClient, conversation: str, text: str, code: str, field: str
) -> None:
    content = json.dumps({"text": text}).encode()  # "\ud800" stays an escape: valid JSON, invalid Unicode
    response = client.post(
        f"/v1/conversations/{urllib.parse.quote(conversation)}/messages",
        content=content,
        headers=ACME | {"Content-Type": "application/json"},
    )
    assert error(response, 422, code)["field"] == field


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("POST", "/v1/conversations/c1/messages", "x=1"),
        ("POST", "/v1/conversations/c1/proposals", "text=hi"),
        ("GET", "/v1/conversations/c1", "=false"),
        ("GET", "/v1/conversations/c1/diagram", "format=mermaid&x=1"),
        ("GET", "/healthz", "verbose=1"),
    ],
)
def test_an_unknown_query_parameter_is_422(client: TestClient, method: str, path: str, query: str) -> None:
    """The schema lists every query parameter; one it does not list is refused, never ignored."""
    body: dict[str, Any] = {"lead": "Dana Scully", "start": "2026-11-24T10:00:00+00:00"}
    say(client, "c1", PROPOSE)
    response = client.request(
        method,
        f"{path}?{query}",
        headers=ACME,
        json=body if "proposals" in path else {"text": "hi"} if method == "POST" else None,
    )
    assert error(response, 422, "invalid_request")["field"].startswith("query.")


def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    error(client.get("/v2/nothing"), 404, "not_found")
    error(client.delete("/v1/conversations/c1", headers=ACME), 405, "method_not_allowed")


def test_redis_down_is_503_with_retry_after(make_client: AppFactory) -> None:
    client = make_client(url=f"redis://127.0.0.1:{free_port()}/0", retry_after=7)
    for response in (say(client, "c1", PROPOSE), client.get("/v1/conversations/c1", headers=ACME)):
        error(response, 503, "store_unavailable")
        assert response.headers["retry-after"] == "7"
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["retry-after"] == "7"
    assert ready.json() == {"status": "unavailable", "checks": {"redis": "unreachable", "calendar": "ok"}}
    assert "dialog_store_errors_total 2.0" in client.get("/metrics").text


class _BrokenCalendar(InMemoryCalendar):
    def busy(self, tenant_id: str, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        raise ConnectionError("calendar.example: connection refused (password=hunter2)")


def test_calendar_down_is_503_with_retry_after(make_client: AppFactory, caplog: pytest.LogCaptureFixture) -> None:
    client = make_client(calendar_=_BrokenCalendar(), redact=["hunter2"])
    with caplog.at_level(logging.INFO, logger="dialog.server"):
        response = say(client, "c1", PROPOSE)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "connection refused" in logged and "hunter2" not in logged
    body = error(response, 503, "calendar_unavailable")
    assert response.headers["retry-after"] == "2" and "hunter2" not in body["message"]
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"] == {"redis": "ok", "calendar": "unreachable"}
    assert "dialog_calendar_errors_total 1.0" in client.get("/metrics").text


def test_a_corrupt_record_is_409_and_the_next_message_starts_afresh(
    client: TestClient, redis_client: redis.Redis
) -> None:
    redis_client.rpush(ConversationKeys("acme", "c1").conversation, b"not", b"a hash")
    error(say(client, "c1", "yes"), 409, "corrupt_state")
    assert say(client, "c1", "yes").json()["outcome"] == "nothing_pending"


def test_an_unexpected_error_is_a_json_500_without_internals(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine: AsyncEngine = client.app.state.dialog.engine

    async def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail at /srv/dialog/engine.py")

    monkeypatch.setattr(engine, "handle", explode)
    with caplog.at_level(logging.ERROR, logger="dialog.server"):
        response = say(client, "c1", "hi")
    body = error(response, 500, "internal_error")
    assert "secret" not in response.text and "engine.py" not in response.text
    reference = re.search(r"reference (\w+)", body["message"])
    assert reference is not None
    logged = [json.loads(r.getMessage()) for r in caplog.records if "unhandled_error" in r.getMessage()]
    assert logged[0]["reference"] == reference[1] and "secret internal detail" in logged[0]["traceback"]


# --- operations ---------------------------------------------------------------------------------


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "checks": {"redis": "ok", "calendar": "ok"}}


def test_metrics_count_turns_bookings_and_latency(client: TestClient) -> None:
    for text in (PROPOSE, "yes", "yes"):
        say(client, "c1", text)
    client.post("/v1/conversations/c1/proposals", json={"lead": "Dana", "start": "2020-01-01T10:00:00Z"}, headers=ACME)
    text = client.get("/metrics").text
    assert (
        'dialog_turns_total{kind="message",outcome="proposed",state="awaiting_confirmation",trigger="propose"} 1.0'
        in text
    )
    assert 'dialog_turns_total{kind="message",outcome="booked",state="done",trigger="confirm"} 1.0' in text
    assert 'outcome="already_booked"' in text
    assert "dialog_bookings_total 1.0" in text
    assert 'dialog_turn_seconds_count{kind="message"} 3.0' in text
    assert 'dialog_http_errors_total{code="invalid_input"} 1.0' in text  # the start in the past
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_concurrent_turns_on_one_conversation_count_cas_conflicts(
    redis_url: str, redis_client: redis.Redis, calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    """Twenty turns at once on one conversation: all answered, conflicts retried and counted."""

    async def burst() -> tuple[list[httpx.Response], str]:
        metrics = Metrics()
        engine = AsyncEngine(
            redis.asyncio.Redis.from_url(redis_url), calendar=calendar, clock=clock, checkpoint=metrics.checkpoint
        )
        app = create_app(engine, api_keys=KEYS, metrics=metrics)
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://dialog", headers=ACME) as http:
                said = await asyncio.gather(
                    *(http.post("/v1/conversations/hot/messages", json={"text": "hmm"}) for _ in range(20))
                )
                return list(said), (await http.get("/metrics")).text
        finally:
            await engine.aclose()

    said, text = asyncio.run(burst())
    assert [r.status_code for r in said] == [200] * 20
    assert sorted(r.json()["version"] for r in said) == list(range(1, 21))
    conflicts = float(re.search(r"^dialog_cas_conflicts_total (\S+)$", text, re.M)[1])  # type: ignore[index]
    assert conflicts >= 1


def test_turn_logs_are_json_lines_without_the_key(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="dialog.server"):
        say(client, "c1", PROPOSE)
        say(client, "c1", "yes")
        client.get("/?key=key-acme-0123456789")
        client.get("/v1/conversations/c1", headers={"Authorization": "Bearer key-wrong-but-secret"})
    lines = [r.getMessage() for r in caplog.records if r.name == "dialog.server"]
    assert lines and all("key-acme-0123456789" not in line and "key-wrong-but-secret" not in line for line in lines)
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    turns = [e for e in events if e["event"] == "turn"]
    assert [(t["state_from"], t["state"], t["outcome"]) for t in turns] == [
        ("idle", "awaiting_confirmation", "proposed"),
        ("awaiting_confirmation", "done", "booked"),
    ]
    assert all(t["conversation_id"] == "c1" and t["tenant"] == "acme" and t["latency_ms"] > 0 for t in turns)
    assert {"event": "request", "method": "GET", "path": "/", "status": 200}.items() <= events[-2].items()


def test_without_reading_transitions_logs_and_metrics_say_unknown(
    make_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(read_transitions=False)
    with caplog.at_level(logging.INFO, logger="dialog.server"):
        say(client, "c1", PROPOSE)
    turn = next(json.loads(r.getMessage()) for r in caplog.records if '"turn"' in r.getMessage())
    assert (turn["state_from"], turn["trigger"], turn["state"]) == (None, None, "awaiting_confirmation")
    assert 'trigger="unknown"' in client.get("/metrics").text


def test_the_chat_page_is_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<script>" in page.text and "localStorage" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'sha256-" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


# --- the documentation ---------------------------------------------------------------------------


def test_the_documented_quick_start_answers_what_it_shows(make_client: AppFactory) -> None:
    """The curl example of docs/server.md (or of the README, once merged) against the app."""
    root = Path(__file__).resolve().parent.parent
    marker = "<!-- http-quickstart -->"
    source = next(p for p in (root / "README.md", root / "docs" / "server.md") if marker in p.read_text())
    section = source.read_text().split(marker, 1)[1]
    shell, shown = re.findall(r"```(?:sh|json)\n(.*?)```", section, flags=re.S)[:2]
    keys = parse_api_keys(re.search(r"DIALOG_API_KEYS=(\S+)", shell)[1])  # type: ignore[index]
    url = re.search(r"curl .*?(http://\S+)", shell)[1]  # type: ignore[index]
    key = re.search(r"Bearer (\S+?)'", shell)[1]  # type: ignore[index]
    body = json.loads(re.search(r"-d '(.*?)'", shell)[1])  # type: ignore[index]
    client = make_client(keys=keys)
    response = client.post(urllib.parse.urlsplit(url).path, json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.json() == json.loads(shown)


# --- configuration ------------------------------------------------------------------------------


def test_api_keys_from_the_environment_and_a_file(tmp_path: Any) -> None:
    assert parse_api_keys(" k1=acme , k2 = globex ") == {"k1": "acme", "k2": "globex"}
    keys = tmp_path / "keys"
    keys.write_text("# ops keys\nk3=acme\n\nk4=globex,k5=initech\n")
    settings = settings_from_env({"DIALOG_API_KEYS": "k1=acme", "DIALOG_API_KEYS_FILE": str(keys)})
    assert dict(settings.api_keys) == {"k1": "acme", "k3": "acme", "k4": "globex", "k5": "initech"}
    assert settings.ttl_seconds == 600 and settings.redis_url is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no API keys"),
        ({"DIALOG_API_KEYS": "justakey"}, "not key=tenant"),
        ({"DIALOG_API_KEYS": "k=a,k=b"}, "two tenants"),
        ({"DIALOG_API_KEYS": "k=a", "DIALOG_TTL_SECONDS": "soon"}, "DIALOG_TTL_SECONDS"),
        ({"DIALOG_API_KEYS": "k=a", "DIALOG_API_KEYS_FILE": "/nonexistent/keys"}, "cannot read"),
    ],
)
def test_bad_configuration_is_named_without_the_secret(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        settings_from_env(env)
    assert "justakey" not in str(caught.value)


def test_the_calendar_password_is_redacted_in_every_form() -> None:
    from dialog.server.config import secrets

    settings = Settings(api_keys={"k": "t"}, calendar_url="https://bot:p%40ss%20w@cal/", calendar_password="other pw")
    assert set(secrets(settings)) >= {"p@ss w", "p%40ss%20w", "other pw", "other%20pw"}
    assert secrets(Settings(api_keys={"k": "t"})) == []


def test_settings_keep_secrets_out_of_repr() -> None:
    settings = Settings(api_keys={"sekrit-key": "acme"}, calendar_url="https://u:pw@cal/", calendar_password="pw")
    assert "sekrit" not in repr(settings) and "pw" not in repr(settings)


def test_dialog_serve_refuses_to_start_without_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dialog.cli import main

    monkeypatch.delenv("DIALOG_API_KEYS", raising=False)
    monkeypatch.delenv("DIALOG_API_KEYS_FILE", raising=False)
    assert main(["serve", "--port", "1"]) == 1
    assert "no API keys" in capsys.readouterr().err


def test_dialog_serve_binds_its_worker_listener_as_tcp() -> None:
    """With --workers N uvicorn binds the listener itself; it must say TCP so asyncio sets TCP_NODELAY."""
    import socket

    import uvicorn

    from dialog.cli import _nodelay_listener

    original = uvicorn.Config.bind_socket
    with _nodelay_listener(uvicorn.Config):
        listener = uvicorn.Config("dialog.server.app:app_from_env", port=free_port(), workers=2).bind_socket()
    try:
        assert (listener.family, listener.proto) == (socket.AF_INET, socket.IPPROTO_TCP)
    finally:
        listener.close()
    assert uvicorn.Config.bind_socket is original  # patched only while dialog serve runs uvicorn


def test_the_app_sweeps_stranded_confirmations_in_the_background(
    redis_url: str, redis_client: redis.Redis, calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    """create_app(recover_every=...) settles a "yes" whose turn stopped mid-way, without any request."""
    from dialog import Engine
    from dialog.engine import Checkpoint
    from tests.test_crashes import Crash, crash_at

    Engine(redis_client, calendar=calendar, clock=clock).handle("c1", "schedule a call with Dana tomorrow at 10am")
    crashing = Engine(redis_client, calendar=calendar, clock=clock, checkpoint=crash_at(Checkpoint.INTENT_COMMITTED))
    with pytest.raises(Crash):
        crashing.handle("c1", "yes")

    async def serve_a_while() -> int:
        engine = AsyncEngine(redis.asyncio.Redis.from_url(redis_url), calendar=calendar, clock=clock)
        app = create_app(engine, api_keys=KEYS, recover_every=0.1, close_on_shutdown=True)
        async with app.router.lifespan_context(app):
            for _ in range(50):
                await asyncio.sleep(0.1)
                if calendar.events("default"):
                    break
        return len(calendar.events("default"))

    assert asyncio.run(serve_a_while()) == 1
    snapshot = Engine(redis_client, calendar=calendar, clock=clock).snapshot("c1")
    assert snapshot is not None and snapshot.state == "done" and not snapshot.booking_pending


@pytest.mark.parametrize("value", ["-1", "0.5", "soon", "100000"])
def test_a_bad_recover_interval_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="DIALOG_RECOVER_EVERY"):
        settings_from_env({"DIALOG_API_KEYS": "k=t", "DIALOG_RECOVER_EVERY": value})


def test_the_history_of_a_conversation_over_http(client: TestClient) -> None:
    """GET .../history: every applied turn, oldest first, with the words and channel that confirmed the call."""
    say(client, "c1", "Schedule a call with Dana Scully tomorrow at 10am")
    say(client, "c1", "uh yeah sure", channel="voice")
    response = client.get("/v1/conversations/c1/history", headers=ACME)
    assert response.status_code == 200
    entries = response.json()["entries"]
    assert [(e["version"], e["outcome"]) for e in entries] == [(1, "proposed"), (2, "recorded"), (3, "booked")]
    assert (entries[-1]["text"], entries[-1]["channel"]) == ("uh yeah sure", "voice")
    assert entries[-1]["event_id"] is not None and ISO_WITH_OFFSET.match(entries[0]["at"])
    assert client.get("/v1/conversations/c1/history", headers=GLOBEX).status_code == 404  # another tenant's
    assert client.get("/v1/conversations/nobody/history", headers=ACME).status_code == 404


def test_a_move_proposal_says_its_kind(client: TestClient) -> None:
    say(client, "c1", "Schedule a call with Dana Scully tomorrow at 10am")
    say(client, "c1", "yes")
    body = say(client, "c1", "can we move the call to 3pm?").json()
    assert body["proposal"]["kind"] == "move" and body["event"] is not None


def test_a_voice_turn_carries_the_expectations_and_the_recognisers_confidence_decides(client: TestClient) -> None:
    """Spec 4.4 over HTTP: `expect` on voice turns; a doubtful spoken yes is asked again; silence re-prompts."""
    proposed = say(client, "c1", PROPOSE, channel="voice").json()
    assert "yes" in proposed["expect"]["phrases"] and proposed["expect"]["jsgf"].startswith("#JSGF")
    assert say(client, "c1", PROPOSE).json()["expect"] is None  # text turns carry none
    no = [{"text": "no", "confidence": 0.3}]
    doubtful = say(client, "c1", "yes", channel="voice", confidence=0.9, alternatives=no)
    assert doubtful.json()["outcome"] == "reprompted"
    silence = say(client, "c1", "", channel="voice")
    assert silence.status_code == 200 and silence.json()["outcome"] == "reprompted"
    assert say(client, "c1", "  ").status_code == 422  # blank text is still refused on text
    sure = say(client, "c1", "yes", channel="voice", confidence=0.95)
    assert sure.json()["outcome"] == "booked", sure.json()
    expected = client.get("/v1/conversations/c1/expectations", headers=ACME).json()
    assert "cancel the call" in expected["phrases"]
    assert "<answer>" in expected["jsgf"] and "<grammar" in expected["srgs"]
