"""Errors as HTTP responses: each ``DialogError`` and each refusal of the service gets a status and a stable code."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from dialog.errors import CalendarUnavailable, CorruptState, DialogError, InvalidInput, StoreUnavailable
from dialog.server.service import Service

__all__ = [
    "MAX_BODY_BYTES",
    "ApiError",
    "BodyTooLarge",
    "body_too_large_response",
    "dialog_error_response",
    "error_handlers",
    "json_error",
]

# Bodies are a short text or a proposal; anything this large is refused before it is parsed.
MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    """An error response decided by the service itself."""

    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, dict(headers or {})


def json_error(status: int, code: str, message: str, field: str | None = None, **headers: str) -> JSONResponse:
    body = {"code": code, "message": message} | ({"field": field} if field else {})
    return JSONResponse(body, status_code=status, headers=headers or None)


class BodyTooLarge(StarletteHTTPException):
    """Raised by the guard's ``receive`` once a body passes ``MAX_BODY_BYTES``; no more of it is read."""

    def __init__(self) -> None:
        super().__init__(413, f"the body is over {MAX_BODY_BYTES} bytes")


def body_too_large_response(service: Service) -> JSONResponse:
    # Connection: close, so the server stops reading the rest of the body instead of draining it.
    service.metrics.error("body_too_large")
    return json_error(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes", Connection="close")


def error_handlers(
    service: Service,
) -> dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]]:
    async def api_error(request: Request, exc: ApiError) -> Response:
        service.metrics.error(exc.code)
        return json_error(exc.status, exc.code, exc.message, **exc.headers)

    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        service.metrics.error("invalid_request")
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        return json_error(422, "invalid_request", f"{where}: {first.get('msg')}{more}", where or None)

    async def body_too_large(request: Request, exc: BodyTooLarge) -> Response:
        return body_too_large_response(service)

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (not UTF-8): an invalid body
            service.metrics.error("invalid_request")
            return json_error(422, "invalid_request", "body: the body could not be parsed as JSON", "body")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
        service.metrics.error(code)
        return json_error(exc.status_code, code, str(exc.detail), **(exc.headers or {}))

    async def dialog_error(request: Request, exc: DialogError) -> Response:
        return dialog_error_response(service, exc)

    return {
        ApiError: api_error,
        RequestValidationError: invalid_request,
        BodyTooLarge: body_too_large,
        StarletteHTTPException: http_error,
        DialogError: dialog_error,
    }


def dialog_error_response(service: Service, exc: DialogError) -> JSONResponse:
    """The response to an engine error (counted and logged), for the routes and the hot path alike."""
    status, code, message, headers = _map_dialog_error(exc, str(service.retry_after))
    service.metrics.error(code)
    service.log(
        logging.WARNING if status < 500 else logging.ERROR,
        "error",
        code=code,
        error=type(exc).__name__,
        detail=str(exc),  # engine errors name tenant, conversation and keys; CalDAV redacts its secrets
        conversation_id=exc.conversation_id,
        tenant=exc.tenant_id,
    )
    field = exc.field if isinstance(exc, InvalidInput) else None
    return json_error(status, code, message, field, **headers)


def _map_dialog_error(exc: DialogError, retry: str) -> tuple[int, str, str, dict[str, str]]:
    if isinstance(exc, InvalidInput):
        return 422, "invalid_input", exc.message, {}
    if isinstance(exc, StoreUnavailable):
        return 503, "store_unavailable", "the conversation store is unavailable; retry later", {"Retry-After": retry}
    if isinstance(exc, CalendarUnavailable):
        message = "the calendar is unavailable; a recorded confirmation stays pending; retry later"
        return 503, "calendar_unavailable", message, {"Retry-After": retry}
    if isinstance(exc, CorruptState):
        message = "the stored conversation could not be read; it was set aside and the next message starts afresh"
        return 409, "corrupt_state", message, {}
    return 500, "internal_error", "internal error", {}
