"""A calendar on a CalDAV server: one calendar collection per tenant, the event UID as idempotency key.

Conventions on the server (any CalDAV client sees them; see the README, "Calendars: CalDAV"):

* Each tenant's calendar is the collection ``<base_url>/<name>/``, created on first use (a
  PROPFIND, then MKCALENDAR when it is missing). ``<name>`` is :func:`collection_name`: the tenant
  id percent-encoded, "." and "~" included, so no id can climb a level, hide as a dotfile or
  reach another tenant's collection; ids whose encoding is long end in a hash of the id.
* A booking is the event ``<uid>.ics`` with UID = the idempotency key, SUMMARY "Call with
  <lead>", the lead verbatim in ``X-DIALOG-LEAD``, ``X-DIALOG-KIND:booking`` and, when the
  booking has one, its note (the evidence: which words on which channel confirmed it, spec 4.5)
  as ``DESCRIPTION``, where every calendar client shows it; a move keeps it. It is written
  with ``If-None-Match: *``, so the server, not this process, decides which write creates it: a
  412 means the event exists and it is read back instead.
* Busy time written by :meth:`CalDAVCalendar.block` is an event with ``X-DIALOG-KIND:busy``,
  ``CATEGORIES:DIALOG-BUSY`` and SUMMARY "Busy"; its UID derives from the interval, so blocking
  the same interval twice stores it once.
* Busy time is read with a time-range REPORT: every event in the collection is busy (a human's
  event as much as a booking, recurring ones expanded) unless it is ``TRANSP:TRANSPARENT`` or
  ``STATUS:CANCELLED``. :meth:`CalDAVCalendar.events` lists the bookings only.
* A booking's id is its UID (the booking's idempotency key), so ``move`` and ``cancel`` find it
  at ``<id>.ics``. Only bookings move or cancel: busy time and other clients' events are "no
  such event" to them.
* A move rewrites ``<id>.ics`` in place (same UID, same id) with ``If-Match`` on the ETag just
  read: new DTSTART/DTEND in UTC, SEQUENCE + 1, and one more line
  ``X-DIALOG-MOVED:<start>/<end> <key>`` (UTC, the move's key percent-encoded) recording the
  change on the server. A replay of the key, from any process, finds its line and returns the
  event as that move left it, writing nothing, whatever happened to the event since (moved
  again, cancelled). A 412 means someone changed the event between the read and the write: the
  move reads it again (its key may now be there: a replay that won the race) and writes again,
  ``ATTEMPTS`` writes at most, then fails with ``CalendarUnavailable``. Either way no one's
  change is lost.
* A cancel keeps the resource as a tombstone instead of deleting it: ``STATUS:CANCELLED``,
  ``TRANSP:TRANSPARENT``, SEQUENCE + 1 and ``X-DIALOG-CANCELLED:<start>/<end> <key>`` (the time
  it had), written with ``If-Match`` like a move. A ``DELETE`` would leave nowhere on the server
  for the key: a replay (after a crash, from another process) would find nothing and answer
  None where the first call answered the event, and recording the key in another resource is a
  second write that cannot be atomic with the ``DELETE`` (a crash between them, or a concurrent
  cancel, leaves the record and the calendar disagreeing). The tombstone is one conditional
  write, so the change and its key land together or not at all. ``STATUS:CANCELLED`` is
  iCalendar's own "this event is off" (what an iTIP CANCEL leaves in an attendee's calendar):
  busy time ignores it, :meth:`~CalDAVCalendar.events` and :meth:`~CalDAVCalendar.find` skip
  it, other clients show it struck through or hide it. Cancelling an event already cancelled
  (under another key, or by a person) or gone returns None.
* Tombstones and ``X-DIALOG-*`` change lines stay until someone deletes them: a tombstone is
  safe to delete once no replay of its cancel can come (the conversation is over); a replay
  after that answers None, and a replayed move ``EventNotFound``. A cancelled booking's key
  books nothing again (``book`` returns the event as it was cancelled): a late replay of the
  confirmation must not bring back a call the user called off.

Times are stored in UTC and returned in the tenant's timezone. ``timeout`` bounds each public
call as a whole: every HTTP request gets what is left of it. Every failure (network, HTTP status,
a response that does not parse) becomes ``CalendarUnavailable`` naming the base URL without its
credentials; credentials are never logged by this module nor put in a message.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any, cast
from xml.sax.saxutils import escape

import icalendar
from caldav.collection import Calendar as DAVCalendar
from caldav.davclient import DAVClient

from dialog.calendar.base import Event, Interval, Schedule
from dialog.errors import CalendarUnavailable, DialogError, EventNotFound, InvalidInput, SlotTaken

KIND, LEAD = "X-DIALOG-KIND", "X-DIALOG-LEAD"
MOVED, CANCELLED = "X-DIALOG-MOVED", "X-DIALOG-CANCELLED"  # one line per change applied, with its key
BOOKING, BUSY = "booking", "busy"
BUSY_CATEGORY = "DIALOG-BUSY"
# Longer encodings (file-name limits are 255 bytes) keep a readable prefix and end in a hash.
MAX_NAME = 120
# Conditional writes per move or cancel: each 412 (the event changed since it was read) re-reads it.
ATTEMPTS = 4
_STAMP = "%Y%m%dT%H%M%SZ"
_PRODID = "-//dialog//CalDAV calendar//EN"
_ICS = {"Content-Type": "text/calendar; charset=utf-8"}
_MKCALENDAR = """<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>
<D:displayname>{name}</D:displayname>
<C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set>
</D:prop></D:set></C:mkcalendar>"""


def collection_name(tenant_id: str) -> str:
    """The tenant's collection name: percent-encoded, no "." or "~", at most ``MAX_NAME`` characters.

    Distinct ids give distinct names: the encoding is injective, and a shortened name (the only
    kind with a ".") ends in a SHA-256 of the id. Event resources are named the same way.
    """
    return _safe_name(tenant_id)


def _safe_name(text: str) -> str:
    name = urllib.parse.quote(text, safe="", errors="surrogatepass").replace(".", "%2E").replace("~", "%7E")
    if len(name) <= MAX_NAME:
        return name
    prefix = name[:80]
    prefix = prefix[: prefix.rfind("%")] if "%" in prefix[-2:] else prefix  # never cut an escape in two
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{prefix}.{digest}"


class _Budget:
    """What is left of one public call's timeout."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._deadline = time.monotonic() + seconds

    def left(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no time left of the {self.seconds:g} s timeout")
        return left


class _HTTPStatus(Exception):
    """A response status the operation cannot use."""


class CalDAVCalendar:
    """The ``Calendar`` protocol on a CalDAV server (caldav + icalendar); safe across processes."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        schedules: Mapping[str, Schedule] | None = None,
        default: Schedule | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.base_url, url_user, url_password = _split_credentials(base_url)
        if username is None:  # credentials come whole from one place, as caldav does it
            username, password = url_user, (password if password is not None else url_password)
        if not timeout > 0:
            raise InvalidInput("timeout must be a positive number of seconds", field="timeout")
        self.timeout = float(timeout)
        self._username, self._password = username, password
        self._default = default or Schedule()
        self._schedules: dict[str, Schedule] = dict(schedules or {})
        self._ready: set[str] = set()  # collections known to exist
        self._local = threading.local()  # one HTTP session per thread
        self._clients: list[DAVClient] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CalDAVCalendar({self.base_url!r}, timeout={self.timeout:g})"

    # --- the Calendar protocol ----------------------------------------------------------------

    def set_schedule(self, tenant_id: str, schedule: Schedule) -> None:
        self._schedules[tenant_id] = schedule

    def schedule(self, tenant_id: str) -> Schedule:
        return self._schedules.get(tenant_id, self._default)

    def busy(self, tenant_id: str, start: dt.datetime, end: dt.datetime) -> list[Interval]:
        """Opaque events overlapping [start, end), recurring ones expanded, in the tenant's timezone."""
        _check_interval(start, end)
        with self._translating("busy", tenant_id) as budget:
            components = self._search(tenant_id, budget, start, end)
            return sorted(iv for c in components if (iv := self._busy_span(c, tenant_id, start, end)))

    def book(
        self, tenant_id: str, *, lead: str, start: dt.datetime, end: dt.datetime, idempotency_key: str, note: str = ""
    ) -> Event:
        """Create the booking ``<key>.ics`` once; raise ``SlotTaken`` when [start, end) is not free.

        ``note`` is written as the event's ``DESCRIPTION`` (none when it is empty; line breaks as
        "\\n", the only one iCalendar text has) and read back as ``Event.note``: the DESCRIPTION
        the event holds on the server, "" when it has none.

        The overlap check (a REPORT) and the create (a PUT) are two requests: two *different*
        proposals for one slot, confirmed within that gap from two processes, can both land.
        CalDAV has no transaction over a collection, so that gap is left (milliseconds, and only
        for concurrent confirmations of distinct proposals). The same proposal cannot land twice:
        its UID is the idempotency key and the server creates ``<key>.ics`` at most once. A key
        whose booking was cancelled books nothing either: its tombstone is returned as it was.
        """
        _check_interval(start, end)
        note = note.replace("\r\n", "\n").replace("\r", "\n")  # what the server gives back
        with self._translating("book", tenant_id) as budget:
            for component in self._search(tenant_id, budget, start, end):
                if str(component.get("UID", "")) == idempotency_key:
                    return self._event(component, tenant_id, idempotency_key)
                if self._busy_span(component, tenant_id, start, end):
                    return self._existing(tenant_id, budget, idempotency_key)
            body = _ics(idempotency_key, start, end, BOOKING, summary=f"Call with {lead}", lead=lead, note=note)
            if not self._create(tenant_id, budget, idempotency_key, body):
                return self._existing(tenant_id, budget, idempotency_key, created_elsewhere=True)
            return Event(
                idempotency_key,
                self._local_time(start, tenant_id),
                self._local_time(end, tenant_id),
                lead,
                idempotency_key,
                note,
            )

    def _existing(self, tenant_id: str, budget: _Budget, key: str, *, created_elsewhere: bool = False) -> Event:
        """The event under ``key``, which the range checked did not show (a person moved it, or another
        process just created it); when there is none, the slot is taken."""
        found = self._get(tenant_id, budget, key)
        if found is not None:
            return self._event(found, tenant_id, key)
        if created_elsewhere:
            raise _HTTPStatus(f"the event {key!r} exists (412) but cannot be read")
        raise SlotTaken("the slot overlaps busy time or another event", tenant_id=tenant_id)

    def move(
        self, tenant_id: str, event_id: str, *, start: dt.datetime, end: dt.datetime, idempotency_key: str
    ) -> Event:
        """Move the booking ``event_id`` to [start, end): the same resource, rewritten with ``If-Match``.

        A replay of ``idempotency_key`` returns the event as that move left it and writes nothing.
        Raises ``SlotTaken`` when [start, end) overlaps busy time or another event (the event
        itself excluded) and ``EventNotFound`` when there is no such booking or it was cancelled.
        As for :meth:`book`, the overlap check (a REPORT) and the write (a PUT) are two requests:
        a booking or move of *another* event into the same time within that gap can land too.
        ``If-Match`` guards the event itself only: a change to it between the read and the write
        is never overwritten (the move re-reads it and checks again).
        """
        _check_interval(start, end)
        with self._translating("move", tenant_id) as budget:
            for attempt in range(ATTEMPTS + 1):  # one read more than writes: the last 412 may be our key
                found = self._booking(tenant_id, budget, event_id)
                if found is None:
                    raise EventNotFound(f"no event {event_id!r}", tenant_id=tenant_id)
                calendar, event, etag = found
                done = self._change(event, tenant_id, idempotency_key)
                if done is not None:
                    return done
                if _cancelled(event):
                    raise EventNotFound(f"the event {event_id!r} was cancelled", tenant_id=tenant_id)
                if attempt == ATTEMPTS:
                    break
                for component in self._search(tenant_id, budget, start, end):
                    if str(component.get("UID", "")) != event_id and self._busy_span(component, tenant_id, start, end):
                        raise SlotTaken("the new time overlaps busy time or another event", tenant_id=tenant_id)
                moved = dataclasses.replace(
                    self._event(event, tenant_id, event_id),
                    start=self._local_time(start, tenant_id),
                    end=self._local_time(end, tenant_id),
                )
                for name in ("DTSTART", "DTEND", "DURATION"):
                    event.pop(name, None)
                event.add("dtstart", _utc(start))
                event.add("dtend", _utc(end))
                _revise(event, MOVED, _record(start, end, idempotency_key))
                if self._replace(tenant_id, budget, event_id, calendar, etag):
                    return moved
            raise _HTTPStatus(f"the event changed on the server during each of {ATTEMPTS} attempts (412)")

    def cancel(self, tenant_id: str, event_id: str, *, idempotency_key: str) -> Event | None:
        """Cancel the booking ``event_id`` (a ``STATUS:CANCELLED`` tombstone); the event as it was.

        None when there is no such booking or it is already cancelled. A replay of
        ``idempotency_key`` returns what the first call returned and writes nothing.
        """
        with self._translating("cancel", tenant_id) as budget:
            for attempt in range(ATTEMPTS + 1):  # one read more than writes: the last 412 may be our key
                found = self._booking(tenant_id, budget, event_id)
                if found is None:
                    return None
                calendar, event, etag = found
                done = self._change(event, tenant_id, idempotency_key)
                if done is not None:
                    return done
                if _cancelled(event):
                    return None
                if attempt == ATTEMPTS:
                    break
                was = self._event(event, tenant_id, event_id)
                for name in ("STATUS", "TRANSP"):
                    event.pop(name, None)
                event.add("status", "CANCELLED")
                event.add("transp", "TRANSPARENT")
                _revise(event, CANCELLED, _record(was.start, was.end, idempotency_key))
                if self._replace(tenant_id, budget, event_id, calendar, etag):
                    return was
            raise _HTTPStatus(f"the event changed on the server during each of {ATTEMPTS} attempts (412)")

    def find(self, tenant_id: str, idempotency_key: str) -> Event | None:
        with self._translating("find", tenant_id) as budget:
            found = self._get(tenant_id, budget, idempotency_key)
            return None if found is None or _cancelled(found) else self._event(found, tenant_id, idempotency_key)

    def events(self, tenant_id: str) -> list[Event]:
        """The bookings (not the busy time, nor other events) of the tenant, ordered by start."""
        with self._translating("events", tenant_id) as budget:
            found = [
                self._event(c, tenant_id, str(c["UID"]))
                for c in self._search(tenant_id, budget)
                if str(c.get(KIND, "")) == BOOKING and not _cancelled(c)
            ]
            return sorted(found, key=lambda e: (e.start, e.id))

    def block(self, tenant_id: str, start: dt.datetime, end: dt.datetime) -> None:
        """Mark [start, end) busy: an opaque "Busy" event (idempotent for the same interval)."""
        _check_interval(start, end)
        stamp = f"{_utc(start):%Y%m%dT%H%M%SZ}/{_utc(end):%Y%m%dT%H%M%SZ}"
        uid = "dialog-busy-" + hashlib.sha256(stamp.encode()).hexdigest()[:32]
        with self._translating("block", tenant_id) as budget:
            self._create(tenant_id, budget, uid, _ics(uid, start, end, BUSY, summary="Busy"))

    def close(self) -> None:
        """Close every HTTP session this calendar opened."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    # --- requests -----------------------------------------------------------------------------

    def _client(self) -> DAVClient:
        client: DAVClient | None = getattr(self._local, "client", None)
        if client is None:
            client = DAVClient(
                url=self.base_url,
                username=self._username,
                password=self._password,
                # Pre-emptive Basic: negotiating costs a 401 first, which servers may delay (Radicale: 1 s).
                auth_type="basic" if self._username is not None else None,
                timeout=cast(int, self.timeout),  # passed on to niquests, which takes float seconds
                enable_rfc6764=False,
            )
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _request(self, budget: _Budget, method: str, url: str, body: str = "", **headers: str) -> Any:
        client = self._client()
        client.timeout = cast(int, budget.left())
        return client.request(url, method, body, headers)

    def _collection(self, tenant_id: str, budget: _Budget) -> str:
        """The tenant's collection URL, created when it does not exist yet."""
        url = urllib.parse.urljoin(self.base_url, _segment(collection_name(tenant_id)) + "/")
        if tenant_id in self._ready:
            return url
        if self._exists(budget, url):
            self._ready.add(tenant_id)
            return url
        name = tenant_id if tenant_id.isprintable() else collection_name(tenant_id)
        created = self._request(budget, "MKCALENDAR", url, _MKCALENDAR.format(name=escape(name)))
        # 405 or 409: another process created it first (or the parent is missing: checked below).
        if created.status != 201 and not self._exists(budget, url):
            raise _HTTPStatus(f"MKCALENDAR of the tenant's collection answered {created.status}")
        self._ready.add(tenant_id)
        return url

    def _exists(self, budget: _Budget, url: str) -> bool:
        status = self._request(budget, "PROPFIND", url, Depth="0").status
        if status not in (207, 404):
            raise _HTTPStatus(f"PROPFIND of the tenant's collection answered {status}")
        return bool(status == 207)

    def _search(
        self, tenant_id: str, budget: _Budget, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> list[icalendar.Component]:
        """VEVENTs of the tenant; with a range, those overlapping it, recurrences expanded."""
        url = self._collection(tenant_id, budget)
        client = self._client()
        client.timeout = cast(int, budget.left())
        calendar = DAVCalendar(client=client, url=url)
        found: Any  # a list here; typed as list | Coroutine for caldav's async clients
        if start is None or end is None:
            found = calendar.search(event=True)
        else:
            found = calendar.search(event=True, start=_utc(start), end=_utc(end), expand=True)
        return [c for item in found for c in item.icalendar_instance.walk("VEVENT")]

    def _create(self, tenant_id: str, budget: _Budget, uid: str, body: str) -> bool:
        """PUT ``<uid>.ics`` unless it exists; False when the server says it does (412)."""
        url = self._collection(tenant_id, budget) + _resource(uid)
        status = self._request(budget, "PUT", url, body, **_ICS, **{"If-None-Match": "*"}).status
        if status == 412:
            return False
        if status not in (200, 201, 204):
            raise _HTTPStatus(f"PUT of the event answered {status}")
        return True

    def _get(self, tenant_id: str, budget: _Budget, uid: str) -> icalendar.Component | None:
        fetched = self._fetch(tenant_id, budget, uid)
        if fetched is None:
            return None
        events = fetched[0].walk("VEVENT")
        if not events:
            raise _HTTPStatus("the event's resource holds no VEVENT")
        return events[0]

    def _fetch(self, tenant_id: str, budget: _Budget, uid: str) -> tuple[icalendar.Calendar, str | None] | None:
        """The resource ``<uid>.ics`` parsed, and its ETag; None when there is none."""
        url = self._collection(tenant_id, budget) + _resource(uid)
        response = self._request(budget, "GET", url)
        if response.status == 404:
            return None
        if response.status != 200:
            raise _HTTPStatus(f"GET of the event answered {response.status}")
        etag = response.headers.get("ETag")
        return icalendar.Calendar.from_ical(response.raw), (str(etag) if etag else None)

    def _booking(
        self, tenant_id: str, budget: _Budget, event_id: str
    ) -> tuple[icalendar.Calendar, icalendar.Component, str] | None:
        """The booking ``event_id`` (cancelled or not): its resource, its VEVENT (inside the
        resource, to edit in place) and its ETag; None when there is no such booking."""
        fetched = self._fetch(tenant_id, budget, event_id)
        if fetched is None:
            return None
        calendar, etag = fetched
        event = next((e for e in calendar.walk("VEVENT") if str(e.get("UID", "")) == event_id), None)
        if event is None or str(event.get(KIND, "")) != BOOKING:
            return None  # another client's event or busy time under that name: not a booking
        if etag is None:
            raise _HTTPStatus("GET of the event answered without an ETag: it cannot be changed safely")
        return calendar, event, etag

    def _replace(self, tenant_id: str, budget: _Budget, uid: str, calendar: icalendar.Calendar, etag: str) -> bool:
        """PUT ``<uid>.ics`` if it is still the version ``etag``; False when it is not (412)."""
        url = self._collection(tenant_id, budget) + _resource(uid)
        body = bytes(calendar.to_ical()).decode()
        status = self._request(budget, "PUT", url, body, **_ICS, **{"If-Match": etag}).status
        if status in (404, 412):  # changed or deleted since it was read
            return False
        if status not in (200, 201, 204):
            raise _HTTPStatus(f"PUT of the event answered {status}")
        return True

    @contextlib.contextmanager
    def _translating(self, what: str, tenant_id: str) -> Iterator[_Budget]:
        """One public call: its time budget, and every foreign error as ``CalendarUnavailable``."""
        try:
            yield _Budget(self.timeout)
        except DialogError:
            raise
        except Exception as exc:
            reason = self._redact(f"{type(exc).__name__}: {exc}")
            raise CalendarUnavailable(
                f"CalDAV {what} at {self.base_url} failed: {reason}", tenant_id=tenant_id
            ) from exc

    def _redact(self, text: str) -> str:
        for secret in (self._password, urllib.parse.quote(self._password or "", safe="")):
            if secret:
                text = text.replace(secret, "***")
        return text

    # --- events -------------------------------------------------------------------------------

    def _event(self, component: icalendar.Component, tenant_id: str, key: str) -> Event:
        start, end = _span(component, self.schedule(tenant_id).tz)
        lead = str(component.get(LEAD) or str(component.get("SUMMARY", "")).removeprefix("Call with "))
        note = "\n".join(_lines(component, "DESCRIPTION"))  # "" without one (a person's event)
        return Event(str(component.get("UID", key)), start, end, lead, key, note)

    def _change(self, component: icalendar.Component, tenant_id: str, key: str) -> Event | None:
        """The result of the move or cancel recorded under ``key`` in the event, if there is one."""
        token = _key_token(key)
        for name in (MOVED, CANCELLED):
            for line in _lines(component, name):
                span, _, recorded = line.partition(" ")
                if recorded != token:
                    continue
                try:
                    start, end = (dt.datetime.strptime(t, _STAMP).replace(tzinfo=dt.UTC) for t in span.split("/", 1))
                except ValueError as exc:
                    raise _HTTPStatus(f"the event's {name} line for the key does not parse") from exc
                return dataclasses.replace(
                    self._event(component, tenant_id, str(component.get("UID", ""))),
                    start=self._local_time(start, tenant_id),
                    end=self._local_time(end, tenant_id),
                )
        return None

    def _busy_span(
        self, component: icalendar.Component, tenant_id: str, start: dt.datetime, end: dt.datetime
    ) -> Interval | None:
        if str(component.get("TRANSP", "")).upper() == "TRANSPARENT":
            return None
        if str(component.get("STATUS", "")).upper() == "CANCELLED":
            return None
        b_start, b_end = _span(component, self.schedule(tenant_id).tz)
        return (b_start, b_end) if b_start < end and start < b_end else None

    def _local_time(self, value: dt.datetime, tenant_id: str) -> dt.datetime:
        return value.astimezone(self.schedule(tenant_id).tz)


def _span(component: icalendar.Component, tz: dt.tzinfo) -> Interval:
    """[DTSTART, end) as aware datetimes in ``tz``: all-day and floating times are the tenant's."""
    start = _aware(component.decoded("DTSTART"), tz)
    if "DTEND" in component:
        end = _aware(component.decoded("DTEND"), tz)
    elif "DURATION" in component:
        end = start + component.decoded("DURATION")
    else:  # RFC 5545 3.6.1: a day for a date, no time at all for a date-time
        end = start + dt.timedelta(days=1) if not isinstance(component.decoded("DTSTART"), dt.datetime) else start
    return start, end


def _aware(value: dt.date | dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time(), tzinfo=tz)
    return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)


def _cancelled(component: icalendar.Component) -> bool:
    return str(component.get("STATUS", "")).upper() == "CANCELLED"


def _lines(component: icalendar.Component, name: str) -> list[str]:
    """The values of property ``name``, however many times it occurs."""
    value = component.get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _key_token(key: str) -> str:
    """``key`` as one token of plain characters: percent-encoded, so no escaping can alter it."""
    return urllib.parse.quote(key, safe="", errors="surrogatepass")


def _record(start: dt.datetime, end: dt.datetime, key: str) -> str:
    """A change line: the interval it left (UTC) and its key."""
    return f"{_utc(start):{_STAMP}}/{_utc(end):{_STAMP}} {_key_token(key)}"


def _revise(event: icalendar.Component, name: str, record: str) -> None:
    """Record a change in ``event``: the change line, SEQUENCE + 1, DTSTAMP and LAST-MODIFIED now."""
    try:
        sequence = int(str(event.get("SEQUENCE", 0)))
    except ValueError:
        sequence = 0
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for prop in ("SEQUENCE", "DTSTAMP", "LAST-MODIFIED"):
        event.pop(prop, None)
    event.add("sequence", sequence + 1)
    event.add("dtstamp", now)
    event.add("last-modified", now)
    event.add(name, record)


def _ics(
    uid: str,
    start: dt.datetime,
    end: dt.datetime,
    kind: str,
    *,
    summary: str,
    lead: str | None = None,
    note: str = "",
) -> str:
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", dt.datetime.now(dt.UTC))
    event.add("dtstart", _utc(start))
    event.add("dtend", _utc(end))
    event.add("summary", summary)
    event.add("transp", "OPAQUE")
    event.add(KIND, kind)
    if lead is not None:
        event.add(LEAD, lead)
    if note:
        event.add("description", note)  # a TEXT value: icalendar escapes "\\", ";", "," and newlines
    if kind == BUSY:
        event.add("categories", [BUSY_CATEGORY])
    calendar = icalendar.Calendar()
    calendar.add("prodid", _PRODID)
    calendar.add("version", "2.0")
    calendar.add_component(event)
    return bytes(calendar.to_ical()).decode()


def _split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``url`` without user:password (and with a trailing slash), and the credentials it held."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("a CalDAV base URL is http(s)://host[:port]/path/", field="base_url")
    host = parts.netloc.rpartition("@")[2]
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    bare = urllib.parse.urlunsplit((parts.scheme, host, path, "", ""))
    user = urllib.parse.unquote(parts.username) if parts.username is not None else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    return bare, user, password


def _resource(uid: str) -> str:
    """The event's resource, relative to its collection."""
    return _segment(_safe_name(uid) + ".ics")


def _segment(name: str) -> str:
    """One URL path segment holding ``name`` literally (servers decode the path once)."""
    return urllib.parse.quote(name, safe="", errors="surrogatepass")


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)


def _check_interval(start: dt.datetime, end: dt.datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("calendar times must be timezone-aware datetimes", field="start")
    if end <= start:
        raise InvalidInput("an interval must end after it starts", field="end")
