"""Understanding: the confirmation resolver, the classifier, lead extraction and normalisation.

Every example utterance of SPEC.md section 2 appears here, with voice transcripts (no punctuation,
fillers, number words), emoji, and the negation traps: unclear is never yes.
"""

from __future__ import annotations

import re
import string
import time
from typing import Any

import pytest
import redis
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import dialog.understanding as understanding
from dialog import Engine, InMemoryCalendar, Schedule
from dialog.replies import zone_in_words
from dialog.testing import FakeClock
from dialog.understanding import Intent, Understanding, When, understand
from dialog.understanding.intents import AFFIRMATIVE_IDIOMS
from dialog.understanding.normalize import normalize

CONFIRM, REFUSE, HESITATE = Intent.CONFIRM, Intent.REFUSE, Intent.HESITATE
RESCHEDULE, SCHEDULE, UNCLEAR = Intent.RESCHEDULE, Intent.SCHEDULE, Intent.UNCLEAR
QUESTION, CORRECTION = Intent.QUESTION, Intent.CORRECTION


def _fields(when: When | None) -> dict[str, Any]:
    """The fields of ``when`` that were set, for compact expectations."""
    if when is None:
        return {}
    names = ("weekday", "days_ahead", "date", "hour", "minute", "part_of_day", "next_week")
    values = {name: getattr(when, name) for name in names}
    return {name: value for name, value in values.items() if value is not None and value is not False}


def _at(hour: int, minute: int = 0, **day: Any) -> dict[str, Any]:
    return {"hour": hour, "minute": minute, **day}


# --- while a proposal is pending ---------------------------------------------------------------

CONFIRMATIONS = [
    # SPEC section 2
    "yes", "yep", "sure", "go ahead", "sounds good", "ok", "👍", "uh yeah sure",
    # vocabulary
    "Yes", "YES!", "Yes.", "  yes  ", "yes\n", "yup", "yeah", "ya", "okay", "OK.", "alright", "all right",
    "confirm", "confirmed", "do it", "book it", "yes please", "yes, thanks", "thank you, yes", "that works",
    "works for me", "perfect", "great", "fine", "correct", "absolutely", "definitely", "let's do it",
    "that's fine", "sure thing", "go for it", "yes book the call", "please go ahead and book it",
    "sounds great thanks", "that would be great", "yes yes",
    # idioms that contain a negation word
    "no problem, go ahead", "no problem", "no worries", "not a problem", "why not", "why not?",
    "sure, why not", "of course", "i don't mind",
    # emoji and stretched words
    "✅", "👌", "👍🏽", "🙂", "ok 👍", "yesss!!!", "yeahhh", "okkk", "yess", "suuure",
    # voice: fillers, no punctuation
    "um yes", "uh huh", "mm hmm", "mhm", "well yes", "so yeah book it", "er okay go ahead", "yeah sure go ahead",
]  # fmt: skip

REFUSALS = [
    # SPEC section 2
    "no", "nope", "cancel", "never mind", "no, don't book it",
    # vocabulary
    "No.", "nah", "cancel it", "nevermind", "don't", "do not book it", "forget it", "stop", "no thanks",
    "no thank you", "not interested", "absolutely not", "of course not", "definitely not", "no no no",
    "nah, forget about it", "i'll pass", "don't bother", "scratch that", "i changed my mind", "change of plans",
    "call it off", "dont book it", "don\u2019t book it", "nooo", "👎", "❌", "nuh uh",
    # mixed yes and no: refusal wins (documented choice)
    "yes no", "yeah no", "yes, no, cancel",
]  # fmt: skip

HESITATIONS = [
    # SPEC section 2
    "not yet", "wait", "hmm", "?",
    # brief
    "hold on", "hang on", "let me think", "let me check", "maybe", "not sure", "not now", "later?",
    "yes but not now", "ok wait", "no wait",
    # more
    "wait a sec", "hmmm...", "hm", "??", "let me check my calendar", "perhaps", "I'm not sure", "later",
    "maybe later", "yes?", "ok?", "I don't know", "dunno", "one sec", "give me a minute", "🤔", "hmm, ok",
    "maybe not", "uhh hold on", "yes wait", "no problem but not now",
]  # fmt: skip

MOVES_WITHOUT_TIME = [
    # SPEC section 2
    "can we move it?", "another time", "change time",
    # brief
    "reschedule", "different time", "other slot", "no, another time", "push it", "can we move it",
    # more
    "change the time", "reschedule please", "push it back", "postpone it", "something later",
    "can we do it later", "anything earlier?", "that doesn't work for me", "I'm busy then", "another day",
    "can you find a different slot", "no move it",
    # a rejected day or time, and no other: another time, not that one
    "not thursday", "3pm doesn't work", "not at 10", "can't do monday", "thursday is bad",
]  # fmt: skip

MOVES_WITH_TIME = [
    # SPEC section 2
    ("move it to 3pm", _at(15)),
    ("how about Thursday at 2pm?", _at(14, weekday=3)),
    ("yes but make it 11am instead", _at(11)),
    ("no, 3pm instead", _at(15)),
    # brief
    ("thursday", {"weekday": 3}),
    ("make it 11", _at(11)),
    ("at 4", _at(16)),
    # more, including voice transcripts
    ("tomorrow", {"days_ahead": 1}),
    ("tomorrow morning", {"days_ahead": 1, "part_of_day": "morning"}),
    ("friday afternoon", {"weekday": 4, "part_of_day": "afternoon"}),
    ("next Monday 9:30", _at(9, 30, weekday=0)),
    ("can we do 3?", _at(15)),
    ("say 4?", _at(16)),
    ("no, not 3pm, 4pm", _at(16)),
    ("move it from 3pm to 4pm", _at(16)),
    ("how about half past two", _at(14, 30)),
    ("ten thirty works", _at(10, 30)),
    ("uh how about three", _at(15)),
    ("three pm", _at(15)),
    ("around noon", _at(12)),
    ("the day after tomorrow at 9", _at(9, days_ahead=2)),
    ("on the 24th of november", {"date": (11, 24, None)}),
    ("2026-11-24 at 10:00", _at(10, date=(11, 24, 2026))),
    ("next week", {"next_week": True}),
    ("thursday next week at 10am", _at(10, weekday=3, next_week=True)),
    ("no, thursday", {"weekday": 3}),
    ("not thursday, friday", {"weekday": 4}),
    ("move it to 8 in the evening", _at(20)),
    ("3ish", _at(15)),
    ("at 3 o'clock", _at(15)),
    ("noon tomorrow", _at(12, days_ahead=1)),
    ("tonight", {"days_ahead": 0, "part_of_day": "evening"}),
    ("Tomorrow at 10.30a.m.", _at(10, 30, days_ahead=1)),
    ("at 07:30", _at(7, 30)),
    ("yes book the call with dana tomorrow at 10", _at(10, days_ahead=1)),
    ("don't book it for 3pm, book it for 4pm", _at(16)),
    ("um so could we do it at like eleven instead", _at(11)),
]

UNCLEAR_WHILE_PENDING = [
    "yes what's the weather", "asdfgh", "", "   ", "\x00\x01", "um", "thanks", "please",
    "yes, Dana", "I'm good", "don't move it", "no changes", "the", "yes but",
    "12345", "book 2 calls", "call with agent 007", "yes it's fine isn't it", "book the call with Dana",
    "ye s", "nothing", "go to hell", "whatever",
]  # fmt: skip

# Issue 12: questions are QUESTION, never a move ("is that eastern time?", "anything else free that
# day?" used to reschedule); the engine re-prompts with the same proposal, answering the timezone
# question. "what else do you have" was a move; "who is this?" and the like were UNCLEAR (also a
# re-prompt, so only the name changed).
QUESTIONS = [
    "is that eastern time?", "what time zone is that in?", "anything else free that day?",
    "what else do you have", "what's the weather", "who is this?", "isn't it a holiday", "is it booked?",
    "do you send an invite?", "which tuesday?",
]  # fmt: skip


@pytest.mark.parametrize("text", QUESTIONS)
@pytest.mark.parametrize("pending", [True, False])
def test_questions_are_questions_and_move_nothing(text: str, pending: bool) -> None:
    result = understand(text, pending=pending)
    assert (result.intent, result.when, result.lead) == (QUESTION, None, None)


def test_the_timezone_question_is_marked_so_the_reply_answers_it() -> None:
    assert understand("is that eastern time?", pending=True).topic == "timezone"
    assert understand("who is this?", pending=True).topic is None


# Issue 12's regression: "do not" + a verb is a negated imperative, not a "do ...?" question; a
# refusal after a question ("what? no, cancel it") is a refusal: negation wins (spec section 2).
DO_NOT_REFUSALS = [
    "do not book it", "Do NOT book it.", "do not schedule it", "do not", "do not confirm", "please do not book",
    "did not ask for this", "what? no, cancel it", "who cares, cancel it", "why? no thanks",
]  # fmt: skip


@pytest.mark.parametrize("text", DO_NOT_REFUSALS)
@pytest.mark.parametrize("pending", [True, False])
def test_do_not_refusals_refuse(text: str, pending: bool) -> None:
    assert understand(text, pending=pending).intent is REFUSE


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # spec 4.3: deferrals are hesitations, not refusals ("not" + now / yet / later)
        ("do not book it yet", HESITATE),
        ("don't book it yet", HESITATE),
        ("not right now", HESITATE),
        ("hold off, don't book yet", HESITATE),
        ("I'll confirm later", HESITATE),
        ("not at this moment", HESITATE),
        # decided by structure: "not" / "don't ..." + a word of the present, whatever stands between
        ("not right at the moment", HESITATE),
        ("not just now", HESITATE),
        ("don't book it just yet", HESITATE),
        ("not decided yet", HESITATE),
        ("not ready to book yet", HESITATE),
        ("ask me later", HESITATE),
        ("hmm not sure", HESITATE),
        ("no I don't need it", REFUSE),
        ("hmm no", REFUSE),  # a filler does not turn a refusal into a hesitation
        # a negated affirmative idiom is no idiom: "not good for me" asks for another time
        ("is not good for me", RESCHEDULE),
        ("not good for me", RESCHEDULE),
        ("that doesn't work for me", RESCHEDULE),
        ("that's not fine by me", REFUSE),
    ],
)
def test_deferrals_and_negated_idioms_are_never_yes(text: str, intent: Intent) -> None:
    assert understand(text, pending=True).intent is intent


@pytest.mark.parametrize(
    ("text", "when", "lead"),
    [
        # issue 12: "no" + a time is a correction of the time: a reschedule to it, never a cancel
        ("no, 11 instead", _at(11), None),
        ("no not 10, 11", _at(11), None),
        ("no, 3pm instead", _at(15), None),
        ("no not ten eleven", _at(11), None),  # spoken, no comma: not "10:11"
        ("yes but 11 would be better", _at(11), None),
        ("later in the day, like 4", _at(16), None),  # "like 4" is "about 4"
    ],
)
def test_no_with_a_time_reschedules(text: str, when: dict[str, Any], lead: str | None) -> None:
    result = understand(text, pending=True)
    assert (result.intent, _fields(result.when), result.lead) == (RESCHEDULE, when, lead)


@pytest.mark.parametrize(
    ("text", "lead"),
    [
        ("not Dana, Priya Nair", "Priya Nair"),
        ("actually make it with Tom Hardy", "Tom Hardy"),
        ("swap it to Lena", "Lena"),
        ("not Dana - Mary-Kate Olsen", "Mary-Kate Olsen"),  # a spaced dash is a clause mark
        ("sorry, I meant Zoe Chen", "Zoe Chen"),
        ("actually, set it up with Zoe Kim", "Zoe Kim"),  # "it" is the pending call: no new request
        ("sure, book it with Jo Park", "Jo Park"),
        ("actually Tom Baker, not Dana", "Tom Baker"),
        ("Priya Nair instead", "Priya Nair"),
        ("change Dana to Priya", "Priya"),
        ("instead of Dana, book Priya Nair", "Priya Nair"),
    ],
)
def test_a_change_of_person_is_a_correction(text: str, lead: str) -> None:
    result = understand(text, pending=True)
    assert (result.intent, result.lead) == (CORRECTION, lead)


def test_a_lone_y_confirms_text() -> None:
    """Issue 12: "y" is a common yes in chat (it was UNCLEAR). On voice a one-letter transcript is a
    fragment: the engine's spoken-yes rule (spec 4.4) asks yes or no instead (test_behaviour)."""
    assert understand("y", pending=True).intent is CONFIRM
    assert understand("y?", pending=True).intent is HESITATE


@pytest.mark.parametrize("text", CONFIRMATIONS)
def test_affirmative_answers_confirm_while_pending(text: str) -> None:
    assert understand(text, pending=True) == Understanding(CONFIRM, None, None)


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals_refuse_while_pending(text: str) -> None:
    assert understand(text, pending=True) == Understanding(REFUSE, None, None)


@pytest.mark.parametrize("text", HESITATIONS)
def test_hesitations_hesitate_while_pending(text: str) -> None:
    """Hesitation beats refusal and confirmation: "yes but not now", "no wait", "maybe not"."""
    assert understand(text, pending=True) == Understanding(HESITATE, None, None)


@pytest.mark.parametrize("text", MOVES_WITHOUT_TIME)
def test_move_words_without_a_time_reschedule_to_the_next_slot(text: str) -> None:
    assert understand(text, pending=True) == Understanding(RESCHEDULE, None, None)


@pytest.mark.parametrize(("text", "expected"), MOVES_WITH_TIME)
def test_a_day_or_time_while_pending_reschedules_to_it(text: str, expected: dict[str, Any]) -> None:
    """A time beats "yes" and "no": "yes but make it 11am" and "no, 3pm instead" are reschedules."""
    result = understand(text, pending=True)
    assert (result.intent, result.lead, _fields(result.when)) == (RESCHEDULE, None, expected)


@pytest.mark.parametrize("text", UNCLEAR_WHILE_PENDING)
def test_anything_else_while_pending_is_unclear(text: str) -> None:
    assert understand(text, pending=True).intent is UNCLEAR


@pytest.mark.parametrize(
    ("text", "lead", "expected"),
    [
        ("schedule a call with Fox Mulder friday 2pm", "Fox Mulder", _at(14, weekday=4)),
        ("book a meeting with Walter Skinner", "Walter Skinner", {}),
        ("no, set up a new call with dana tomorrow instead", "Dana", {"days_ahead": 1}),
        ("schedule with Monica Reyes at 4", "Monica Reyes", _at(16)),
    ],
)
def test_a_new_request_naming_someone_replaces_the_pending_proposal(
    text: str, lead: str, expected: dict[str, Any]
) -> None:
    result = understand(text, pending=True)
    assert (result.intent, result.lead, _fields(result.when)) == (SCHEDULE, lead, expected)


def test_the_call_with_the_same_lead_is_not_a_new_request() -> None:
    """ "book the call with Dana" names the pending call; with no time it is unclear, never a new request."""
    assert understand("book the call with Dana", pending=True).intent is UNCLEAR


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("yes but not now", HESITATE),
        ("no, don't book it", REFUSE),
        ("not yet", HESITATE),
        ("no problem, go ahead", CONFIRM),
        ("why not", CONFIRM),
        ("I don't know", HESITATE),
        ("yes what's the weather", UNCLEAR),
        ("yes no", REFUSE),
        ("yeah, no", REFUSE),
        ("no, problem", REFUSE),  # the comma breaks the idiom
        ("no\nproblem", REFUSE),  # so does a line break
        ("no problem?", CONFIRM),
        ("sure, but wait", HESITATE),
        ("ok, cancel", REFUSE),
        ("yes don't", REFUSE),
        ("yes not", REFUSE),
        ("yes cancel it", REFUSE),
        ("go ahead, no wait", HESITATE),
        ("yes but", UNCLEAR),
        ("i don't think so", REFUSE),
        ("not a problem, book it", CONFIRM),
        ("yes it isn't", UNCLEAR),
        ("I'm fine", UNCLEAR),
        ("don't move it", UNCLEAR),
        ("don't move it, cancel it", REFUSE),
        ("no changes, book it", UNCLEAR),
        ("of course not", REFUSE),
    ],
)
def test_negation_traps(text: str, intent: Intent) -> None:
    """Negation wins: a genuine refusal or hesitation is never a confirmation; idioms may confirm."""
    assert understand(text, pending=True).intent is intent


# --- nothing pending ---------------------------------------------------------------------------

SCHEDULE_REQUESTS = [
    # SPEC section 2 and the brief
    ("Schedule a call with Dana Scully tomorrow at 10am", "Dana Scully", _at(10, days_ahead=1)),
    ("schedule a call with Dana tomorrow at 10am", "Dana", _at(10, days_ahead=1)),
    ("book a meeting with Fox Mulder next Monday 9:30", "Fox Mulder", _at(9, 30, weekday=0)),
    ("set up a call with dana thursday", "Dana", {"weekday": 3}),
    ("schedule a call with dana scully tomorrow at ten am", "Dana Scully", _at(10, days_ahead=1)),
    ("call Dana tomorrow", "Dana", {"days_ahead": 1}),
    ("meet Fox Mulder on Friday at noon", "Fox Mulder", _at(12, weekday=4)),
    # more
    ("SCHEDULE A CALL WITH DANA SCULLY TOMORROW AT 10AM", "Dana Scully", _at(10, days_ahead=1)),
    ("arrange an appointment with Dr. Scully on 24 November", "Dr Scully", {"date": (11, 24, None)}),
    ("I need a meeting with O'Brien next week", "O'Brien", {"next_week": True}),
    ("can you book me a 30 minute call with walter skinner thursday at 2pm", "Walter Skinner", _at(14, weekday=3)),
    ("um so schedule a call with uh dana next tuesday at half past two", "Dana", _at(14, 30, weekday=1)),
    ("schedule a call", None, {}),
    ("book 2 calls", None, {}),
    ("call with agent 007", "Agent", {}),
    ("book a call for Dana tomorrow", "Dana", {"days_ahead": 1}),
    ("book a call for tomorrow at 3", None, _at(15, days_ahead=1)),
    ("set up a meeting with April tomorrow", "April", {"days_ahead": 1}),
    ("schedule a call with José Núñez tomorrow", "José Núñez", {"days_ahead": 1}),
    ("please call Sun Li at 3", "Sun Li", _at(15)),
    ("schedule a call with dana, she's great", "Dana", {}),
    ("schedule a call with dana and fox", "Dana", {}),
    ("schedule a call with dana's assistant please", "Dana's Assistant", {}),
    ("book a call with dana may 5", "Dana", {"date": (5, 5, None)}),
    ("schedule a meeting with dana like tomorrow morning", "Dana", {"days_ahead": 1, "part_of_day": "morning"}),
    ("set up a quick zoom call with the team on friday", None, {"weekday": 4}),
    ("could you set up a catch up with Alex Krycek at 11", "Alex Krycek", _at(11)),
]


@pytest.mark.parametrize(("text", "lead", "expected"), SCHEDULE_REQUESTS)
def test_schedule_requests_give_the_lead_and_the_time(text: str, lead: str | None, expected: dict[str, Any]) -> None:
    result = understand(text, pending=False)
    assert (result.intent, result.lead, _fields(result.when)) == (SCHEDULE, lead, expected)


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        ("book it", CONFIRM, {}),  # a bare "book it" confirms: the engine answers that nothing is pending
        ("do it", CONFIRM, {}),
        ("yes", CONFIRM, {}),
        ("👍", CONFIRM, {}),
        ("no", REFUSE, {}),
        ("wait", HESITATE, {}),
        ("10am", UNCLEAR, _at(10)),  # a time without a scheduling verb, `when` kept
        ("tomorrow at 3pm", UNCLEAR, _at(15, days_ahead=1)),
        ("no, 3pm instead", UNCLEAR, _at(15)),
        ("can we move it?", UNCLEAR, {}),  # nothing to move
        ("another time", UNCLEAR, {}),
        ("cancel the call with dana", REFUSE, {}),
        ("don't schedule anything", REFUSE, {}),
        ("don't book a call with dana", REFUSE, {}),
        ("can you call me back later", HESITATE, {}),  # a deferral (it was UNCLEAR); both re-prompt
        ("call it a day", UNCLEAR, {}),
        ("what's the weather", QUESTION, {}),  # issue 12: a question (it was UNCLEAR)
        ("", UNCLEAR, {}),
    ],
)
def test_without_a_pending_proposal(text: str, intent: Intent, expected: dict[str, Any]) -> None:
    result = understand(text, pending=False)
    assert (result.intent, result.lead, _fields(result.when)) == (intent, None, expected)


@pytest.mark.parametrize("text", [c for c in CONFIRMATIONS if "book" not in c])
def test_confirmations_confirm_when_nothing_is_pending_too(text: str) -> None:
    """The engine needs CONFIRM to say "nothing is waiting" or "already booked"."""
    assert understand(text, pending=False).intent is CONFIRM


def test_the_lead_is_only_given_for_schedule_requests() -> None:
    assert understand("yes, with Dana at 3pm", pending=True).lead is None
    assert understand("book a call with Dana", pending=False).lead == "Dana"


# --- normalisation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "flat"),
    [
        ("Yesss!!!", "yes"),
        ("uh yeah sure", "yeah sure"),
        ("don\u2019t", "don't"),
        ("dont", "don't"),
        ("ten thirty", "10:30"),
        ("nine thirty am", "9:30 am"),
        ("half past two", "2:30"),
        ("quarter to ten", "9:45"),
        ("quarter past ten", "10:15"),
        ("ten oh five", "10:05"),
        ("three pm", "3 pm"),
        ("twenty five", "25"),
        ("november twenty fourth", "november 24"),
        ("the first of may", "the 1 of may"),
        ("give me a second", "give me a second"),
        ("that one works", "that one works"),
        ("book two thirty minute calls", "book 2 30 minute calls"),
        ("10.30 a.m.", "10.30 am"),
        ("3 P.M.", "3 pm"),
        ("three o'clock", "3 oclock"),
        ("👍🏽", "yes"),
        ("👎", "no"),
        ("🤔", "hmm"),
        ("🎉 yes 🎉", "yes"),
        ("e-mail", "e mail"),
        ("2026-11-24 11/24 10:30", "2026-11-24 11/24 10:30"),
        ("Dr. Scully", "dr scully"),
        ("ye\u200bs", "yes"),
        ("\x00yes\x07", "yes"),
        ("yes\u2028no\tok", "yes no ok"),
        ("uh-huh", "yes"),
        ("mm-hmm", "yes"),
        ("nuh-uh", "no"),
        ("book", "book"),
        ("tomorrow", "tomorrow"),
        ("goood", "good"),
        ("noooo", "no"),
        ("hmmmm", "hmm"),
        ("what?!", "what ?"),
        ("¿qué?", "qué ?"),
        ("\uff39\uff45\uff53\uff1f", "yes ?"),  # fullwidth
        ("x\u00b2", "x2"),
        ("well, so yes", "yes"),
        ("call dana_scully", "call dana scully"),
    ],
)
def test_normalize(raw: str, flat: str) -> None:
    assert normalize(raw).flat == flat


def test_normalize_keeps_clause_boundaries_for_names() -> None:
    """ "with Dana, she's great": the comma ends the name; `flat` and `tokens` drop it."""
    normalized = normalize("with Dana, she's great!")
    assert normalized.text == "with dana , she's great ,"
    assert normalized.flat == "with dana she's great"
    assert normalized.tokens == ("with", "dana", "she's", "great")


# --- properties ---------------------------------------------------------------------------------

NEGATIONS = frozenset({"no", "not", "don't", "wait", "cancel"})
VOCABULARY = [
    "yes", "yeah", "sure", "ok", "go", "ahead", "book", "it", "please", "thanks", "great", "perfect", "that",
    "works", "the", "call", "fine", "no", "not", "don't", "wait", "cancel", "never", "mind", "problem", "worries",
    "why", "a", "of", "course", "i", "do", "thing", "you", "bet", "👍", "uh", "um",
]  # fmt: skip
SEPARATORS = [" ", " ", " ", ", ", "! ", "? ", "... ", "\n"]
_IDIOM_RE = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, AFFIRMATIVE_IDIOMS), key=len, reverse=True)) + r")\b")


def _negations_outside_idioms(text: str) -> set[str]:
    """The negation words left once the idioms are removed clause by clause (an independent tokenizer)."""
    words: set[str] = set()
    for clause in re.split(r"[,.!?\n]", text.lower()):
        words.update(_IDIOM_RE.sub(" ", " ".join(clause.split())).split())
    return words & NEGATIONS


@settings(max_examples=400)
@given(st.text(), st.booleans())
def test_understand_never_raises(text: str, pending: bool) -> None:
    result = understand(text, pending=pending)
    assert isinstance(result.intent, Intent)
    assert result.when is None or isinstance(result.when, When)
    assert result.lead is None or (result.intent is SCHEDULE and result.lead.strip() == result.lead != "")


@pytest.mark.parametrize(
    "text",
    [
        "\ud800yes",  # a lone surrogate: st.text() never draws one
        "no\udfff",
        "\x00\x1f\x7f",
        "\u202eyes\u202c",
        "\r\n\r\n",
        "\U0010ffff",
        "\u0130\u01c5",  # lowercasing changes the length
        "a" * 4096,
        "9" * 4096,
        "👍" * 1024,
        "at " * 1365,
        "tomorrow " * 455,
        "no" + "?" * 4000,
    ],
    ids=lambda text: repr(text[:12]),
)
@pytest.mark.parametrize("pending", [True, False])
def test_odd_input_never_raises(text: str, pending: bool) -> None:
    assert isinstance(understand(text, pending=pending).intent, Intent)


@settings(max_examples=20, deadline=None)
@given(st.text(min_size=1000, max_size=4096), st.booleans())
def test_understand_never_raises_on_long_text(text: str, pending: bool) -> None:
    assert isinstance(understand(text, pending=pending).intent, Intent)


PARTS = st.lists(
    st.tuples(
        st.one_of(st.sampled_from(VOCABULARY), st.text(string.ascii_letters, min_size=1, max_size=5)),
        st.sampled_from(SEPARATORS),
    ),
    max_size=8,
)


@settings(max_examples=600)
@given(PARTS, st.sampled_from(sorted(NEGATIONS)), st.sampled_from(SEPARATORS), PARTS, st.booleans())
def test_a_negation_outside_an_idiom_never_confirms(
    before: list[tuple[str, str]], negation: str, separator: str, after: list[tuple[str, str]], pending: bool
) -> None:
    text = "".join(word + sep for word, sep in [*before, (negation, separator), *after])
    assume(_negations_outside_idioms(text))  # the negation may have landed inside an idiom ("not a problem")
    assert understand(text, pending=pending).intent is not CONFIRM


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["yes", "yeah", "sure", "ok", "go", "ahead", "please", "it", "👍"]), min_size=1))
def test_affirmative_words_alone_confirm(words: list[str]) -> None:
    assume(not {"go", "ahead", "please", "it"}.issuperset(words))
    assert understand(" ".join(words), pending=True).intent is CONFIRM


def test_a_long_input_is_handled_in_linear_time() -> None:
    """4,096 bytes (the engine's limit) of adversarial text: no regex backtracking blow-up."""
    text = ("schedule a call with dana tomorrow at 10am, no wait, not at 3 " * 80)[:4096]
    started = time.perf_counter()
    understand(text, pending=True)
    understand(text, pending=False)
    assert time.perf_counter() - started < 0.5


def test_the_package_exports_a_sorted_public_api() -> None:
    assert understanding.__all__ == sorted(understanding.__all__)
    assert set(understanding.__all__) == {"Intent", "Understanding", "When", "resolve_when", "understand"}


def test_intent_values_are_the_documented_strings() -> None:
    # issue 12 adds "question" and "correction" (a deferral is a hesitation, spec 4.3)
    assert [i.value for i in Intent] == [
        "confirm", "refuse", "hesitate", "reschedule", "schedule", "unclear", "question", "correction",
    ]  # fmt: skip
    assert Intent("confirm") is CONFIRM


def test_pending_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        understand("yes", True)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("10 works", _at(10)),
        ("yes 10 works", _at(10)),
        ("ok 10 it is", _at(10)),
        ("11 is fine", _at(11)),
    ],
)
def test_an_hour_that_opens_an_affirmative_answer_is_a_restated_time(text: str, when: dict[str, Any]) -> None:
    """The engine books when it is the proposal's own time and moves to it otherwise."""
    result = understand(text, pending=True)
    assert (result.intent, _fields(result.when), result.affirms) == (RESCHEDULE, when, True)


@pytest.mark.parametrize("text", ["10 is bad for me", "i'm busy at ten", "I'm not available then"])
def test_a_time_said_as_busy_is_rejected(text: str) -> None:
    result = understand(text, pending=True)
    assert (result.intent, result.when) == (RESCHEDULE, None)


@pytest.mark.parametrize(
    ("text", "words"),
    [("on smarch 3rd", "smarch 3rd"), ("decmber the 3rd at 10", "decmber the 3rd"), ("novmber 30", "novmber 30")],
)
def test_a_day_after_a_misspelt_month_is_asked_about(text: str, words: str) -> None:
    result = understand(text, pending=True)
    assert (result.when, result.unreadable) == (None, words)


@pytest.mark.parametrize(
    "text",
    ["I'm available", "I can make that work", "that would work", "count me in", "yeah that's perfect thanks a lot"],
)
def test_more_idioms_confirm(text: str) -> None:
    assert understand(text, pending=True).intent is CONFIRM


@pytest.mark.parametrize(
    ("text", "cancels"),
    [("cxl", True), ("remove the call from my calendar", True), ("can you call off the meeting with dana", True)],
)
def test_cancellations_in_other_words(text: str, cancels: bool) -> None:
    result = understand(text, pending=True)
    assert (result.intent, result.cancels) == (REFUSE, cancels)


@pytest.mark.parametrize(
    ("text", "lead", "when"),
    [
        ("hey, book Tom Baker for wednesday at 2", "Tom Baker", _at(14, weekday=2)),
        ("need a call w Jo Park tomorrow 2pm", "Jo Park", _at(14, days_ahead=1)),
        ("schedule me with Kim Lee tomorrow at 9", "Kim Lee", _at(9, days_ahead=1)),
        ("can you book me in with Dr. Patel on Thursday at 2?", "Dr Patel", _at(14, weekday=3)),
        ("put a call in with Sam Wu on wednesday at 1", "Sam Wu", _at(13, weekday=2)),
        ("could you set one up with Ana De La Cruz wed at 3:30?", "Ana De La Cruz", _at(15, 30, weekday=2)),
    ],
)
def test_more_ways_to_ask_for_a_call(text: str, lead: str, when: dict[str, Any]) -> None:
    result = understand(text, pending=False)
    assert (result.intent, result.lead, _fields(result.when)) == (SCHEDULE, lead, when)


@pytest.mark.parametrize(
    ("zone", "words"),
    [
        ("America/New_York", "Eastern Time (New York)"),
        ("Europe/Berlin", "Central European Time (Berlin)"),
        ("America/Los_Angeles", "Pacific Time (Los Angeles)"),
        ("Asia/Kolkata", "Asia/Kolkata time"),
        ("UTC", "UTC"),
    ],
)
def test_the_timezone_answer_names_the_zone_in_words(zone: str, words: str) -> None:
    assert zone_in_words(zone) == words


def test_the_engine_answers_the_timezone_question_in_words(redis_client: redis.Redis, clock: FakeClock) -> None:
    """Issue 12: "is that eastern time?" is answered with the tenant's zone in words; nothing moves."""
    calendar = InMemoryCalendar(Schedule(timezone="America/New_York"))
    engine = Engine(redis_client, calendar=calendar, clock=clock)
    proposed = engine.handle("tz", "schedule a call with Dana Scully tomorrow at 10am")
    reply = engine.handle("tz", "is that eastern time?")
    assert (reply.outcome, reply.proposal) == ("reprompted", proposed.proposal)
    assert reply.text.startswith("All times are in Eastern Time (New York). ")


@pytest.mark.parametrize(
    ("text", "when"),
    [
        ("four in the afternoon", _at(16)),  # not the afternoon's first slot
        ("how about 9 this morning", _at(9, days_ahead=0)),
        ("lunch time tomorrow", _at(12, days_ahead=1)),
        ("can't make it tomorrow, can we do wednesday?", {"weekday": 2}),  # never tomorrow
    ],
)
def test_spoken_and_idiomatic_times(text: str, when: dict[str, Any]) -> None:
    result = understand(text, pending=True)
    assert (result.intent, _fields(result.when)) == (RESCHEDULE, when)


@pytest.mark.parametrize("text", ["cancel the 10am", "please delete the booking", "kill it"])
def test_a_cancellation_naming_the_time_cancels(text: str) -> None:
    assert understand(text, pending=True).intent is REFUSE


@pytest.mark.parametrize(("text", "words"), [("book a call with Priya on 12.3", "12.3"), ("3.5 hours later", "3.5")])
def test_a_dotted_number_that_is_no_clock_time_is_asked_about(text: str, words: str) -> None:
    assert understand(text, pending=True).unreadable == words


@pytest.mark.parametrize(
    "text",
    [
        "yes please book the call with Dana",
        "yes please book the call with Dana Scully",
        "ok go ahead and schedule the call with dana",
        "sure, book Dana in",
        "yes, book it with Dana",
    ],
)
def test_a_confirmation_naming_the_pending_lead_confirms(text: str) -> None:
    assert understand(text, pending=True).intent is not CONFIRM  # without the lead: who is Dana?
    assert understand(text, pending=True, lead="Dana Scully").intent is CONFIRM


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("yes please book the call with Priya", UNCLEAR),  # someone else: never a yes
        ("yes, book it with Priya Nair", Intent.CORRECTION),  # a change of person
        ("schedule a call with Dana Scully friday 2pm", SCHEDULE),  # a new request, no yes in it
        ("not Dana, Priya Nair", Intent.CORRECTION),  # the named lead is the one rejected
        ("yes please book the call with Dana Smith", UNCLEAR),  # another Dana
    ],
)
def test_naming_another_lead_or_refusing_is_no_confirmation(text: str, intent: Intent) -> None:
    assert understand(text, pending=True, lead="Dana Scully").intent is intent


def test_a_restated_lead_and_time_affirms_the_time() -> None:
    result = understand("yes, book Dana for Tuesday at 10", pending=True, lead="Dana Scully")
    assert (result.intent, result.affirms, _fields(result.when)) == (RESCHEDULE, True, _at(10, weekday=1))


@pytest.mark.parametrize(
    "text", ["happy with that", "i'll take it", "sure thnx", "go ahead, thank u", "Tuesday's fine"]
)
def test_more_confirmations(text: str) -> None:
    result = understand(text, pending=True)
    assert result.intent is CONFIRM or (result.intent is RESCHEDULE and result.affirms)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("hmm, I'm not sure about tuesday", HESITATE),  # the day is doubted, not asked for
        ("Don't book anything just yet", HESITATE),  # a deferral
        ("that's too early for me", RESCHEDULE),
    ],
)
def test_doubts_deferrals_and_too_early(text: str, intent: Intent) -> None:
    assert understand(text, pending=True).intent is intent


@pytest.mark.parametrize(
    ("text", "lead", "hour"),
    [
        ("book a call with Ada Byron between 3 and 4pm on friday", "Ada Byron", 15),
        ("set up a call with Liam Neeson 10-11am wednesday", "Liam Neeson", 10),
        ("book a 45 minute call with Jay Kay tomorrow at 11", "Jay Kay", 11),
        ("book a call with Ian Gold at 1030 tomorrow", "Ian Gold", 10),
    ],
)
def test_requests_with_ranges_compact_times_and_durations(text: str, lead: str, hour: int) -> None:
    result = understand(text, pending=False)
    assert (result.intent, result.lead, result.when and result.when.hour) == (SCHEDULE, lead, hour)
