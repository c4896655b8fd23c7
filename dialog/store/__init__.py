"""Conversation persistence: keys and TTLs, the versioned record, the Redis compare-and-set."""

from dialog.store.keys import ConversationKeys
from dialog.store.record import SCHEMA_VERSION, Booking, Record, StoredProposal
from dialog.store.redis_store import Commit, RedisStore, Stored, apply_failure_policy

__all__ = [
    "SCHEMA_VERSION",
    "Booking",
    "Commit",
    "ConversationKeys",
    "Record",
    "RedisStore",
    "Stored",
    "StoredProposal",
    "apply_failure_policy",
]
