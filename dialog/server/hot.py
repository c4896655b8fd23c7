"""The hot path: a well-formed turn answered without FastAPI's routing, dependencies and response model.

``POST /v1/conversations/{id}/messages`` and ``.../proposals`` are most of the traffic, and
FastAPI's layers (routing, dependency injection, validating and serialising the response model)
cost more CPU than the turn itself (``benchmarks/load.py``). The hot path answers only the
requests the routes would accept: a known API key, a JSON body that the same pydantic model
validates, a text within bounds, an id that is UTF-8. The engine's answer, or its error mapped
exactly as the routes map it, is the response. Anything else (no key or an unknown one, a body
that does not validate, another content type, a chunked body, a repeated header) is handed to the
routes unchanged, with the body replayed, so every refusal and the OpenAPI schema stay theirs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialog.errors import DialogError
from dialog.inputs import MAX_TEXT_BYTES
from dialog.results import Reply
from dialog.server.errors import MAX_BODY_BYTES, dialog_error_response
from dialog.server.guard import log_request, unhandled
from dialog.server.routes import utf8_path
from dialog.server.schemas import MessageIn, ProposalIn, reply_json
from dialog.server.service import Service

__all__ = ["HotPath"]

# The routes' own pattern: starlette matches "{conversation_id}" as one segment, [^/]+.
_TURN = re.compile(r"/v1/conversations/([^/]+)/(messages|proposals)")
_JSON = (b"content-type", b"application/json")
_HEADERS = frozenset((b"authorization", b"content-type", b"content-length", b"idempotency-key", b"transfer-encoding"))


class HotPath:
    """Answers well-formed turns itself; hands every other request to ``app`` (the full stack)."""

    def __init__(self, service: Service, host: FastAPI) -> None:
        self.service = service
        self.app: ASGIApp | None = None  # FastAPI's middleware stack, once built
        self.enabled = True
        # The app as create_app left it: a host that adds or replaces an exception handler, or
        # overrides a dependency (say, the key check), gets every request through the routes.
        self._host = host
        self._handlers = dict(host.exception_handlers)

    def wants(self, scope: Scope) -> bool:
        if not self.enabled or scope["type"] != "http" or scope["method"] != "POST":
            return False
        if self._host.dependency_overrides or self._host.exception_handlers != self._handlers:
            return False
        if scope.get("root_path") or scope.get("query_string"):
            return False  # a query string is refused by the routes
        return _TURN.fullmatch(scope["path"]) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "the hot path runs in front of the app's middleware stack"
        if not self.wants(scope):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if headers is None or not _plain_json(headers):
            await self.app(scope, receive, send)
            return
        messages, body = await _read(receive)
        answer = None if body is None else self._prepare(scope, headers, body)
        if answer is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        # From here on the hot path answers: what the guard does for the routes, it does here.
        started, status = time.perf_counter(), 500
        try:
            try:
                content = reply_json(await answer)
            except DialogError as exc:
                response: Response = dialog_error_response(self.service, exc)
            except Exception as exc:
                response = unhandled(self.service, scope, exc)
            else:
                status = 200
                length = (b"content-length", str(len(content)).encode())
                await send({"type": "http.response.start", "status": 200, "headers": [length, _JSON]})
                await send({"type": "http.response.body", "body": content})
                return
            status = response.status_code
            await response(scope, receive, send)
        finally:
            log_request(self.service, scope, status, started)

    def _prepare(self, scope: Scope, headers: dict[bytes, bytes], body: bytes) -> Awaitable[Reply] | None:
        """The turn to run, or None when the routes should answer (they will refuse, or decide)."""
        tenant = self._tenant(headers.get(b"authorization"))
        key = headers.get(b"idempotency-key")
        message_id = None if key is None else _message_id(key)
        if tenant is None or (key is not None and message_id is None) or not utf8_path(scope):
            return None
        try:
            data = json.loads(body)  # as FastAPI reads a JSON body, then validated as it validates one
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
            return None
        match = _TURN.fullmatch(scope["path"])
        assert match is not None  # wants() said so
        conversation_id, kind = match[1], match[2]
        engine = self.service.engine
        try:
            if kind == "messages":
                said = MessageIn.model_validate(data, from_attributes=True)
                if len(said.text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
                    return None
                run = engine.handle(
                    conversation_id,
                    said.text,
                    tenant_id=tenant,
                    channel=said.channel,
                    message_id=message_id,
                    confidence=said.confidence,
                    alternatives=[(a.text, a.confidence) for a in said.alternatives],
                )
                return self.service.turn("message", tenant, run)
            proposal = ProposalIn.model_validate(data, from_attributes=True)
        except ValidationError:
            return None
        run = engine.propose(
            conversation_id,
            lead=proposal.lead,
            start=proposal.start,
            tenant_id=tenant,
            channel=proposal.channel,
            message_id=message_id,
        )
        return self.service.turn("proposal", tenant, run)

    def _tenant(self, authorization: bytes | None) -> str | None:
        # As FastAPI's HTTPBearer reads the header: "scheme credentials", credentials stripped.
        if authorization is None:
            return None
        scheme, _, credentials = authorization.decode("latin-1").partition(" ")
        credentials = credentials.strip()
        if scheme.lower() != "bearer" or not credentials:
            return None
        return self.service.keys.tenant(credentials)


def _headers(scope: Scope) -> dict[bytes, bytes] | None:
    """The headers the hot path reads, or None when one of them is repeated."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _HEADERS:
            if name in found:
                return None
            found[name] = value
    return found


def _plain_json(headers: dict[bytes, bytes]) -> bool:
    """A JSON body of a declared length, within the limit, not chunked."""
    length = headers.get(b"content-length", b"")
    return (
        headers.get(b"content-type", b"").lower() == b"application/json"
        and b"transfer-encoding" not in headers
        and length.isdigit()
        and int(length) <= MAX_BODY_BYTES
    )


def _message_id(key: bytes) -> str | None:
    """The Idempotency-Key as the routes accept it (1-256 characters, UTF-8), or None."""
    if not 1 <= len(key) <= 256:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return None


async def _read(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Every message of the request body, and the body (None if something else arrived)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:  # longer than declared: the routes' guard counts and refuses it
            return messages, None
        if not message.get("more_body", False):
            break
    return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Callable[[], Awaitable[Message]]:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
