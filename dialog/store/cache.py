"""The last record each process saw, per conversation: lets a turn skip its read.

A cached record may be stale (another container wrote since); the compare-and-set then fails
and returns the current record in the same round trip, so a stale entry costs what the read
it saved would have cost, and can never cause a lost update.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from dialog.store.keys import ConversationKeys
from dialog.store.redis_store import Stored

DEFAULT_CACHE_SIZE = 10_000


class RecordCache:
    """A bounded, thread-safe LRU map from a conversation to the record last read or written."""

    def __init__(self, size: int = DEFAULT_CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[ConversationKeys, Stored] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, keys: ConversationKeys) -> Stored | None:
        with self._lock:
            stored = self._entries.get(keys)
            if stored is not None:
                self._entries.move_to_end(keys)
            return stored

    def put(self, keys: ConversationKeys, stored: Stored) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._entries[keys] = stored
            self._entries.move_to_end(keys)
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def drop(self, keys: ConversationKeys) -> None:
        with self._lock:
            self._entries.pop(keys, None)

    def __len__(self) -> int:
        return len(self._entries)
