"""The ASGI guard around the app: the access log, the body limit, and no traceback ever reaches a client."""

from __future__ import annotations

import logging
import time
import traceback
import uuid

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialog.server.errors import MAX_BODY_BYTES, BodyTooLarge, body_too_large_response, json_error
from dialog.server.service import Service

__all__ = ["Guard", "log_request", "unhandled"]


class Guard:
    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, t0, received = False, 500, time.perf_counter(), 0

        async def tracked(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
            await send(message)

        async def counted() -> Message:
            # With or without Content-Length (chunked): count the body as it arrives, stop past the limit.
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge
            return message

        try:
            if _content_length(scope) > MAX_BODY_BYTES:
                await body_too_large_response(self.service)(scope, receive, tracked)
            else:
                await self.app(scope, counted, tracked)
        except BodyTooLarge:  # read outside the app's exception handlers: answered here
            if not started:
                await body_too_large_response(self.service)(scope, receive, tracked)
        except Exception as exc:
            response = unhandled(self.service, scope, exc)
            if not started:
                await response(scope, receive, tracked)
        finally:
            log_request(self.service, scope, status, t0)


def unhandled(service: Service, scope: Scope, exc: Exception) -> Response:
    """Log an unexpected error with its traceback; the client gets only a reference to it."""
    reference = uuid.uuid4().hex[:12]
    service.metrics.error("internal_error")
    service.log(
        logging.ERROR,
        "unhandled_error",
        reference=reference,
        path=scope.get("path"),
        error=type(exc).__name__,
        traceback="".join(traceback.format_exception(exc)),
    )
    return json_error(500, "internal_error", f"internal error (reference {reference})")


def log_request(service: Service, scope: Scope, status: int, started: float) -> None:
    # The path without its query: the page's ?key= must never reach a log.
    service.log(
        logging.INFO,
        "request",
        method=scope.get("method"),
        path=scope.get("path"),
        status=status,
        ms=round((time.perf_counter() - started) * 1000, 3),
    )


def _content_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
