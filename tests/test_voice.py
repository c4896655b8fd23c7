"""Voice (spec 4.4): a spoken yes books only when it is sure; grammars of what is expected next.

On voice, a confirmation books only when the transcript is a whole expected confirmation, its
confidence is at or above the tenant's threshold (None counts as confident) and no alternative
at or above 0.2 refuses or hesitates; otherwise the engine asks a plain yes-or-no question.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import wave
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dialog import Engine, InMemoryCalendar, InvalidInput, Schedule
from dialog.machine import State
from dialog.voice import CONFIRM, dropped, expectations

PROPOSE = "schedule a call with Dana Scully tomorrow at 10am"


def awaiting(engine: Engine, conversation: str = "c1") -> None:
    engine.handle(conversation, PROPOSE)


@pytest.mark.parametrize(
    ("text", "confidence", "alternatives", "books"),
    [
        ("yes", None, [], True),  # unknown confidence counts as confident
        ("yes please", 0.91, [("no", 0.05)], True),
        ("uh yeah sure", 0.6, [], True),  # at the threshold
        ("yes", 0.59, [], False),  # below it
        ("yes", 0.95, [("no", 0.2)], False),  # an alternative at 0.2 refuses
        ("sure", 0.95, [("not yet", 0.3)], False),  # ... or hesitates
        ("yes", 0.95, [("yes please", 0.4)], True),  # an agreeing alternative is no veto
        ("go", 0.99, [], False),  # a fragment is not a whole expected phrase
        ("we do", 0.99, [], False),
        ("yes now", 0.99, [], False),
    ],
)
def test_a_spoken_yes_books_only_when_sure(
    engine: Engine, calendar: InMemoryCalendar, text: str, confidence: float | None,
    alternatives: list[tuple[str, float]], books: bool,
) -> None:  # fmt: skip
    awaiting(engine)
    reply = engine.handle("c1", text, channel="voice", confidence=confidence, alternatives=alternatives)
    assert (reply.outcome == "booked") is books
    assert len(calendar.events("default")) == (1 if books else 0)
    if not books:
        assert reply.outcome == "reprompted" and reply.state == "awaiting_confirmation"
        assert reply.text.endswith("Please say yes or no.")


def test_on_text_the_confidence_rule_does_not_apply(engine: Engine) -> None:
    awaiting(engine)
    assert engine.handle("c1", "yes", confidence=0.1).outcome == "booked"


def test_the_threshold_is_per_tenant(engine: Engine, calendar: InMemoryCalendar) -> None:
    calendar.set_schedule("strict", Schedule(voice_confidence=0.9))
    engine.handle("c1", PROPOSE, tenant_id="strict")
    assert engine.handle("c1", "yes", tenant_id="strict", channel="voice", confidence=0.8).outcome == "reprompted"
    assert engine.handle("c1", "yes", tenant_id="strict", channel="voice", confidence=0.95).outcome == "booked"


@pytest.mark.parametrize("silence", ["", "   "])
def test_an_empty_transcript_on_voice_is_a_reprompt_not_an_error(engine: Engine, silence: str) -> None:
    awaiting(engine)
    reply = engine.handle("c1", silence, channel="voice", confidence=0.0)
    assert reply.outcome == "reprompted" and reply.state == "awaiting_confirmation"
    assert reply.text.startswith("Sorry, I didn't catch that. Shall I book a call with Dana Scully on ")
    assert reply.text.endswith("? Please say yes or no.")
    assert reply.proposal is not None  # nothing lost: a yes now books it
    assert engine.handle("c1", "yes", channel="voice", confidence=0.9).outcome == "booked"
    with pytest.raises(InvalidInput):
        engine.handle("c1", silence)  # on text, empty is still InvalidInput (spec 2)


def test_an_empty_transcript_with_nothing_pending_says_so_and_how_to_start(engine: Engine) -> None:
    reply = engine.handle("c1", "", channel="voice")
    assert (reply.outcome, reply.state) == ("reprompted", "idle")
    assert reply.text.startswith("Sorry, I didn't catch that. I can schedule calls for you")


def test_an_empty_transcript_over_http_is_a_reprompt(redis_url: str, calendar: InMemoryCalendar) -> None:
    """Blank text on the voice channel: 200 and the question again, worded as on the engine."""
    import redis.asyncio

    from dialog.engine import AsyncEngine
    from dialog.server import create_app
    from tests.test_server import TestClient

    client = TestClient(create_app(AsyncEngine(redis.asyncio.Redis.from_url(redis_url), calendar=calendar),
                                   api_keys={"key-acme-0123456789": "acme"}))  # fmt: skip
    try:
        auth = {"Authorization": "Bearer key-acme-0123456789"}
        url = "/v1/conversations/c1/messages"
        client.post(url, json={"text": PROPOSE, "channel": "voice"}, headers=auth)
        silence = client.post(url, json={"text": "", "channel": "voice", "confidence": 0.0}, headers=auth)
        assert silence.status_code == 200, silence.text
        body = silence.json()
        assert (body["outcome"], body["state"]) == ("reprompted", "awaiting_confirmation")
        assert body["text"].startswith("Sorry, I didn't catch that. Shall I book")
        assert "yes" in body["expect"]["phrases"]
    finally:
        client.close()


@pytest.mark.parametrize(
    ("confidence", "alternatives"),
    [(1.5, None), (-0.1, None), ("high", None), (None, [("no",)]), (None, [("no", 2)]), (None, "no")],
)
def test_bad_confidences_are_invalid_input(engine: Engine, confidence: object, alternatives: object) -> None:
    with pytest.raises(InvalidInput):
        engine.handle("c1", "yes", channel="voice", confidence=confidence, alternatives=alternatives)  # type: ignore[arg-type]


def test_every_phrase_the_grammars_offer_is_understood_as_listed() -> None:
    assert dropped() == []


@pytest.mark.parametrize("phrase", [p for p in CONFIRM if p in expectations(State.AWAITING_CONFIRMATION).phrases])
def test_every_offered_confirmation_books_on_voice(engine: Engine, phrase: str) -> None:
    awaiting(engine)
    assert engine.handle("c1", phrase, channel="voice", confidence=0.9).outcome == "booked"


@pytest.mark.parametrize("phrase", ["let's do it", "let's do that"])
def test_a_confirmation_that_starts_like_a_hesitation_is_not_offered_and_never_books_on_voice(
    engine: Engine, phrase: str
) -> None:
    """"let's wait" was heard as "let's do it" at 0.71: a yes starting like a hesitation is not in
    the grammar, so on voice it is asked about, however confident; typed, it still books."""
    assert phrase not in expectations(State.AWAITING_CONFIRMATION).phrases
    awaiting(engine)
    assert engine.handle("c1", phrase, channel="voice", confidence=0.99).outcome == "reprompted"
    assert engine.handle("c1", phrase).outcome == "booked"


def test_the_reply_and_the_engine_say_what_is_expected_next(engine: Engine) -> None:
    proposed = engine.handle("c1", PROPOSE, channel="voice")
    assert proposed.expect == engine.expectations("c1") == expectations(State.AWAITING_CONFIRMATION)
    assert {"yes", "no", "not yet", "move it to three p m"} <= set(proposed.expect.phrases)
    booked = engine.handle("c1", "yes", channel="voice")
    assert "cancel the call" in booked.expect.phrases and "yes please" not in booked.expect.phrases


def test_the_grammars_are_well_formed() -> None:
    for state in State:
        e = expectations(state)
        assert e.jsgf.startswith("#JSGF V1.0;") and "public <answer> =" in e.jsgf
        root = ET.fromstring(e.srgs.encode())
        ns = "{http://www.w3.org/2001/06/grammar}"
        assert root.tag == f"{ns}grammar" and root.get("root") == "answer"
        rules = {r.get("id") for r in root.iter(f"{ns}rule")}
        refs = {r.get("uri", "")[1:] for r in root.iter(f"{ns}ruleref")}
        assert "answer" in rules and refs <= rules  # every reference resolves


@pytest.mark.parametrize("text", ["no", "cancel it", "can we move it", "move it to three p m"])
def test_on_voice_a_cancellation_or_move_heard_below_the_threshold_is_asked_again(engine: Engine, text: str) -> None:
    """A misheard "fine by me" must not cancel the proposal: below the confidence, nothing acts."""
    awaiting(engine)
    reply = engine.handle("c1", text, channel="voice", confidence=0.3)
    assert (reply.outcome, reply.state) == ("reprompted", "awaiting_confirmation")
    assert reply.text.endswith("Please say yes or no.")
    assert engine.handle("c1", text, channel="voice", confidence=0.9).outcome in ("cancelled", "rescheduled")


def test_on_voice_restating_the_proposed_time_books_only_if_no_alternative_refuses(
    engine: Engine, calendar: InMemoryCalendar
) -> None:
    """Found in review: "Tuesday at 10 is fine" confirms, but skipped the alternatives' veto."""
    awaiting(engine)
    no = [("no", 0.9)]
    doubtful = engine.handle("c1", "Tuesday at 10 is fine", channel="voice", confidence=0.95, alternatives=no)
    assert doubtful.outcome == "reprompted" and calendar.events("default") == []
    sure = engine.handle("c1", "Tuesday at 10 is fine", channel="voice", confidence=0.95)
    assert sure.outcome == "booked"


def test_on_voice_cancel_the_call_confirms_a_cancellation_only_if_no_alternative_hesitates(
    engine: Engine, calendar: InMemoryCalendar
) -> None:
    awaiting(engine)
    engine.handle("c1", "yes")
    proposed = engine.handle("c1", "cancel the call", channel="voice", confidence=0.95)
    assert proposed.proposal is not None and proposed.proposal.kind == "cancel"
    wait = [("wait", 0.9)]
    doubtful = engine.handle("c1", "cancel the call", channel="voice", confidence=0.95, alternatives=wait)
    assert doubtful.outcome == "reprompted" and len(calendar.events("default")) == 1
    assert engine.handle("c1", "cancel the call", channel="voice", confidence=0.95).outcome == "call_cancelled"


# --- dialog voice: the command, in real subprocesses ----------------------------------------------


def dialog_voice(redis_url: str, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "dialog.cli", "voice", "--redis-url", redis_url, "--mute", *args],
        input=stdin, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DIALOG_CALENDAR_URL": "memory://", **(env or {})},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_dialog_voice_from_the_keyboard(redis_url: str, redis_client: object) -> None:
    """Typed answers on the voice channel: the plain yes-or-no question, silence, then a booking."""
    out = dialog_voice(redis_url, "--conversation", "k", stdin=f"{PROPOSE}\nhmm\nyes\n")
    assert "[awaiting_confirmation / proposed]" in out
    assert "Please say yes or no.   [awaiting_confirmation / reprompted]" in out
    assert "Booked: a call with Dana Scully" in out and "[done / booked]" in out


def _silence(path: Path) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(bytes(32_000))
    return path


@pytest.mark.skipif(bool(shutil.which("espeak-ng") is None or shutil.which("sox") is None), reason="no espeak-ng/sox")
def test_dialog_voice_hears_wav_files_under_the_exported_grammar(
    redis_url: str, redis_client: object, tmp_path: Path
) -> None:
    """espeak-ng says "not yet" and "yes please" into WAV files (22 kHz, converted by sox); with a
    second of silence between them, the command hears each under the state's grammar and shows
    what it heard, the confidence, the alternatives and the decision."""
    pytest.importorskip("pocketsphinx")
    for name, words in (("1-not-yet.wav", "not yet"), ("3-yes.wav", "yes please")):
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(tmp_path / name), words], check=True)
    _silence(tmp_path / "2-silence.wav")
    out = dialog_voice(redis_url, "--conversation", "w", "--first", PROPOSE, "--wav", str(tmp_path))
    turns = out.split("heard ")[1:]
    assert len(turns) == 3, out
    assert (
        turns[0].startswith("'not yet' in 1-not-yet.wav: confidence ")
        and "[awaiting_confirmation / reprompted]" in turns[0]
    )
    assert turns[1].startswith("'' in 2-silence.wav: confidence 0.00; alternatives: none")
    assert "Sorry, I didn't catch that. Shall I book" in turns[1]
    heard = re.match(r"'yes please' in 3-yes.wav: confidence (\d\.\d\d)", turns[2])
    assert heard is not None, turns[2]
    booked = "[done / booked]" in turns[2]
    assert booked is (float(heard.group(1)) >= 0.6), turns[2]  # the engine's rule, on the shown confidence


def test_dialog_voice_without_pocketsphinx_says_so_in_one_line(redis_url: str, tmp_path: Path) -> None:
    fake = tmp_path / "pocketsphinx"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'pocketsphinx'\", name='pocketsphinx')\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "dialog.cli", "voice", "--redis-url", redis_url, "--mute",
         "--wav", str(_silence(tmp_path / "a.wav"))],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "DIALOG_CALENDAR_URL": "memory://"},
    )  # fmt: skip
    assert result.returncode == 2
    written = "dialog voice: hearing WAV files needs the voice extra: pip install 'durable-dialog[voice]'"
    assert result.stderr.strip() == written
