"""Prometheus metrics of one app, in a registry of its own (never the process-global one).

Each uvicorn worker is a process with its own registry: a scrape sees the worker that answered.
Run one worker per container and scale containers (see docs/server.md).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from dialog.flow import Checkpoint

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# A turn is ~1 ms on Redis alone and up to seconds with a remote calendar.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The counters and histograms the server updates; ``checkpoint`` goes to the engine."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.turns = Counter(
            "dialog_turns",
            "Turns applied, by kind (message or proposal), trigger fired, outcome and resulting state.",
            ["kind", "trigger", "outcome", "state"],
            registry=r,
        )
        self.turn_seconds = Histogram(
            "dialog_turn_seconds",
            "Time to apply one turn (engine call only), by kind.",
            ["kind"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.bookings = Counter(
            "dialog_bookings", "Turns whose outcome was 'booked' (calendar events created).", registry=r
        )
        self.cas_conflicts = Counter(
            "dialog_cas_conflicts", "Compare-and-set writes lost to a concurrent turn (and retried).", registry=r
        )
        self.store_errors = Counter("dialog_store_errors", "Requests that failed with StoreUnavailable.", registry=r)
        self.calendar_errors = Counter(
            "dialog_calendar_errors", "Requests that failed with CalendarUnavailable.", registry=r
        )
        self.errors = Counter("dialog_http_errors", "Error responses, by stable error code.", ["code"], registry=r)
        # labels() costs ~3 us a call; the children of the few label combinations are kept here.
        self._turns: dict[tuple[str, str, str, str], Any] = {}
        self._turn_seconds: dict[str, Any] = {}

    def checkpoint(self, point: Checkpoint) -> None:
        """Pass as ``AsyncEngine(checkpoint=metrics.checkpoint)`` to count compare-and-set conflicts."""
        if point is Checkpoint.CONFLICT:
            self.cas_conflicts.inc()

    def turn(self, kind: str, trigger: str | None, outcome: str, state: str, seconds: float) -> None:
        labels = (kind, trigger or "unknown", outcome, state)
        counter = self._turns.get(labels)
        if counter is None:
            counter = self._turns[labels] = self.turns.labels(*labels)
        counter.inc()
        histogram = self._turn_seconds.get(kind)
        if histogram is None:
            histogram = self._turn_seconds[kind] = self.turn_seconds.labels(kind)
        histogram.observe(seconds)
        if outcome == "booked":
            self.bookings.inc()

    def error(self, code: str) -> None:
        self.errors.labels(code).inc()
        if code == "store_unavailable":
            self.store_errors.inc()
        elif code == "calendar_unavailable":
            self.calendar_errors.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
