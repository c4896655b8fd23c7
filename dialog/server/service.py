"""The service behind the routes: the engine, the API keys, metrics and the JSON log of each turn."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import msgspec
from fastapi import Request

from dialog.engine import AsyncEngine
from dialog.results import Reply
from dialog.server.auth import KeyRing
from dialog.server.metrics import Metrics

__all__ = ["Service", "service_of"]

# Compact JSON, UTF-8 as is; anything else JSON lacks (an exception's class, say) as its str().
_encode = msgspec.json.Encoder(enc_hook=str).encode


@dataclass(slots=True)
class Service:
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
            line = _encode(record).decode()
            for secret in self.redact:  # a host calendar's own error text might quote its password
                line = line.replace(secret, "***")
            self.logger.log(level, line)

    async def turn(self, kind: str, tenant: str, run: Awaitable[Reply]) -> Reply:
        """Await the turn; count it and log it from ``reply.transition``."""
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
        return reply

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


def service_of(request: Request) -> Service:
    service: Service = request.app.state.dialog
    return service
