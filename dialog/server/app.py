"""The HTTP service: one turn per request, any worker or container answering any conversation.

``create_app(engine, api_keys=...)`` takes its collaborators as values; ``app_from_env`` (what
``dialog serve`` runs, one per uvicorn worker) builds them from ``DIALOG_*`` variables.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import importlib.resources
import json
import logging
import re
import time
import traceback
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import redis
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dialog import diagrams
from dialog.calendar.base import Event
from dialog.calendar.memory import InMemoryCalendar
from dialog.engine import AsyncEngine
from dialog.errors import CalendarUnavailable, CorruptState, DialogError, InvalidInput, StoreUnavailable
from dialog.inputs import MAX_TEXT_BYTES
from dialog.machine import State
from dialog.results import Channel, HistoryEntry, Outcome, Proposal, Reply, Snapshot
from dialog.server import config
from dialog.server.auth import KeyRing
from dialog.server.metrics import CONTENT_TYPE, Metrics
from dialog.store.cluster import cluster_from_url, is_cluster_url
from dialog.store.redis_store import apply_failure_policy
from dialog.voice import Expectations

__all__ = ["app_from_env", "create_app"]

LOGGER = "dialog.server"
# Bodies are a short text or a proposal; anything this large is refused before it is parsed.
MAX_BODY_BYTES = 64 * 1024


# --- the wire format ----------------------------------------------------------------------------

Time = Annotated[
    dt.datetime,
    PlainSerializer(lambda t: t.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2026-11-24T10:00:00+00:00"}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Not blank: some character that Python's str.strip() keeps. \s alone is not enough: JSON Schema
# regexes do not count the separators U+001C-U+001F as whitespace, Python does.
_NOT_BLANK = r"[^\s\x1c-\x1f]"


class AlternativeIn(_Strict):
    """One of the recogniser's other hypotheses for a voice turn."""

    text: Annotated[str, Field(strict=True)]
    confidence: Annotated[float, Field(ge=0, le=1, strict=True)]


class MessageIn(_Strict):
    """What the user said. The tenant comes from the API key, never from here."""

    # The schema says what the validator enforces: text must hold something except on voice.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"channel": {"const": "voice"}}, "required": ["channel"]},
            "else": {"properties": {"text": {"pattern": _NOT_BLANK}}},
        }
    )

    channel: Channel = Channel.TEXT  # first: the check on text depends on it
    text: Annotated[
        str,
        Field(description="At most 4,096 bytes of UTF-8 (else 413); blank only on voice (nothing was heard)."),
    ]
    confidence: Annotated[
        float | None,
        Field(ge=0, le=1, strict=True, description="Voice: the recogniser's confidence in `text`; null: unknown."),
    ] = None
    alternatives: Annotated[
        list[AlternativeIn], Field(max_length=10, description="Voice: the recogniser's n-best alternatives.")
    ] = []

    @field_validator("text")
    @classmethod
    def _said_something_on_text(cls, text: str, info: ValidationInfo) -> str:
        text.encode("utf-8")  # lone surrogates raise UnicodeEncodeError, a ValueError: 422 on body.text
        if info.data.get("channel", Channel.TEXT) is Channel.TEXT and not re.search(_NOT_BLANK, text):
            raise ValueError("text is blank (on the voice channel an empty transcript is allowed)")
        return text


class ProposalIn(_Strict):
    """A proposal decided by the host's own NLU: ``start`` or the first free slot at or after it."""

    lead: Annotated[str, Field(pattern=_NOT_BLANK, description="Who the call is with; at most 256 bytes of UTF-8.")]
    start: Annotated[AwareDatetime, Field(description="With an offset; not in the past (else 422 invalid_input).")]
    channel: Channel = Channel.TEXT


class ProposalOut(BaseModel):
    start: Time
    end: Time
    lead: str
    kind: Literal["book", "move", "cancel"] = Field(
        "book", description='"book" a new call; "move" the booked call (`event`) to `start`; "cancel" it.'
    )

    @classmethod
    def of(cls, p: Proposal | None) -> ProposalOut | None:
        return None if p is None else cls(start=p.start, end=p.end, lead=p.lead, kind=p.kind)  # type: ignore[arg-type]


class EventOut(BaseModel):
    id: str
    start: Time
    end: Time
    lead: str

    @classmethod
    def of(cls, e: Event | None) -> EventOut | None:
        return None if e is None else cls(id=e.id, start=e.start, end=e.end, lead=e.lead)


class ExpectOut(BaseModel):
    """What the next turn is expected to contain (spec 4.4): phrases for ASR hints, JSGF and SRGS grammars."""

    phrases: list[str]
    jsgf: str
    srgs: str

    @classmethod
    def of(cls, e: Expectations) -> ExpectOut:
        return cls(phrases=list(e.phrases), jsgf=e.jsgf, srgs=e.srgs)


class ReplyOut(BaseModel):
    """One turn's answer: the state reached, what happened, what to tell the user."""

    conversation_id: str
    state: State
    outcome: Outcome
    text: str
    proposal: ProposalOut | None
    event: EventOut | None
    version: int
    channel: Channel
    expect: ExpectOut | None = Field(
        None, description="Voice turns: what the next turn is expected to contain (ASR hints and grammars)."
    )

    @classmethod
    def of(cls, r: Reply) -> ReplyOut:
        voice = r.channel is Channel.VOICE and r.expect is not None
        return cls(
            conversation_id=r.conversation_id,
            state=r.state,
            outcome=r.outcome,
            text=r.text,
            proposal=ProposalOut.of(r.proposal),
            event=EventOut.of(r.event),
            version=r.version,
            channel=r.channel,
            expect=ExpectOut.of(r.expect) if voice else None,
        )


class HistoryEntryOut(BaseModel):
    """One applied write: when, which version, whose words on which channel, what it did."""

    at: Time
    version: int
    channel: str
    text: str
    message_id: str | None
    state_from: State
    trigger: str
    state: State
    outcome: str = Field(description='a turn outcome, or "recorded": a confirmation written before its calendar call')
    event_id: str | None

    @classmethod
    def of(cls, e: HistoryEntry) -> HistoryEntryOut:
        return cls(**{name: getattr(e, name) for name in cls.model_fields})


class HistoryOut(BaseModel):
    conversation_id: str
    entries: list[HistoryEntryOut]


class SnapshotOut(BaseModel):
    """The conversation as stored."""

    conversation_id: str
    state: State
    proposal: ProposalOut | None
    event: EventOut | None
    version: int
    last_trigger: str | None
    last_source: State | None
    last_outcome: str | None
    booking_pending: bool

    @classmethod
    def of(cls, s: Snapshot) -> SnapshotOut:
        return cls(
            conversation_id=s.conversation_id,
            state=s.state,
            proposal=ProposalOut.of(s.proposal),
            event=EventOut.of(s.event),
            version=s.version,
            last_trigger=s.last_trigger,
            last_source=s.last_source,
            last_outcome=s.last_outcome,
            booking_pending=s.booking_pending,
        )


class ErrorOut(BaseModel):
    """Every error: a stable ``code`` to branch on, a ``message`` for people; ``field`` when one is at fault."""

    code: str
    message: str
    field: str | None = None


class Health(BaseModel):
    status: Literal["ok", "ready", "unavailable"]
    checks: dict[str, str] = {}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    described = {
        401: "no API key, or an unknown one (code unauthorized)",
        404: "no such conversation for this tenant (code not_found)",
        409: "the stored conversation could not be read; it was set aside, the next message starts afresh "
        "(code corrupt_state)",
        413: "text over 4,096 bytes of UTF-8 (text_too_large), or a body over 64 KiB (body_too_large)",
        422: "a body, query or header that does not match the schema, or an id that is not UTF-8 once "
        "percent-decoded (invalid_request), or values the engine refuses: empty text, an id over 256 bytes, "
        "a start in the past (invalid_input)",
        503: "Redis or the calendar is unreachable (store_unavailable, calendar_unavailable); see Retry-After",
    }
    errors: dict[int | str, dict[str, Any]] = {s: {"model": ErrorOut, "description": described[s]} for s in statuses}
    errors[500] = {"model": ErrorOut, "description": "an unexpected error; no details are given (internal_error)"}
    return errors


# --- errors -------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error response decided by the service itself."""

    def __init__(self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, dict(headers or {})


def _json_error(status: int, code: str, message: str, field: str | None = None, **headers: str) -> JSONResponse:
    body = {"code": code, "message": message} | ({"field": field} if field else {})
    return JSONResponse(body, status_code=status, headers=headers or None)


class _BodyTooLarge(StarletteHTTPException):
    """Raised by the guard's ``receive`` once a body passes ``MAX_BODY_BYTES``; no more of it is read."""

    def __init__(self) -> None:
        super().__init__(413, f"the body is over {MAX_BODY_BYTES} bytes")


def _body_too_large(service: _Service) -> JSONResponse:
    # Connection: close, so the server stops reading the rest of the body instead of draining it.
    service.metrics.error("body_too_large")
    return _json_error(413, "body_too_large", f"the body is over {MAX_BODY_BYTES} bytes", Connection="close")


def _error_handlers(
    service: _Service,
) -> dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]]:
    retry = str(service.retry_after)

    async def api_error(request: Request, exc: ApiError) -> Response:
        service.metrics.error(exc.code)
        return _json_error(exc.status, exc.code, exc.message, **exc.headers)

    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        service.metrics.error("invalid_request")
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        return _json_error(422, "invalid_request", f"{where}: {first.get('msg')}{more}", where or None)

    async def body_too_large(request: Request, exc: _BodyTooLarge) -> Response:
        return _body_too_large(service)

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # FastAPI's "error parsing the body" (not UTF-8): an invalid body
            service.metrics.error("invalid_request")
            return _json_error(422, "invalid_request", "body: the body could not be parsed as JSON", "body")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
        service.metrics.error(code)
        return _json_error(exc.status_code, code, str(exc.detail), **(exc.headers or {}))

    async def dialog_error(request: Request, exc: DialogError) -> Response:
        status, code, message, headers = _map_dialog_error(exc, retry)
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
        return _json_error(status, code, message, field, **headers)

    return {
        ApiError: api_error,
        RequestValidationError: invalid_request,
        _BodyTooLarge: body_too_large,
        StarletteHTTPException: http_error,
        DialogError: dialog_error,
    }


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


# --- the service --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Service:
    engine: AsyncEngine
    keys: KeyRing
    metrics: Metrics
    logger: logging.Logger
    retry_after: int
    readiness_timeout: float
    probe_tenant: str
    read_transitions: bool
    redact: tuple[str, ...]

    def log(self, level: int, event: str, **fields: Any) -> None:
        """One JSON object per line; never the API key, the text, nor calendar credentials."""
        if self.logger.isEnabledFor(level):
            record = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "event": event} | fields
            line = json.dumps(record, default=str, ensure_ascii=False)
            for secret in self.redact:  # a host calendar's own error text might quote its password
                line = line.replace(secret, "***")
            self.logger.log(level, line)

    async def turn(self, kind: str, tenant: str, run: Awaitable[Reply]) -> ReplyOut:
        started = time.perf_counter()
        reply = await run
        seconds = time.perf_counter() - started
        moved = reply.transition if self.read_transitions else None
        trigger = moved.trigger.value if moved else None
        self.metrics.turn(kind, trigger, reply.outcome, reply.state, seconds)
        self.log(
            logging.INFO,
            "turn",
            kind=kind,
            conversation_id=reply.conversation_id,
            tenant=tenant,
            channel=reply.channel,
            state_from=moved.source if moved else None,
            state=reply.state,
            trigger=trigger,
            outcome=reply.outcome,
            version=reply.version,
            latency_ms=round(seconds * 1000, 3),
        )
        return ReplyOut.of(reply)

    async def ready(self) -> dict[str, str]:
        redis_check, calendar_check = await asyncio.gather(
            self._probe(self.engine.redis.ping()), self._probe(asyncio.to_thread(self._calendar_probe))
        )
        return {"redis": redis_check, "calendar": calendar_check}

    def _calendar_probe(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.engine.calendar.busy(self.probe_tenant, now, now + dt.timedelta(minutes=1))

    async def _probe(self, check: Awaitable[Any]) -> str:
        try:
            await asyncio.wait_for(check, self.readiness_timeout)
        except TimeoutError:
            return "timeout"
        except Exception as exc:  # any failure of a dependency means "not ready"; logged, not returned
            self.log(logging.WARNING, "readiness", error=type(exc).__name__, detail=_redacted(exc))
            return "unreachable"
        return "ok"


def _redacted(exc: BaseException) -> str:
    # Redis URLs in messages may carry a password: drop userinfo from anything URL-shaped.
    return re.sub(r"://[^/@\s]+@", "://***@", str(exc))


def _service(request: Request) -> _Service:
    service: _Service = request.app.state.dialog
    return service


_bearer = HTTPBearer(auto_error=False, description="An API key from DIALOG_API_KEYS; it names the tenant.")


async def _tenant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    # async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a hop per request.
    tenant = _service(request).keys.tenant(credentials.credentials) if credentials else None
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
    if not _utf8_path(request.scope):
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


def _utf8_path(scope: Scope) -> bool:
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
    service = _service(request)
    run = service.engine.handle(
        conversation_id,
        body.text,
        tenant_id=tenant,
        channel=body.channel,
        message_id=_message_id(idempotency_key),
        confidence=body.confidence,
        alternatives=[(a.text, a.confidence) for a in body.alternatives],
    )
    return await service.turn("message", tenant, run)


async def post_proposal(
    request: Request,
    conversation_id: ConversationId,
    body: ProposalIn,
    tenant: Tenant,
    idempotency_key: IdempotencyKey = None,
) -> ReplyOut:
    """Propose ``start`` (or the first free slot at or after it), replacing any pending proposal."""
    service = _service(request)
    run = service.engine.propose(
        conversation_id,
        lead=body.lead,
        start=body.start,
        tenant_id=tenant,
        channel=body.channel,
        message_id=_message_id(idempotency_key),
    )
    return await service.turn("proposal", tenant, run)


async def get_conversation(request: Request, conversation_id: ConversationId, tenant: Tenant) -> SnapshotOut:
    """The conversation as stored; 404 when there is none (never written, or expired)."""
    return SnapshotOut.of(await _snapshot(request, conversation_id, tenant))


async def get_expectations(request: Request, conversation_id: ConversationId, tenant: Tenant) -> ExpectOut:
    """What the conversation's next turn is expected to contain, for the recogniser (spec 4.4)."""
    return ExpectOut.of(await _service(request).engine.expectations(conversation_id, tenant_id=tenant))


async def get_history(request: Request, conversation_id: ConversationId, tenant: Tenant) -> HistoryOut:
    """Every applied turn, oldest first (the last 200, for 30 days); 404 when there is none."""
    entries = await _service(request).engine.history(conversation_id, tenant_id=tenant)
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
    snapshot = await _service(request).engine.snapshot(conversation_id, tenant_id=tenant)
    if snapshot is None:
        raise ApiError(404, "not_found", "no such conversation (never written, or expired)")
    return snapshot


async def healthz() -> Health:
    """The process answers (liveness); says nothing of Redis or the calendar."""
    return Health(status="ok")


async def readyz(request: Request) -> JSONResponse:
    """Ready when Redis answers PING and the calendar answers a small busy-time query, each in time."""
    service = _service(request)
    checks = await service.ready()
    ok = all(v == "ok" for v in checks.values())
    body = Health(status="ready" if ok else "unavailable", checks=checks)
    headers = None if ok else {"Retry-After": str(service.retry_after)}
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503, headers=headers)


async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this worker's metrics."""
    return Response(_service(request).metrics.exposition(), media_type=CONTENT_TYPE)


# --- the ASGI guard: access log, body limit, and no traceback ever reaches a client --------------


class _Guard:
    def __init__(self, app: ASGIApp, service: _Service) -> None:
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
                    raise _BodyTooLarge
            return message

        try:
            if _content_length(scope) > MAX_BODY_BYTES:
                await _body_too_large(self.service)(scope, receive, tracked)
            else:
                await self.app(scope, counted, tracked)
        except _BodyTooLarge:  # read outside the app's exception handlers: answered here
            if not started:
                await _body_too_large(self.service)(scope, receive, tracked)
        except Exception as exc:
            reference = uuid.uuid4().hex[:12]
            self.service.metrics.error("internal_error")
            self.service.log(
                logging.ERROR,
                "unhandled_error",
                reference=reference,
                path=scope.get("path"),
                error=type(exc).__name__,
                traceback="".join(traceback.format_exception(exc)),
            )
            if not started:
                message = f"internal error (reference {reference})"
                await _json_error(500, "internal_error", message)(scope, receive, tracked)
        finally:
            # The path without its query: the page's ?key= must never reach a log.
            self.service.log(
                logging.INFO,
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                ms=round((time.perf_counter() - t0) * 1000, 3),
            )


def _content_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


# --- the page -----------------------------------------------------------------------------------


def _page() -> tuple[bytes, str]:
    """The chat page and its Content-Security-Policy, which allows only its own inline script."""
    html = importlib.resources.files("dialog.server").joinpath("static/index.html").read_bytes()
    scripts = re.findall(rb"<script>(.*?)</script>", html, flags=re.S)
    hashes = " ".join("'sha256-" + base64.b64encode(hashlib.sha256(s).digest()).decode() + "'" for s in scripts)
    policy = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html, policy


# --- the factory --------------------------------------------------------------------------------


def create_app(
    engine: AsyncEngine,
    *,
    api_keys: Mapping[str, str],
    metrics: Metrics | None = None,
    logger: logging.Logger | None = None,
    retry_after: int = 2,
    readiness_timeout: float = 1.5,
    probe_tenant: str = "dialog-readyz",
    close_on_shutdown: bool = False,
    read_transitions: bool = True,
    redact: Iterable[str] = (),
    recover_every: float | None = None,
) -> FastAPI:
    """The HTTP service on ``engine``; ``api_keys`` maps each API key to its tenant.

    Build the engine with ``checkpoint=metrics.checkpoint`` and pass the same ``metrics`` to count
    compare-and-set conflicts. With ``close_on_shutdown`` the app closes the engine's Redis client
    (and the calendar, when it has ``close()``) when it stops. Logs and metrics name the trigger
    fired and the state the turn started from, from ``reply.transition`` (no read-back);
    ``read_transitions=False`` leaves them ``unknown`` / null. Strings in
    ``redact`` (say, the calendar password) are replaced by ``***`` in every log line. With
    ``recover_every`` (seconds) the app runs ``engine.recover()`` that often in the background,
    so confirmations stranded by a turn that stopped mid-way are settled without anyone asking.
    """
    service = _Service(
        engine=engine,
        keys=KeyRing(api_keys),
        metrics=metrics or Metrics(),
        logger=logger or logging.getLogger(LOGGER),
        retry_after=retry_after,
        readiness_timeout=readiness_timeout,
        probe_tenant=probe_tenant,
        read_transitions=read_transitions,
        redact=tuple(secret for secret in redact if secret),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = asyncio.create_task(_sweep_every(service, recover_every)) if recover_every else None
        yield
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        if close_on_shutdown:
            await engine.aclose()
            close = getattr(engine.calendar, "close", None)
            if callable(close):
                await asyncio.to_thread(close)

    app = FastAPI(
        title="dialog",
        version=_version(),
        description="Durable booking conversations: one turn per request, any worker answers any conversation.",
        lifespan=lifespan,
        exception_handlers=_error_handlers(service),
    )
    app.state.dialog = service
    app.add_middleware(_Guard, service=service)
    _routes(app)
    return app


async def _sweep_every(service: _Service, seconds: float) -> None:
    """Settle stranded confirmations every ``seconds``; a failed sweep is logged, never fatal."""
    while True:
        await asyncio.sleep(seconds)
        try:
            settled = await service.engine.recover()
        except Exception as exc:  # never let one bad sweep end the sweeping (nobody awaits this task)
            service.log(logging.WARNING, "recover_failed", error=type(exc).__name__, message=str(exc))
            continue
        for reply in settled:
            service.log(
                logging.INFO,
                "recovered",
                tenant=reply.tenant_id,
                conversation_id=reply.conversation_id,
                outcome=reply.outcome.value,
                version=reply.version,
            )


def _routes(app: FastAPI) -> None:
    conversation = "/v1/conversations/{conversation_id}"
    turn_errors = _errors(401, 409, 413, 422, 503)
    app.post(f"{conversation}/messages", responses=turn_errors, tags=["conversations"])(post_message)
    app.post(f"{conversation}/proposals", responses=_errors(401, 409, 422, 503), tags=["conversations"])(post_proposal)
    app.get(conversation, responses=_errors(401, 404, 409, 422, 503), tags=["conversations"])(get_conversation)
    app.get(f"{conversation}/history", responses=_errors(401, 404, 409, 422, 503), tags=["conversations"])(get_history)
    expectations_errors = _errors(401, 409, 422, 503)
    app.get(f"{conversation}/expectations", responses=expectations_errors, tags=["conversations"])(get_expectations)
    svg_or_mermaid = {
        "content": {
            "image/svg+xml": {"schema": {"type": "string"}},
            "text/vnd.mermaid": {"schema": {"type": "string"}},
        },
        "description": "The diagram: SVG (default) or Mermaid text.",
    }
    app.get(
        f"{conversation}/diagram",
        response_class=Response,
        responses={200: svg_or_mermaid, **_errors(401, 404, 409, 422, 503)},
        tags=["conversations"],
    )(get_diagram)
    app.get("/healthz", tags=["operations"])(healthz)
    app.get(
        "/readyz",
        response_model=Health,
        responses={503: {"model": Health, "description": "Redis or the calendar is unreachable"}},
        tags=["operations"],
    )(readyz)
    app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}},
        tags=["operations"],
    )(metrics)
    html, policy = _page()

    @app.get("/", include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": policy, "Cache-Control": "no-cache"})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("durable-dialog")
    except PackageNotFoundError:
        return "0"


def app_from_env() -> FastAPI:
    """The app as ``dialog serve`` runs it (uvicorn factory mode, once per worker)."""
    settings = config.prepare()
    config.configure_logging()
    counters = Metrics()
    url = settings.redis_url or ""
    # The calendar's Redis client is synchronous: it runs on the engine's calendar threads.
    sync = cluster_from_url(url) if is_cluster_url(url) else redis.Redis.from_url(url)
    apply_failure_policy(sync)
    engine = AsyncEngine.from_url(
        url,
        calendar=config.calendar(settings, client=sync),
        ttl_seconds=settings.ttl_seconds,
        checkpoint=counters.checkpoint,
    )
    app = create_app(
        engine,
        api_keys=settings.api_keys,
        metrics=counters,
        close_on_shutdown=True,
        redact=config.secrets(settings),
        recover_every=settings.recover_every,
    )
    if isinstance(engine.calendar, InMemoryCalendar):
        service: _Service = app.state.dialog
        service.log(
            logging.WARNING,
            "config",
            warning="memory:// calendar: bookings live in this worker's memory only; unset "
            "DIALOG_CALENDAR_URL (bookings in Redis) or set a CalDAV URL for more than one worker or container",
        )
    return app
