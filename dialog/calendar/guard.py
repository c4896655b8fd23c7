"""Calendar calls on threads of the engine's own, each bounded in time, a few per tenant at most.

Why: a calendar is a foreign system, and a hung one (a CalDAV server that accepts connections and
never answers) holds whatever thread runs its call. Run on ``asyncio.to_thread``, those calls
fill the loop's default pool, and everything else queued on that pool waits behind them: turns
that need no calendar call, and other tenants' turns. SPEC 4.1 "Bounds" rules that out.

:class:`CalendarCalls` keeps calendar calls apart:

* its own ``ThreadPoolExecutor``, so nothing else queues behind a hung calendar;
* a timeout per call (default 5 s) counted from the moment it is asked for: the caller gets
  ``CalendarUnavailable`` when it runs out, and the thread is left to finish on its own (a thread
  cannot be interrupted);
* at most ``per_tenant`` calls of one tenant on the pool at once. A call holds its tenant's slot
  from submission until its thread actually returns, so a hung call keeps its slot after its
  caller gave up, and one tenant's hung calendar occupies at most ``per_tenant`` workers.
  A further call of that tenant waits for a slot (within its own timeout, on no thread of the
  pool), so a busy tenant with a healthy calendar is served in turn, never refused; but when
  every slot is held by a call already past its timeout (the calendar is known to hang), it is
  refused at once.

``workers`` should exceed ``per_tenant`` times the number of tenants whose calendars may hang at
once; beyond that, calls queue on the pool, and a queued call still fails within its timeout (and
is then dropped from the queue, never run late).

Errors: a ``DialogError`` raised by the call (``SlotTaken``, ``InvalidInput``,
``CalendarUnavailable``) passes through unchanged; any other exception becomes
``CalendarUnavailable`` chained ``from`` it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import logging
import math
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from dialog.errors import CalendarUnavailable, DialogError, InvalidInput

T = TypeVar("T")

log = logging.getLogger("dialog.calendar")

_Future = concurrent.futures.Future


class _Claim:
    """One call's claim on a slot of its tenant: ``granted`` completes when it holds one."""

    __slots__ = ("deadline", "granted")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.granted: _Future[None] = _Future()

    def grant(self) -> bool:
        """Hand this claim a slot; False when its caller already gave up. Called under the lock."""
        return self.granted.set_running_or_notify_cancel()


class _Tenant:
    """The slots of one tenant: the claims holding one, and those waiting in order."""

    __slots__ = ("holding", "waiting")

    def __init__(self) -> None:
        self.holding: set[_Claim] = set()
        self.waiting: collections.deque[_Claim] = collections.deque()


class CalendarCalls:
    """Runs a calendar's calls on the engine's own threads, each bounded in time, with a per-tenant limit on
    calls in flight."""

    def __init__(self, *, timeout: float | None = 5.0, per_tenant: int = 4, workers: int = 32) -> None:
        if timeout is not None and not timeout > 0:
            raise InvalidInput("timeout must be a positive number of seconds, or None", field="timeout")
        if per_tenant < 1:
            raise InvalidInput("per_tenant must be at least 1", field="per_tenant")
        if workers < 1:
            raise InvalidInput("workers must be at least 1", field="workers")
        self.timeout = None if timeout is None else float(timeout)
        self.per_tenant = per_tenant
        self.workers = workers
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="dialog-calendar")
        self._lock = threading.Lock()
        self._tenants: dict[str, _Tenant] = {}

    def __repr__(self) -> str:
        return f"CalendarCalls(timeout={self.timeout}, per_tenant={self.per_tenant}, workers={self.workers})"

    def call(self, fn: Callable[[], T], *, tenant_id: str, conversation_id: str | None = None, what: str = "call") -> T:
        """``fn()`` on a calendar thread; waits at most ``timeout``, then raises ``CalendarUnavailable``."""
        claim = self._claim(tenant_id, conversation_id, what)
        if not concurrent.futures.wait([claim.granted], timeout=_left(claim)).done:
            self._give_up(tenant_id, claim)
            raise self._late(tenant_id, conversation_id, what)
        future = self._run(fn, tenant_id, claim, conversation_id)
        concurrent.futures.wait([future], timeout=_left(claim))
        return self._outcome(future, tenant_id, conversation_id, what)

    async def acall(
        self, fn: Callable[[], T], *, tenant_id: str, conversation_id: str | None = None, what: str = "call"
    ) -> T:
        """:meth:`call` for asyncio: the loop is never blocked, and the thread is never cancelled.

        The waits are ``asyncio.wait``, which neither raises on timeout nor cancels what it waits
        for (a shield): when the timeout runs out, or the awaiting task is cancelled, a running
        call goes on, and its slot is freed only when it returns (once, by the future's callback).
        """
        claim = self._claim(tenant_id, conversation_id, what)
        try:
            granted = await _arrived(claim.granted, _left(claim))
        except asyncio.CancelledError:
            self._give_up(tenant_id, claim)
            raise
        if not granted:
            self._give_up(tenant_id, claim)
            raise self._late(tenant_id, conversation_id, what)
        future = self._run(fn, tenant_id, claim, conversation_id)
        try:
            await _arrived(future, _left(claim))
        except asyncio.CancelledError:
            future.cancel()  # succeeds only while queued on the pool: then it never runs
            raise
        return self._outcome(future, tenant_id, conversation_id, what)

    def in_flight(self, tenant_id: str) -> int:
        """Calls of the tenant holding a slot: submitted and not yet returned (hung ones included)."""
        with self._lock:
            tenant = self._tenants.get(tenant_id)
            return len(tenant.holding) if tenant else 0

    def close(self) -> None:
        """Stop taking calls and drop queued ones; threads still running are left to finish."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> CalendarCalls:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- slots --------------------------------------------------------------------------------

    def _claim(self, tenant_id: str, conversation_id: str | None, what: str) -> _Claim:
        """A slot for a new call (``granted`` done), or a place in the tenant's queue; refused at once
        when every slot is held by a call past its timeout."""
        now = time.monotonic()
        claim = _Claim(math.inf if self.timeout is None else now + self.timeout)
        with self._lock:
            tenant = self._tenants.setdefault(tenant_id, _Tenant())
            if len(tenant.holding) < self.per_tenant:
                tenant.holding.add(claim)
                claim.grant()
                claim.granted.set_result(None)
                return claim
            hung = all(held.deadline <= now for held in tenant.holding)
            if not hung:
                tenant.waiting.append(claim)
                return claim
        log.warning("calendar %s refused: tenant %r has %d calls hung", what, tenant_id, self.per_tenant)
        raise CalendarUnavailable(
            "too many calendar calls in flight for this tenant", tenant_id=tenant_id, conversation_id=conversation_id
        )

    def _release(self, tenant_id: str, claim: _Claim) -> None:
        """Free the claim's slot: the first caller still waiting gets it."""
        successor = None
        with self._lock:
            tenant = self._tenants[tenant_id]
            tenant.holding.discard(claim)
            while tenant.waiting and successor is None:
                waiting = tenant.waiting.popleft()
                if waiting.grant():
                    tenant.holding.add(waiting)
                    successor = waiting
            if not tenant.holding and not tenant.waiting:
                del self._tenants[tenant_id]
        if successor is not None:
            successor.granted.set_result(None)

    def _give_up(self, tenant_id: str, claim: _Claim) -> None:
        """The caller stops waiting for a slot: leave the queue, or free the slot granted meanwhile."""
        with self._lock:
            if claim.granted.cancel():  # not granted: grants happen under this lock
                tenant = self._tenants[tenant_id]
                tenant.waiting.remove(claim)
                if not tenant.holding and not tenant.waiting:
                    del self._tenants[tenant_id]
                return
        self._release(tenant_id, claim)

    def _run(self, fn: Callable[[], T], tenant_id: str, claim: _Claim, conversation_id: str | None) -> _Future[T]:
        """Submit ``fn`` (in a copy of the caller's context) under the claim's slot, freed when it is done."""
        try:
            future = self._executor.submit(contextvars.copy_context().run, fn)
        except RuntimeError as exc:  # shut down
            self._release(tenant_id, claim)
            raise _closed(tenant_id, conversation_id) from exc
        future.add_done_callback(lambda _: self._release(tenant_id, claim))
        return future

    # --- outcomes -----------------------------------------------------------------------------

    def _outcome(self, future: _Future[T], tenant_id: str, conversation_id: str | None, what: str) -> T:
        """The call's result, or its error translated; a call still running (or queued) has timed out."""
        if not future.done():
            future.cancel()  # still queued on the pool: it never runs; running: it is left to finish
            raise self._late(tenant_id, conversation_id, what)
        if future.cancelled():  # dropped from the queue by close()
            raise _closed(tenant_id, conversation_id)
        try:
            return future.result()
        except DialogError:
            raise
        except Exception as exc:
            raise CalendarUnavailable(
                f"the calendar failed: {type(exc).__name__}: {exc}",
                tenant_id=tenant_id,
                conversation_id=conversation_id,
            ) from exc

    def _late(self, tenant_id: str, conversation_id: str | None, what: str) -> CalendarUnavailable:
        log.warning("calendar %s for tenant %r timed out after %s s", what, tenant_id, self.timeout)
        return CalendarUnavailable(
            f"the calendar did not answer within {self.timeout} s", tenant_id=tenant_id, conversation_id=conversation_id
        )


def _left(claim: _Claim) -> float | None:
    """Seconds left of the claim's timeout (None: unbounded)."""
    return None if claim.deadline == math.inf else max(0.0, claim.deadline - time.monotonic())


def _closed(tenant_id: str, conversation_id: str | None) -> CalendarUnavailable:
    return CalendarUnavailable("calendar calls are closed", tenant_id=tenant_id, conversation_id=conversation_id)


async def _arrived(future: _Future[Any], timeout: float | None) -> bool:
    """Wait for ``future`` without blocking the loop and without ever cancelling it; True when done."""
    waiter = asyncio.wrap_future(future)
    waiter.add_done_callback(_retrieve)  # read by nobody when the caller gave up
    done, _ = await asyncio.wait([waiter], timeout=timeout)
    return bool(done)


def _retrieve(waiter: asyncio.Future[Any]) -> None:
    """Mark the outcome read, so asyncio does not log "exception was never retrieved"."""
    if not waiter.cancelled():
        waiter.exception()
