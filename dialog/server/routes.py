"""The routes: request dependencies (API key, conversation id, idempotency key), handlers, and their registration."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import importlib.resources
import re
import urllib.parse
from collections.abc import Iterator
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import WithJsonSchema
from starlette.types import Scope

from dialog import diagrams
from dialog.inputs import MAX_TEXT_BYTES
from dialog.results import Snapshot
from dialog.server.errors import ApiError
from dialog.server.metrics import CONTENT_TYPE
from dialog.server.schemas import (
    ExpectOut,
    Health,
    HistoryEntryOut,
    HistoryOut,
    MessageIn,
    ProposalIn,
    ReplyOut,
    SnapshotOut,
    error_responses,
)
from dialog.server.service import service_of

__all__ = ["add_routes", "utf8_path"]


_bearer = HTTPBearer(auto_error=False, description="An API key from DIALOG_API_KEYS; it names the tenant.")


async def _tenant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request.
    tenant = service_of(request).keys.tenant(credentials.credentials) if credentials else None
    if tenant is None:
        raise ApiError(
            401,
            "unauthorized",
            "a valid API key is required: Authorization: Bearer KEY",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return tenant


Tenant = Annotated[str, Depends(_tenant)]
_ID_DESCRIPTION = "Any id of up to 256 bytes of UTF-8, percent-encoded; one path segment (no '/')."


async def _conversation_id(
    request: Request,
    conversation_id: Annotated[str, Path(min_length=1, description=_ID_DESCRIPTION)],
    _: Tenant,  # the key is checked first: without one, 401 whatever the id
) -> str:
    # The server decodes the path leniently (invalid UTF-8 becomes U+FFFD, so %FF and %FE would be
    # one conversation): the raw path must decode strictly.
    if not utf8_path(request.scope):
        raise RequestValidationError(
            [
                {
                    "type": "string_unicode",
                    "loc": ("path", "conversation_id"),
                    "msg": "the id is not valid UTF-8 once percent-decoded",
                    "input": conversation_id,
                }
            ]
        )
    return conversation_id


def utf8_path(scope: Scope) -> bool:
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes):  # optional in ASGI: nothing to check against
        return True
    try:
        urllib.parse.unquote_to_bytes(raw.partition(b"?")[0]).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


ConversationId = Annotated[str, Depends(_conversation_id)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=256,  # header values arrive decoded as Latin-1: one character a byte
        description="A retry with the same key is not applied again; the first reply is returned.",
    ),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 256}),  # a header is never null
]


def _message_id(key: str | None) -> str | None:
    """The Idempotency-Key's bytes read as UTF-8, as the engine measures a message id (at most 256 bytes)."""
    if key is None:
        return None
    try:
        return key.encode("latin-1").decode("utf-8")
    except UnicodeError:
        error = {"type": "string_unicode", "loc": ("header", "Idempotency-Key"), "msg": "not valid UTF-8", "input": key}
        raise RequestValidationError([error]) from None


def _check_text(text: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TEXT_BYTES:
        raise ApiError(413, "text_too_large", f"text is {size} bytes of UTF-8; the limit is {MAX_TEXT_BYTES}")


# --- routes -------------------------------------------------------------------------------------


async def post_message(
    request: Request,
    conversation_id: ConversationId,
    body: MessageIn,
    tenant: Tenant,
    idempotency_key: IdempotencyKey = None,
) -> ReplyOut:
    """Apply what the user said to the conversation; answer what to say back."""
    _check_text(body.text)
    service = service_of(request)
    run = service.engine.handle(
        conversation_id,
        body.text,
        tenant_id=tenant,
        channel=body.channel,
        message_id=_message_id(idempotency_key),
        confidence=body.confidence,
        alternatives=[(a.text, a.confidence) for a in body.alternatives],
    )
    return ReplyOut.of(await service.turn("message", tenant, run))


async def post_proposal(
    request: Request,
    conversation_id: ConversationId,
    body: ProposalIn,
    tenant: Tenant,
    idempotency_key: IdempotencyKey = None,
) -> ReplyOut:
    """Propose ``start`` (or the first free slot at or after it), replacing any pending proposal."""
    service = service_of(request)
    run = service.engine.propose(
        conversation_id,
        lead=body.lead,
        start=body.start,
        tenant_id=tenant,
        channel=body.channel,
        message_id=_message_id(idempotency_key),
    )
    return ReplyOut.of(await service.turn("proposal", tenant, run))


async def get_conversation(request: Request, conversation_id: ConversationId, tenant: Tenant) -> SnapshotOut:
    """The conversation as stored; 404 when there is none (never written, or expired)."""
    return SnapshotOut.of(await _snapshot(request, conversation_id, tenant))


async def get_expectations(request: Request, conversation_id: ConversationId, tenant: Tenant) -> ExpectOut:
    """What the conversation's next turn is expected to contain, for the recogniser (spec 4.4)."""
    return ExpectOut.of(await service_of(request).engine.expectations(conversation_id, tenant_id=tenant))


async def get_history(request: Request, conversation_id: ConversationId, tenant: Tenant) -> HistoryOut:
    """Every applied turn, oldest first (the last 200, for 30 days); 404 when there is none."""
    entries = await service_of(request).engine.history(conversation_id, tenant_id=tenant)
    if not entries:
        raise ApiError(404, "not_found", "no such conversation (never written, or its history expired)")
    return HistoryOut(conversation_id=conversation_id, entries=[HistoryEntryOut.of(e) for e in entries])


async def get_diagram(
    request: Request,
    conversation_id: ConversationId,
    tenant: Tenant,
    fmt: Annotated[Literal["svg", "mermaid"], Query(alias="format")] = "svg",
) -> Response:
    """The state machine with this conversation's state highlighted, its last transition marked."""
    view = diagrams.live(await _snapshot(request, conversation_id, tenant))
    if fmt == "mermaid":
        return Response(diagrams.render("mermaid", view), media_type="text/vnd.mermaid; charset=utf-8")
    # Graphviz layout is CPU-bound (milliseconds): off the event loop.
    return Response(await asyncio.to_thread(diagrams.render, "svg", view), media_type="image/svg+xml")


async def _snapshot(request: Request, conversation_id: str, tenant: str) -> Snapshot:
    snapshot = await service_of(request).engine.snapshot(conversation_id, tenant_id=tenant)
    if snapshot is None:
        raise ApiError(404, "not_found", "no such conversation (never written, or expired)")
    return snapshot


async def healthz() -> Health:
    """The process answers (liveness); says nothing of Redis or the calendar."""
    return Health(status="ok")


async def readyz(request: Request) -> JSONResponse:
    """Ready when Redis answers PING and the calendar answers a small busy-time query, each in time."""
    service = service_of(request)
    checks = await service.ready()
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ready" if ok else "unavailable", checks=checks)
    headers = None if ok else {"Retry-After": str(service.retry_after)}
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503, headers=headers)


async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this worker's metrics."""
    return Response(service_of(request).metrics.exposition(), media_type=CONTENT_TYPE)


# --- the page -----------------------------------------------------------------------------------


def page_and_policy() -> tuple[bytes, str]:
    """The chat page and its Content-Security-Policy, which allows only its own inline script."""
    html = importlib.resources.files("dialog.server").joinpath("static/index.html").read_bytes()
    scripts = re.findall(rb"<script>(.*?)</script>", html, flags=re.S)
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s).digest()).decode() + "'" for s in scripts)
    policy = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html, policy


# --- registration -------------------------------------------------------------------------------


async def _known_query(request: Request) -> None:
    """Refuse a query parameter the operation does not declare (the schema lists them all)."""
    route = request.scope.get("route")
    declared = _declared.get(id(route))
    if declared is None and isinstance(route, APIRoute):
        declared = _declared[id(route)] = frozenset(_query_names(route.dependant))
    for name, value in request.query_params.multi_items():
        if name not in (declared or ()):
            where = ("query", name)
            error = {
                "type": "extra_forbidden",
                "loc": where,
                "msg": "not a parameter of this operation",
                "input": value,
            }
            raise RequestValidationError([error])


_declared: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> Iterator[str]:
    yield from (p.alias for p in dependant.query_params)
    for sub in dependant.dependencies:
        yield from _query_names(sub)


def add_routes(app: FastAPI) -> None:
    _api(app)
    html, policy = page_and_policy()

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"})


def _api(app: FastAPI) -> None:
    """The documented operations, each refusing query parameters it does not declare."""
    known = [Depends(_known_query)]
    get, post = functools.partial(app.get, dependencies=known), functools.partial(app.post, dependencies=known)
    conversation = "/v1/conversations/{conversation_id}"
    turn_errors = error_responses(401, 409, 413, 422, 503)
    read_errors = error_responses(401, 404, 409, 422, 503)
    post(f"{conversation}/messages", responses=turn_errors, tags=["conversations"])(post_message)
    post(f"{conversation}/proposals", responses=error_responses(401, 409, 422, 503), tags=["conversations"])(
        post_proposal
    )
    get(conversation, responses=read_errors, tags=["conversations"])(get_conversation)
    get(f"{conversation}/history", responses=read_errors, tags=["conversations"])(get_history)
    expectations_errors = error_responses(401, 409, 422, 503)
    get(f"{conversation}/expectations", responses=expectations_errors, tags=["conversations"])(get_expectations)
    svg_or_mermaid = {
        "content": {
            "image/svg+xml": {"schema": {"type": "string"}},
            "text/vnd.mermaid": {"schema": {"type": "string"}},
        },
        "description": "The diagram: SVG (default) or Mermaid text.",
    }
    get(
        f"{conversation}/diagram",
        response_class=Response,
        responses={200: svg_or_mermaid, **error_responses(401, 404, 409, 422, 503)},
        tags=["conversations"],
    )(get_diagram)
    get("/healthz", tags=["operations"])(healthz)
    get(
        "/readyz",
        response_model=Health,
        responses={503: {"model": Health, "description": "Redis or the calendar is unreachable"}},
        tags=["operations"],
    )(readyz)
    get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}},
        tags=["operations"],
    )(metrics)
