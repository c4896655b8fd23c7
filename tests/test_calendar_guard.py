"""CalendarCalls: each calendar call bounded in time, a hung calendar of one tenant never delaying
other tenants nor work that needs no calendar (SPEC 4.1, "Bounds")."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from dialog.calendar.caldav import CalDAVCalendar
from dialog.calendar.guard import CalendarCalls
from dialog.calendar.memory import InMemoryCalendar
from dialog.errors import CalendarUnavailable, DialogError, InvalidInput, SlotTaken
from tests.fixtures_radicale import PASSWORD, USER, RadicaleServer
from tests.support import paused, wait_until

TIMEOUT = 0.5
MONDAY_9 = dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)
MONDAY = (MONDAY_9, MONDAY_9 + dt.timedelta(hours=1))


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """What a hung calendar call waits for; opened at teardown so no thread outlives the test."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def calls(gate: threading.Event) -> Iterator[CalendarCalls]:
    guard = CalendarCalls(timeout=TIMEOUT, per_tenant=4, workers=16)
    yield guard
    gate.set()
    wait_until(lambda: guard.in_flight("a") == guard.in_flight("b") == 0, "the hung calls to return")
    guard.close()


def _hang(gate: threading.Event) -> Callable[[], str]:
    def hung() -> str:
        gate.wait(30)
        return "late"

    return hung


def _quick(value: int, seconds: float = 0.01) -> Callable[[], int]:
    def quick() -> int:
        time.sleep(seconds)
        return value

    return quick


def _timed(fn: Callable[[], object]) -> tuple[object, float]:
    began = time.monotonic()
    try:
        result: object = fn()
    except DialogError as exc:
        result = exc
    return result, time.monotonic() - began


def _hang_calls(calls: CalendarCalls, gate: threading.Event, tenant_id: str, n: int) -> list[threading.Thread]:
    """``n`` callers of the tenant, each in a thread of its own, all stuck on ``gate``; started, not joined."""
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            calls.call(_hang(gate), tenant_id=tenant_id)
        except CalendarUnavailable as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(n)]
    for thread in threads:
        thread.start()
    wait_until(lambda: calls.in_flight(tenant_id) == n, f"{n} calls of {tenant_id!r} in flight")
    return threads


# --- one call ---------------------------------------------------------------------------------


def test_a_hung_call_is_unavailable_after_the_timeout_and_keeps_its_slot_until_it_returns(
    calls: CalendarCalls, gate: threading.Event
) -> None:
    raised, elapsed = _timed(lambda: calls.call(_hang(gate), tenant_id="a", conversation_id="conv-1", what="busy"))

    assert isinstance(raised, CalendarUnavailable)
    assert raised.message == f"the calendar did not answer within {TIMEOUT} s"
    assert raised.tenant_id == "a" and raised.conversation_id == "conv-1"
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 1.5
    assert calls.in_flight("a") == 1  # the thread is still stuck: the slot stays taken
    gate.set()
    wait_until(lambda: calls.in_flight("a") == 0, "the hung call to return")
    assert calls.call(lambda: 42, tenant_id="a") == 42


def test_a_call_returns_its_result_and_frees_its_slot(calls: CalendarCalls) -> None:
    assert calls.call(lambda: "free", tenant_id="a") == "free"
    assert calls.in_flight("a") == 0


@pytest.mark.parametrize("error", [SlotTaken("taken"), InvalidInput("bad", field="start"), CalendarUnavailable("down")])
def test_dialog_errors_pass_through_unchanged(calls: CalendarCalls, error: DialogError) -> None:
    def fails() -> None:
        raise error

    with pytest.raises(type(error)) as raised:
        calls.call(fails, tenant_id="a")
    assert raised.value is error
    with pytest.raises(type(error)) as araised:
        asyncio.run(calls.acall(fails, tenant_id="a"))
    assert araised.value is error
    assert calls.in_flight("a") == 0


def test_a_foreign_error_becomes_calendar_unavailable_naming_the_tenant(calls: CalendarCalls) -> None:
    cause = ValueError("boom")

    def fails() -> None:
        raise cause

    runs: list[Callable[[], None]] = [
        lambda: calls.call(fails, tenant_id="acme", conversation_id="conv-9"),
        lambda: asyncio.run(calls.acall(fails, tenant_id="acme", conversation_id="conv-9")),
    ]
    for run in runs:
        with pytest.raises(CalendarUnavailable) as raised:
            run()
        assert raised.value.message == "the calendar failed: ValueError: boom"
        assert raised.value.tenant_id == "acme" and raised.value.conversation_id == "conv-9"
        assert "tenant='acme'" in str(raised.value)
        assert raised.value.__cause__ is cause


def test_a_timeout_of_none_waits_as_long_as_the_call_takes() -> None:
    with CalendarCalls(timeout=None) as calls:
        assert calls.call(_quick(7, 0.3), tenant_id="a") == 7
        assert asyncio.run(calls.acall(_quick(7, 0.3), tenant_id="a")) == 7


def test_the_callers_context_variables_reach_the_call(calls: CalendarCalls) -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")
    request_id.set("req-7")
    assert calls.call(request_id.get, tenant_id="a") == "req-7"


def test_closed_calls_are_unavailable(gate: threading.Event) -> None:
    calls = CalendarCalls(timeout=TIMEOUT)
    calls.close()
    with pytest.raises(CalendarUnavailable, match="closed"):
        calls.call(lambda: 1, tenant_id="a")
    assert calls.in_flight("a") == 0


@pytest.mark.parametrize("settings", [{"timeout": 0}, {"timeout": -1.0}, {"per_tenant": 0}, {"workers": 0}])
def test_settings_out_of_range_are_invalid(settings: dict[str, float]) -> None:
    with pytest.raises(InvalidInput):
        CalendarCalls(**settings)  # type: ignore[arg-type]


# --- tenants ----------------------------------------------------------------------------------


def test_a_tenant_whose_slots_are_all_hung_is_refused_at_once_while_another_tenant_is_served(
    calls: CalendarCalls, gate: threading.Event
) -> None:
    for thread in _hang_calls(calls, gate, "a", 4):
        thread.join(timeout=5)  # each caller gave up after the timeout; its thread is still stuck
    assert calls.in_flight("a") == 4

    refused, refused_in = _timed(lambda: calls.call(lambda: "never runs", tenant_id="a", conversation_id="c"))
    served, served_in = _timed(lambda: calls.call(lambda: "b's answer", tenant_id="b"))

    assert isinstance(refused, CalendarUnavailable)
    assert refused.message == "too many calendar calls in flight for this tenant"
    assert refused.tenant_id == "a" and refused.conversation_id == "c"
    assert refused_in < TIMEOUT / 2
    assert served == "b's answer" and served_in < TIMEOUT / 2
    assert calls.in_flight("a") == 4

    gate.set()  # the calendar answers again: the tenant is served again
    wait_until(lambda: calls.in_flight("a") == 0, "the hung calls to return")
    assert calls.call(lambda: "back", tenant_id="a") == "back"


def test_a_call_waiting_behind_hung_calls_still_fails_within_its_own_timeout(
    calls: CalendarCalls, gate: threading.Event
) -> None:
    threads = _hang_calls(calls, gate, "a", 4)  # all four are still within their timeout
    ran = threading.Event()
    waited, waited_in = _timed(lambda: calls.call(ran.set, tenant_id="a"))

    assert isinstance(waited, CalendarUnavailable) and "did not answer within" in waited.message
    assert waited_in < TIMEOUT + 1.5
    for thread in threads:
        thread.join(timeout=5)
    gate.set()
    wait_until(lambda: calls.in_flight("a") == 0, "the hung calls to return")
    time.sleep(0.05)
    assert not ran.is_set()  # a call whose caller gave up is never run late


def test_a_busy_tenant_with_a_healthy_calendar_is_served_in_turn_not_refused(calls: CalendarCalls) -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def quick(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with lock:
            running -= 1
        return i

    results: dict[int, object] = {}

    def caller(i: int) -> None:
        try:
            results[i] = calls.call(lambda: quick(i), tenant_id="b")
        except CalendarUnavailable as exc:
            results[i] = exc

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert results == {i: i for i in range(20)}
    assert most <= 4  # never more than per_tenant of them on the pool at once
    assert calls.in_flight("b") == 0


# --- asyncio ----------------------------------------------------------------------------------


def test_async_a_hung_tenant_delays_neither_another_tenant_nor_work_on_the_default_pool(
    gate: threading.Event,
) -> None:
    timeout = 1.0
    calls = CalendarCalls(timeout=timeout, per_tenant=4, workers=32)

    async def timed(what: Callable[[], object], tenant: str) -> tuple[str, object, float]:
        began = time.monotonic()
        try:
            result: object = await calls.acall(what, tenant_id=tenant)
        except CalendarUnavailable as exc:
            result = exc
        return tenant, result, time.monotonic() - began

    async def no_calendar() -> tuple[str, object, float]:
        began = time.monotonic()  # a turn that needs no calendar: work on the loop's default pool
        return "hmm", await asyncio.to_thread(lambda: "hmm"), time.monotonic() - began

    async def turns() -> list[tuple[str, object, float]]:
        hung = [timed(_hang(gate), "a") for _ in range(6)]
        healthy = [timed(_quick(i), "b") for i in range(20)]
        other = [no_calendar() for _ in range(6)]
        return await asyncio.gather(*hung, *healthy, *other)

    try:
        began = time.monotonic()
        results = asyncio.run(turns())
        assert time.monotonic() - began < timeout + 2

        a = [(r, t) for tenant, r, t in results if tenant == "a"]
        b = [(r, t) for tenant, r, t in results if tenant == "b"]
        hmm = [(r, t) for tenant, r, t in results if tenant == "hmm"]
        assert len(a) == 6 and all(isinstance(r, CalendarUnavailable) and r.tenant_id == "a" for r, _ in a)
        assert all(timeout * 0.9 <= t < timeout + 1.5 for _, t in a)
        assert [r for r, _ in b] == list(range(20))
        assert all(t < timeout / 2 for _, t in b), sorted(t for _, t in b)
        assert all(r == "hmm" and t < timeout / 2 for r, t in hmm)

        # Now every slot of "a" is held by a call past its timeout: a further call is refused at once.
        _, refused, refused_in = asyncio.run(timed(lambda: "never runs", "a"))
        assert isinstance(refused, CalendarUnavailable) and "too many" in refused.message
        assert refused_in < timeout / 2
        assert calls.in_flight("a") == 4
    finally:
        gate.set()
        wait_until(lambda: calls.in_flight("a") == 0, "the hung calls to return")
        calls.close()


def test_async_a_cancelled_caller_frees_its_slot_once_and_only_when_the_thread_returns(
    calls: CalendarCalls, gate: threading.Event
) -> None:
    async def scenario() -> None:
        running = [asyncio.create_task(calls.acall(_hang(gate), tenant_id="a")) for _ in range(4)]
        queued = asyncio.create_task(calls.acall(lambda: "never runs", tenant_id="a"))
        while calls.in_flight("a") < 4:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the fifth caller is queued for a slot by now
        for task in [*running, queued]:
            task.cancel()
        for task in [*running, queued]:
            with pytest.raises(asyncio.CancelledError):
                await task
        assert calls.in_flight("a") == 4  # the threads still run: their slots stay taken

    asyncio.run(scenario())
    assert calls.in_flight("a") == 4
    gate.set()
    wait_until(lambda: calls.in_flight("a") == 0, "the hung calls to return")
    assert calls.call(lambda: "again", tenant_id="a") == "again"  # counts went back to 0, not below
    assert asyncio.run(calls.acall(lambda: "again", tenant_id="a")) == "again"
    assert calls.in_flight("a") == 0


# --- a real CalDAV server ---------------------------------------------------------------------


@pytest.mark.slow
def test_a_stopped_caldav_server_is_unavailable_within_the_timeout_and_delays_no_other_tenant(
    radicale_server: Callable[[], RadicaleServer],
) -> None:
    server = radicale_server()  # a private one: this test freezes it
    caldav = CalDAVCalendar(server.url, username=USER, password=PASSWORD)  # its own timeout: 5 s
    memory = InMemoryCalendar()
    memory.block("other-0", *MONDAY)
    calls = CalendarCalls(timeout=1.0, per_tenant=4, workers=32)
    assert calls.call(lambda: caldav.busy("frozen", *MONDAY), tenant_id="frozen") == []

    assert server.process is not None
    with paused(server.process.pid):
        began = time.monotonic()
        assert caldav.schedule("frozen").timezone == "UTC"  # no network: answered while the server is frozen
        assert time.monotonic() - began < 0.1

        outcomes: list[tuple[object, float]] = []

        def frozen_busy() -> None:
            outcomes.append(_timed(lambda: calls.call(lambda: caldav.busy("frozen", *MONDAY), tenant_id="frozen")))

        def other_busy(tenant: str) -> tuple[object, float]:
            return _timed(lambda: calls.call(lambda: memory.busy(tenant, *MONDAY), tenant_id=tenant))

        frozen = [threading.Thread(target=frozen_busy) for _ in range(4)]
        for thread in frozen:
            thread.start()
        wait_until(lambda: calls.in_flight("frozen") == 4, "the calls to the frozen server")
        others = [other_busy(f"other-{i}") for i in range(20)]
        for thread in frozen:
            thread.join(timeout=10)

    assert len(outcomes) == 4
    for raised, elapsed in outcomes:
        assert isinstance(raised, CalendarUnavailable) and raised.tenant_id == "frozen"
        assert raised.message == "the calendar did not answer within 1.0 s"
        assert 0.9 <= elapsed < 3.0
    assert others[0][0] == [MONDAY]
    assert all(result == [] for result, _ in others[1:])
    assert all(elapsed < 0.5 for _, elapsed in others), sorted(t for _, t in others)

    wait_until(lambda: calls.in_flight("frozen") == 0, "the frozen calls to return once the server runs again")
    assert calls.call(lambda: caldav.busy("frozen", *MONDAY), tenant_id="frozen") == []
    calls.close()
    caldav.close()
