"""Arbitrary text and ids: only replies or DialogError subclasses, and no key outside the conversation's own."""

from __future__ import annotations

import datetime as dt

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dialog import DialogError, Engine, InMemoryCalendar, InvalidInput
from dialog.store.keys import ConversationKeys
from dialog.testing import FakeClock
from tests.conftest import MONDAY_8AM

TEXT = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(blacklist_categories=())),  # surrogates and control characters too
    st.sampled_from(["yes", "no", "move it to 3pm", "schedule a call with Dana tomorrow at 10am"]).map(
        lambda s: s + "\x00\u202e\ud800"
    ),
    st.builds(lambda n: "yes " * n, st.integers(1000, 1100)),
)
IDS = st.one_of(
    st.text(min_size=0, max_size=300), st.sampled_from(["{", "}", "*", ":", "dialog:{a:b}:conv", "x" * 257])
)
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(conversation_id=IDS, tenant_id=IDS, text=TEXT, channel=st.sampled_from(["text", "voice", "fax"]))
def test_anything_in_gives_a_reply_or_a_dialog_error_and_touches_only_its_own_keys(
    redis_client: redis.Redis, conversation_id: str, tenant_id: str, text: str, channel: str
) -> None:
    redis_client.flushdb()
    engine = Engine(redis_client, calendar=InMemoryCalendar(), clock=FakeClock(MONDAY_8AM))
    try:
        reply = engine.handle(conversation_id, text, tenant_id=tenant_id, channel=channel)
    except InvalidInput:
        assert redis_client.dbsize() == 0  # refused before anything was read or written
        return
    except DialogError as exc:  # any other error of ours is acceptable, a foreign one is not
        pytest.fail(f"unexpected {exc!r}")
    assert reply.text.strip()
    own = ConversationKeys(tenant_id, conversation_id)
    for key in redis_client.scan_iter("*"):
        assert key.decode().startswith(f"dialog:{own.tag}:")


def test_a_megabyte_of_text_is_invalid_input(engine: Engine, redis_client: redis.Redis) -> None:
    with pytest.raises(InvalidInput, match="limit is 4096"):
        engine.handle("c1", "yes " * 262_144)
    assert redis_client.dbsize() == 0


@pytest.mark.parametrize("tenant", ["acme", "acme}", "acme:c1", "*", "globex"])
def test_no_tenant_reaches_another_tenants_conversation(
    engine: Engine, calendar: InMemoryCalendar, clock: FakeClock, tenant: str
) -> None:
    """Whatever ids the other tenant picks, it can't read, confirm, move or cancel acme's c1."""
    engine.handle("c1", "schedule a call with Dana Scully tomorrow at 10am", tenant_id="acme")
    before = engine.snapshot("c1", tenant_id="acme")
    if tenant != "acme":
        for conversation in ["c1", "{acme:c1}", "acme:c1", "%7Bacme%3Ac1%7D"]:
            for text in ["yes", "move it to 3pm", "no"]:
                engine.handle(conversation, text, tenant_id=tenant)
                assert engine.snapshot(conversation, tenant_id=tenant) is not None
        assert engine.snapshot("c1", tenant_id="acme") == before
        assert calendar.events("acme") == [] and calendar.events(tenant) == []
    assert before is not None and before.proposal is not None
    assert before.proposal.start == dt.datetime(2026, 11, 24, 10, tzinfo=dt.UTC)
