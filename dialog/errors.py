"""Every error the engine raises, in one tree a caller can catch at any level.

    DialogError
    ├── InvalidInput          empty or over-long text or id, text that is not valid Unicode
    ├── StoreUnavailable      Redis unreachable or timing out
    ├── CorruptState          a stored record that cannot be read (the bad value is kept aside)
    ├── CalendarUnavailable   the calendar backend failed or timed out
    ├── SlotTaken             (internal to calendars) the slot overlaps busy time or another event
    └── EventNotFound         (internal to calendars) the event to move is not in the calendar

Foreign errors (redis-py, pydantic, json, caldav) are translated at the module that meets them,
chained with ``from exc`` so the cause stays visible in logs but never reaches a user as a raw
traceback.
"""

from __future__ import annotations


class DialogError(Exception):
    """Base of every error raised by ``dialog``; carries the conversation it concerns."""

    def __init__(
        self,
        message: str,
        *,
        conversation_id: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.conversation_id = conversation_id
        self.tenant_id = tenant_id

    def __str__(self) -> str:
        where = [f"{k}={v!r}" for k, v in self._context().items() if v is not None]
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def _context(self) -> dict[str, object]:
        return {"tenant": self.tenant_id, "conversation": self.conversation_id}


class InvalidInput(DialogError):
    """The caller passed text or an id the engine refuses; nothing was read or written."""

    def __init__(self, message: str, *, field: str, **context: str | None) -> None:
        super().__init__(message, **context)
        self.field = field


class StoreUnavailable(DialogError):
    """Redis could not be reached or answered too slowly; nothing partial was written."""


class CorruptState(DialogError):
    """A stored record could not be read; ``kept_at`` names the key holding the bad value."""

    def __init__(self, message: str, *, key: str, kept_at: str | None, **context: str | None) -> None:
        super().__init__(message, **context)
        self.key = key
        self.kept_at = kept_at

    def _context(self) -> dict[str, object]:
        return {**super()._context(), "key": self.key, "kept_at": self.kept_at}


class CalendarUnavailable(DialogError):
    """The calendar backend failed or timed out; the proposal stays pending."""


class SlotTaken(DialogError):
    """A booking overlaps busy time or another event; raised by calendars, handled by the engine."""


class EventNotFound(DialogError):
    """The event to move is not in the calendar (deleted there); raised by calendars."""
