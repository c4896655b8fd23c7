"""Tenant schedules: loaded from TOML with clear errors, said in the tenant's timezone, DST-correct."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis

from dialog import Engine, InMemoryCalendar, Schedule
from dialog.calendar.caldav import CalDAVCalendar, collection_name
from dialog.calendar.config import ConfigError, Tenants, calendar_from_url, load_tenants
from dialog.testing import FakeClock
from tests.fixtures_radicale import PASSWORD, USER, RadicaleServer

UTC = dt.UTC
EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
TOLD = re.compile(r"(\w{3} \d{1,2} \w{3}, \d\d:\d\d) \(([\w/]+)\)")  # "Tue 24 Nov, 10:00 (Europe/Berlin)"

VALID = """
[default]
timezone = "Europe/Berlin"
working_days = ["mon", "tue", "Wednesday", 3, 4]
day_start = "08:30"
day_end = 18:00:00
slot_minutes = 45

[tenants.acme]
timezone = "America/New_York"

[tenants."acme/x"]
slot_minutes = 60
horizon_days = 7
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tenants.toml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as raised:
        load_tenants(_write(tmp_path, text))
    return raised.value


# --- loading ----------------------------------------------------------------------------------


def test_a_tenants_file_sets_the_default_and_each_tenant_inherits_what_it_leaves_out(tmp_path: Path) -> None:
    tenants = load_tenants(_write(tmp_path, VALID))

    default = Schedule(
        timezone="Europe/Berlin",
        day_start=dt.time(8, 30),
        day_end=dt.time(18),
        slot_minutes=45,
        working_days=(0, 1, 2, 3, 4),
    )
    assert tenants.default == default
    assert tenants == {
        "acme": default.model_copy(update={"timezone": "America/New_York"}),
        "acme/x": default.model_copy(update={"slot_minutes": 60, "horizon_days": 7}),
    }


def test_an_empty_tenants_file_keeps_the_built_in_default(tmp_path: Path) -> None:
    tenants = load_tenants(_write(tmp_path, ""))
    assert tenants == {} and tenants.default == Schedule()


@pytest.mark.parametrize(
    ("text", "tenant", "field", "words"),
    [
        ('[tenants.acme]\ntimezone = "Mars/Olympus"', "acme", "timezone", "unknown timezone 'Mars/Olympus'"),
        ("[tenants.acme]\nslot_minute = 30", "acme", "slot_minute", "unknown key"),
        (
            '[tenants.acme]\nday_start = "17:00"\nday_end = "09:00"',
            "acme",
            "schedule",
            "day_end must be after day_start",
        ),
        ('[tenants.acme]\nday_start = "25:00"', "acme", "day_start", "[tenants.acme] day_start"),
        ('[tenants."a b"]\nworking_days = ["funday"]', "a b", "working_days", "unknown day 'funday'"),
        ("[tenants.acme]\nworking_days = [7]", "acme", "working_days", "0 (Monday) to 6 (Sunday)"),
        ("[tenants.acme]\nslot_minutes = 0", "acme", "slot_minutes", "[tenants.acme] slot_minutes"),
        ('[default]\ntimezone = "Nowhere"', None, "timezone", "[default] timezone: unknown timezone"),
    ],
)
def test_an_invalid_schedule_names_the_tenant_and_the_field(
    tmp_path: Path, text: str, tenant: str | None, field: str, words: str
) -> None:
    error = _error(tmp_path, text)
    assert (error.tenant_id, error.field) == (tenant, field)
    assert words in str(error) and str(tmp_path / "tenants.toml") in str(error)
    if tenant is not None:
        assert f"tenant={tenant!r}" in str(error)


def test_a_broken_file_is_a_config_error(tmp_path: Path) -> None:
    assert "unknown top-level key 'tenant'" in str(_error(tmp_path, "[tenant.acme]\ntimezone = 'UTC'"))
    assert "must be a table" in str(_error(tmp_path, 'tenants = "acme"'))
    assert "not valid TOML" in str(_error(tmp_path, "[tenants.acme\n"))
    with pytest.raises(ConfigError, match="cannot read the tenants file"):
        load_tenants(tmp_path / "missing.toml")


# --- choosing a calendar ----------------------------------------------------------------------


def test_calendar_from_url_picks_memory_or_caldav_and_keeps_credentials_out_of_sight(tmp_path: Path) -> None:
    tenants = load_tenants(_write(tmp_path, VALID))
    for url in (None, "", "memory://"):
        memory = calendar_from_url(url, schedules=tenants)
        assert isinstance(memory, InMemoryCalendar)
        assert memory.schedule("acme") == tenants["acme"] and memory.schedule("other") == tenants.default

    caldav = calendar_from_url("https://bob:hunter2@cal.example.test/dav/bob", schedules=tenants)
    assert isinstance(caldav, CalDAVCalendar)
    assert caldav.base_url == "https://cal.example.test/dav/bob/" and "hunter2" not in repr(caldav)
    assert caldav.schedule("acme/x") == tenants["acme/x"] and caldav.schedule("other") == tenants.default
    assert isinstance(calendar_from_url("http://cal.example.test/", username="u", password="p"), CalDAVCalendar)

    with pytest.raises(ConfigError) as raised:
        calendar_from_url("ftp://bob:hunter2@cal.example.test/")
    assert "'ftp'" in str(raised.value) and "hunter2" not in str(raised.value)


# --- said in the tenant's timezone ------------------------------------------------------------


def test_replies_state_times_in_the_tenants_timezone_on_text_and_voice(
    tmp_path: Path, redis_client: redis.Redis, clock: FakeClock
) -> None:
    tenants = load_tenants(_write(tmp_path, '[tenants.berlin]\ntimezone = "Europe/Berlin"'))
    engine = Engine(redis_client, calendar=calendar_from_url("memory://", schedules=tenants), clock=clock)
    ask = "Schedule a call with Dana Scully tomorrow at 10am"

    text = engine.handle("c1", ask, tenant_id="berlin")
    voice = engine.handle("c2", ask, tenant_id="berlin", channel="voice")
    utc = engine.handle("c3", ask, tenant_id="elsewhere")

    assert "Tue 24 Nov, 10:00 (Europe/Berlin)" in text.text
    assert "Tuesday the 24th at 10 AM" in voice.text and "Europe/Berlin" not in voice.text
    assert "Tue 24 Nov, 10:00 (UTC)" in utc.text
    assert text.proposal is not None and text.proposal.start == dt.datetime(2026, 11, 24, 9, tzinfo=UTC)
    assert utc.proposal is not None and utc.proposal.start == dt.datetime(2026, 11, 24, 10, tzinfo=UTC)
    booked = engine.handle("c1", "yes", tenant_id="berlin")
    assert "Tue 24 Nov, 10:00 (Europe/Berlin)" in booked.text


# --- across daylight-saving changes -----------------------------------------------------------


def _change(zone: str, now: tuple[int, int, int], booked: tuple[int, int, int], name: str) -> object:
    """(timezone, the engine's clock on the Saturday before, Sunday 10:00 local of the change in UTC)."""
    return pytest.param(zone, dt.datetime(2026, *now, tzinfo=UTC), dt.datetime(2026, *booked, tzinfo=UTC), id=name)


DST_CHANGES = [
    _change("Europe/Berlin", (3, 28, 19), (3, 29, 8), "berlin-spring"),  # CET -> CEST
    _change("America/New_York", (3, 7, 20), (3, 8, 14), "new-york-spring"),  # EST -> EDT
    _change("Europe/Berlin", (10, 24, 19), (10, 25, 9), "berlin-autumn"),  # CEST -> CET
    _change("America/New_York", (10, 31, 20), (11, 1, 15), "new-york-autumn"),  # EDT -> EST
]


def _told(text: str) -> str:
    match = TOLD.search(text)
    assert match is not None, text
    return match.group(1)


def _said(value: dt.datetime, zone: str) -> str:
    local = value.astimezone(ZoneInfo(zone))
    return f"{local:%a} {local.day} {local:%b}, {local:%H:%M}"


@pytest.mark.parametrize(("zone", "now", "booked_utc"), DST_CHANGES)
def test_tomorrow_at_10am_across_a_dst_change_is_booked_at_the_wall_clock_time_the_user_was_told(
    redis_client: redis.Redis, zone: str, now: dt.datetime, booked_utc: dt.datetime
) -> None:
    calendar = InMemoryCalendar(Schedule(timezone=zone, working_days=EVERY_DAY))
    engine = Engine(redis_client, calendar=calendar, clock=FakeClock(now))

    proposed = engine.handle("c1", "Schedule a call with Dana Scully tomorrow at 10am", tenant_id="acme")
    spoken = engine.handle("c2", "Schedule a call with Dana Scully tomorrow at 10am", tenant_id="acme", channel="voice")
    booked = engine.handle("c1", "yes", tenant_id="acme")

    assert booked.outcome == "booked"
    (event,) = calendar.events("acme")
    assert event.start == booked_utc and event.end == booked_utc + dt.timedelta(minutes=30)
    assert _told(proposed.text).endswith(", 10:00") and f"({zone})" in proposed.text
    assert _told(proposed.text) == _said(event.start, zone) == _told(booked.text)
    assert f"the {booked_utc.day}" in spoken.text and "at 10 AM" in spoken.text
    # The offset on the day booked differs from the offset when it was asked: the change was crossed.
    assert now.astimezone(ZoneInfo(zone)).utcoffset() != event.start.astimezone(ZoneInfo(zone)).utcoffset()


def test_a_proposal_made_before_a_dst_change_and_confirmed_after_it_keeps_its_wall_clock_time(
    redis_client: redis.Redis,
) -> None:
    clock = FakeClock(dt.datetime(2026, 3, 27, 10, tzinfo=UTC))  # Friday, CET (UTC+1)
    calendar = InMemoryCalendar(schedules={"acme": Schedule(timezone="Europe/Berlin")})
    engine = Engine(redis_client, calendar=calendar, clock=clock)

    proposed = engine.handle("c1", "Schedule a call with Dana Scully Monday at 10am", tenant_id="acme")
    clock.set(dt.datetime(2026, 3, 30, 6, tzinfo=UTC))  # Monday 08:00 CEST (UTC+2), the clocks moved at the weekend
    booked = engine.handle("c1", "yes", tenant_id="acme")

    assert _told(proposed.text) == "Mon 30 Mar, 10:00" == _told(booked.text)
    (event,) = calendar.events("acme")
    assert event.start == dt.datetime(2026, 3, 30, 8, tzinfo=UTC)


@pytest.mark.parametrize(("zone", "now", "booked_utc"), [DST_CHANGES[0], DST_CHANGES[3]])
def test_a_caldav_booking_across_a_dst_change_holds_the_time_the_user_was_told(
    radicale: RadicaleServer, redis_client: redis.Redis, zone: str, now: dt.datetime, booked_utc: dt.datetime
) -> None:
    tenant = f"dst-{uuid.uuid4().hex[:8]}"
    schedule = Schedule(timezone=zone, working_days=EVERY_DAY)
    calendar = CalDAVCalendar(radicale.url, username=USER, password=PASSWORD, schedules={tenant: schedule})
    engine = Engine(redis_client, calendar=calendar, clock=FakeClock(now))

    proposed = engine.handle("c1", "Schedule a call with Dana Scully tomorrow at 10am", tenant_id=tenant)
    booked = engine.handle("c1", "yes", tenant_id=tenant)

    (stored,) = radicale.events(collection_name(tenant)).values()
    start = stored.decoded("DTSTART")
    assert isinstance(start, dt.datetime) and start.astimezone(UTC) == booked_utc
    assert _told(proposed.text) == _said(start, zone) == _told(booked.text)
    assert booked.event is not None and booked.event.start == booked_utc


def test_tenants_from_a_file_drive_the_engine_end_to_end(
    tmp_path: Path, redis_client: redis.Redis, clock: FakeClock
) -> None:
    """The [default] table applies to tenants without a table: here slots of 45 minutes from 08:30 Berlin."""
    tenants = load_tenants(_write(tmp_path, VALID))
    engine = Engine(redis_client, calendar=calendar_from_url(None, schedules=tenants), clock=clock)

    other = engine.handle("c1", "Schedule a call with Dana Scully tomorrow", tenant_id="someone-else")
    acme = engine.handle("c2", "Schedule a call with Dana Scully tomorrow", tenant_id="acme")

    assert "Tue 24 Nov, 08:30 (Europe/Berlin)" in other.text
    assert "Tue 24 Nov, 08:30 (America/New_York)" in acme.text
    assert other.proposal is not None and other.proposal.end - other.proposal.start == dt.timedelta(minutes=45)


def test_tenants_is_a_plain_mapping_with_a_default() -> None:
    tenants = Tenants({"acme": Schedule(timezone="Asia/Tokyo")}, default=Schedule(slot_minutes=20))
    assert dict(tenants) == {"acme": Schedule(timezone="Asia/Tokyo")} and tenants.default.slot_minutes == 20
    assert Tenants().default == Schedule()
