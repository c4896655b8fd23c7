"""Bad input is a clear InvalidInput, never a traceback from deeper down, and changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest
import redis

from dialog import DialogError, Engine, InvalidInput


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"conversation_id": "", "text": "yes"}, "conversation_id"),
        ({"conversation_id": "x" * 257, "text": "yes"}, "conversation_id"),
        ({"conversation_id": "é" * 129, "text": "yes"}, "conversation_id"),  # 258 bytes
        ({"conversation_id": "c", "text": "yes", "tenant_id": ""}, "tenant_id"),
        ({"conversation_id": "c", "text": "yes", "tenant_id": "t" * 257}, "tenant_id"),
        ({"conversation_id": "c", "text": "y" * 4097}, "text"),
        ({"conversation_id": "c", "text": "👍" * 1025}, "text"),  # 4,100 bytes
        ({"conversation_id": "c", "text": "yes \ud800"}, "text"),
        ({"conversation_id": "c\udfff", "text": "yes"}, "conversation_id"),
        ({"conversation_id": "c", "text": None}, "text"),
        ({"conversation_id": 7, "text": "yes"}, "conversation_id"),
        ({"conversation_id": "c", "text": "yes", "channel": "fax"}, "channel"),
    ],
)
def test_bad_input_is_invalid_input_naming_the_field(
    engine: Engine, redis_client: redis.Redis, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        engine.handle(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert isinstance(caught.value, DialogError)
    assert redis_client.dbsize() == 0


def test_limits_are_inclusive(engine: Engine) -> None:
    assert engine.handle("c" * 256, "y" * 4096, tenant_id="t" * 256).outcome == "reprompted"


@pytest.mark.parametrize(
    "start",
    [dt.datetime(2026, 11, 24, 10), dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC), "2026-11-24T10:00"],
)
def test_propose_refuses_naive_past_or_non_datetime_starts(
    engine: Engine, redis_client: redis.Redis, start: object
) -> None:
    with pytest.raises(InvalidInput) as caught:
        engine.propose("c", lead="Dana", start=start)  # type: ignore[arg-type]
    assert caught.value.field == "start"
    assert redis_client.dbsize() == 0


def test_propose_refuses_an_empty_lead(engine: Engine) -> None:
    with pytest.raises(InvalidInput):
        engine.propose("c", lead="  ", start=dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC))
