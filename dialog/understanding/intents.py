"""Intents: the confirmation resolver, which runs first while a proposal is pending, and the classifier.

Before anything else (issue 12): a question ("is that eastern time?", "who is this?"; not "do
not book it", nor one followed by a refusal) is QUESTION; a deferral ("not right now", "don't book
it yet", "I'll confirm later") is HESITATE; while something is pending, a change of person ("not
Dana, Priya Nair") is CORRECTION; a day or time expression that cannot be read ("feb 30") keeps
the intent but gives no ``when``, only ``unreadable``.

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

from .normalize import MONTHS, NUMBER_WORDS, normalize, one_edit, vocabulary
from .times import TIME_WORDS, WEEKDAYS, TimeScan, When, scan


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
    # Issue 12. QUESTION: asks about the proposal or the service ("is that eastern time?"); never
    # moves anything. CORRECTION: a change of person ("not Dana, Priya Nair", "swap it to Lena"),
    # with ``lead`` and, if said, ``when``: change that, keep the rest. A correction of the time
    # ("no not 10, 11") is a RESCHEDULE with ``when``; a deferral ("not right now", "I'll confirm
    # later") is a HESITATE (spec 4.3: deferrals are hesitations).
    QUESTION = "question"
    CORRECTION = "correction"


@dataclass(frozen=True, slots=True)
class Understanding:
    """The intent of one utterance, the time expression found in it (if any), and, for SCHEDULE, the lead."""

    intent: Intent
    when: When | None
    lead: str | None
    # A refusal that names a cancellation ("cancel the call", "call it off"): after a booking,
    # that proposes cancelling the call, where a bare "no" does not.
    cancels: bool = field(default=False, compare=False)
    # The words of a day or time expression that could not be read ("13pm", "feb 30"): the turn
    # asks about them and changes nothing (spec 4.3).
    unreadable: str | None = field(default=None, compare=False)
    # A time said with only affirmative words around it ("Tuesday at 10 is fine"): a confirmation
    # when it names the proposal's own time, else a reschedule.
    affirms: bool = field(default=False, compare=False)
    # What a QUESTION is about, when the reply can answer it: "timezone".
    topic: str | None = field(default=None, compare=False)


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
    "no objections", "sure thing", "you bet", "put it in", "pencil it in", "lock it in", "see you then",
    "fine with me", "fine by me", "works for me", "good for me", "all good", "okie dokie", "sounds like a plan",
    "i'm available", "i am available", "i'm free then", "i can do that", "i can do it", "i can do then",
    "i can make it", "i can make that", "make that work", "count me in", "that'll work", "that will work",
    "that would work", "that should work", "should work", "should be fine", "would be fine", "will be fine",
    "suits me", "that suits", "it is", "it's a date", "can do", "happy with that", "happy with it", "i'll take it",
    "i'll take that", "take it", "go with that", "go with it",
)  # fmt: skip
# Not after a negation: "not good for me", "that doesn't work for me" are no idiom for yes.
_IDIOM: Final = re.compile(
    r"(?<! not)(?<! never)(?<! isn't)(?<! doesn't)(?<! don't)(?<! won't)(?<! wasn't)(?<! aren't)"
    " (?:" + "|".join(re.escape(p) for p in sorted(AFFIRMATIVE_IDIOMS, key=len, reverse=True)) + r")(?: \?)?(?= )"
)
_IDIOM_FIRST_WORDS: Final = frozenset(p.split()[0] for p in AFFIRMATIVE_IDIOMS)
_IDIOM_LAST_WORDS: Final = frozenset(p.split()[-1] for p in AFFIRMATIVE_IDIOMS)

_AFFIRMATIVE: Final = vocabulary(
    "yes yeah yea yeh ye yep yup ya yah yay yas sure ok okay okey okie k kk alright allright aight fine "
    "great perfect good excellent awesome cool correct right absolutely definitely certainly indeed affirmative "
    "confirm confirmed agreed agree deal exactly lovely brilliant nice sweet wonderful fantastic super works "
    "go do book schedule proceed approve approved accept accepted dokey love lgtm y dokie"
)
_HARMLESS: Final = vocabulary(
    "it that that's this the a call meeting appointment one please pls plz thanks thank you thx ty cheers i we "
    "me us ahead let's sounds looks seems for then and just so well oh ah now is it's be would will that'd "
    "i'd like all very much really totally on in to by sir ma'am mate appreciate appreciated time slot calendar "
    "with me my ty lot lots again kindly work thnx thanx thnks tks tnx u ya"
)
_AFFIRMATIVE_OR_HARMLESS: Final = _AFFIRMATIVE | _HARMLESS
_REFUSALS: Final = vocabulary(
    "no nope nah naw nay cancel cancelled canceled never nevermind don't not stop forget skip abort negative "
    "decline declined can't cannot won't pass cxl cncl"
)
_REMOVALS: Final = _each(
    ("remove", "delete", "take off", "call off", "scrap", "drop", "kill"),
    (
        "it",
        "that",
        "the call",
        "the meeting",
        "the appointment",
        "my call",
        "my meeting",
        "my appointment",
        "the booking",
        "my booking",
        "the reservation",
    ),
)
_REFUSAL_PHRASES: Final = _Phrases("scratch that", "drop it", "call it off", "call off", *_REMOVALS)
_CANCELLATION: Final = _Phrases(
    "cancel", "cancel it", "call it off", "call off", "drop it", "scrap it", "scratch that", "cxl", "cncl", *_REMOVALS
)
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
_WEAK_HESITATION: Final = vocabulary("hm hmm mm")
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
    "not good for me", "not available", "not free", "not that time", "not that one", "not that slot",
    "next one", "the next one", "next slot", "next available", "a bit later", "too early", "too soon",
    *_each(("another", "different", "other", "new", "alternative", "some other"),
           ("time", "times", "day", "days", "date", "dates", "slot", "slots", "one", "ones", "option", "options")),
    *_each(("next",), ("slot", "one", "available", "free")),
    *_each(("doesn't", "does not", "won't", "will not", "wouldn't", "would not"), ("work",)),
)  # fmt: skip

_VERBS: Final = r"schedule|book|set up|setup|arrange|organi[sz]e|plan|add|create|make|put in|put|line up|get|need|want"
_NOUNS: Final = (
    r"calls?|meetings?|appointments?|appt|chat|demo|session|sync|catch ?up|conversation|conference|meet|slot"
)
_PRONOUN: Final = r"(?:me|us|you|him|her|them|it) "
_CALL_OPENERS: Final = r"please|pls|you|to|let's|and|i'll|we'll|gonna|wanna|i|we|then|also"
_SCHEDULE: Final = re.compile(
    rf" (?P<verb>{_VERBS})(?: (?!with )\S+){{0,3}}? (?P<noun>{_NOUNS})(?= )"
    rf"| (?:{_NOUNS}) with (?!{_PRONOUN})[^\W\d_]"
    rf"| (?P<verb2>schedule|book|arrange|set up|setup|set (?:1|one|it|something) up|organi[sz]e)"
    rf"(?: (?:it|a time|some time|time|something|me|us|me in|us in|in))? with "
    rf"(?!{_PRONOUN})[^\W\d_]"
    rf"| (?:(?P<opener>{_CALL_OPENERS}) )?(?P<call>call|meet|ring|phone) (?P<who>[^\W\d_][\w']*)"
    rf"| (?P<book>book|schedule) (?P<bname>[^\W\d_][\w'-]*)"
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
_BOOK_OBJECTS: Final = vocabulary("something anything one 1 them everything yourself myself time slot")
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
        "session sync here there between through"
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


def understand(text: str, *, pending: bool, lead: str | None = None) -> Understanding:
    """Classify ``text``; ``pending`` is True while a proposal or a new time is awaited. Never raises.

    ``lead``: the pending proposal's lead, if the caller knows it. A confirmation that names that
    same person ("yes please book the call with Dana", "sure, book Dana in") is then a
    confirmation; a request naming anyone else is read as before.
    """
    understood = _understand(text, pending)
    if lead is None or not pending or understood.intent is Intent.CONFIRM:
        return understood
    rest = _without_lead(text, lead)
    if rest is None:
        return understood
    again = _understand(rest, pending)
    if again.intent is Intent.CONFIRM or (again.intent is Intent.RESCHEDULE and again.affirms):
        fresh = understood.intent is Intent.SCHEDULE or understood.intent is Intent.CORRECTION
        if not fresh or not _YES_WORDS.isdisjoint(_read(rest).tokens):
            return again  # "schedule a call with Dana" alone stays a new request: no yes in it
    return understood


_YES_WORDS: Final = vocabulary("yes yeah yep yup ya yea sure ok okay alright great perfect fine absolutely confirm")
_NAME_GLUE: Final = r"(?:(?:with|for|w/|w) )?"


def _without_lead(text: str, lead: str) -> str | None:
    """``text`` without the lead's name (whole, or its first or last word, with a "with" before it)."""
    words = lead.lower().split()
    lowered = text.lower()
    if not words or not any(w in lowered for w in words):
        return None
    names = [" ".join(words)] + ([words[0], words[-1]] if len(words) > 1 else [])
    alternation = "|".join(re.escape(n) for n in names)
    pattern = re.compile(rf"\b{_NAME_GLUE}(?:{alternation})(?:'s)?\b", re.IGNORECASE)
    rest, found = pattern.subn(" ", text)
    return rest if found else None


def _understand(text: str, pending: bool) -> Understanding:
    said = _read(text)
    request = _schedule_request(said)
    topic = (
        "timezone"
        if not _ZONE_WORDS.isdisjoint(said.tokens) or _ZONE_PHRASES.search(said.padded, said.tokens)
        else None
    )
    if _is_question(said, request):
        return Understanding(Intent.QUESTION, None, None, topic=topic)
    if (pending or request is None) and (
        _DEFERRAL.search(said.padded, said.tokens)
        or (not _DEFER_WORDS.isdisjoint(said.tokens) and _NOT_NOW.search(said.padded))
    ):
        return Understanding(Intent.HESITATE, None, None)  # a deferral is a hesitation (spec 4.3)
    intent = _pending_intent(said, request) if pending else _idle_intent(said, request)
    lead = request.lead if request is not None and intent is Intent.SCHEDULE else None
    if (
        pending
        and intent is Intent.SCHEDULE
        and said.scan.when is None
        and not _CORRECTION_CUES.isdisjoint(said.tokens)
    ):
        return Understanding(Intent.CORRECTION, None, lead)  # "instead of Dana, book Priya Nair": same time
    negated_booking = _NEGATED_BOOKING.search(said.padded) is not None  # "no, don't book it with Dana"
    naming = pending and intent is not Intent.SCHEDULE and not negated_booking
    if naming and "cancel" not in said.tokens and not cancelling(said):
        changed = _lead_change(said)
        if changed is not None and (said.scan.when is None or intent is Intent.RESCHEDULE):
            return Understanding(Intent.CORRECTION, said.scan.when, changed)
    if said.scan.unreadable is not None and intent in _USES_TIME:
        return Understanding(intent, None, lead, unreadable=said.scan.unreadable)
    # "cancel the call" names a cancellation; "don't cancel the call" refuses one
    cancels = intent is Intent.REFUSE and cancelling(said) and _NEGATED_CANCEL.search(said.padded) is None
    affirms = intent is Intent.RESCHEDULE and _affirms_time(said)
    return Understanding(intent, said.scan.when, lead, cancels, affirms=affirms)


# A negation right before the verb (a word such as "please" or "the call" may stand between).
_NEGATION = r" (?:don't|dont|do not|never|not|no need to|shouldn't|should not)(?: please| just| actually)?"
_NEGATED_CANCEL: Final = re.compile(_NEGATION + r" (?:cancel|call (?:it |the call )?off|drop|scrap|remove|delete)\b")
_NEGATED_BOOKING: Final = re.compile(_NEGATION + r" (?:book|schedule|set (?:it |one |that )?up|make)\b")


def cancelling(said: _Said) -> bool:
    return _CANCELLATION.search(said.padded, said.tokens) is not None


_CALL_NOUNS: Final = vocabulary("call meeting appointment appt")
_NO_MOVE: Final = vocabulary("instead do make how what rather prefer")
_USES_TIME: Final = frozenset({Intent.RESCHEDULE, Intent.SCHEDULE, Intent.UNCLEAR, Intent.CORRECTION})
_ZONE_WORDS: Final = vocabulary(
    "timezone timezones tz utc gmt est edt pst pdt cst cdt mst bst cet cest ist eastern pacific central mountain"
)
_ZONE_PHRASES: Final = _Phrases(
    "time zone", "my time", "your time", "local time", "london time", "new york", "which zone", "what zone"
)
_DEFERRAL: Final = _Phrases(
    "hold off", "not right now", "not now", "not yet", "not at the moment", "not at this moment", "not at the minute",
    "don't book yet", "don't book it yet", "do not book it yet", "don't book that yet", "not book it yet",
    "i'll confirm", "i will confirm", "i'll let you know", "i will let you know", "let you know", "i'll get back",
    "get back to you", "get back to u", "confirm later", "decide later", "i'll decide", "i'll check", "let me check",
    "let me think", "think about it", "let me see", "i'll think", "circle back", "come back to you",
    "put it on hold", "on hold", "not today", "not just yet", "hang fire", "ask me later", "ask me again later",
    "remind me later", "call me back", "call you back", "ping me later", "try me later", "text me later",
    "sleep on it", "hold that thought", "haven't decided", "not decided", "still deciding", "still thinking",
    "be right back", "brb", "need to check", "have to check", "gotta check", "need to ask", "have to ask",
    "need to talk to", "check with", "talk to my", "run it by", "not ready",
)  # fmt: skip
# "not" (or "don't ...") + a word of the present: "not right at the moment", "not just now", "don't book
# it just yet", "not for now": a deferral by its structure, whatever words stand between.
_DEFER_WORDS: Final = vocabulary("now yet moment minute present sec second today")
_NOT_NOW: Final = re.compile(
    r" (?:not|don't|do not|can't|cannot)(?: (?:book|it|that|this|confirm|schedule|lock|in|do|decide|decided|commit"
    r"|anything|something|the|call|meeting|one"
    r"|to|ready|sure|certain|confirmed|settled|need|want))*"
    r" (?:(?:just|right|quite|for|at|the|this|that|yet) )*"
    r"(?:now|yet|(?:at |for )?the moment|(?:at )?present|this (?:minute|second|moment|sec)|today)(?= )"
)
_TIME_TOKENS: Final = TIME_WORDS | frozenset(WEEKDAYS) | frozenset(MONTHS)
_LEAD_MARKER: Final = re.compile(
    r" (?:make (?:it|that)(?: with| for)?"
    r"|(?:change|switch|swap)(?: (?:it|that|the (?:lead|attendee|contact|person|name|guest)|[^\W\d_]+))?"
    r" (?:to|with|for)"
    r"|swap in|(?:replace|swap) \S+ (?:with|for)|put|should be(?: with| for)?|meant to be(?: with)?"
    r"|supposed to be(?: with)?|i meant|meant|it's (?:with|for)|call's with|is with|be with|but (?:with|for)"
    r"|with|w|for|need"
    r"|person ,|person :|lead is|attendee is|contact is|not \S+ ,|instead of \S+ put|it's|up with)(?= )"
)
_LEAD_STOP: Final = vocabulary(
    "something anything else another different other time slot slots same one ones instead please pls thanks thx "
    "lol sorry right now that's it's fine good great perfect sure yes ok okay me mine the a an it that this "
    "person lead attendee contact name guest wrong mistake actually oops meant not no half quarter supposed "
    "meant going gonna later earlier sooner down in"
)


def _lead_change(said: _Said) -> str | None:
    """The new person in "actually make it with Tom Hardy", "not Dana, Priya Nair", "swap it to Lena"."""
    if not _LEAD_CUES.isdisjoint(said.tokens) or "," in said.text or ":" in said.text:
        found: str | None = None
        for match in _LEAD_MARKER.finditer(said.text):
            words = said.text[match.end() : match.end() + 120].split()
            if not words or words[0] in _LEAD_STOP or words[0] in _NOT_A_NAME:
                continue
            kept = []
            for word in words:
                if word in _LEAD_STOP:
                    break
                kept.append(word)
            name = _name(kept)
            if name is None:
                continue
            before = said.text[max(0, match.start() - 12) : match.end()].split()
            if before[-1:] in (["not"],) or said.text[: match.start()].endswith((" not", " replace", " swap")):
                continue
            if match.group(0).strip() in ("for", "with", "w", "need", "it's", "put") and not _LEAD_CONTEXT.search(
                said.text
            ):
                continue
            found = found or name
        return found or _name_instead(said)
    return None


# "Priya Nair instead", "actually Tom Baker, not Dana", "Priya instead of Dana": a name said alone
# with "instead" or a rejected name after it.
_NAME_INSTEAD: Final = re.compile(
    r"^ (?:(?:actually|oh|oops|sorry|no|nope|wait|um|hmm|ok|okay) (?:, )?)*"
    r"(?P<name>[^\W\d_][\w'-]*(?: [^\W\d_][\w'-]*){0,3}) (?:, )?(?:instead|, not [^\W\d_])"
)


def _name_instead(said: _Said) -> str | None:
    match = _NAME_INSTEAD.match(said.text)
    if match is None:
        return None
    words = match["name"].split()
    if any(w in _NOT_A_NAME or w in _LEAD_STOP or w in _NOT_NAME_WORDS for w in words):
        return None
    return _name(words)


_NOT_NAME_WORDS: Final = (
    _AFFIRMATIVE_OR_HARMLESS
    | _REFUSALS
    | _SCHEDULE_HINTS
    | _MOVES
    | vocabulary("later earlier sooner something hmm hm mm i'm")
)


_CORRECTION_CUES: Final = vocabulary("instead actually wrong meant sorry oops not rather")
_LEAD_CUES: Final = vocabulary(
    "make with w for swap switch change replace put should meant supposed it's call's lead attendee contact person "
    "instead need not"
)
_LEAD_CONTEXT: Final = re.compile(
    r" (?:actually|instead|wrong|not|no|oh|sorry|same time|same slot|should|meant|supposed|swap|switch|change|replace"
    r"|make|put|can it be|can we do it|set it up|book it|call's)(?= )"
)

_QUESTION_OPENERS: Final = vocabulary(
    "is are was were does did which what what's who who's whose when where why how will isn't anything"
)
_QUESTION_SKIP: Final = vocabulary("wait sorry so and but hey oh ok okay um")
_PRONOUNS: Final = vocabulary("you u i we they she he")
_REQUEST_HEADS: Final = {("how", "about"), ("what", "about"), ("what", "if"), ("how", "bout")}
_AVAILABLE: Final = vocabulary("free available possible ok okay good better fine open")


def _is_question(said: _Said, request: _Request | None) -> bool:
    """A question about the proposal or the service ("is that eastern time?", "which tuesday?")."""
    tokens = [t for t in said.tokens if t not in _QUESTION_SKIP] or list(said.tokens)
    if not tokens:
        return False
    first, second = tokens[0], tokens[1] if len(tokens) > 1 else ""
    if (first, second) in _REQUEST_HEADS or (request is not None and request.replaces_proposal):
        return False
    if second in _NEGATIONS or _answered_after(said):
        return False  # "do not book it", "is not good for me", "what? no, cancel it": negation wins
    if tokens[-1] == "?" and (not _ZONE_WORDS.isdisjoint(tokens) or "zone" in tokens):
        return True
    if first == "anything" or "what else" in said.padded:
        return "else" in tokens or "free" in tokens or "available" in tokens
    if first in ("do", "does", "did"):
        return second in _PRONOUNS or (second.isalpha() and second not in _MOVE_OR_TIME)
    if first in ("can", "could") and second in ("you", "u"):
        third = tokens[2] if len(tokens) > 2 else ""
        return third in _SERVICE_VERBS or (third in ("book", "schedule", "do") and (tokens[3:4] or [""])[0] == "calls")
    if first not in _QUESTION_OPENERS:
        return tokens[-1] == "?" and "right" in tokens[-3:] and said.scan.when is not None
    # "is 3pm free?": a request, not a question
    return not (
        first == "is" and said.scan.when is not None and not _AVAILABLE.isdisjoint(tokens) and "that" not in tokens[:2]
    )


_NEGATIONS: Final = vocabulary("not never")
_CLAUSE_SPLIT: Final = re.compile(r" [?,] ")


def _answered_after(said: _Said) -> bool:
    """A later clause that refuses or hesitates ("what? no, cancel it", "why? not now"): the answer wins."""
    clauses = _CLAUSE_SPLIT.split(said.text)
    for clause in clauses[1:]:
        words = clause.split()
        if not words or words[0] in _QUESTION_OPENERS:
            continue
        if _is_refusal(f" {clause.strip()} ", words) or _HESITATION.search(f" {clause.strip()} ", words):
            return True
    return False


_SERVICE_VERBS: Final = vocabulary("repeat send tell explain share give say email text help remind")
_MOVE_OR_TIME: Final = vocabulary("it that this 2 3 4 5 6 7 8 9 10 11 12 1 something another")


def _affirms_time(said: _Said) -> bool:
    """Only affirmative or harmless words besides the time words: "Tuesday at 10 is fine"."""
    rest = [t for t in said.tokens if t not in _TIME_TOKENS and not t[:1].isdecimal()]
    words = set(rest)
    return bool(words) and words <= _AFFIRMATIVE_OR_HARMLESS | _TIME_GLUE and not _AFFIRMATIVE.isdisjoint(words)


_TIME_GLUE: Final = vocabulary("at on the is for am pm oclock")


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
    if "cancel" in said.tokens and _cancels_the_call(said):
        return Intent.REFUSE  # "cancel the 10am call", "cancel the 10am": the time names the call
    if said.scan.when is not None:
        # "not sure about tuesday", "i don't know if 3 works": the day is doubted, not asked for
        doubted = not _DOUBT_LINKS.isdisjoint(said.tokens) and _DOUBT.search(said.padded) is not None
        return Intent.HESITATE if doubted else Intent.RESCHEDULE
    early = _hesitation_or_negated_move(said)
    if early is not None:
        return early
    if said.scan.rejected or _RESCHEDULE.search(said.padded, said.tokens):
        return Intent.RESCHEDULE
    return _answer(said)


_DOUBT_LINKS: Final = vocabulary("about if whether")
_DOUBT: Final = re.compile(
    r" (?:not sure|unsure|not certain|uncertain|don't know|do not know|dunno) (?:about|if|whether)(?= )"
)


def _cancels_the_call(said: _Said) -> bool:
    if _answer(said) is not Intent.REFUSE:
        return False
    return not _CALL_NOUNS.isdisjoint(said.tokens) or (
        _MOVES.isdisjoint(said.tokens) and _NO_MOVE.isdisjoint(said.tokens)
    )


def _idle_intent(said: _Said, request: _Request | None) -> Intent:
    if request is not None:
        return Intent.SCHEDULE
    if said.scan.when is not None:
        return Intent.UNCLEAR
    return _hesitation_or_negated_move(said) or _answer(said)


def _hesitation_or_negated_move(said: _Said) -> Intent | None:
    """Rules 3 and 4: hesitation, then "don't move it" and a change of mind."""
    lone_later = "later" in said.tokens and _LONE_LATER.fullmatch(said.padded, 1, len(said.padded) - 1)
    hesitation = _HESITATION.search(said.padded, said.tokens)
    if (
        hesitation is not None
        and hesitation.group(0).strip() in _WEAK_HESITATION
        and (_RESCHEDULE.search(said.padded, said.tokens) or _is_refusal(said.padded, said.tokens))
        and _HESITATION.search(said.padded.replace(hesitation.group(0), " ", 1), said.tokens) is None
    ):
        hesitation = None  # "hmm can we move it", "hmm no": a filler does not beat a clear answer
    if lone_later or hesitation is not None:
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
    unknown = words - _AFFIRMATIVE_OR_HARMLESS
    if unknown and all(_near_confirmation(w) for w in unknown):
        words = (words - unknown) | {"yes"}
    if not words <= _AFFIRMATIVE_OR_HARMLESS or _AFFIRMATIVE.isdisjoint(words):
        return Intent.UNCLEAR
    return Intent.HESITATE if asked else Intent.CONFIRM


_TYPO_TARGETS: Final = vocabulary(
    "yes yeah yep yup sure okay alright perfect great absolutely definitely confirm fine good"
)
_TYPO_NEVER: Final = _REFUSALS | vocabulary("nop nah noo nope non now not note")


def _near_confirmation(word: str) -> bool:
    """One edit (insert, delete, substitute, swap) from a confirmation word, and from no refusal word."""
    if len(word) < 3 or not word.isalpha() or word in _TYPO_NEVER:
        return False
    if any(one_edit(word, refusal) for refusal in _TYPO_NEVER):
        return False
    return any(one_edit(word, target) for target in _TYPO_TARGETS)


def _schedule_request(said: _Said) -> _Request | None:
    """A request to schedule something, with its lead, or None."""
    if _SCHEDULE_HINTS.isdisjoint(said.tokens):
        return None
    for match in _SCHEDULE.finditer(said.plain):
        if _NEGATED_BEFORE.search(said.plain, max(0, match.start() - 40), match.start() + 1):
            continue
        if match["call"] and (match["who"] in _NOT_A_NAME or (match["opener"] is None and match.start() != 0)):
            continue
        if match["book"]:
            name = match["bname"]
            if name in _NOT_A_NAME or name in _LEAD_STOP or name in _SCHEDULE_HINTS or name in _BOOK_OBJECTS:
                continue
            lead = _name(said.plain[match.end("book") :].split())
            if lead is None:
                continue
            return _Request(lead, replaces_proposal=True)
        return _request(said, match)
    return None


def _request(said: _Said, match: re.Match[str]) -> _Request:
    lead = _lead(said.text, (_WITH,))
    if lead is not None:
        verb = match["verb"] or match["verb2"]  # "set it up with X", "book it with X": "it" is the pending call
        pending_call = verb is not None and (verb.endswith(" it up") or " it with " in match.group(0))
        fresh = verb is not None and not pending_call and not _is_definite(said.plain, match)
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
    if word in _NOT_A_NAME or not word.replace("'", "").replace("-", "").isalpha():
        return True
    return word in _NAME_IF_NOT_BEFORE_NUMBER and following[:1].isdecimal()


def _capitalise(word: str) -> str:
    """Title-case one name word: "dana" -> "Dana", "o'brien" -> "O'Brien", "dana's" stays "Dana's"."""
    if "-" in word:
        return "-".join(_capitalise(part) for part in word.split("-"))
    head, apostrophe, tail = word.partition("'")
    if apostrophe and len(head) == 1:
        return f"{head.upper()}'{tail[:1].upper()}{tail[1:]}"
    return word[:1].upper() + word[1:]
