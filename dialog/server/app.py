"""The HTTP service: one turn per request, any worker or container answering any conversation.

``create_app(engine, api_keys=...)`` takes its collaborators as values; ``app_from_env`` (what
``dialog serve`` runs, one per uvicorn worker) builds them from ``DIALOG_*`` variables.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager

import redis
from fastapi import FastAPI
from starlette.types import ASGIApp

from dialog.calendar.memory import InMemoryCalendar
from dialog.engine import AsyncEngine
from dialog.server import config
from dialog.server.auth import KeyRing
from dialog.server.errors import error_handlers
from dialog.server.guard import Guard
from dialog.server.hot import HotPath
from dialog.server.metrics import Metrics
from dialog.server.routes import add_routes
from dialog.server.service import Service
from dialog.store.cluster import cluster_from_url, is_cluster_url
from dialog.store.redis_store import apply_failure_policy

__all__ = ["app_from_env", "create_app"]

LOGGER = "dialog.server"


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
    service = Service(
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
        exception_handlers=error_handlers(service),
    )
    app.state.dialog = service
    app.add_middleware(Guard, service=service)
    add_routes(app)
    app.state.hot_path = hot = HotPath(service, app)
    app.build_middleware_stack = functools.partial(_stack_behind, hot, app)  # type: ignore[method-assign]
    return app


def _stack_behind(hot: HotPath, app: FastAPI) -> ASGIApp:
    """FastAPI's middleware stack with the hot path in front of it (built at the first request).

    Not when the host added middleware of its own to the app: every request must pass through it.
    """
    stack = FastAPI.build_middleware_stack(app)
    ours: object = Guard
    if any(m.cls is not ours for m in app.user_middleware):
        return stack
    hot.app = stack
    return hot


async def _sweep_every(service: Service, seconds: float) -> None:
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
        service: Service = app.state.dialog
        service.log(
            logging.WARNING,
            "config",
            warning="memory:// calendar: bookings live in this worker's memory only; unset "
            "DIALOG_CALENDAR_URL (bookings in Redis) or set a CalDAV URL for more than one worker or container",
        )
    return app
