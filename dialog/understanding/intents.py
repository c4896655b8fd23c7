"""Intents: the confirmation resolver, which runs first while a proposal is pending, and the classifier.

While something is pending (a proposal awaits confirmation, or a new time is being asked for),
the first rule that applies wins:

1. a fresh schedule request naming someone with "with X" ("schedule a call with Fox Mulder
   friday 2pm") is SCHEDULE: the engine replaces the proposal. "book the call with Dana" is not
   fresh: "the call" is the pending one;
2. an accepted day or time is RESCHEDULE with ``when`` ("yes but make it 11am", "no, 3pm instead");
3. hesitation is HESITATE ("not yet", "wait", "hmm", "maybe", "yes but not now", "ok wait", "?");
4. a negated move ("don't move it", "no changes") is REFUSE if a refusal remains, else UNCLEAR;
   a change of mind ("changed my mind", "change of plans") is REFUSE;
5. a rejected day or time ("not thursday", "3pm doesn't work") or move words ("can we move
   it?", "another time", "no, another time") is RESCHEDULE with ``when=None``;
6. refusal is REFUSE ("no", "nope", "cancel", "never mind", "no, don't book it");
7. CONFIRM only when every token is affirmative or harmless and at least one is affirmative;
   the same with a "?" ("yes?", a lone "?") is HESITATE; anything else is UNCLEAR.

Nothing pending: SCHEDULE; a day or time without a scheduling verb is UNCLEAR (``when`` kept);
then rules 3, 4, 6 and 7. Move words mean nothing then and end UNCLEAR.

Speed: phrases are matched on space-padded normalised text (word boundaries are single spaces),
and each phrase list is skipped outright unless the utterance holds one of its last words, so a
short answer costs around ten microseconds and a full request a few tens.

Choices:
- Affirmative idioms (`AFFIRMATIVE_IDIOMS`: "no problem", "why not", "not a problem", ...) are
  read as "yes" before anything looks for negation, only within one clause ("no, problem" is not
  the idiom). A "?" right after an idiom is part of it ("why not?").
- Mixed yes and no ("yes no", "yeah no") is REFUSE: negation wins, and "yeah no" is a refusal in
  speech. Negations that are not refusals ("isn't", "doesn't", "nothing") never confirm: UNCLEAR.
- "i'm good"/"i'm fine" are not confirmations (they often mean "no thanks"): UNCLEAR.
- Filler-only text ("um") and empty text are UNCLEAR.
- The lead is the words after "with" (else after "call"/"meet" used as a verb on a person, else
  after "for"), at most four, stopping at a day or time word, a preposition, a pronoun, a digit
  or number word, a month name before a number, or clause punctuation; title-cased.
"""

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from .normalize import MONTHS, NUMBER_WORDS, normalize, vocabulary
from .times import TIME_WORDS, TimeScan, When, scan


class Intent(enum.StrEnum):
    """What an answer means for the conversation.

    CONFIRM: book the pending proposal. REFUSE: drop it. HESITATE: ask again, unchanged.
    RESCHEDULE: move the proposal (to ``when``, or the next free slot). SCHEDULE: a new request
    (``lead``, ``when``). UNCLEAR: anything else; never read as yes.
    """

    CONFIRM = "confirm"
    REFUSE = "refuse"
    HESITATE = "hesitate"
    RESCHEDULE = "reschedule"
    SCHEDULE = "schedule"
    UNCLEAR = "unclear"


@dataclass(frozen=True, slots=True)
class Understanding:
    """The intent of one utterance, the time expression found in it (if any), and, for SCHEDULE, the lead."""

    intent: Intent
    when: When | None
    lead: str | None
    # A refusal that names a cancellation ("cancel the call", "call it off"): after a booking,
    # that proposes cancelling the call, where a bare "no" does not.
    cancels: bool = field(default=False, compare=False)


class _Phrases:
    """Whole-word phrases matched on space-padded normalised text, skipped unless a token could end one."""

    def __init__(self, *phrases: str) -> None:
        alternation = "|".join(re.escape(p) for p in sorted(set(phrases), key=len, reverse=True))
        self._pattern = re.compile(f" (?:{alternation})(?= )")
        self._last_words = frozenset(p.rsplit(" ", 1)[-1] for p in phrases)

    def search(self, padded: str, tokens: Iterable[str]) -> re.Match[str] | None:
        return None if self._last_words.isdisjoint(tokens) else self._pattern.search(padded)


def _each(firsts: Iterable[str], seconds: Iterable[str]) -> tuple[str, ...]:
    """Every "first second" phrase."""
    return tuple(f"{a} {b}" for a in firsts for b in seconds)


AFFIRMATIVE_IDIOMS: Final = (
    "no problem", "no problemo", "no problems", "no prob", "no probs", "no worries", "not a problem",
    "why not", "of course", "no doubt", "i don't mind", "don't mind", "do not mind", "no objection",
    "no objections", "sure thing", "you bet",
)  # fmt: skip
_IDIOM: Final = re.compile(
    " (?:" + "|".join(re.escape(p) for p in sorted(AFFIRMATIVE_IDIOMS, key=len, reverse=True)) + r")(?: \?)?(?= )"
)
_IDIOM_FIRST_WORDS: Final = frozenset(p.split()[0] for p in AFFIRMATIVE_IDIOMS)
_IDIOM_LAST_WORDS: Final = frozenset(p.split()[-1] for p in AFFIRMATIVE_IDIOMS)

_AFFIRMATIVE: Final = vocabulary(
    "yes yeah yea yeh ye yep yup ya yah yay yas sure ok okay okey okie k kk alright allright aight fine "
    "great perfect good excellent awesome cool correct right absolutely definitely certainly indeed affirmative "
    "confirm confirmed agreed agree deal exactly lovely brilliant nice sweet wonderful fantastic super works "
    "go do book schedule proceed approve approved accept accepted dokey love lgtm"
)
_HARMLESS: Final = vocabulary(
    "it that that's this the a call meeting appointment one please pls plz thanks thank you thx ty cheers i we "
    "me us ahead let's sounds looks seems for then and just so well oh ah now is it's be would will that'd "
    "i'd like all very much really totally on in to by sir ma'am mate"
)
_AFFIRMATIVE_OR_HARMLESS: Final = _AFFIRMATIVE | _HARMLESS
_REFUSALS: Final = vocabulary(
    "no nope nah naw nay cancel cancelled canceled never nevermind don't not stop forget skip abort negative "
    "decline declined can't cannot won't pass"
)
_REFUSAL_PHRASES: Final = _Phrases("scratch that", "drop it", "call it off")
_CANCELLATION: Final = _Phrases("cancel", "cancel it", "call it off", "call off", "drop it", "scrap it", "scratch that")
_CHANGE_OF_MIND: Final = _Phrases("changed my mind", "change of mind", "change of plan", "change of plans")
_HESITATION: Final = _Phrases(
    "not yet", "wait", "waiting", "hold on", "hold up", "hang on", "hm", "hmm", "mm", "maybe", "perhaps",
    "possibly", "probably", "not sure", "unsure", "not certain", "uncertain", "undecided", "not now",
    "don't know", "do not know", "dunno", "idk", "no idea", "think about it", "thinking", "get back to you",
    "not so fast", "slow down", "a few minutes",
    *_each(("let me",), ("think", "check", "see", "look", "confirm", "ask", "get back")),
    *_each(("i need to", "i have to"), ("think", "check", "ask")),
    *_each(("1", "one", "a", "just a", "give me a"), ("sec", "second", "moment", "minute")),
    *_each(("give me",), ("1 minute", "2 minutes", "5 minutes", "10 minutes", "a few minutes", "a moment")),
)  # fmt: skip
_LONE_LATER: Final = re.compile(r"(?:maybe |perhaps )?later(?: please)?(?: \?)*")
_MOVES: Final = vocabulary("move moving reschedule rescheduling change changes changing push postpone shift")
_NEGATED_MOVE: Final = re.compile(
    r" (?:(?:don't|do not|no need to|not|never|won't|can't|cannot)(?: \S+)? (?:"
    + "|".join(sorted(_MOVES, key=len, reverse=True))
    + r")|no changes?)(?= )"
)
_RESCHEDULE: Final = _Phrases(
    "move", "moving", "reschedule", "rescheduling", "postpone", "push", "shift", "bump", "delay", "rearrange",
    "change", "switch", "later", "earlier", "sooner", "busy", "unavailable", "something else", "anything else",
    "what else", "other option", "other options", "alternative", "alternatives", "bad time", "not a good time",
    "not good for me", "not available", "not free",
    *_each(("another", "different", "other", "new", "alternative", "some other"),
           ("time", "times", "day", "days", "date", "dates", "slot", "slots", "one", "ones", "option", "options")),
    *_each(("next",), ("slot", "one", "available", "free")),
    *_each(("doesn't", "does not", "won't", "will not", "wouldn't", "would not"), ("work",)),
)  # fmt: skip

_VERBS: Final = r"schedule|book|set up|setup|arrange|organi[sz]e|plan|add|create|make|put in|line up|get|need|want"
_NOUNS: Final = (
    r"calls?|meetings?|appointments?|appt|chat|demo|session|sync|catch ?up|conversation|conference|meet|slot"
)
_PRONOUN: Final = r"(?:me|us|you|him|her|them|it) "
_CALL_OPENERS: Final = r"please|pls|you|to|let's|and|i'll|we'll|gonna|wanna|i|we|then|also"
_SCHEDULE: Final = re.compile(
    rf" (?P<verb>{_VERBS})(?: (?!with )\S+){{0,3}}? (?P<noun>{_NOUNS})(?= )"
    rf"| (?:{_NOUNS}) with (?!{_PRONOUN})[^\W\d_]"
    rf"| (?P<verb2>schedule|book|arrange|set up|setup|organi[sz]e)(?: (?:it|a time|some time|time|something))? with "
    rf"(?!{_PRONOUN})[^\W\d_]"
    rf"| (?:(?P<opener>{_CALL_OPENERS}) )?(?P<call>call|meet|ring|phone) (?P<who>[^\W\d_][\w']*)"
)
_SCHEDULE_HINTS: Final = vocabulary(
    "schedule book set setup arrange organise organize plan add create make put line get need want "
    "call calls meeting meetings appointment appointments appt chat demo session sync catch catchup "
    "conversation conference meet slot ring phone"
)
_NEGATED_BEFORE: Final = re.compile(
    r"\b(?:don't|do not|not|never|no need to|cancel|cancelled|forget|stop|without|won't|can't|cannot|didn't"
    r"|doesn't|shouldn't)(?: \S+){0,2} $"
)
_DEFINITE: Final = vocabulary("the that this our my your")
_WITH: Final = re.compile(r" with ")
_FOR: Final = re.compile(r" for ")
_CALL_VERB: Final = re.compile(rf"(?:^ | (?:{_CALL_OPENERS}) )(?:call|meet|ring|phone) ")
_NAME_IF_NOT_BEFORE_NUMBER: Final = frozenset(MONTHS) | {"mon", "wed", "weds", "sat", "sun"}
_NOT_A_NAME: Final = (
    (TIME_WORDS - _NAME_IF_NOT_BEFORE_NUMBER)
    | NUMBER_WORDS
    | vocabulary(
        "a an the my our your his her their its me us you him them it myself someone somebody anyone "
        "at on for in by from to around about before after until till next this that these those and or but "
        "with without of via over using as re regarding is are was will would can could should please pls "
        "thanks thank yes no ok okay like well um uh oh so now then if because who which asap soon sometime "
        "some later earlier early late again back instead call calls meeting meetings appointment chat demo "
        "session sync here there"
    )
)
_MAX_NAME_WORDS: Final = 4


class _Said(NamedTuple):
    text: str  # normalised and space-padded, with "," clause tokens: for names
    plain: str  # normalised and space-padded, without clause tokens: for requests
    padded: str  # plain with the affirmative idioms read as "yes"
    tokens: tuple[str, ...]  # padded, split
    scan: TimeScan


class _Request(NamedTuple):
    lead: str | None
    replaces_proposal: bool  # a fresh request ("a call", not "the call") naming someone with "with X"


def understand(text: str, *, pending: bool) -> Understanding:
    """Classify ``text``; ``pending`` is True while a proposal or a new time is awaited. Never raises."""
    said = _read(text)
    request = _schedule_request(said)
    intent = _pending_intent(said, request) if pending else _idle_intent(said, request)
    lead = request.lead if request is not None and intent is Intent.SCHEDULE else None
    cancels = intent is Intent.REFUSE and _CANCELLATION.search(said.padded, said.tokens) is not None
    return Understanding(intent, said.scan.when, lead, cancels)


def _read(text: str) -> _Said:
    normalized = normalize(text)
    found = scan(normalized.tokens)
    plain = f" {normalized.flat} "
    if _IDIOM_FIRST_WORDS.isdisjoint(normalized.tokens) or _IDIOM_LAST_WORDS.isdisjoint(normalized.tokens):
        return _Said(f" {normalized.text} ", plain, plain, normalized.tokens, found)
    tokens = tuple(t for t in _IDIOM.sub(" yes", f" {normalized.text} ").split() if t != ",")
    return _Said(f" {normalized.text} ", plain, f" {' '.join(tokens)} ", tokens, found)


def _pending_intent(said: _Said, request: _Request | None) -> Intent:
    if request is not None and request.replaces_proposal:
        return Intent.SCHEDULE
    if said.scan.when is not None:
        return Intent.RESCHEDULE
    early = _hesitation_or_negated_move(said)
    if early is not None:
        return early
    if said.scan.rejected or _RESCHEDULE.search(said.padded, said.tokens):
        return Intent.RESCHEDULE
    return _answer(said)


def _idle_intent(said: _Said, request: _Request | None) -> Intent:
    if request is not None:
        return Intent.SCHEDULE
    if said.scan.when is not None:
        return Intent.UNCLEAR
    return _hesitation_or_negated_move(said) or _answer(said)


def _hesitation_or_negated_move(said: _Said) -> Intent | None:
    """Rules 3 and 4: hesitation, then "don't move it" and a change of mind."""
    lone_later = "later" in said.tokens and _LONE_LATER.fullmatch(said.padded, 1, len(said.padded) - 1)
    if lone_later or _HESITATION.search(said.padded, said.tokens):
        return Intent.HESITATE
    negated = _NEGATED_MOVE.search(said.padded) if not _MOVES.isdisjoint(said.tokens) else None
    if negated is not None:
        # "don't move it" keeps the proposal but is no yes; a refusal elsewhere still cancels.
        rest = said.padded[: negated.start()] + said.padded[negated.end() :]
        return Intent.REFUSE if _is_refusal(rest, rest.split()) else Intent.UNCLEAR
    return Intent.REFUSE if _CHANGE_OF_MIND.search(said.padded, said.tokens) else None


def _answer(said: _Said) -> Intent:
    """Refusal, else the strict affirmation check."""
    if _is_refusal(said.padded, said.tokens):
        return Intent.REFUSE
    return _affirmation(said.tokens)


def _is_refusal(padded: str, tokens: Sequence[str]) -> bool:
    return not _REFUSALS.isdisjoint(tokens) or _REFUSAL_PHRASES.search(padded, tokens) is not None


def _affirmation(tokens: Sequence[str]) -> Intent:
    """CONFIRM only for affirmative plus harmless words; HESITATE for the same asked as a question."""
    words = set(tokens)
    asked = "?" in words
    words.discard("?")
    if not words:
        return Intent.HESITATE if asked else Intent.UNCLEAR
    if not words <= _AFFIRMATIVE_OR_HARMLESS or _AFFIRMATIVE.isdisjoint(words):
        return Intent.UNCLEAR
    return Intent.HESITATE if asked else Intent.CONFIRM


def _schedule_request(said: _Said) -> _Request | None:
    """A request to schedule something, with its lead, or None."""
    if _SCHEDULE_HINTS.isdisjoint(said.tokens):
        return None
    for match in _SCHEDULE.finditer(said.plain):
        if _NEGATED_BEFORE.search(said.plain, max(0, match.start() - 40), match.start() + 1):
            continue
        if match["call"] and (match["who"] in _NOT_A_NAME or (match["opener"] is None and match.start() != 0)):
            continue
        return _request(said, match)
    return None


def _request(said: _Said, match: re.Match[str]) -> _Request:
    lead = _lead(said.text, (_WITH,))
    if lead is not None:
        fresh = (match["verb"] or match["verb2"]) is not None and not _is_definite(said.plain, match)
        return _Request(lead, replaces_proposal=fresh)
    return _Request(_lead(said.text, (_CALL_VERB, _FOR) if match["call"] else (_FOR,)), replaces_proposal=False)


def _is_definite(plain: str, match: re.Match[str]) -> bool:
    """ "book the call": the noun points at the pending proposal, not at a new one."""
    if match["noun"] is None:
        return False
    before = plain[match.start() : match.start("noun")].split()
    return bool(before) and before[-1] in _DEFINITE


def _lead(text: str, patterns: Iterable[re.Pattern[str]]) -> str | None:
    for pattern in patterns:
        for match in pattern.finditer(text):
            name = _name(text[match.end() : match.end() + 120].split())
            if name is not None:
                return name
    return None


def _name(words: Sequence[str]) -> str | None:
    taken: list[str] = []
    for i, word in enumerate(words[:_MAX_NAME_WORDS]):
        following = words[i + 1] if i + 1 < len(words) else ""
        if _ends_name(word, following):
            break
        taken.append(_capitalise(word))
    return " ".join(taken) or None


def _ends_name(word: str, following: str) -> bool:
    """Names are letters (and apostrophes); a day, preposition, pronoun, number or "," ends one."""
    if word in _NOT_A_NAME or not word.replace("'", "").isalpha():
        return True
    return word in _NAME_IF_NOT_BEFORE_NUMBER and following[:1].isdecimal()


def _capitalise(word: str) -> str:
    """Title-case one name word: "dana" -> "Dana", "o'brien" -> "O'Brien", "dana's" stays "Dana's"."""
    head, apostrophe, tail = word.partition("'")
    if apostrophe and len(head) == 1:
        return f"{head.upper()}'{tail[:1].upper()}{tail[1:]}"
    return word[:1].upper() + word[1:]
