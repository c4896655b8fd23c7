"""The server's configuration: the one place it reads ``DIALOG_*`` environment variables.

=========================== ==========================================================
``DIALOG_REDIS_URL``        Redis for every worker and container (unset: the embedded
                            server in ``DIALOG_HOME``, for a single machine only)
``DIALOG_CALENDAR_URL``     ``memory://`` (default) or a CalDAV base URL
``DIALOG_CALENDAR_USER``    CalDAV user name (or in the URL)
``DIALOG_CALENDAR_PASSWORD`` CalDAV password (or in the URL); never logged
``DIALOG_API_KEYS``         ``key=tenant`` pairs, comma-separated
``DIALOG_API_KEYS_FILE``    a file of ``key=tenant`` lines (``#`` comments); merged with the above
``DIALOG_TTL_SECONDS``      conversation TTL (default 600)
``DIALOG_RECOVER_EVERY``    seconds between background sweeps that settle stranded
                            confirmations (default 60; 0 turns them off)
``DIALOG_TENANTS_FILE``     tenant schedules (TOML, see ``dialog.calendar.config``)
=========================== ==========================================================
"""

from __future__ import annotations

import logging
import os
import sys
import urllib.parse
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialog import embedded
from dialog.calendar.base import Calendar
from dialog.calendar.config import ConfigError, calendar_from_url, load_tenants
from dialog.store.keys import DEFAULT_TTL_SECONDS

__all__ = [
    "ConfigError",
    "Settings",
    "calendar",
    "configure_logging",
    "parse_api_keys",
    "prepare",
    "secrets",
    "settings_from_env",
]


# Every container sweeps (a SCAN of the conversation keys); settling is idempotent, so they may overlap.
DEFAULT_RECOVER_EVERY = 60.0


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs, as plain values; secrets stay out of ``repr``."""

    api_keys: Mapping[str, str] = field(repr=False)
    redis_url: str | None = None
    calendar_url: str | None = field(default=None, repr=False)  # may hold credentials
    calendar_user: str | None = None
    calendar_password: str | None = field(default=None, repr=False)
    ttl_seconds: int = DEFAULT_TTL_SECONDS
    recover_every: float | None = DEFAULT_RECOVER_EVERY
    tenants_file: Path | None = None
    home: Path | None = None


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check the ``DIALOG_*`` variables; ``ConfigError`` names the variable at fault."""
    env = os.environ if environ is None else environ
    keys = parse_api_keys(env.get("DIALOG_API_KEYS", ""), source="DIALOG_API_KEYS")
    keys_file = env.get("DIALOG_API_KEYS_FILE")
    if keys_file:
        keys = _merge(keys, _read_keys_file(Path(keys_file)))
    if not keys:
        raise ConfigError(
            "no API keys: set DIALOG_API_KEYS=key=tenant[,key2=tenant2] or DIALOG_API_KEYS_FILE", field="api_keys"
        )
    tenants = env.get("DIALOG_TENANTS_FILE")
    home = env.get("DIALOG_HOME")
    return Settings(
        api_keys=keys,
        redis_url=env.get("DIALOG_REDIS_URL") or None,
        calendar_url=env.get("DIALOG_CALENDAR_URL") or None,
        calendar_user=env.get("DIALOG_CALENDAR_USER") or None,
        calendar_password=env.get("DIALOG_CALENDAR_PASSWORD") or None,
        ttl_seconds=_ttl(env.get("DIALOG_TTL_SECONDS")),
        recover_every=_recover_every(env.get("DIALOG_RECOVER_EVERY")),
        tenants_file=Path(tenants) if tenants else None,
        home=Path(home) if home else None,
    )


def prepare(environ: MutableMapping[str, str] | None = None) -> Settings:
    """Check the configuration once, before workers start; without ``DIALOG_REDIS_URL``, start
    the embedded server and export its URL, so every worker shares one store."""
    env = os.environ if environ is None else environ
    settings = settings_from_env(env)
    calendar(settings)  # a bad calendar URL or tenants file fails here, not in each worker
    if settings.redis_url is None:
        env["DIALOG_REDIS_URL"] = embedded.url(settings.home or embedded.DEFAULT_DATA_DIR)
        return settings_from_env(env)
    return settings


def calendar(settings: Settings, client: Any = None) -> Calendar:
    """The calendar the settings name: unset, a RedisCalendar on ``client`` (a synchronous client
    to the engine's Redis); ``memory://``; or CalDAV."""
    return calendar_from_url(
        settings.calendar_url,
        username=settings.calendar_user,
        password=settings.calendar_password,
        schedules=load_tenants(settings.tenants_file) if settings.tenants_file else None,
        client=client,
    )


def secrets(settings: Settings) -> list[str]:
    """The calendar password, as given and percent-encoded, from the variable or the URL: for log redaction."""
    found = [settings.calendar_password or ""]
    if settings.calendar_url:
        quoted = urllib.parse.urlsplit(settings.calendar_url).password or ""
        found += [quoted, urllib.parse.unquote(quoted)]
    found += [urllib.parse.quote(p, safe="") for p in found]
    return sorted({p for p in found if p}, key=len, reverse=True)  # longest first: no partial replacements


def parse_api_keys(text: str, *, source: str = "api keys") -> dict[str, str]:
    """``key=tenant`` entries separated by commas or new lines; ``#`` starts a comment line.

    The key ends at the first ``=``, so keys cannot contain one; the tenant is the rest of the entry.
    """
    keys: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for entry in line.split(","):
            if not entry.strip():
                continue
            key, sep, tenant = (part.strip() for part in entry.partition("="))
            if not sep or not key or not tenant:
                # Say where, never what: the entry is a secret.
                raise ConfigError(f"{source}, line {number}: an entry is not key=tenant", field="api_keys")
            keys = _merge(keys, {key: tenant}, source=f"{source}, line {number}")
    return keys


def _read_keys_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"DIALOG_API_KEYS_FILE {path}: cannot read it ({type(exc).__name__})", field="api_keys"
        ) from exc
    return parse_api_keys(text, source=str(path))


def _merge(
    first: Mapping[str, str], second: Mapping[str, str], *, source: str = "DIALOG_API_KEYS_FILE"
) -> dict[str, str]:
    clash = [key for key in second if key in first and first[key] != second[key]]
    if clash:
        raise ConfigError(f"{source}: one key is given for two tenants", field="api_keys")
    return {**first, **second}


def _recover_every(value: str | None) -> float | None:
    if value is None or not value.strip():
        return DEFAULT_RECOVER_EVERY
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if not (seconds == 0 or 1 <= seconds <= 86_400):
        raise ConfigError(
            f"DIALOG_RECOVER_EVERY must be 0 (off) or 1-86400 seconds, not {value!r}", field="recover_every"
        )
    return seconds or None


def _ttl(value: str | None) -> int:
    if value is None or not value.strip():
        return DEFAULT_TTL_SECONDS
    try:
        ttl = int(value)
    except ValueError:
        ttl = 0
    if ttl < 1:
        raise ConfigError(f"DIALOG_TTL_SECONDS must be a positive whole number, not {value!r}", field="ttl_seconds")
    return ttl


def configure_logging(level: int = logging.INFO) -> None:
    """Send the server's JSON lines (logger ``dialog.server``) to standard error, one per line."""
    logger = logging.getLogger("dialog.server")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level)
