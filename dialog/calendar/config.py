"""Calendars from configuration values: a calendar URL, and tenant schedules from a TOML file.

These functions take values; they never read the environment. The edges (CLI, server) read
``DIALOG_CALENDAR_URL``, ``DIALOG_CALENDAR_USER``, ``DIALOG_CALENDAR_PASSWORD`` and
``DIALOG_TENANTS_FILE`` and pass them here.

The tenants file::

    [default]                      # every tenant without a table of its own; all keys optional
    timezone = "Europe/Berlin"
    working_days = ["mon", "tue", "wed", "thu", "fri"]   # or 0 (Monday) .. 6 (Sunday)
    day_start = "09:00"            # or a TOML local time, 09:00:00
    day_end = "17:00"
    slot_minutes = 30
    horizon_days = 14

    [tenants.acme]                 # keys it leaves out come from [default]
    timezone = "America/New_York"

    [tenants."acme/x"]             # any tenant id, quoted
    slot_minutes = 60
"""

from __future__ import annotations

import tomllib
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dialog.calendar.base import Calendar, Schedule
from dialog.calendar.memory import InMemoryCalendar
from dialog.errors import DialogError

_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class ConfigError(DialogError):
    """A configuration value or file is invalid; ``field`` names what, ``tenant_id`` whose."""

    def __init__(self, message: str, *, field: str | None = None, tenant_id: str | None = None) -> None:
        super().__init__(message, tenant_id=tenant_id)
        self.field = field


class Tenants(dict[str, Schedule]):
    """Schedules by tenant id, and ``default``: the schedule of every tenant not in the mapping."""

    def __init__(
        self,
        schedules: Mapping[str, Schedule] | Iterable[tuple[str, Schedule]] = (),
        *,
        default: Schedule | None = None,
    ) -> None:
        super().__init__(schedules)
        self.default = default or Schedule()


def calendar_from_url(
    url: str | None,
    *,
    username: str | None = None,
    password: str | None = None,
    schedules: Mapping[str, Schedule] | None = None,
    default: Schedule | None = None,
    timeout: float = 5.0,
    client: Any = None,
) -> Calendar:
    """The calendar a URL names.

    ``None`` or ``""``: a ``RedisCalendar`` on ``client`` (the engine's Redis: the default), or
    an ``InMemoryCalendar`` when no client is given; ``memory://``: an ``InMemoryCalendar``
    (this process only); ``http(s)://[user:password@]host/path/``: CalDAV. ``default`` is the
    schedule of tenants missing from ``schedules`` (when ``schedules`` came from
    :func:`load_tenants`, its ``[default]`` table). Explicit credentials win over the URL's.
    """
    if default is None and isinstance(schedules, Tenants):
        default = schedules.default
    if not url and client is not None:
        from dialog.calendar.redis_calendar import RedisCalendar

        return RedisCalendar(client, default, schedules=schedules)
    scheme = urllib.parse.urlsplit(url).scheme.lower() if url else "memory"
    if scheme == "memory":
        return InMemoryCalendar(default, schedules=schedules)
    if scheme in ("http", "https"):
        from dialog.calendar.caldav import CalDAVCalendar  # the optional extra: durable-dialog[caldav]

        return CalDAVCalendar(
            url or "", username=username, password=password, schedules=schedules, default=default, timeout=timeout
        )
    # Name only the scheme: the rest of the URL may hold credentials.
    raise ConfigError(f"unsupported calendar URL scheme {scheme!r}: use memory:// or http(s)://", field="url")


def load_tenants(path: str | Path) -> Tenants:
    """Tenant schedules from a TOML file: ``[default]`` and ``[tenants.<id>]`` tables, validated."""
    source = Path(path)
    try:
        with source.open("rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the tenants file: {exc.strerror}", field="path") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}", field="path") from exc
    return parse_tenants(data, source=str(source))


def parse_tenants(data: Mapping[str, Any], *, source: str = "tenants") -> Tenants:
    """Tenant schedules from the parsed TOML (see the module docstring for the layout)."""
    unknown = sorted(set(data) - {"default", "tenants"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level key {unknown[0]!r} (use [default] and [tenants.<id>])", field=unknown[0]
        )
    base = _table(data.get("default", {}), source, "[default]", None)
    default = _schedule(base, source, "[default]", None)
    tenants = _table(data.get("tenants", {}), source, "[tenants]", None)
    schedules = {
        tenant: _schedule({**base, **_table(table, source, _header(tenant), tenant)}, source, _header(tenant), tenant)
        for tenant, table in tenants.items()
    }
    return Tenants(schedules, default=default)


def _schedule(table: dict[str, Any], source: str, where: str, tenant: str | None) -> Schedule:
    try:
        return Schedule.model_validate(_day_names(table, source, where, tenant))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "schedule"
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
        at = f"{where} {field}:" if first["loc"] else where  # a check across fields names them itself
        raise ConfigError(f"{source}: {at} {message}", field=field, tenant_id=tenant) from exc


def _day_names(table: dict[str, Any], source: str, where: str, tenant: str | None) -> dict[str, Any]:
    """``working_days`` may name days ("mon", "Tuesday"); the schedule takes 0 (Monday) .. 6."""
    days = table.get("working_days")
    if not isinstance(days, list):
        return table
    numbers: list[Any] = []
    for day in days:
        if isinstance(day, str):
            matches = [i for i, name in enumerate(_DAYS) if len(day) >= 3 and name.startswith(day.lower())]
            if not matches:
                raise ConfigError(
                    f"{source}: {where} working_days: unknown day {day!r}", field="working_days", tenant_id=tenant
                )
            day = matches[0]
        numbers.append(day)
    return {**table, "working_days": numbers}


def _table(value: Any, source: str, where: str, tenant: str | None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {where} must be a table", field=where, tenant_id=tenant)
    return value


def _header(tenant: str) -> str:
    return f"[tenants.{_toml_key(tenant)}]"


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)
    return key if bare else '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
