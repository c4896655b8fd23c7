"""The public API stays as shared/SPEC.md writes it; __all__ is sorted and complete."""

from __future__ import annotations

import inspect

import dialog

SPEC_NAMES = {
    "Engine",
    "InMemoryCalendar",
    "DialogError",
    "StoreUnavailable",
    "InvalidInput",
    "CorruptState",
    "CalendarUnavailable",
}


def test_all_is_sorted_and_exports_exist() -> None:
    assert dialog.__all__ == sorted(dialog.__all__)
    assert all(hasattr(dialog, name) for name in dialog.__all__)
    assert set(dialog.__all__) >= SPEC_NAMES


def test_every_error_derives_from_dialog_error() -> None:
    errors = [
        getattr(dialog, n)
        for n in dialog.__all__
        if isinstance(getattr(dialog, n), type) and issubclass(getattr(dialog, n), Exception)
    ]
    assert len(errors) >= 6
    assert all(issubclass(e, dialog.DialogError) for e in errors)


def test_signatures_match_the_spec() -> None:
    handle = inspect.signature(dialog.Engine.handle).parameters
    assert list(handle)[:3] == ["self", "conversation_id", "text"]
    assert handle["tenant_id"].kind is inspect.Parameter.KEYWORD_ONLY and handle["channel"].default == "text"
    propose = inspect.signature(dialog.Engine.propose).parameters
    assert {"lead", "start", "tenant_id"} <= set(propose)
    init = inspect.signature(dialog.Engine).parameters
    assert {"calendar", "clock", "ttl_seconds"} <= set(init)
    assert "url" in inspect.signature(dialog.Engine.from_url).parameters
