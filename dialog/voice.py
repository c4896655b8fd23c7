"""Voice: what the next turn is expected to contain, and when a spoken "yes" may book (spec 4.4).

Recognisers hear better when told what to expect: IVRs use SRGS grammars, Lex and Twilio take
phrase hints. ``expectations(state, kind)`` gives, for the conversation's state, the phrases a
user is expected to say, as hints (``phrases``), a JSGF grammar (pocketsphinx and most offline
recognisers) and SRGS XML (VoiceXML platforms). One source: every phrase offered is run
through ``understand`` when the grammars are built, and kept only if it is understood as the
intent it is listed under, so a phrase the grammar lets through is never read as something
else (a test walks them all and fails if any had to be dropped).

``spoken_yes_is_sure`` is the rule a confirmation on voice must pass to book: the transcript is
made of whole expected confirmations end to end ("okay sounds good"; not a fragment such as "go",
"we do" or "yes now"), its confidence is at or
above the tenant's threshold (None: unknown, counted as confident), and no alternative at or
above 0.2 refuses or hesitates. Otherwise the engine asks an explicit yes-or-no question.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from dialog.machine import State
from dialog.understanding import Intent, understand
from dialog.understanding.normalize import normalize

# An alternative at or above this confidence that refuses or hesitates vetoes a spoken yes.
ALTERNATIVE_VETO = 0.2
DEFAULT_CONFIDENCE = 0.6

CONFIRM = (
    "yes", "yes please", "yeah", "yep", "yup", "sure", "yes sure", "yeah sure", "okay", "ok",
    "go ahead", "yes go ahead", "sure go ahead", "book it", "yes book it", "please book it",
    "go ahead and book it", "sounds good", "that sounds good", "that works", "yes that works",
    "that works for me", "that's fine", "fine", "perfect", "great", "absolutely", "definitely",
    "correct", "confirm", "yes confirm", "please do", "do it", "all right", "alright",
    "of course", "yes that's fine", "sure thing", "yes definitely", "let's do it",
)  # fmt: skip
REFUSE = (
    "no", "nope", "no thanks", "no thank you", "cancel", "cancel it", "don't book it",
    "never mind", "no don't", "no cancel it", "don't", "no not that",
)  # fmt: skip
HESITATE = (
    "not yet", "wait", "hold on", "hold on a second", "let me think", "i'm not sure",
    "not sure", "maybe", "maybe later", "not now", "not right now", "give me a minute",
    "let me check", "one moment", "hmm", "i don't know", "wait a second",
)  # fmt: skip
# More of what people say, from the spoken-loop corpus (tests/voice_loop.py): offered only when understood.
_MORE_CONFIRM = (
    "okay book it", "sounds great", "works for me", "go for it", "fine by me", "perfect thanks", "great thanks",
    "excellent", "certainly", "right", "confirmed", "please confirm", "let's do that", "yes let's do it",
    "book the call", "schedule it", "yes schedule it", "yes please book the call", "that's perfect",
    "that would be great", "lovely", "brilliant", "awesome", "cool", "nice", "no problem", "no worries", "why not",
    "sure why not", "i don't mind", "put it in", "pencil it in", "lock it in", "see you then", "sounds like a plan",
    "good for me", "all good", "agreed", "deal", "proceed", "yes proceed", "yes thank you", "yes thanks",
    "okay thanks", "okay great", "okay sounds good", "yeah that works", "yeah go ahead", "yep that's fine",
    "sure book it", "yes absolutely", "yes of course", "that's right", "exactly", "book it please",
    "go ahead please", "yes do it", "okay go ahead", "alright go ahead", "alright book it", "great book it",
    "wonderful", "fantastic", "yes perfect", "yes that's great", "you bet",
)  # fmt: skip
_MORE_REFUSE = (
    "don't do that", "nah", "i don't think so", "please don't", "do not book that", "cancel that", "forget it",
    "forget about it", "scratch that", "drop it", "call it off", "stop", "no stop", "no way", "absolutely not",
    "definitely not", "certainly not", "not at all", "not really", "no not really", "i'd rather not",
    "i changed my mind", "no i changed my mind", "change of plans", "skip it", "i'll pass", "negative", "no no no",
    "no sorry", "sorry no", "don't do it", "no don't book it", "please cancel",
)  # fmt: skip
_MORE_HESITATE = (
    "wait a minute", "hang on", "hang on a second", "hold up", "let me think about it", "let me check my calendar",
    "i need to think about it", "i need to check", "i need to ask my boss", "give me a moment", "give me a second",
    "just a moment", "just a second", "one second", "one moment please", "maybe not", "perhaps", "probably not",
    "i'm not certain", "i'm undecided", "don't book it yet", "i'll get back to you", "i'll let you know",
    "i'll confirm later", "not today", "sorry not now", "hmm let me see", "wait no", "no wait",
    "hold on let me check", "not so fast", "slow down", "i have to check first", "let's wait", "yes but not now",
    "ok wait", "yeah hold on", "okay let me check", "sure but not yet", "i don't know yet", "not just yet",
    "don't do that yet", "not for now", "i'm not ready",  # deferrals: hesitations since issue 12
)  # fmt: skip
MOVE = ("move it", "can we move it", "another time", "a different time", "change the time", "reschedule")
# Times and days the grammar offers in moves; the phrase list carries one sample of each shape.
HOURS = ("nine", "ten", "eleven", "twelve", "one", "two", "three", "four")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "tomorrow")
MOVE_TO = ("move it to {time}", "how about {time}", "{time} instead", "make it {time}", "{day} at {time}")
BOOKED_MOVE = ("move the call", "move the call to {time}", "can we move the call to {time}")
BOOKED_CANCEL = ("cancel the call", "call it off", "please cancel the call")
RESCHEDULE_TO = ("{time}", "{day}", "{day} at {time}", "how about {day} at {time}")

_SAMPLE_TIMES = ("three p m", "ten thirty a m", "half past three", "quarter to four", "two o'clock", "noon")


@dataclass(frozen=True, slots=True)
class Expectations:
    """What the next turn is expected to contain: ASR hints and the same as JSGF and SRGS grammars."""

    phrases: tuple[str, ...]
    jsgf: str
    srgs: str


def expectations(state: State, kind: str = "book") -> Expectations:
    """The expectations for a conversation in ``state`` (``kind``: what a pending proposal is for)."""
    return _built(state, kind)


def dropped() -> list[tuple[str, str, str]]:
    """Phrases listed for an intent but not understood as it (state, intent, phrase): must be empty."""
    return [miss for state, kind in _SITUATIONS for miss in _rules(state, kind)[1]]


def spoken_yes_is_sure(
    text: str, confidence: float | None, alternatives: Sequence[tuple[str, float]], threshold: float
) -> bool:
    """Whether a confirmation heard on voice may book (spec 4.4; see the module docstring)."""
    if confidence is not None and confidence < threshold:
        return False
    if not _whole_phrases(tuple(normalize(text).flat.split())):
        return False  # a fragment ("go", "we do", "yes now") or an unexpected sentence: ask yes or no
    return not any(score >= ALTERNATIVE_VETO and _doubts(alt) for alt, score in alternatives)


# A confirmation that sounds like a refusal is not offered on voice: "no problem", "i don't
# mind" and "why not" were heard for "not that one" and "change of plans" (benchmarks/voice.py).
_SOUNDS_NEGATIVE = frozenset({"no", "not", "don't", "never", "nope"})


def _spoken_confirmations() -> list[str]:
    confusable = _confusable_starts()
    return [
        p
        for p in CONFIRM + _MORE_CONFIRM
        if _SOUNDS_NEGATIVE.isdisjoint(p.split()) and p.split()[0] not in confusable
    ]


@functools.cache
def _confusable_starts() -> frozenset[str]:
    """First words that a hesitation shares with a confirmation, and that do not confirm by
    themselves: "let's wait" was heard as "let's do it" at 0.71 (benchmarks/voice.py). Such a
    confirmation is not offered on voice: a yes misheard as a hesitation only asks again, a
    hesitation misheard as a yes would book. Refusals are left their twins ("please don't",
    "please do"): without "please do" in the grammar a spoken "please do" is heard as "please
    don't", which cancels."""
    starts = {p.split()[0] for p in HESITATE + _MORE_HESITATE}
    return frozenset(w for w in starts if understand(w, pending=True).intent is not Intent.CONFIRM)


def _doubts(text: str) -> bool:
    return understand(text, pending=True).intent in (Intent.REFUSE, Intent.HESITATE) if text.strip() else False


def spoken_act_is_sure(confidence: float | None, alternatives: Sequence[tuple[str, float]], threshold: float) -> bool:
    """For other words that confirm (a restated time, "cancel the call" to a cancellation): the
    confidence and the alternatives' veto of spec 4.4, without the whole-phrase rule."""
    if confidence is not None and confidence < threshold:
        return False
    return not any(score >= ALTERNATIVE_VETO and _doubts(alt) for alt, score in alternatives)


def _whole_phrases(tokens: tuple[str, ...]) -> bool:
    """Whether the words are expected confirmations end to end ("okay" + "sounds good"), nothing else."""
    ends = {0}
    for i in range(len(tokens)):
        if i in ends:
            ends |= {i + len(p) for p in _confirmations() if tokens[i : i + len(p)] == p}
    return bool(tokens) and len(tokens) in ends


@functools.cache
def _confirmations() -> frozenset[tuple[str, ...]]:
    confirming = (p for p in _spoken_confirmations() if understand(p, pending=True).intent is Intent.CONFIRM)
    return frozenset(tuple(normalize(p).flat.split()) for p in confirming)


# --- building the grammars --------------------------------------------------------------------

_SITUATIONS = (
    (State.IDLE, "book"),
    (State.AWAITING_CONFIRMATION, "book"),
    (State.AWAITING_CONFIRMATION, "move"),
    (State.AWAITING_CONFIRMATION, "cancel"),
    (State.RESCHEDULING, "book"),
    (State.RESCHEDULING, "move"),
    (State.DONE, "book"),
    (State.DONE, "booked"),
)
_TIME_RULE = (
    "<time> = <hour> [<minutes>] [<meridiem>] | <hour> o'clock | half past <hour> | quarter past <hour>"
    " | quarter to <hour> | noon;"
)


@functools.cache
def _rules(state: State, kind: str) -> tuple[dict[str, list[str]], list[tuple[str, str, str]]]:
    """Templates per rule name for the situation, and the phrases that failed the understanding check."""
    rules: dict[str, list[str]] = {}
    if state is State.AWAITING_CONFIRMATION:
        rules = {
            "confirm": _spoken_confirmations(),
            "refuse": list(REFUSE + _MORE_REFUSE),
            "hesitate": list(HESITATE + _MORE_HESITATE),
        }
        rules["move"] = list(MOVE) + list(MOVE_TO)
        if kind == "cancel":  # "cancel the call" answers "shall I cancel your call?" with a yes
            rules["cancel"] = list(BOOKED_CANCEL)
    elif state is State.RESCHEDULING:
        rules = {"move": list(RESCHEDULE_TO), "refuse": ["no", "cancel", "never mind"]}
    elif kind == "booked":
        rules = {"move": list(BOOKED_MOVE), "cancel": list(BOOKED_CANCEL), "confirm": ["yes", "okay"]}
    else:
        rules = {"hesitate": ["hmm", "wait"], "refuse": ["no", "no thanks"]}
    misses = [(state.value, name, p) for name, t in rules.items() for p in _samples(t) if not _means(p, name)]
    return rules, misses


_INTENTS = {
    "confirm": {Intent.CONFIRM},
    "refuse": {Intent.REFUSE},
    "hesitate": {Intent.HESITATE},
    "move": {Intent.RESCHEDULE},
    "cancel": {Intent.REFUSE},
}


def _means(phrase: str, rule: str) -> bool:
    intent = understand(phrase, pending=True).intent
    if rule == "cancel":  # "cancel the call" after a booking: a refusal that names a cancellation
        return intent is Intent.REFUSE and understand(phrase, pending=True).cancels
    return intent in _INTENTS[rule] or (rule == "move" and intent is Intent.SCHEDULE)


def _samples(templates: Iterable[str]) -> list[str]:
    """Each template with every sample time and a day filled in: what the understanding check reads."""
    out: list[str] = []
    for template in templates:
        if "{" not in template:
            out.append(template)
            continue
        for time, day in itertools.product(_SAMPLE_TIMES, DAYS[:3]):
            out.append(template.format(time=time, day=day))
    return out


@functools.cache
def _built(state: State, kind: str) -> Expectations:
    rules, misses = _rules(state, kind)
    failed = {p for _, _, p in misses}
    kept = {name: [t for t in templates if not set(_samples([t])) & failed] for name, templates in rules.items()}
    phrases = tuple(dict.fromkeys(p for templates in kept.values() for p in _hint(templates)))
    return Expectations(phrases, _jsgf(kept), _srgs(kept))


def _hint(templates: list[str]) -> list[str]:
    return [t.format(time="three p m", day="thursday") for t in templates]


def _jsgf_alternative(template: str) -> str:
    return template.replace("{time}", "<time>").replace("{day}", "<day>")


def _jsgf(rules: dict[str, list[str]]) -> str:
    lines = ["#JSGF V1.0;", "grammar dialog;", "public <answer> = " + " | ".join(f"<{n}>" for n in rules) + ";"]
    for name, templates in rules.items():
        lines.append(f"<{name}> = " + " | ".join(_jsgf_alternative(t) for t in templates) + ";")
    lines += [
        _TIME_RULE,
        "<hour> = " + " | ".join(HOURS) + ";",
        "<minutes> = fifteen | thirty | forty five;",
        "<meridiem> = a m | p m;",
        "<day> = " + " | ".join(DAYS) + ";",
    ]
    return "\n".join(lines) + "\n"


def _srgs_item(template: str) -> str:
    parts = []
    for piece in template.replace("{time}", "\0time\0").replace("{day}", "\0day\0").split("\0"):
        if piece in ("time", "day"):
            parts.append(f'<ruleref uri="#{piece}"/>')
        elif piece.strip():
            parts.append(escape(piece.strip()))
    return "<item>" + " ".join(parts) + "</item>"


def _srgs(rules: dict[str, list[str]]) -> str:
    body = ['<rule id="answer" scope="public"><one-of>']
    body += [f'<item><ruleref uri="#{name}"/></item>' for name in rules]
    body.append("</one-of></rule>")
    for name, templates in rules.items():
        body.append(f'<rule id="{name}"><one-of>' + "".join(_srgs_item(t) for t in templates) + "</one-of></rule>")
    hours = "".join(f"<item>{h}</item>" for h in HOURS)
    body.append(
        '<rule id="time"><one-of>'
        f'<item><one-of>{hours}</one-of><item repeat="0-1"><one-of><item>fifteen</item><item>thirty</item>'
        "<item>forty five</item></one-of></item>"
        '<item repeat="0-1"><one-of><item>a m</item><item>p m</item></one-of></item></item>'
        f"<item>half past <one-of>{hours}</one-of></item><item>noon</item></one-of></rule>"
    )
    body.append('<rule id="day"><one-of>' + "".join(f"<item>{d}</item>" for d in DAYS) + "</one-of></rule>")
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<grammar xmlns="http://www.w3.org/2001/06/grammar" '
        'version="1.0" xml:lang="en-US" mode="voice" root="answer">'
    )
    return head + "".join(body) + "</grammar>\n"
