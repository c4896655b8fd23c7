"""A real CalDAV server for tests: Radicale on a free loopback port, storage in a temp folder.

Also an independent CalDAV client (urllib + xml.etree + icalendar, nothing of ``dialog`` nor of
the caldav library) to read back what the backend wrote.
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from xml.etree import ElementTree

import icalendar
import pytest

from tests.support import free_port, stop

USER = "dialog"
PASSWORD = "s3cret pw@radicale"  # a space and an "@": the URL form must percent-encode them
_NS = {"D": "DAV:", "C": "urn:ietf:params:xml:ns:caldav"}
_QUERY = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">{range}</C:comp-filter>
  </C:comp-filter></C:filter>
</C:calendar-query>"""


class RadicaleServer:
    """``python -m radicale`` with htpasswd auth and owner-only rights; restartable on the same port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.users = folder / "users"
        self.users.write_text(f"{USER}:{PASSWORD}\n")

    @property
    def url(self) -> str:
        """The base URL for ``CalDAVCalendar``: the user's home, without credentials."""
        return f"http://127.0.0.1:{self.port}/{USER}/"

    @property
    def url_with_credentials(self) -> str:
        quoted = urllib.parse.quote(PASSWORD, safe="")
        return f"http://{USER}:{quoted}@127.0.0.1:{self.port}/{USER}/"

    def start(self) -> None:
        command = [
            sys.executable, "-m", "radicale",
            "--server-hosts", f"127.0.0.1:{self.port}",
            "--auth-type", "htpasswd",
            "--auth-htpasswd-filename", str(self.users),
            "--auth-htpasswd-encryption", "plain",
            "--rights-type", "owner_only",
            "--storage-filesystem-folder", str(self.folder / "storage"),
        ]  # fmt: skip
        with (self.folder / "radicale.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"radicale did not start; see {self.folder / 'radicale.log'}")
            time.sleep(0.05)

    def stop(self) -> None:
        stop(self.process)
        self.process = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    # --- an independent client ----------------------------------------------------------------

    def request(self, method: str, path: str, body: str = "", **headers: str) -> tuple[int, bytes]:
        """One authenticated HTTP request to ``path`` (below the server root); (status, body)."""
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=body.encode() if body else None,
            method=method,
            headers={"Authorization": f"Basic {token}", "Content-Type": "application/xml", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def collection_path(self, name: str) -> str:
        """The path of the collection the server stores as ``name`` (one literal path segment)."""
        return f"/{USER}/{urllib.parse.quote(name, safe='')}/"

    def events(
        self, name: str, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> dict[str, icalendar.Component]:
        """VEVENTs of collection ``name`` by href, read with a calendar-query REPORT."""
        window = ""
        if start is not None and end is not None:
            since, until = (f"{t.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}" for t in (start, end))
            window = f'<C:time-range start="{since}" end="{until}"/>'
        status, body = self.request("REPORT", self.collection_path(name), _QUERY.format(range=window), Depth="1")
        assert status == 207, (status, body[:300])
        found: dict[str, icalendar.Component] = {}
        for response in ElementTree.fromstring(body).findall("D:response", _NS):
            href = response.findtext("D:href", namespaces=_NS)
            data = response.findtext(".//C:calendar-data", namespaces=_NS)
            assert href is not None and data is not None
            for event in icalendar.Calendar.from_ical(data).walk("VEVENT"):
                found[urllib.parse.unquote(href)] = event
        return found

    def collections(self) -> list[str]:
        """Names of the collections directly under the user's home (PROPFIND, depth 1)."""
        status, body = self.request("PROPFIND", f"/{USER}/", Depth="1")
        assert status == 207, status
        hrefs = [r.findtext("D:href", "", _NS) for r in ElementTree.fromstring(body).findall("D:response", _NS)]
        home = f"/{USER}/"
        return sorted(urllib.parse.unquote(h[len(home) :].rstrip("/")) for h in hrefs if h != home)


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    """One Radicale for the session; tests keep apart by using their own tenant ids."""
    server = RadicaleServer(tmp_path_factory.mktemp("radicale"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def radicale_server(tmp_path: Path) -> Iterator[Callable[[], RadicaleServer]]:
    """Start a private Radicale (a test may stop and restart it); every one is stopped at the end."""
    started: list[RadicaleServer] = []

    def start() -> RadicaleServer:
        server = RadicaleServer(tmp_path / f"radicale-{len(started)}")
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
