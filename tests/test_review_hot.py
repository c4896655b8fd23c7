"""Review of the hot path (``dialog/server/hot.py``): requests it answers differently from the routes.

Each test failed when written and passes since the fix (a nested body is handed to the routes, the
body is counted as it arrives, and a host's exception handlers or dependency overrides switch the
hot path off). Each test sends one request to two apps built as tests/test_server_hot.py builds them (hot path on,
hot path off) and expects the same answer and the same log lines. The clients do not re-raise the
app's exceptions: an exception that escapes the app is what a server turns into a bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from dialog.errors import InvalidInput
from dialog.server import routes
from dialog.testing import FakeClock
from tests.test_server_hot import AUTH, Apps, _logged, _seen

JSON = {"Content-Type": "application/json"}


class ReviewApps(Apps):
    """Apps whose clients answer an escaped exception with a 500, as a server would."""

    def __init__(self, redis_url: str, clock: FakeClock) -> None:
        super().__init__(redis_url, clock)
        for name, app in self.apps.items():
            self.runner.run(self.http[name].aclose())
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            self.http[name] = httpx.AsyncClient(transport=transport, base_url="http://dialog")

    def post(self, name: str, conversation: str, path: str, headers: dict[str, str], content: bytes) -> httpx.Response:
        url = f"/v1/conversations/{conversation}{path}"
        return self.runner.run(self.http[name].post(url, content=content, headers=headers))


@pytest.fixture
def apps(redis_url: str, redis_client: redis.Redis, clock: FakeClock) -> Iterator[ReviewApps]:
    both = ReviewApps(redis_url, clock)
    yield both
    both.close()


def _both(
    apps: ReviewApps, caplog: pytest.LogCaptureFixture, path: str, headers: dict[str, str], content: bytes
) -> dict[str, Any]:
    caplog.set_level(logging.INFO, logger="dialog.server")
    _logged(caplog)
    seen = {}
    for name in ("hot", "routes"):
        conversation = f"review-{name}"
        seen[name] = (_seen(apps.post(name, conversation, path, headers, content), conversation), _logged(caplog))
    return seen


def test_a_deeply_nested_body_is_an_invalid_request_on_the_hot_path(
    apps: ReviewApps, caplog: pytest.LogCaptureFixture
) -> None:
    body = b"[" * 30_000 + b"]" * 30_000  # 60,000 bytes: under the 64 KiB limit, deeper than json.loads goes
    seen = _both(apps, caplog, "/messages", AUTH | JSON, body)
    assert seen["routes"][0][0] == 422 and '"invalid_request"' in seen["routes"][0][2]
    assert seen["hot"] == seen["routes"]


def test_a_body_longer_than_its_content_length_is_still_held_to_the_limit(
    apps: ReviewApps, caplog: pytest.LogCaptureFixture
) -> None:
    # The declared length is small; what arrives is over 64 KiB. The guard counts what arrives.
    body = b'{"text":"hi"}' + b" " * 70_000
    seen = _both(apps, caplog, "/messages", AUTH | JSON | {"Content-Length": "13"}, body)
    assert seen["routes"][0][0] == 413 and '"body_too_large"' in seen["routes"][0][2]
    assert seen["hot"] == seen["routes"]


def test_a_hosts_exception_handler_for_an_engine_error_answers_on_the_hot_path_too(
    apps: ReviewApps, caplog: pytest.LogCaptureFixture
) -> None:
    async def refused(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"code": "host_refused"}, status_code=400)

    for app in apps.apps.values():
        app.add_exception_handler(InvalidInput, refused)
    past = b'{"lead": "Dana", "start": "2020-01-01T10:00:00+00:00"}'  # the engine refuses: InvalidInput
    seen = _both(apps, caplog, "/proposals", AUTH | JSON, past)
    assert seen["routes"][0][:2] == (400, {"content-type": "application/json"})
    assert seen["hot"] == seen["routes"]


def test_a_hosts_override_of_the_key_check_is_not_bypassed(apps: ReviewApps, caplog: pytest.LogCaptureFixture) -> None:
    async def closed() -> str:  # a host (or a test) swaps the key check: say, every key is revoked
        raise HTTPException(403, "closed for maintenance")

    for app in apps.apps.values():
        app.dependency_overrides[routes._tenant] = closed
    seen = _both(apps, caplog, "/messages", AUTH | JSON, b'{"text": "hi"}')
    assert seen["routes"][0][0] == 403
    assert seen["hot"] == seen["routes"]
