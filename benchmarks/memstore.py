"""An in-memory stand-in for ``RedisStore``, so a benchmark can time the engine without Redis.

Same interface and semantics as ``dialog.store.redis_store.RedisStore``: ``load`` returns the
record, its version and the expiry marker; ``commit`` is a compare-and-set on the version that
returns the current record (and marker) when it loses; ``conversations`` lists the live
conversations. Records are kept as the bytes the real store writes (msgspec-encoded, stamped
with a nonce) and decoded on every read, so encoding and decoding stay in the measurement; only
the network and redis-py are gone. TTLs are kept, on the clock given (monotonic by default).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence

import msgspec

from dialog.store import keys as K
from dialog.store.record import ExpiredMarker, HistoryEntry, Record, decode_marker, decode_record, encode
from dialog.store.redis_store import Commit, Receipt, Stored

_Entry = tuple[int, bytes, float]  # version, encoded value, expires at


class MemoryStore:
    """Conversations and expiry markers in two dicts, with the CAS script's rules in Python."""

    def __init__(self, *, ttl_seconds: int, now: Callable[[], float] = time.monotonic) -> None:
        self._ttl = float(ttl_seconds)
        self._marker_ttl = float(K.marker_ttl_seconds(ttl_seconds))
        self._now = now
        self._records: dict[str, _Entry] = {}
        self._markers: dict[str, _Entry] = {}

    def load(self, keys: K.ConversationKeys, message_id: str | None = None) -> Stored:
        """The conversation as stored; version 0 and no record when there is none."""
        entry = self._live(self._records, keys.conversation)
        raw_marker = self._live(self._markers, keys.expired_marker)
        marker = decode_marker(raw_marker[1]) if raw_marker else None
        if entry is None:
            return Stored(marker.version if marker else 0, None, marker)
        return Stored(entry[0], decode_record(entry[1]), marker)

    def commit(
        self,
        keys: K.ConversationKeys,
        expected: Stored,
        record: Record,
        entry: HistoryEntry,
        message_id: str | None = None,
        receipts: Sequence[Receipt] = (),
    ) -> Commit:
        """Write ``record`` as version ``expected.version + 1`` if the stored version is still the expected one.

        The history entry and filed replies are encoded (their cost stays measured) but not kept.
        """
        encode(entry)
        stored = self._live(self._records, keys.conversation)
        current = stored[0] if stored else 0
        if current != (expected.version if expected.record is not None else 0):
            return Commit(False, self.load(keys))
        version = expected.version + 1
        record = msgspec.structs.replace(record, nonce=random.getrandbits(48))
        now = self._now()
        self._records[keys.conversation] = (version, encode(record), now + self._ttl)
        marker = _marker_for(record, version)
        if marker is None:
            self._markers.pop(keys.expired_marker, None)
        else:
            self._markers[keys.expired_marker] = (version, encode(marker), now + self._marker_ttl)
        return Commit(True, Stored(version, record))

    def conversations(self, tenant_id: str | None = None) -> Iterator[K.ConversationKeys]:
        """Every live conversation (of one tenant, or all)."""
        for key in list(self._records):
            found = K.ConversationKeys.parse(key)
            if found and (tenant_id is None or found.tenant_id == tenant_id) and self._live(self._records, key):
                yield found

    def _live(self, table: dict[str, _Entry], key: str) -> _Entry | None:
        entry = table.get(key)
        if entry is not None and entry[2] <= self._now():
            del table[key]
            return None
        return entry


def _marker_for(record: Record, version: int) -> ExpiredMarker | None:
    """What the real store remembers past the TTL: the pending proposal (or the rescheduling request)."""
    if record.proposal is not None:
        return ExpiredMarker(version=version, lead=record.proposal.lead, start=record.proposal.start)
    if record.request is not None:
        return ExpiredMarker(version=version, lead=record.request.lead, start=record.request.anchor)
    return None


class MemoryRedis:
    """The three commands the baseline uses (GET, SET with EX, DEL) on a dict, to time it without Redis."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._values: dict[str, tuple[bytes, float]] = {}

    def get(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None or entry[1] <= self._now():
            return None
        return entry[0]

    def set(self, key: str, value: str, ex: int) -> bool:
        self._values[key] = (value.encode(), self._now() + ex)
        return True

    def delete(self, key: str) -> int:
        return 1 if self._values.pop(key, None) is not None else 0
