"""Edge cases from the review findings, black-box: the public API plus raw Redis writes.

Each test names its finding. Bad stored data (finding A) is built from a real record, the way
the engine writes it (``<version>.<nonce>|<msgspec JSON array>``), then bent one field at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import msgspec
import pytest
import redis

from dialog import CorruptState, Engine, InMemoryCalendar, InvalidInput
from dialog.calendar.base import Event
from dialog.flow import Checkpoint
from dialog.machine import State, Trigger
from dialog.results import Outcome, Snapshot
from dialog.store.keys import ConversationKeys
from dialog.store.record import Booking, LastTransition, Record, StoredProposal, decode_record, encode
from dialog.testing import FakeClock
from dialog.turn import idempotency_key
from tests.reliability import Table

SCHEDULE = "schedule a call with Dana tomorrow at 10am"
TUESDAY_10 = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)  # what SCHEDULE proposes on the FakeClock
TUESDAY_11 = dt.datetime(2026, 11, 24, 11, 0, tzinfo=dt.UTC)
CONV = ConversationKeys("default", "c1")

# A value as Redis holds it: a string's bytes, or a hash's fields.
Value = bytes | dict[bytes, bytes]
Plant = Callable[[redis.Redis, Record], Value]


# --- building bad stored data ---------------------------------------------------------------


def seed_record(redis_client: redis.Redis, clock: FakeClock) -> Record:
    """A real record as the engine wrote it: awaiting confirmation of Tue 24 Nov 10:00 with Dana."""
    seeder = Engine(redis_client, calendar=InMemoryCalendar(), clock=clock)
    seeder.handle("seed", SCHEDULE)
    keys = ConversationKeys("default", "seed")
    raw = redis_client.get(keys.conversation)
    assert isinstance(raw, bytes)
    redis_client.delete(keys.conversation, keys.expired_marker)
    record = decode_record(raw.partition(b"|")[2])
    assert record.state is State.AWAITING_CONFIRMATION and record.proposal is not None
    return record


def setting(version: str, change: Callable[[Record], Record | bytes]) -> Plant:
    """Writes the changed seed record (or JSON) at the conversation key, as ``<version>.<nonce>|<json>``."""

    def plant(client: redis.Redis, seed: Record) -> Value:
        changed = change(seed)
        raw = f"{version}.123|".encode() + (changed if isinstance(changed, bytes) else encode(changed))
        client.set(CONV.conversation, raw, ex=600)
        return raw

    return plant


def hash_at_marker(client: redis.Redis, seed: Record) -> Value:
    """A Redis hash where the expired-proposal marker (a string) belongs; no conversation record."""
    fields = {b"v": b"1", b"r": b"not a marker"}
    client.hset(CONV.expired_marker, mapping=fields)  # type: ignore[arg-type]
    client.expire(CONV.expired_marker, 3600)
    return fields


def _proposal(seed: Record) -> StoredProposal:
    assert seed.proposal is not None
    return seed.proposal


def _no_proposal(r: Record) -> Record:
    return msgspec.structs.replace(r, proposal=None)


def _rescheduling_without_request(r: Record) -> Record:
    return msgspec.structs.replace(r, state=State.RESCHEDULING, proposal=None, request=None)


def _start_out_of_range(r: Record) -> Record:
    far = 99999999999999
    return msgspec.structs.replace(r, proposal=msgspec.structs.replace(_proposal(r), start=far, end=far + 1800))


def _unknown_last_source(r: Record) -> bytes:
    payload = encode(r)
    last = b'["propose","idle","proposed"]'  # the seed's last transition, as encoded
    assert last in payload
    return payload.replace(last, b'["propose","flying","proposed"]')


def _pending_booking_of_no_length(r: Record) -> Record:
    p = _proposal(r)
    return msgspec.structs.replace(r, booking=Booking(key="k" * 32, lead=p.lead, start=p.start, end=p.start))


def _booked_ending_before_it_starts(r: Record) -> Record:
    p = _proposal(r)
    booking = Booking(key="k" * 32, lead=p.lead, start=p.start, end=p.start - 1800, event_id="evt_1")
    last = LastTransition(trigger=Trigger.CONFIRM, source=State.AWAITING_CONFIRMATION, outcome=Outcome.BOOKED)
    return msgspec.structs.replace(r, state=State.DONE, proposal=None, booking=booking, last=last)


def _proposal_of_no_length(r: Record) -> Record:
    p = _proposal(r)
    return msgspec.structs.replace(r, proposal=msgspec.structs.replace(p, end=p.start))


def _unchanged(r: Record) -> Record:
    return r


BAD: dict[str, Plant] = {
    # Finding A, kind 1 (today: AssertionError from the turn).
    "1-awaiting-without-proposal": setting("5", _no_proposal),
    # Kind 2 (today: AssertionError).
    "2-rescheduling-without-request": setting("5", _rescheduling_without_request),
    # Kind 3 (today: ValueError, year out of range).
    "3-proposal-start-out-of-range": setting("5", _start_out_of_range),
    # Kind 4 (today: the turn works; snapshot raises ValueError).
    "4-unknown-state-in-last-source": setting("5", _unknown_last_source),
    # Kind 5 (today: the private _Unreadable escapes, on every turn).
    "5-hash-at-expired-marker": hash_at_marker,
    # Kind 6 (today: StoreUnavailable "gave up after 50 concurrent writes", on every turn).
    "6-version-token-leading-space": setting(" 5", _unchanged),
    "6-version-token-plus-sign": setting("+5", _unchanged),
    "6-version-token-underscore": setting("5_0", _unchanged),
    # Kind 7 (today: InvalidInput from the calendar, on every turn).
    "7-pending-booking-end-equals-start": setting("5", _pending_booking_of_no_length),
    # Kind 8: today a booked event ending before it starts is reported as booked (no error); a
    # proposal of no length is confirmed, then InvalidInput on every turn; a negative version
    # is StoreUnavailable after 50 writes.
    "8-booking-end-before-start": setting("5", _booked_ending_before_it_starts),
    "8-proposal-end-equals-start": setting("5", _proposal_of_no_length),
    "8-negative-version": setting("-5", _unchanged),
}


def value_at(client: redis.Redis, key: str) -> Value | None:
    kind = client.type(key)
    if kind == b"string":
        value = client.get(key)
        assert isinstance(value, bytes)
        return value
    if kind == b"hash":
        return dict(client.hgetall(key))  # type: ignore[arg-type]
    return None


def assert_kept(client: redis.Redis, error: CorruptState, planted: Value) -> None:
    assert error.kept_at is not None, "CorruptState must name the key keeping the bad value"
    assert value_at(client, error.kept_at) == planted
    assert client.pttl(error.kept_at) > 0


# --- A. bad stored data: CorruptState once, then afresh ---------------------------------------


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_stored_data_is_corrupt_state_once_then_the_conversation_starts_afresh(
    engine: Engine, redis_client: redis.Redis, clock: FakeClock, kind: str, reliability: Table
) -> None:
    """Finding A: the first turn raises CorruptState (no other type), with the bad value kept aside;
    the next turn starts afresh and never meets the bad value again."""
    planted = BAD[kind](redis_client, seed_record(redis_client, clock))
    with pytest.raises(CorruptState) as caught:
        engine.handle("c1", "yes")
    assert_kept(redis_client, caught.value, planted)
    assert engine.handle("c1", "yes").outcome == "nothing_pending"
    assert engine.handle("c1", SCHEDULE).outcome == "proposed"
    assert value_at(redis_client, caught.value.kept_at or "") == planted  # still there for inspection
    reliability.record(f"corrupt data: {kind}", expected=0, found=len(engine.calendar.events("default")))


@pytest.mark.parametrize("kind", list(BAD))
def test_a_snapshot_of_bad_stored_data_is_corrupt_state_or_none(
    engine: Engine, redis_client: redis.Redis, clock: FakeClock, kind: str
) -> None:
    """Finding A: snapshot never presents or trips over bad data; it raises only CorruptState
    (keeping the value aside), and once the value is moved aside it returns None."""
    planted = BAD[kind](redis_client, seed_record(redis_client, clock))
    first: Snapshot | None
    try:
        first = engine.snapshot("c1")
    except CorruptState as exc:
        assert_kept(redis_client, exc, planted)
        first = None
    assert first is None
    assert engine.snapshot("c1") is None


# --- B. idempotency keys are injective --------------------------------------------------------

S1, S2 = int(TUESDAY_10.timestamp()), int(TUESDAY_11.timestamp())
# Joined with NUL, ("c", seq 1, S1, "1\0S2\0Dana") and ("c\0" "1\0S1", seq 1, S2, "Dana") are one string.
PLAIN_ID, PLAIN_LEAD = "c", f"1\x00{S2}\x00Dana"
CRAFTED_ID, CRAFTED_LEAD = f"c\x001\x00{S1}", "Dana"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            (ConversationKeys("acme", PLAIN_ID), StoredProposal(PLAIN_LEAD, S1, S1 + 1800, 1)),
            (ConversationKeys("acme", CRAFTED_ID), StoredProposal(CRAFTED_LEAD, S2, S2 + 1800, 1)),
        ),
        (
            (ConversationKeys("a\x00b", "c"), StoredProposal("Dana", S1, S1 + 1800, 1)),
            (ConversationKeys("a", "b\x00c"), StoredProposal("Dana", S1, S1 + 1800, 1)),
        ),
    ],
    ids=["conversation-and-lead", "tenant-and-conversation"],
)
def test_idempotency_keys_of_different_proposals_differ(
    first: tuple[ConversationKeys, StoredProposal], second: tuple[ConversationKeys, StoredProposal]
) -> None:
    """Finding B (6): the key is derived injectively, whatever characters ids and leads hold."""
    assert first != second
    assert idempotency_key(*first) != idempotency_key(*second)


def test_two_conversations_whose_ids_and_leads_collide_book_two_events(
    engine: Engine, calendar: InMemoryCalendar
) -> None:
    """Finding B (6): two confirmed proposals of two conversations are two events, never one
    event reported as booked to both."""
    engine.propose(PLAIN_ID, lead=PLAIN_LEAD, start=TUESDAY_10, tenant_id="acme")
    engine.propose(CRAFTED_ID, lead=CRAFTED_LEAD, start=TUESDAY_11, tenant_id="acme")
    plain = engine.handle(PLAIN_ID, "yes", tenant_id="acme")
    crafted = engine.handle(CRAFTED_ID, "yes", tenant_id="acme")
    assert (plain.outcome, crafted.outcome) == ("booked", "booked")
    events = calendar.events("acme")
    assert len(events) == 2, f"one event answered both confirmations: {events}"
    assert len({e.idempotency_key for e in events}) == 2
    assert crafted.event is not None and crafted.event.start == TUESDAY_11


# --- C. bounds on dates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "start",
    [
        dt.datetime(9999, 12, 31, 10, 0, tzinfo=dt.UTC),
        dt.datetime.max.replace(tzinfo=dt.UTC),
        dt.datetime(2028, 11, 24, 10, 0, tzinfo=dt.UTC),  # two years ahead
        TUESDAY_10 + dt.timedelta(days=400),
    ],
    ids=["year-9999", "datetime-max", "two-years-ahead", "400-days-ahead"],
)
def test_propose_refuses_a_start_more_than_a_year_ahead(
    engine: Engine, calendar: InMemoryCalendar, start: dt.datetime
) -> None:
    """Finding C (7): a start more than a year ahead (or past the representable range) is
    InvalidInput, never CalendarUnavailable; nothing is written."""
    with pytest.raises(InvalidInput):
        engine.propose("c1", lead="Dana", start=start)
    assert engine.snapshot("c1") is None
    assert calendar.events("default") == []


def test_propose_still_accepts_a_start_within_the_year(engine: Engine) -> None:
    """Control for finding C: the bound is a year, not less."""
    reply = engine.propose("c1", lead="Dana", start=TUESDAY_10 + dt.timedelta(days=300))
    assert reply.outcome == "proposed"


# Every one of these is read by dialog.understanding.times (a dated month-day-year, an ISO date).
FAR_REQUESTS = [
    "schedule a call with Dana on december 31 9999 at 10am",
    "schedule a call with Dana on 9999-12-31 at 10am",
    "schedule a call with Dana on 2028-11-24 at 10am",  # two years ahead: today it is proposed
]


@pytest.mark.parametrize("text", FAR_REQUESTS)
def test_a_request_for_a_far_date_is_reprompted_and_writes_no_proposal(engine: Engine, text: str) -> None:
    """Finding C (7): handle answers a date more than a year ahead with a re-prompt, never
    CalendarUnavailable, and no proposal is written."""
    reply = engine.handle("c1", text)
    assert reply.outcome == "reprompted"
    assert reply.proposal is None
    snapshot = engine.snapshot("c1")
    assert snapshot is None or snapshot.proposal is None


@pytest.mark.parametrize("when", ["december 31 9999 at 10am", "9999-12-31 at 10am", "2028-11-24 at 10am"])
def test_moving_a_proposal_to_a_far_date_is_reprompted_and_keeps_the_proposal(engine: Engine, when: str) -> None:
    """Finding C (7): in a reschedule, a far date re-prompts and the pending proposal is unchanged."""
    before = engine.handle("c1", SCHEDULE).proposal
    reply = engine.handle("c1", f"move it to {when}")
    assert reply.outcome == "reprompted"
    assert reply.proposal == before
    snapshot = engine.snapshot("c1")
    assert snapshot is not None and snapshot.proposal == before


# --- D. the sweep ---------------------------------------------------------------------------


class Crash(BaseException):
    """The process dies here: nothing in the engine may catch it."""


def crash_before_the_calendar(point: Checkpoint) -> None:
    if point is Checkpoint.INTENT_COMMITTED:
        raise Crash(point.value)


class FlakyCalendar(InMemoryCalendar):
    """An in-memory calendar whose ``book`` fails for the tenants in ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()

    def book(
        self, tenant_id: str, *, lead: str, start: dt.datetime, end: dt.datetime, idempotency_key: str, note: str = ""
    ) -> Event:
        if tenant_id in self.down:
            raise ConnectionError(f"the calendar of {tenant_id} is down")
        return super().book(tenant_id, lead=lead, start=start, end=end, idempotency_key=idempotency_key, note=note)


def record_unsettled_yes(make_engine: Callable[..., Engine], tenants: list[str], **options: object) -> None:
    """Each tenant's conversation c1: a proposal, then a "yes" recorded but never settled (a crash)."""
    proposer = make_engine(**options)
    crasher = make_engine(checkpoint=crash_before_the_calendar, **options)
    for tenant in tenants:
        assert proposer.handle("c1", SCHEDULE, tenant_id=tenant).outcome == "proposed"
        with pytest.raises(Crash):
            crasher.handle("c1", "yes", tenant_id=tenant)


def test_the_sweep_settles_every_healthy_tenant_when_one_calendar_fails(
    make_engine: Callable[..., Engine], reliability: Table
) -> None:
    """Finding D (3): one tenant's calendar failure is left for the next sweep, never raised,
    never blocking the other tenants; the next sweep settles it once the calendar works."""
    calendar = FlakyCalendar()
    tenants = [f"t{i:02}" for i in range(12)]
    record_unsettled_yes(make_engine, tenants, calendar=calendar)
    calendar.down.add("t07")
    sweeper = make_engine(calendar=calendar)

    settled = sweeper.recover()
    healthy = [t for t in tenants if t != "t07"]
    assert sorted((r.tenant_id, r.conversation_id, r.outcome) for r in settled) == [
        (t, "c1", "booked") for t in healthy
    ]
    assert all(len(calendar.events(t)) == 1 for t in healthy)
    stuck = sweeper.snapshot("c1", tenant_id="t07")
    assert stuck is not None and stuck.booking_pending
    assert calendar.events("t07") == []

    calendar.down.clear()
    assert [(r.tenant_id, r.outcome) for r in sweeper.recover()] == [("t07", "booked")]
    assert len(calendar.events("t07")) == 1
    found = sum(len(calendar.events(t)) for t in tenants)
    reliability.record("a sweep with one failing tenant of 12 (then a second sweep)", expected=12, found=found)


def test_an_unreadable_record_does_not_stop_the_sweep(
    make_engine: Callable[..., Engine], redis_client: redis.Redis, calendar: InMemoryCalendar
) -> None:
    """Finding D (3): a conversation whose record cannot be read is skipped (its value kept),
    and every other outstanding confirmation is settled."""
    tenants = ["acme", "globex", "initech"]
    record_unsettled_yes(make_engine, tenants)
    bad = ConversationKeys("umbrella", "c1")
    redis_client.set(bad.conversation, b"7.1|not a record", ex=600)

    settled = make_engine().recover()
    assert sorted((r.tenant_id, r.outcome) for r in settled) == [(t, "booked") for t in tenants]
    assert all(len(calendar.events(t)) == 1 for t in tenants)
    kept = [k for k in redis_client.scan_iter("dialog:*umbrella*") if redis_client.type(k) == b"string"]
    assert b"7.1|not a record" in [redis_client.get(k) for k in kept]  # never silently deleted


def test_the_sweep_never_books_a_slot_whose_start_has_passed(
    make_engine: Callable[..., Engine], calendar: InMemoryCalendar, clock: FakeClock
) -> None:
    """Finding D (3): a confirmation recorded for Tue 10:00 and swept at 10:31 is slot_taken,
    with a new proposal in the future; nothing is booked at the old time."""
    record_unsettled_yes(make_engine, ["default"])
    clock.set(TUESDAY_10 + dt.timedelta(minutes=31))

    settled = make_engine().recover()
    assert [r.outcome for r in settled] == ["slot_taken"]
    offered = settled[0].proposal
    assert offered is not None and offered.start > clock()
    assert [e for e in calendar.events("default") if e.start == TUESDAY_10] == []
