"""Soak run (issue 10): lost replies, confirmations across the TTL with the calendar down, contention.

Run from the repository root (``make soak``; not in CI)::

    .venv/bin/python -m scripts.soak                    # 10 minutes
    .venv/bin/python -m scripts.soak --seconds 60 --seed 7
    .venv/bin/python -m scripts.soak --seconds 30 --mutant lost_reply_redecides   # must FAIL

For ``--seconds``, against a private ``redis-server`` on a free loopback port (started and
stopped here; the system Redis is never touched), all at once:

- **lost replies** (finding 1): the server is SIGSTOPped for 0.4-0.6 s, then SIGCONTed, again
  and again, 0.5-2 s apart. The engines' 0.4 s socket timeout fires, and redis-py sends the
  compare-and-set again: when its first copy ran, the engine must recognise its own write.
- **confirmations across the TTL** (finding 2): the engines run with ``ttl_seconds=2`` and share
  one calendar that is down (``book``, and ``move`` and ``cancel`` too, raise
  ``CalendarUnavailable``) for 1-4 s at a time, up for 1-4 s, so many outages outlast the TTL.
  A third engine sweeps (``recover()``) about once a second; the fake clock moves an hour a
  second (so "tomorrow" keeps moving on), and some recorded confirmations outlive their slot.
- **contention** (finding 5): two engines ("two containers", each on its own redis-py client)
  with ``--threads`` threads each take turns on ``--conversations`` conversations of two
  tenants: schedule requests (text, or ``engine.propose``), "hmm", "can we move it", "yes"
  (also "uh yeah sure" by voice), "no", "cancel the call" (after a booking, "can we move it"
  and "cancel the call" propose moving or removing the call, spec 4.2). Half the turns carry a
  ``message_id``; one that raises is retried with the same id (from either engine), and some
  are sent twice on purpose, one after the other or at the same moment, once from each engine.

Then the faults stop, a last ``recover()`` runs on a healthy Redis and calendar, and the run is
checked. Each check is listed, with what it catches, in ``CATEGORIES``. Most rest on an *audit*:
the engines' redis-py clients send the engine's own compare-and-set script wrapped in a few
lines of Lua that, when the script's write lands, append ``new token|expected token|server
time`` to a list in the same atomic step. The client notes, for each token it sends, which turn
sent it and whether the turn had just decided (a *decision*) or just called the calendar (a
*settle*, see ``dialog.engine.Checkpoint``), and what it writes. So the run knows every write
that landed, in order, and whose it was, whether or not its reply arrived:

- a turn (or a message id, across its retries) with two decisions landed was applied twice;
- a write that did not expect the record it replaced, or did not add one to its version, is a
  lost update; a recorded confirmation must be followed by its settlement, never by a new life
  of the conversation (TTL) or nothing;
- every reply must report a version that was written, by its own turn, or filed under its
  message id, or (for a confirmation settled by another turn) the record as it stands, and it
  must agree with that record;
- every calendar event was settled once, and reported ``booked`` once (by a user reply, a
  replay of one, or the sweep), unless the one turn that settled it raised;
- after the last sweep, no conversation holds an unsettled confirmation and every
  conversation's event is in the calendar.

It prints a table (and the first few of each discrepancy) and exits 1 on any discrepancy or
any exception other than ``StoreUnavailable`` (Redis paused) and ``CalendarUnavailable``
(calendar down); 2 when it cannot audit the engine. ``--seed`` fixes what each thread says and
when the faults come, not how the threads interleave: a failing run names turns and versions,
not a replayable schedule.
``--mutant NAME`` seeds a known bug first (``scripts/mutants.py``'s, or this file's
``lost_reply_redecides`` and ``pending_ttl_short``): the run must then fail.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import random
import re
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from dialog import CalendarUnavailable, Engine, Event, InMemoryCalendar, Reply, Schedule, StoreUnavailable
from dialog.engine import Checkpoint
from dialog.store import redis_store
from dialog.store.keys import ConversationKeys
from dialog.store.record import decode_record, decode_reply
from dialog.testing import FakeClock
from tests.support import RedisServer

ROOT = Path(__file__).resolve().parent.parent
# Monday 23 Nov 2026, 08:00 UTC, as in the tests.
START = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
# Every day, all day, in 5-minute slots: room within a year for a 10-minute run's bookings (~60 a second).
SCHEDULE = Schedule(working_days=(0, 1, 2, 3, 4, 5, 6), day_start=dt.time(0), day_end=dt.time(23, 55), slot_minutes=5)
AUDIT_KEY = "soak:audit"
# A retried message is remembered while it is among the conversation's last 16 filed replies.
REMEMBERED = 16
PENDING_TTL = 30 * 24 * 3600.0
FIRST = ("Dana", "Fox", "Walter", "Monica", "John", "Ada", "Grace", "Alan", "Margaret", "Edsger")
LAST = ("Scully", "Mulder", "Skinner", "Reyes", "Doggett", "Lovelace", "Hopper", "Turing", "Hamilton", "Dijkstra")
RETRIABLE = ("StoreUnavailable", "CalendarUnavailable")
_TOKEN = re.compile(r"[0-9]+\.[0-9]+")


class HarnessError(RuntimeError):
    """The soak cannot audit this engine (its compare-and-set changed shape): fix the harness."""


@dataclass(frozen=True)
class SoakConfig:
    seconds: float = 600.0
    conversations: int = 8
    threads: int = 4  # per engine
    seed: int = 1
    tenants: int = 2
    ttl_seconds: int = 2
    cache_size: int = 10_000
    message_id_share: float = 0.5
    sweep_every: float = 1.0
    clock_minutes_per_second: float = 60.0
    mutant: str | None = None
    progress: bool = True


# --- the calendar that goes down ----------------------------------------------------------------


class FlakyCalendar(InMemoryCalendar):
    """An in-memory calendar (shared by every engine) whose writes fail while ``down`` is set.

    ``book`` fails (the brief of issue 10), and so do ``move`` and ``cancel`` (spec 4.2): a calendar
    that is down is down for every change. It remembers every event it ever booked (by idempotency
    key) and every event it removed, so the checks can tell a cancelled call from a lost one.
    """

    def __init__(self) -> None:
        super().__init__(SCHEDULE)
        self.down = threading.Event()
        self.refused = 0
        self.ever: dict[str, Event] = {}  # idempotency key -> the event as first booked
        self.removed: dict[str, Event] = {}  # event id -> the event as it was when removed

    def _refuse(self, tenant_id: str) -> None:
        if self.down.is_set():
            self.refused += 1
            raise CalendarUnavailable("the calendar is down (injected)", tenant_id=tenant_id)

    def book(
        self, tenant_id: str, *, lead: str, start: dt.datetime, end: dt.datetime, idempotency_key: str, note: str = ""
    ) -> Event:
        self._refuse(tenant_id)
        event = super().book(tenant_id, lead=lead, start=start, end=end, idempotency_key=idempotency_key, note=note)
        self.ever.setdefault(idempotency_key, event)
        return event

    def move(
        self, tenant_id: str, event_id: str, *, start: dt.datetime, end: dt.datetime, idempotency_key: str
    ) -> Event:
        self._refuse(tenant_id)
        return super().move(tenant_id, event_id, start=start, end=end, idempotency_key=idempotency_key)

    def cancel(self, tenant_id: str, event_id: str, *, idempotency_key: str) -> Event | None:
        self._refuse(tenant_id)
        gone: Event | None = super().cancel(tenant_id, event_id, idempotency_key=idempotency_key)
        if gone is not None:
            self.removed.setdefault(gone.id, gone)
        return gone


# --- the audit ----------------------------------------------------------------------------------

# Wraps the engine's compare-and-set: when this call's write lands, append the new token, the
# token it expected and the server time to the audit list (the last key), in the same atomic step.
_AUDIT_TAIL = """
local function soak_token()
  if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then return false end
  return string.match(redis.call('GET', KEYS[1]), '^([^|]*)|')
end
local soak_before = soak_token()
local soak_result = soak_cas()
if soak_before ~= ARGV[2] and soak_token() == ARGV[2] then
  local now = redis.call('TIME')
  redis.call('RPUSH', KEYS[#KEYS],
    string.format('%s|%s|%d.%06d', ARGV[2], ARGV[1], tonumber(now[1]), tonumber(now[2])))
end
return soak_result
"""


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One compare-and-set a turn sent: whose, what kind, and what it would write."""

    token: str
    expected: str
    turn: str
    kind: str  # "decision" (after Checkpoint.DECIDED), "settle" (after CALENDAR_CALLED), "?" otherwise
    conv: str  # the conversation's key
    message_id: str | None
    receipts: tuple[str, ...]  # message ids whose replies this write files
    state: str
    proposal: tuple[str, int, int, int, str] | None  # lead, start, end, seq, kind
    booking: tuple[str, int, str | None] | None  # idempotency key, start, event id (None: outstanding)
    change: tuple[str, str, str, int] | None  # a confirmed move or cancel: kind, key, event id, new start
    last_outcome: str | None

    @property
    def version(self) -> int:
        return int(self.token.partition(".")[0])

    @property
    def pending(self) -> bool:
        """A booking confirmed, its calendar call not yet seen to succeed."""
        return self.booking is not None and self.booking[2] is None

    @property
    def outstanding(self) -> bool:
        """A confirmation (of a booking, a move or a cancellation) the next write must settle."""
        return self.pending or self.change is not None

    @property
    def intent(self) -> bool:
        """A decision that records a confirmation."""
        return self.kind == "decision" and self.outstanding

    @property
    def booked(self) -> bool:
        return self.booking is not None and self.booking[2] is not None


class Audit:
    """What each turn sends (client side) and which writes landed (the audit list, server side)."""

    def __init__(self, cas_script: str) -> None:
        self.cas_sha = _sha(cas_script)
        self.script = "local function soak_cas()\n" + cas_script + "\nend\n" + _AUDIT_TAIL
        self.sha = _sha(self.script)
        self.attempts: dict[str, Attempt] = {}
        self.lost: set[str] = set()  # tokens of attempts whose reply did not arrive
        self._local = threading.local()
        self._lock = threading.Lock()

    # the turn running on this thread, and the step it reached (``Engine(checkpoint=...)``)
    def begin(self, turn: str) -> None:
        self._local.turn = turn
        self._local.point = None

    def end(self) -> None:
        self._local.turn = None

    def reach(self, point: Checkpoint) -> None:
        self._local.point = point

    def current_turn(self) -> str | None:
        return getattr(self._local, "turn", None)

    def rewrite(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """EVALSHA of the engine's CAS -> EVALSHA of the audited one, with the audit list as last key."""
        numkeys = int(args[2])
        keys, argv = args[3 : 3 + numkeys], args[3 + numkeys :]
        self._note(keys, argv)
        return ("EVALSHA", self.sha, numkeys + 1, *keys, AUDIT_KEY, *argv)

    def reply_lost(self, args: tuple[Any, ...]) -> None:
        numkeys = int(args[2])
        token = _text(args[3 + numkeys + 1])
        with self._lock:
            self.lost.add(token)

    def _note(self, keys: tuple[Any, ...], argv: tuple[Any, ...]) -> None:
        # ARGV[1] the expected token, ARGV[2] the new one, ARGV[3] the record, ARGV[7] the turn's
        # message id, and at the end pairs of (message id, filed reply): read from the tail, so a
        # fixed argument added in between (as the write-token memory was) changes nothing here.
        if len(keys) < 1 or len(argv) < 7 or not _TOKEN.fullmatch(_text(argv[1])):
            raise HarnessError(f"the CAS script's arguments changed shape: {len(keys)} keys, {len(argv)} args")
        try:
            record: Any = decode_record(argv[2] if isinstance(argv[2], bytes) else _text(argv[2]).encode())
        except Exception as exc:  # the engine writes what it cannot read back: a finding, not a crash
            record = _Unreadable(f"{type(exc).__name__}: {exc}")
        receipts: list[str] = []
        i = len(argv) - 1
        while i - 1 >= 7 and _is_reply(argv[i]):
            receipts.append(_text(argv[i - 1]))
            i -= 2
        point = getattr(self._local, "point", None)
        kinds = {Checkpoint.DECIDED: "decision", Checkpoint.CALENDAR_CALLED: "settle"}
        kind = kinds.get(point, "?") if isinstance(point, Checkpoint) else "?"
        p, b, c = record.proposal, record.booking, getattr(record, "change", None)
        attempt = Attempt(
            token=_text(argv[1]),
            expected=_text(argv[0]),
            turn=self.current_turn() or "?",
            kind=kind,
            conv=_text(keys[0]),
            message_id=_text(argv[6]) or None,
            receipts=tuple(reversed(receipts)),
            state=record.state.value,
            proposal=(p.lead, p.start, p.end, p.seq, getattr(p, "kind", "book")) if p is not None else None,
            booking=(b.key, b.start, b.event_id) if b is not None else None,
            change=(c.kind, c.key, c.event_id, c.start) if c is not None else None,
            last_outcome=record.last.outcome.value if record.last is not None else None,
        )
        with self._lock:
            self.attempts[attempt.token] = attempt


class _Unreadable:
    """Stands in for a record that ``decode_record`` refuses (noted, then reported)."""

    def __init__(self, why: str) -> None:
        self.state = _State(f"unreadable: {why}")
        self.proposal = self.booking = self.change = self.last = None


@dataclass(frozen=True)
class _State:
    value: str


def _is_reply(value: Any) -> bool:
    raw = value if isinstance(value, bytes) else _text(value).encode()
    if not raw.startswith(b"["):
        return False
    try:
        decode_reply(raw)
    except Exception:
        return False
    return True


class AuditedRedis(redis.Redis):
    """A redis-py client that sends the engine's compare-and-set through the audit."""

    def __init__(self, audit: Audit, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.audit = audit

    def execute_command(self, *args: Any, **options: Any) -> Any:
        if len(args) > 3 and args[0] == "EVALSHA" and args[1] == self.audit.cas_sha:
            args = self.audit.rewrite(args)
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def _send_command_parse_response(self, conn: Any, command_name: str, *args: Any, **options: Any) -> Any:
        try:
            return super()._send_command_parse_response(  # type: ignore[no-untyped-call]
                conn, command_name, *args, **options
            )
        except (redis.TimeoutError, redis.ConnectionError):
            if command_name == "EVALSHA" and len(args) > 3 and args[1] == self.audit.sha:
                self.audit.reply_lost(args)  # redis-py sends it again (its retry), or the turn raises
            raise


# --- what the turns said ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Said:
    """A reply, compactly: version, state, outcome, proposal (lead, start, end, kind), event (id, key, start)."""

    version: int
    state: str
    outcome: str
    proposal: tuple[str, int, int, str] | None
    event: tuple[str, str, int] | None

    @classmethod
    def of(cls, reply: Reply) -> Said:
        p, e = reply.proposal, reply.event
        return cls(
            version=reply.version,
            state=reply.state.value,
            outcome=reply.outcome.value,
            proposal=(p.lead, _epoch(p.start), _epoch(p.end), getattr(p, "kind", "book")) if p is not None else None,
            event=(e.id, e.idempotency_key, _epoch(e.start)) if e is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Action:
    """What a turn sends: ``text`` to ``handle``, or (``text`` None) a ``propose`` of ``lead`` at ``start``."""

    text: str | None
    channel: str = "text"
    lead: str = ""
    start: dt.datetime | None = None

    def describe(self) -> str:
        if self.text is None:
            assert self.start is not None
            return f"propose({self.lead}, {self.start:%Y-%m-%d %H:%M})"
        return self.text if self.channel == "text" else f"{self.text} (voice)"


@dataclass(slots=True)
class TurnLog:
    id: str
    engine: str
    tenant: str
    conversation: str
    conv: str  # its key
    said: str
    message_id: str | None
    t0: float
    t1: float
    reply: Said | None
    error: str | None


@dataclass(slots=True)
class SweepLog:
    id: str
    t1: float
    replies: list[tuple[str, Said]]  # (conversation key, reply)
    error: str | None


class _SweepFailures(logging.Handler):
    """Collects the conversations a sweep logged and left for the next one (``dialog.recover``)."""

    def __init__(self, audit: Audit) -> None:
        super().__init__(logging.WARNING)
        self.audit = audit
        self.failed: set[tuple[str, str]] = set()  # (sweep id, conversation key)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        tenant, conversation = getattr(record, "tenant_id", None), getattr(record, "conversation_id", None)
        self.count += 1
        if tenant is not None and conversation is not None:
            key = ConversationKeys(tenant, conversation).conversation
            self.failed.add((self.audit.current_turn() or "?", key))


# --- the run --------------------------------------------------------------------------------------


class Soak:
    def __init__(self, config: SoakConfig, server: RedisServer) -> None:
        self.config = config
        self.server = server
        self.clock = FakeClock(START)
        self.calendar = FlakyCalendar()
        self.audit = Audit(redis_store.CAS_SCRIPT)
        self.tenants = [f"tenant-{i}" for i in range(config.tenants)]
        self.conversations = [(self.tenants[i % config.tenants], f"soak-{i}") for i in range(config.conversations)]
        self.clients: list[AuditedRedis] = []
        self.engines = {name: self._engine() for name in ("A", "B")}
        self.sweeper = self._engine()
        self.turns: list[TurnLog] = []
        self.sweeps: list[SweepLog] = []
        self.problems: list[str] = []  # tracebacks of unexpected exceptions
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.stop = threading.Event()
        self.failures = _SweepFailures(self.audit)
        self.final_snapshots: dict[str, Any] = {}
        self.landed: list[tuple[str, str, float]] = []
        # for the harness's own reads (the audit list can be long): no engine timeouts on it
        self.admin = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=60)

    def _client(self) -> AuditedRedis:
        client = AuditedRedis(self.audit, host="127.0.0.1", port=self.server.port)
        self.clients.append(client)
        return client

    def _engine(self) -> Engine:
        return Engine(
            self._client(),
            calendar=self.calendar,
            clock=self.clock,
            ttl_seconds=self.config.ttl_seconds,
            cache_size=self.config.cache_size,
            checkpoint=self.audit.reach,
        )

    def count(self, what: str, n: float = 1) -> None:
        with self._lock:
            self.counts[what] += n  # type: ignore[assignment]

    # --- setup ------------------------------------------------------------------------------

    def probe(self) -> None:
        """One audited turn, checked, then a clean slate: the audit sees this engine's writes."""
        admin = self.admin
        admin.script_load(self.audit.script)
        self.audit.begin("probe")
        try:
            reply = self.engines["A"].handle("probe", "hmm", tenant_id="probe")
        finally:
            self.audit.end()
        entries = [_text(e).split("|") for e in admin.lrange(AUDIT_KEY, 0, -1)]
        mine = [a for a in self.audit.attempts.values() if a.turn == "probe"]
        if len(entries) != 1 or len(mine) != 1 or entries[0][0] != mine[0].token or mine[0].kind != "decision":
            raise HarnessError(f"the audit did not see the probe's write (audit {entries}, attempts {mine})")
        if mine[0].version != reply.version:
            raise HarnessError(f"the probe's reply reports v{reply.version}, its write was {mine[0].token}")
        admin.flushdb()
        admin.script_load(self.audit.script)
        self.audit.attempts.clear()
        self.audit.lost.clear()

    # --- the faults ---------------------------------------------------------------------------

    def _pulses(self, rng: random.Random) -> None:
        while not self.stop.wait(rng.uniform(0.5, 2.0)):
            stopped = rng.uniform(0.4, 0.6)
            self.server.pause()
            try:
                time.sleep(stopped)
            finally:
                self.server.resume()
            self.count("pulses")
            self.count("paused seconds", stopped)

    def _outages(self, rng: random.Random) -> None:
        while not self.stop.wait(rng.uniform(1.0, 4.0)):
            length = rng.uniform(1.0, 4.0)
            self.calendar.down.set()
            try:
                self.stop.wait(length)
            finally:
                self.calendar.down.clear()
            self.count("calendar outages")
            if length > self.config.ttl_seconds:
                self.count("calendar outages longer than the TTL")

    def _clock(self) -> None:
        while not self.stop.wait(1.0):
            self.clock.advance(minutes=self.config.clock_minutes_per_second)

    def _sweeps(self, rng: random.Random) -> None:
        n = 0
        while not self.stop.wait(self.config.sweep_every * rng.uniform(0.8, 1.2)):
            n += 1
            self.sweep(f"sweep{n}")

    def sweep(self, sid: str) -> list[tuple[str, Said]] | None:
        self.audit.begin(sid)
        replies: list[Reply] | None = None
        error: str | None = None
        try:
            replies = self.sweeper.recover()
        except StoreUnavailable:
            error = "StoreUnavailable"
        except Exception as exc:  # counted, and fails the run
            error = f"{type(exc).__name__}: {exc}"
            self.problems.append(f"sweep {sid}:\n{traceback.format_exc()}")
        finally:
            self.audit.end()
        said = [(ConversationKeys(r.tenant_id, r.conversation_id).conversation, Said.of(r)) for r in replies or []]
        self.sweeps.append(SweepLog(sid, time.time(), said, error))
        return None if replies is None else said

    # --- the turns ------------------------------------------------------------------------------

    def _action(self, rng: random.Random) -> Action:
        lead = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        roll = rng.random()
        if roll < 0.08:
            return Action(f"schedule a call with {lead} tomorrow at {rng.randint(1, 12)}{rng.choice(('am', 'pm'))}")
        if roll < 0.16:
            day = (self.clock() + dt.timedelta(days=rng.randint(1, 300))).date()
            hour, minute = rng.randint(7, 20), rng.choice((0, 15, 30, 45, 10))
            return Action(f"schedule a call with {lead} on {day.isoformat()} at {hour}:{minute:02d}")
        if roll < 0.22:
            start = self.clock() + dt.timedelta(days=rng.randint(1, 300), minutes=rng.randint(0, 24 * 60))
            return Action(None, lead=lead, start=start)
        if roll < 0.36:
            return Action("hmm")
        if roll < 0.56:
            return Action("can we move it")
        if roll < 0.72:
            return Action("yes")
        if roll < 0.82:
            return Action("uh yeah sure", channel="voice")
        if roll < 0.90:
            return Action("no")
        if roll < 0.94:
            return Action("cancel the call")  # after a booking: proposes removing it (spec 4.2)
        return Action("yes")  # "yes" again, often to a conversation already done

    def turn(self, tid: str, engine_name: str, where: tuple[str, str], action: Action, mid: str | None) -> TurnLog:
        engine = self.engines[engine_name]
        tenant, conversation = where
        self.audit.begin(tid)
        t0 = time.time()
        said: Said | None = None
        error: str | None = None
        try:
            if action.text is None:
                assert action.start is not None
                reply = engine.propose(
                    conversation, lead=action.lead, start=action.start, tenant_id=tenant, message_id=mid
                )
            else:
                reply = engine.handle(
                    conversation, action.text, tenant_id=tenant, channel=action.channel, message_id=mid
                )
            said = Said.of(reply)
        except StoreUnavailable as exc:
            # Contention must never surface (spec 4.1): only a paused Redis may.
            error = "StoreUnavailable" if "gave up after" not in exc.message else f"StoreUnavailable: {exc}"
        except CalendarUnavailable:
            error = "CalendarUnavailable"
        except Exception as exc:  # counted, and fails the run
            error = f"{type(exc).__name__}: {exc}"
            self.problems.append(f"turn {tid} ({action.describe()}):\n{traceback.format_exc()}")
        finally:
            self.audit.end()
        log = TurnLog(
            id=tid,
            engine=engine_name,
            tenant=tenant,
            conversation=conversation,
            conv=ConversationKeys(tenant, conversation).conversation,
            said=action.describe(),
            message_id=mid,
            t0=t0,
            t1=time.time(),
            reply=said,
            error=error,
        )
        self.turns.append(log)
        return log

    def _worker(self, name: str, index: int, rng: random.Random) -> None:
        other = "B" if name == "A" else "A"
        n = 0
        while not self.stop.is_set():
            n += 1
            base = f"{name}{index}.{n}"
            where = rng.choice(self.conversations)
            action = self._action(rng)
            mid = f"m{base}" if rng.random() < self.config.message_id_share else None
            mode = rng.random()
            if mid is not None and mode < 0.04:  # the same message from both engines at once
                twin = threading.Thread(target=self.turn, args=(f"{base}t", other, where, action, mid))
                twin.start()
                log = self.turn(base, name, where, action, mid)
                twin.join()
                self.count("messages sent twice at once")
            else:
                log = self.turn(base, name, where, action, mid)
                if mid is not None and log.reply is not None and mode < 0.12:  # sent again from the other engine
                    self.turn(f"{base}d", other, where, action, mid)
                    self.count("messages sent twice in a row")
            retry = 0
            while mid is not None and log.error in RETRIABLE and retry < 8 and not self.stop.is_set():
                retry += 1
                self.stop.wait(rng.uniform(0.1, 0.5))
                log = self.turn(f"{base}r{retry}", rng.choice("AB"), where, action, mid)
                self.count("message retries")

    def run(self) -> None:
        rng = random.Random(self.config.seed)
        logger = logging.getLogger("dialog.recover")
        logger.addHandler(self.failures)
        propagate, logger.propagate = logger.propagate, False
        threads = [
            threading.Thread(target=self._worker, args=(name, i, random.Random(rng.random())), daemon=True)
            for name in ("A", "B")
            for i in range(self.config.threads)
        ]
        threads += [
            threading.Thread(target=self._pulses, args=(random.Random(rng.random()),), daemon=True),
            threading.Thread(target=self._outages, args=(random.Random(rng.random()),), daemon=True),
            threading.Thread(target=self._sweeps, args=(random.Random(rng.random()),), daemon=True),
            threading.Thread(target=self._clock, daemon=True),
        ]
        try:
            started = time.monotonic()
            for thread in threads:
                thread.start()
            every = 60.0 if self.config.seconds >= 300 else max(5.0, self.config.seconds / 4)
            while (left := started + self.config.seconds - time.monotonic()) > 0:
                time.sleep(min(left, every))
                if self.config.progress and left > every / 2:
                    self._progress(time.monotonic() - started)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(timeout=30)
            self.server.resume()
            self.calendar.down.clear()
        try:
            self._settle_all()
        finally:
            logger.removeHandler(self.failures)
            logger.propagate = propagate

    def _progress(self, elapsed: float) -> None:
        errors = Counter(t.error for t in self.turns if t.error)
        print(
            f"soak: {elapsed:5.0f} s: {len(self.turns)} turns, {self.counts['pulses']} pulses, "
            f"{errors['StoreUnavailable']} StoreUnavailable, {errors['CalendarUnavailable']} CalendarUnavailable, "
            f"{sum(len(c.events(t)) for c in [self.calendar] for t in self.tenants)} events",
            file=sys.stderr,
            flush=True,
        )

    def _settle_all(self) -> None:
        """Healthy Redis and calendar: sweep until nothing is left to settle, then read what stands."""
        for n in range(10):
            said = self.sweep(f"final{n}")
            if said == []:
                break
        for tenant, conversation in self.conversations:
            key = ConversationKeys(tenant, conversation).conversation
            self.final_snapshots[key] = self.sweeper.snapshot(conversation, tenant_id=tenant)
        self.landed = []
        step = 10_000
        for start in range(0, int(self.admin.llen(AUDIT_KEY)), step):
            for raw in self.admin.lrange(AUDIT_KEY, start, start + step - 1):
                token, expected, at = _text(raw).split("|")
                self.landed.append((token, expected, float(at)))

    def close(self) -> None:
        for engine in (*self.engines.values(), self.sweeper):
            engine.close()
        for client in [*self.clients, self.admin]:
            client.close()


# --- the checks ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Landed:
    """A write that landed: its attempt, its place in the commit order, when, which life of its
    conversation, and, for a settle, what it settled ("book", "move" or "cancel", and the key)."""

    index: int
    attempt: Attempt
    at: float
    life: int = 0
    settled: tuple[str, str] | None = None

    @property
    def version(self) -> int:
        return self.attempt.version


# Each discrepancy category, with what it catches; a run passes when every count is 0.
CATEGORIES: dict[str, str] = {
    "turns applied twice": "one turn landed two decisions on a conversation (a lost reply decided again)",
    "messages applied twice": "one message id landed two decisions across its sends and retries",
    "lost updates": "a write that did not replace the record it expected, skipped a version, or "
    "started a conversation afresh before its record could expire",
    "confirmations dropped": "a recorded confirmation (booking, move, cancellation) not settled by the next write",
    "settles disagreeing with the calendar": "a settle with nothing outstanding, an event settled twice or not "
    "as booked, or the engine's time for a call not the calendar's",
    "replies naming unwritten versions": "a reply reports a version no write produced",
    "versions reported by two turns": "a reply reports another turn's write, being neither a replay nor the "
    "answer to a confirmation another turn settled",
    "replies disagreeing with the record": "a reply's state, outcome, proposal or event differ from its version's",
    "retried messages answered differently": "two answers to one message id differ",
    "recorded yes answered expired/nothing_pending/cancelled": "spec 4.1: once a yes is recorded (and booked), "
    "its answer is never expired, nothing_pending or cancelled",
    "events booked twice": "one event reported booked at two versions",
    "events never reported": "an event whose settling turn (or sweep) answered without saying booked",
    "replies naming an unknown event": "a reply says booked, or names an event, the calendar never held",
    "events without a confirmation": "an event no recorded confirmation asked for, two events for one proposal, "
    "one key twice, or an event removed with no confirmed cancellation",
    "pending after the last sweep": "a conversation still holds an unsettled confirmation at the end",
    "snapshots disagreeing with the calendar": "a conversation's event is not the calendar's, or not where it is",
    "unreadable records written": "a write whose record the engine's own decoder refuses",
    "harness": "a write the audit cannot attribute",
}
FORBIDDEN_AFTER_YES = ("expired", "nothing_pending", "cancelled")


@dataclass
class SoakResult:
    config: SoakConfig
    counts: Counter[str]
    discrepancies: dict[str, list[str]]
    problems: list[str]
    notes: list[str]
    table: str = ""

    @property
    def total_discrepancies(self) -> int:
        return sum(len(v) for v in self.discrepancies.values())

    @property
    def other_errors(self) -> int:
        return self.counts["other exceptions"]

    @property
    def applied_twice(self) -> int:
        return sum(len(self.discrepancies[k]) for k in ("turns applied twice", "messages applied twice"))

    @property
    def lost_updates(self) -> int:
        """Writes lost: lost updates, dropped confirmations, and confirmations left outstanding."""
        kinds = ("lost updates", "confirmations dropped", "pending after the last sweep")
        return sum(len(self.discrepancies[k]) for k in kinds)

    @property
    def ok(self) -> bool:
        return self.total_discrepancies == 0 and self.other_errors == 0


class Checker:
    """Reads the run (turn logs, sweep logs, audit, calendar, final snapshots) and lists discrepancies."""

    def __init__(self, soak: Soak) -> None:
        self.soak = soak
        self.found: dict[str, list[str]] = {name: [] for name in CATEGORIES}
        self.counts: Counter[str] = Counter(soak.counts)
        self.writes: list[Landed] = []
        self.by_conv: dict[str, list[Landed]] = defaultdict(list)
        self.position: dict[str, int] = {}  # token -> its place in its conversation's list
        self.by_version: dict[tuple[str, int], list[Landed]] = defaultdict(list)
        self.by_turn: dict[str, list[Landed]] = defaultdict(list)
        self.excused: set[str] = set()  # message ids forgotten legitimately (16 newer replies, or expiry)
        self.turn_logs = {t.id: t for t in soak.turns}
        self.sweep_logs = {s.id: s for s in soak.sweeps}
        self.notes: list[str] = []  # not discrepancies: worth reading

    def fail(self, category: str, detail: str) -> None:
        self.found[category].append(detail)

    def run(self) -> SoakResult:
        self._load_writes()
        self._chains()
        self._applied_once()
        self._replies()
        self._sweep_replies()
        self._bookings()
        self._final_state()
        self._tally()
        result = SoakResult(self.soak.config, self.counts, dict(self.found), self.soak.problems, self.notes)
        result.table = render(result)
        return result

    def _load_writes(self) -> None:
        for index, (token, expected, at) in enumerate(self.soak.landed):
            attempt = self.soak.audit.attempts.get(token)
            if attempt is None or attempt.expected != expected:
                self.fail("harness", f"landed write {token} (expected {expected}) was not seen leaving a client")
                continue
            if attempt.state.startswith("unreadable"):
                self.fail("unreadable records written", f"{token} by {attempt.turn}: {attempt.state}")
            if attempt.kind == "?":
                self.fail("harness", f"write {token} by {attempt.turn} followed no decision or calendar call")
            w = Landed(index, attempt, at)
            self.writes.append(w)
            self.position[token] = len(self.by_conv[attempt.conv])
            self.by_conv[attempt.conv].append(w)
            self.by_turn[attempt.turn].append(w)

    def _next(self, w: Landed) -> Landed | None:
        writes = self.by_conv[w.attempt.conv]
        i = self.position[w.attempt.token] + 1
        return writes[i] if i < len(writes) else None

    def _chains(self) -> None:
        """Per conversation, in commit order: each write replaced the record it expected, one version up;
        a new life (expected "0") only once the last record expired; a recorded confirmation is settled
        by the very next write, and a settle follows one."""
        ttl = float(self.soak.config.ttl_seconds)
        for conv, writes in self.by_conv.items():
            life = 0
            prev: Landed | None = None
            for w in writes:
                a = w.attempt
                if a.expected in ("0", "0?"):  # "0?": a blind create-if-absent write (a host's propose)
                    if prev is not None:
                        life += 1
                        self.counts["conversations expired and started again"] += 1
                        if not prev.attempt.outstanding and w.at - prev.at < ttl - 0.01:
                            self.fail(
                                "lost updates",
                                f"{conv}: {a.turn} started v{w.version} afresh {w.at - prev.at:.3f} s after "
                                f"v{prev.version} was written (TTL {ttl:g} s)",
                            )
                elif prev is None or a.expected != prev.attempt.token or w.version != prev.version + 1:
                    stood = prev.attempt.token if prev else "nothing"
                    self.fail(
                        "lost updates", f"{conv}: {a.turn} wrote {a.token} over {a.expected}; it stood at {stood}"
                    )
                w.life = life
                self.by_version[(conv, w.version)].append(w)
                if a.kind == "settle":
                    if prev is None or not prev.attempt.outstanding:
                        self.fail(
                            "settles disagreeing with the calendar",
                            f"{conv}: {a.turn} settled v{w.version} with nothing outstanding",
                        )
                    elif prev.attempt.change is not None:
                        w.settled = (prev.attempt.change[0], prev.attempt.change[1])
                    elif prev.attempt.booking is not None:
                        w.settled = ("book", prev.attempt.booking[0])
                if prev is not None and prev.attempt.outstanding and (a.kind != "settle" or w.life != prev.life):
                    self.fail(
                        "confirmations dropped",
                        f"{conv}: the {self._what(prev)} recorded at v{prev.version} by {prev.attempt.turn} was "
                        f"followed by a {a.kind} of {a.turn} at v{w.version}"
                        + (" in a new life (the record expired)" if w.life != prev.life else ""),
                    )
                prev = w
            if prev is not None and prev.attempt.outstanding:
                self.fail(
                    "confirmations dropped",
                    f"{conv}: the {self._what(prev)} recorded at v{prev.version} by "
                    f"{prev.attempt.turn} was never settled",
                )
        self.counts["confirmations recorded"] = sum(1 for w in self.writes if w.attempt.outstanding)

    @staticmethod
    def _what(w: Landed) -> str:
        return "yes" if w.attempt.change is None else f"{w.attempt.change[0]} of the booked call"

    def _applied_once(self) -> None:
        """No turn, and no message id across its sends, lands two decisions on a conversation."""
        for turn, writes in self.by_turn.items():
            per_conv: dict[str, list[Landed]] = defaultdict(list)
            for w in writes:
                per_conv[w.attempt.conv].append(w)
            for conv, ws in per_conv.items():
                decisions = [w for w in ws if w.attempt.kind == "decision"]
                settles = [w for w in ws if w.attempt.kind == "settle"]
                if len(decisions) > 1:
                    log = self.turn_logs.get(turn)
                    said = f"{log.said!r}, answered {log.reply or log.error}" if log else ""
                    self.fail(
                        "turns applied twice",
                        f"{turn} on {conv} ({said}): decisions landed at "
                        + ", ".join(f"v{w.version} ({w.attempt.last_outcome})" for w in decisions),
                    )
                if len(settles) > 1:
                    self.fail(
                        "settles disagreeing with the calendar",
                        f"{turn} on {conv}: settled at {[w.version for w in settles]}",
                    )
        by_message: dict[tuple[str, str], list[Landed]] = defaultdict(list)
        for w in self.writes:
            if w.attempt.kind == "decision" and w.attempt.message_id is not None:
                by_message[(w.attempt.conv, w.attempt.message_id)].append(w)
        for (conv, mid), decisions in by_message.items():
            if len(decisions) < 2:
                continue
            if self._forgotten(conv, mid, decisions[1]):
                self.excused.add(mid)
                self.counts["messages forgotten (16 newer replies, or the conversation expired)"] += 1
                continue
            if len({w.attempt.turn for w in decisions}) > 1:  # one turn's two decisions are counted above
                self.fail(
                    "messages applied twice",
                    f"{mid} on {conv}: decisions landed at "
                    + ", ".join(f"v{w.version} by {w.attempt.turn} ({w.attempt.last_outcome})" for w in decisions),
                )

    def _forgotten(self, conv: str, mid: str, second: Landed) -> bool:
        """Whether ``mid``'s filed reply was gone when ``second`` landed: 16 newer ones, or a new life."""
        writes = self.by_conv[conv]
        filed = next((w for w in writes if w.index < second.index and mid in w.attempt.receipts), None)
        if filed is None:
            return False
        if filed.life != second.life:
            return True
        newer = sum(len(w.attempt.receipts) for w in writes if filed.index < w.index < second.index)
        return newer >= REMEMBERED

    def _reported(self, conv: str, version: int, turn: str, t1: float) -> Landed | None:
        """The write a reply reports: its own at that version, else the one standing when it answered."""
        candidates = self.by_version.get((conv, version), [])
        for w in candidates:
            if w.attempt.turn == turn:
                return w
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        before = [w for w in candidates if w.at <= t1 + 0.05]
        return before[-1] if before else candidates[0]

    @staticmethod
    def _agrees(said: Said, w: Landed, about_own_yes: bool = False) -> str | None:
        """The reply matches the record at its version. A turn whose recorded yes another turn
        settled answers about that yes (spec 4.1: already_booked, slot_taken, call_cancelled, with
        its own event), while its state and proposal are the record's as it now stands."""
        a = w.attempt
        proposal = None
        if a.proposal is not None and a.state == "awaiting_confirmation":
            proposal = (a.proposal[0], a.proposal[1], a.proposal[2], a.proposal[4])
        event = (a.booking[2], a.booking[0], a.booking[1]) if a.booked and a.booking else None
        outcome_ok = said.outcome == a.last_outcome or (said.outcome == "already_booked" and a.booked)
        if about_own_yes:
            event, outcome_ok = said.event, True
        if said.state != a.state or said.proposal != proposal or said.event != event or not outcome_ok:
            return (
                f"said {said.outcome}/{said.state} {said.proposal} {said.event}; v{w.version} by {a.turn} holds "
                f"{a.last_outcome}/{a.state} {proposal} {event}"
            )
        return None

    def _replies(self) -> None:
        by_message: dict[str, list[TurnLog]] = defaultdict(list)
        for log in self.soak.turns:
            if log.reply is None:
                continue
            if log.message_id is not None:
                by_message[log.message_id].append(log)
            said = log.reply
            w = self._reported(log.conv, said.version, log.id, log.t1)
            if w is None:
                self.fail("replies naming unwritten versions", f"{log.id} ({log.said}) on {log.conv}: {said}")
                continue
            intents = [x for x in self.by_turn.get(log.id, []) if x.attempt.conv == log.conv and x.attempt.intent]
            if w.attempt.turn == log.id:
                self.counts["replies reporting their own write"] += 1
            elif log.message_id is not None and log.message_id in w.attempt.receipts:
                self.counts["replies replayed from a filed reply"] += 1
            elif intents:
                self.counts["replies to a confirmation another turn settled"] += 1
            else:
                self.fail(
                    "versions reported by two turns",
                    f"{log.id} ({log.said}, message {log.message_id}) on {log.conv} reported v{said.version}, "
                    f"written by {w.attempt.turn}",
                )
            own_yes = bool(intents) and said.outcome in ("already_booked", "slot_taken", "call_cancelled")
            if (why := self._agrees(said, w, own_yes)) is not None:
                self.fail("replies disagreeing with the record", f"{log.id} ({log.said}) on {log.conv}: {why}")
            for intent in intents:
                self._answered_booked(log, said, intent)
        for mid, logs in by_message.items():
            answers = {t.reply for t in logs if t.reply is not None}
            if len(answers) > 1 and mid not in self.excused:
                self.fail(
                    "retried messages answered differently",
                    f"{mid}: " + "; ".join(f"{t.id} said {t.reply}" for t in logs),
                )

    def _answered_booked(self, log: TurnLog, said: Said, intent: Landed) -> None:
        """A turn whose yes was recorded and then booked is never told expired, nothing_pending or cancelled."""
        settle = self._next(intent)
        if intent.attempt.change is not None or settle is None or not settle.attempt.booked:
            return
        assert settle.attempt.booking is not None
        if settle.attempt.booking[2] in self.soak.calendar.removed:
            return  # the call was cancelled since: the calendar no longer holds it
        if said.outcome in ("booked", "already_booked"):
            return
        detail = (
            f"{log.id} ({log.said}) on {log.conv}: its yes was recorded at v{intent.version} and booked at "
            f"v{settle.version} by {settle.attempt.turn}; it answered {said.outcome} at v{said.version}"
        )
        if said.outcome in FORBIDDEN_AFTER_YES:
            self.fail("recorded yes answered expired/nothing_pending/cancelled", detail)
        else:
            self.counts["recorded yes answered with what stands since (not booked)"] += 1
            self.notes.append(f"recorded yes answered with what stands since: {detail}")

    def _sweep_replies(self) -> None:
        for sweep in self.soak.sweeps:
            for conv, said in sweep.replies:
                w = self._reported(conv, said.version, sweep.id, sweep.t1)
                if w is None or w.attempt.turn != sweep.id or w.attempt.kind != "settle":
                    by = w.attempt.turn if w else "nobody"
                    self.fail(
                        "versions reported by two turns",
                        f"{sweep.id} on {conv} reported v{said.version}, written by {by}",
                    )
                elif (why := self._agrees(said, w)) is not None:
                    self.fail("replies disagreeing with the record", f"{sweep.id} on {conv}: {why}")

    def _bookings(self) -> None:
        soak, calendar = self.soak, self.soak.calendar
        current = [e for t in soak.tenants for e in calendar.events(t)]
        keys = Counter(e.idempotency_key for e in current)
        for key, n in keys.items():
            if n > 1:
                self.fail("events without a confirmation", f"{n} events with key {key}")
        self.counts["events in the calendar"] = len(current)
        self.counts["events ever booked"] = len(calendar.ever)
        self.counts["events removed (call cancelled)"] = len(calendar.removed)
        # who recorded each booking key (conversation, proposal seq), and who settled it
        recorded: dict[str, tuple[str, int, int]] = {}  # (conversation, life, proposal seq): seq restarts
        for w in self.writes:
            a = w.attempt
            if a.intent and a.pending and a.booking is not None and a.proposal is not None:
                recorded.setdefault(a.booking[0], (a.conv, w.life, a.proposal[3]))
        settles: dict[tuple[str, str], list[Landed]] = defaultdict(list)
        for w in self.writes:
            if w.settled is not None:
                settles[w.settled].append(w)
        reports = self._booked_reports()
        proposals: dict[tuple[str, int, int], str] = {}
        for key, first in calendar.ever.items():
            origin = recorded.get(key)
            if origin is None:
                self.fail("events without a confirmation", f"event {first.id} ({first.lead}, {first.start}) key {key}")
            elif origin in proposals:
                self.fail("events without a confirmation", f"two events for proposal {origin[2]} of {origin[0]}")
            else:
                proposals[origin] = key
            settled = settles.get(("book", key), [])
            if len(settled) != 1 or not settled[0].attempt.booked:
                self.fail(
                    "settles disagreeing with the calendar",
                    f"event {first.id} key {key}: settled by "
                    + ", ".join(f"{w.attempt.turn} at v{w.version} ({w.attempt.last_outcome})" for w in settled),
                )
                continue
            s = settled[0]
            if s.attempt.booking is not None and s.attempt.booking[2] != first.id:
                self.fail(
                    "settles disagreeing with the calendar",
                    f"key {key}: settled as {s.attempt.booking[2]}, the calendar booked {first.id}",
                )
            said = reports.get(key, set())
            if len(said) > 1:
                self.fail(
                    "events booked twice",
                    f"event {first.id} key {key}: booked at {sorted(said)}; settled by "
                    f"{s.attempt.turn} at v{s.version}",
                )
            elif said and said != {(s.attempt.conv, s.life, s.version)}:
                self.fail(
                    "events booked twice", f"event {first.id}: reported booked at {said}, settled at v{s.version}"
                )
            elif said:
                self.counts["events reported booked"] += 1
            elif self._settler_raised(s):
                self.counts["events unreported: the settling turn raised"] += 1
            else:
                log = self.turn_logs.get(s.attempt.turn)
                answered = (log.reply or log.error) if log else "a sweep that returned no reply for it"
                self.fail(
                    "events never reported",
                    f"event {first.id} on {s.attempt.conv}: settled at v{s.version} by {s.attempt.turn} "
                    f"({log.said if log else 'sweep'}), which answered {answered}",
                )
        for key in reports:
            if key not in calendar.ever:
                self.fail("replies naming an unknown event", f"key {key} reported booked, the calendar never booked it")
        # where each call is: the last settle (booking or move) of its key holds the calendar's time
        last: dict[str, Landed] = {}
        for w in self.writes:
            if w.settled is not None and w.attempt.booked and w.attempt.booking is not None:
                last[w.attempt.booking[0]] = w
        for e in current:
            held = last.get(e.idempotency_key)
            if held is None:
                continue  # never settled as booked: reported above, once
            if held.attempt.booking is None or held.attempt.booking[1] != _epoch(e.start):
                self.fail(
                    "settles disagreeing with the calendar",
                    f"event {e.id} is at {e.start}; the engine's last settle of it: {held.attempt.booking}",
                )
        cancelled_ids = {self._change_of(w)[2] for w in self.writes if w.settled and w.settled[0] == "cancel"}
        for event_id, gone in calendar.removed.items():
            if event_id not in cancelled_ids:
                self.fail(
                    "events without a confirmation",
                    f"event {event_id} ({gone.lead}) was removed; no confirmed cancellation of it was settled",
                )

    def _change_of(self, settle: Landed) -> tuple[str, str, str, int]:
        writes = self.by_conv[settle.attempt.conv]
        prev = writes[self.position[settle.attempt.token] - 1]
        assert prev.attempt.change is not None
        return prev.attempt.change

    def _booked_reports(self) -> dict[str, set[tuple[str, int, int]]]:
        """Distinct (conversation, life, version) of the replies saying booked, per key; and events named."""
        reports: dict[str, set[tuple[str, int, int]]] = defaultdict(set)
        booked = Counter[str]()
        ever = self.soak.calendar.ever
        said_by: list[tuple[str, str, str, Said, float]] = [
            (log.id, log.said, log.conv, log.reply, log.t1) for log in self.soak.turns if log.reply is not None
        ]
        said_by += [(s.id, "sweep", conv, said, s.t1) for s in self.soak.sweeps for conv, said in s.replies]
        for who, text, conv, said, t1 in said_by:
            if said.event is None:
                continue
            event_id, key, _ = said.event
            if key not in ever or ever[key].id != event_id:
                self.fail("replies naming an unknown event", f"{who} ({text}) {said.outcome} names {said.event}")
            if said.outcome == "booked":
                booked["sweep" if text == "sweep" else "user"] += 1
                w = self._reported(conv, said.version, who, t1)
                reports[key].add((conv, w.life if w else -1, said.version))
        self.counts["replies saying booked (user)"] = booked["user"]
        self.counts["replies saying booked (sweep)"] = booked["sweep"]
        return reports

    def _settler_raised(self, settle: Landed) -> bool:
        turn = settle.attempt.turn
        log = self.turn_logs.get(turn)
        if log is not None:
            return log.error is not None
        sweep = self.sweep_logs.get(turn)
        failed = (turn, settle.attempt.conv) in self.soak.failures.failed
        return sweep is not None and (sweep.error is not None or failed)

    def _final_state(self) -> None:
        events = {e.id: e for t in self.soak.tenants for e in self.soak.calendar.events(t)}
        for conv, snap in self.soak.final_snapshots.items():
            if snap is None:
                self.counts["conversations expired at the end"] += 1
                continue
            if snap.booking_pending or getattr(snap, "change_pending", False):
                self.fail("pending after the last sweep", f"{conv} at v{snap.version}")
            e = snap.event
            held = events.get(e.id) if e is not None else None
            if e is not None and (held is None or held.idempotency_key != e.idempotency_key or held.start != e.start):
                self.fail("snapshots disagreeing with the calendar", f"{conv}: {e}; the calendar holds {held}")

    def _tally(self) -> None:
        c = self.counts
        turns = self.soak.turns
        c["turns attempted"] = len(turns)
        c["turns answered"] = sum(1 for t in turns if t.reply is not None)
        errors = Counter(t.error for t in turns if t.error is not None)
        c["StoreUnavailable"] = errors["StoreUnavailable"]
        c["CalendarUnavailable"] = errors["CalendarUnavailable"]
        c["other exceptions"] = sum(n for e, n in errors.items() if e not in RETRIABLE)
        c["other exceptions"] += sum(1 for s in self.soak.sweeps if s.error not in (None, "StoreUnavailable"))
        c["turns with a message id"] = sum(1 for t in turns if t.message_id is not None)
        c["sweeps"] = len(self.soak.sweeps)
        c["sweeps raising StoreUnavailable"] = sum(1 for s in self.soak.sweeps if s.error == "StoreUnavailable")
        c["sweep replies"] = sum(len(s.replies) for s in self.soak.sweeps)
        c["sweep failures logged"] = self.soak.failures.count
        c["writes landed"] = len(self.writes)
        landed = {w.attempt.token for w in self.writes}
        c["replies lost (script ran, reply timed out)"] = len(self.soak.audit.lost & landed)
        c["calendar calls refused"] = self.soak.calendar.refused
        for outcome, n in Counter(t.reply.outcome for t in turns if t.reply is not None).items():
            c[f"outcome {outcome}"] = n


def render(result: SoakResult) -> str:
    c, cfg = result.counts, result.config
    rows: list[tuple[str, object]] = [
        ("seconds, seed", f"{cfg.seconds:g}, {cfg.seed}"),
        ("engines x threads, conversations, tenants", f"2 x {cfg.threads}, {cfg.conversations}, {cfg.tenants}"),
        (
            "TTL, cache_size",
            f"{cfg.ttl_seconds} s, {cfg.cache_size}" + (f", mutant {cfg.mutant}" if cfg.mutant else ""),
        ),
        ("SIGSTOP pulses (seconds paused)", f"{c['pulses']} ({c['paused seconds']:.1f} s)"),
        (
            "calendar outages (longer than the TTL)",
            f"{c['calendar outages']} ({c['calendar outages longer than the TTL']})",
        ),
        ("turns attempted", c["turns attempted"]),
        ("turns answered", c["turns answered"]),
        (
            "  with a message id / retries / sent twice",
            f"{c['turns with a message id']} / {c['message retries']} / "
            f"{c['messages sent twice in a row'] + c['messages sent twice at once']}",
        ),
        ("StoreUnavailable", c["StoreUnavailable"]),
        ("CalendarUnavailable", c["CalendarUnavailable"]),
        ("other exceptions (must be 0)", c["other exceptions"]),
        ("writes landed", c["writes landed"]),
        ("replies lost (script ran, reply timed out)", c["replies lost (script ran, reply timed out)"]),
        (
            "sweeps (raised StoreUnavailable) / settled",
            f"{c['sweeps']} ({c['sweeps raising StoreUnavailable']}) / {c['sweep replies']}",
        ),
        ("confirmations recorded", c["confirmations recorded"]),
        (
            "events in the calendar (ever booked, then cancelled)",
            f"{c['events in the calendar']} ({c['events ever booked']}, {c['events removed (call cancelled)']})",
        ),
        (
            "replies saying booked: user / sweep",
            f"{c['replies saying booked (user)']} / {c['replies saying booked (sweep)']}",
        ),
        ("events reported booked exactly once", c["events reported booked"]),
        (
            "recorded yes answered with what stood since",
            c["recorded yes answered with what stands since (not booked)"],
        ),
        ("events unreported: the settling turn raised", c["events unreported: the settling turn raised"]),
        ("conversations expired and started again", c["conversations expired and started again"]),
        (
            "retried messages forgotten (16 newer, or expired)",
            c["messages forgotten (16 newer replies, or the conversation expired)"],
        ),
    ]
    outcomes = sorted((k.removeprefix("outcome "), v) for k, v in c.items() if k.startswith("outcome "))
    rows.append(("outcomes", ", ".join(f"{k} {v}" for k, v in outcomes)))
    lines = ["| soak | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]
    lines += ["", "| discrepancy (must be 0) | count |", "|---|---|"]
    lines += [f"| {name} | {len(result.discrepancies.get(name, []))} |" for name in CATEGORIES]
    verdict = "PASS" if result.ok else "FAIL"
    lines += ["", f"{verdict}: {result.total_discrepancies} discrepancies, {result.other_errors} other exceptions"]
    for name, details in result.discrepancies.items():
        for detail in details[:5]:
            lines.append(f"  {name}: {detail}")
        if len(details) > 5:
            lines.append(f"  {name}: ... and {len(details) - 5} more")
    for note in result.notes[:3]:
        lines.append(f"  note: {note}")
    for problem in result.problems[:3]:
        lines.append(problem.rstrip())
    return "\n".join(lines)


# --- known bugs, to prove the checks bite ---------------------------------------------------------


def _lost_reply_redecides() -> None:
    """A compare-and-set sent again after its reply was lost does not recognise its own landed write:
    the turn decides again on the record it finds (its own, or a newer one) and applies twice."""
    mutated, found = re.subn(r"if token == ARGV\[2\][^\n]*\n", "", redis_store.CAS_SCRIPT, count=1)
    if not found:
        raise HarnessError("the CAS script no longer checks 'token == ARGV[2]': update the mutant")
    redis_store.CAS_SCRIPT = mutated


def _pending_ttl_short() -> None:
    """A recorded confirmation lives only the conversation's TTL (it dies in a long calendar outage)."""
    from dialog.store import keys

    if not hasattr(keys, "PENDING_BOOKING_TTL_SECONDS"):
        raise HarnessError("dialog.store.keys.PENDING_BOOKING_TTL_SECONDS is gone: update the mutant")
    keys.PENDING_BOOKING_TTL_SECONDS = 0


SOAK_MUTANTS: dict[str, Callable[[], None]] = {
    "lost_reply_redecides": _lost_reply_redecides,
    "pending_ttl_short": _pending_ttl_short,
}


def mutant_names() -> list[str]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from scripts.mutants import MUTANTS

    return sorted([*SOAK_MUTANTS, *MUTANTS])


def apply_mutant(name: str) -> None:
    if name in SOAK_MUTANTS:
        SOAK_MUTANTS[name]()
        return
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from scripts.mutants import apply

    apply(name)


# --- entry points -------------------------------------------------------------------------------


def run_soak(config: SoakConfig) -> SoakResult:
    """The whole soak: a private Redis, the faults, the turns, the checks. The server is always stopped."""
    if config.mutant:
        apply_mutant(config.mutant)  # before any engine registers its scripts
    with tempfile.TemporaryDirectory(prefix="dialog-soak-") as folder:
        server = RedisServer(Path(folder))
        try:
            try:
                server.start()
            except RuntimeError as exc:  # not installed, or it did not start
                raise HarnessError(str(exc)) from exc
            soak = Soak(config, server)
            try:
                soak.probe()
                soak.run()
                return Checker(soak).run()
            finally:
                soak.close()
        finally:
            server.stop()


def _epoch(value: dt.datetime) -> int:
    return int(value.timestamp())


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=600.0, help="how long the faults run (default 600)")
    parser.add_argument("--conversations", type=int, default=8, help="conversations, spread over two tenants")
    parser.add_argument("--threads", type=int, default=4, help="threads per engine (two engines)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ttl", type=int, default=2, help="the engines' ttl_seconds (default 2)")
    parser.add_argument("--cache-size", type=int, default=10_000, help="the engines' cache_size (0: off)")
    parser.add_argument("--mutant", choices=mutant_names(), help="seed a known bug first: the run must fail")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(list(argv) if argv is not None else None)
    config = SoakConfig(
        seconds=args.seconds,
        conversations=args.conversations,
        threads=args.threads,
        seed=args.seed,
        ttl_seconds=args.ttl,
        cache_size=args.cache_size,
        mutant=args.mutant,
        progress=not args.quiet,
    )
    try:
        result = run_soak(config)
    except HarnessError as exc:
        print(f"soak: cannot run: {exc}", file=sys.stderr)
        return 2
    print(result.table)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
