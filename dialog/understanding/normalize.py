"""Normalise typed or spoken text into lowercase tokens the classifiers can match.

`normalize` is total: any ``str`` (control characters, odd whitespace, emoji,
surrogates) gives a `Normalized` value and never raises. What it does:

- lowercases and folds compatibility forms (NFKC: fullwidth letters, superscript digits);
  curly apostrophes become ``'``; ``a.m.``/``p.m.`` become ``am``/``pm``;
- keeps ``:`` and ``.`` between digits (``10:30``, ``10.30``), ``-`` and ``/``
  between digits (``2026-11-24``, ``11/24``), ``'`` inside words (``don't``);
- turns each clause mark (``, ; . ! :`` and line breaks) into a ``","`` token and keeps each
  ``"?"`` as a token; drops every other symbol and emoji, except 👍 ✅ 👌 ✔ ☑ 🙂 😊
  (read as ``yes``), 👎 ❌ ✖ 🚫 (``no``) and 🤔 (``hmm``);
- repairs stretched words only when the repair lands on known vocabulary
  (``yesss`` -> ``yes``, ``nooo`` -> ``no``, ``goood`` -> ``good``; ``book`` and
  ``tomorrow`` stay as they are);
- drops voice fillers (uh, um, er, erm, uhm, ah, eh) anywhere, the discourse fillers
  well/so/like/oh when they open a clause, and "like" before a number ("at like eleven");
  ``uh huh``/``mm hmm``/``mhm`` become ``yes``, ``nuh uh``/``uh-uh`` become ``no``;
- expands sloppy contractions (``dont`` -> ``don't``, ``oclock`` spellings);
- turns number words into digits: ``three`` -> ``3``, ``twenty five`` -> ``25``,
  ``ten thirty`` -> ``10:30``, ``ten oh five`` -> ``10:05``, ``half past two`` ->
  ``2:30``, ``quarter to ten`` -> ``9:45``; ordinals only next to a month name
  (``november twenty fourth`` -> ``november 24``), so "give me a second" survives;
  ``one`` after that/this/the/no/any/... stays a word ("that one works").
"""

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Final, NamedTuple


def vocabulary(words: str) -> frozenset[str]:
    """The set of the space-separated ``words`` (long word lists read better as one string)."""
    return frozenset(words.split())


def _numbered(words: str, *, start: int) -> dict[str, int]:
    return {word: n for n, word in enumerate(words.split(), start=start)}


MONTHS: Final[Mapping[str, int]] = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
    "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip

_YES, _NO = " yes ", " no "
_TRANSLATE: Final = str.maketrans(
    {
        **dict.fromkeys("\u2019\u2018`\u00b4\u02bc\u2032", "'"),  # curly quotes, acute accent, modifier, prime
        **dict.fromkeys("👍👌✅✔☑🙂😊", _YES),
        **dict.fromkeys("👎❌✖🚫", _NO),
        "🤔": " hmm ",
        "\u3002": ".",  # ideographic full stop
        "\u2013": ",",  # en dash and em dash: "not Dana \u2014 Priya Nair"
        "\u2014": ",",
        "@": " at ",
        "&": " and ",
        # Skin tones, variation selectors and joiners glue emoji together; drop them so 👍🏽 reads as 👍.
        # Zero-width spaces and the BOM are invisible inside words; drop them so "ye\u200bs" stays "yes".
        **dict.fromkeys("\U0001f3fb\U0001f3fc\U0001f3fd\U0001f3fe\U0001f3ff\ufe0e\ufe0f\u200b\u200c\u200d\u2060\ufeff"),
    }
)

_AMPM: Final = re.compile(r"(?<![^\W\d_])([ap])\. ?m\b\.?")
_TITLE_DOT: Final = re.compile(r"\b(dr|mr|mrs|ms|mx|prof|st|jr|sr)\.")
_HYPHEN_NO: Final = re.compile(r"\b(?:nuh|uh)-uh\b")
_SPLIT_HYPHEN: Final = re.compile(r"\b(uh|mm|e|re|un|nuh|mid)-")
# A dash between two times, one of them with am/pm or minutes, is a range ("2-3pm", "10:30-11"):
# written "through", which `times` reads as one (a dash between bare numbers stays a date: "12-03").
_TIME_RANGE: Final = re.compile(r"\b(\d{1,2}(?::\d{2})?)( ?[ap]m)? ?- ?(\d{1,2}(?::\d{2})?)( ?[ap]m)?(?![\d/:-])")
_WITH_SLASH: Final = re.compile(r"\bw/ ?")
_SPACED_DASH: Final = re.compile(r"(?:^|\s)-+(?:\s|$)")  # "not Dana - Priya Nair": a clause mark
_CLAUSE_MARKS: Final = ",;!.:\n\r\v\f\x85\u2028\u2029"
# A token is a number with its joints and suffix ("10:30", "2026-11-24", "10.30am", "24th"), a word
# with inner apostrophes ("don't"), "?" or one clause mark; anything else (symbols, emoji, "_") separates.
_TOKEN: Final = re.compile(r"\d+(?:[:./-]\d+)*[^\W_]*|[^\W_]+(?:'[^\W_]+|-[^\W\d_]+)*|[?" + _CLAUSE_MARKS + "]")
_RUN3: Final = re.compile(r"([^\W\d_])\1\1")
_RUN2_PLUS: Final = re.compile(r"([^\W\d_])\1+")
_RUN3_PLUS: Final = re.compile(r"([^\W\d_])\1\1+")

# Words a stretched token may be repaired into; anything else keeps its letters.
_STRETCHABLE: Final = vocabulary(
    "yes yeah yep yup ya yah yay sure ok okay okey kk please pls no nope nah so hmm hm mm wait "
    "great good cool nice perfect fine awesome alright absolutely definitely thanks thx right "
    "sweet well oh uh um ah eh hey super love lovely correct totally go now not never stop"
)
# One-token respellings: sloppy contractions, and a doubled last letter ("yess", "okk", "noo").
_RESPELL: Final[Mapping[str, str]] = {
    **{word + word[-1]: word for word in _STRETCHABLE if word + word[-1] not in _STRETCHABLE},
    "dont": "don't", "cant": "can't", "wont": "won't", "isnt": "isn't", "doesnt": "doesn't",
    "didnt": "didn't", "wasnt": "wasn't", "arent": "aren't", "wouldnt": "wouldn't",
    "couldnt": "couldn't", "shouldnt": "shouldn't", "im": "i'm", "ive": "i've", "lets": "let's",
    "thats": "that's", "whats": "what's", "its": "it's", "o'clock": "oclock", "o'clok": "oclock", "w": "with",
    **dict.fromkeys(_CLAUSE_MARKS, ","),
}  # fmt: skip
_DAYS: Final = vocabulary("monday tuesday wednesday thursday friday saturday sunday today tomorrow tonight")
_FILLERS: Final = vocabulary("uh um er erm uhm ah eh")
_OPENERS: Final = vocabulary("well so like oh")
_PAIRS: Final[Mapping[tuple[str, str], str]] = {
    ("uh", "huh"): "yes",
    ("mm", "hmm"): "yes",
    ("mm", "hm"): "yes",
    ("nuh", "uh"): "no",
}
_SINGLES: Final[Mapping[str, str]] = {"mhm": "yes", "mmhmm": "yes", "uhhuh": "yes"}

_SMALL: Final = _numbered(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen",
    start=0,
)
_UNITS: Final[Mapping[str, int]] = {w: n for w, n in _SMALL.items() if 1 <= n <= 9}
_TENS: Final[Mapping[str, int]] = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_ORDINALS: Final = _numbered(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth",
    start=1,
) | {"thirtieth": 30}
_UNIT_ORDINALS: Final[Mapping[str, int]] = {w: n for w, n in _ORDINALS.items() if n <= 9}
NUMBER_WORDS: Final = frozenset(_SMALL) | frozenset(_TENS) | frozenset(_ORDINALS)
_ONE_KEEPERS: Final = vocabulary("that this the no any some every which each another other a just next first last")
_DURATIONS: Final = vocabulary("minute minutes min mins hour hours hr hrs second seconds")
_FRACTIONS: Final[Mapping[str, int]] = {"half": 30, "quarter": 15}
_NOT_AFTER_DAY_ORDINAL: Final = vocabulary(
    "one ones option options slot slots time times choice available free thing person call meeting"
)
_SPECIAL: Final = (
    _FILLERS | _OPENERS | NUMBER_WORDS | frozenset(_FRACTIONS) | {a for a, _ in _PAIRS} | frozenset(_SINGLES)
)


class Normalized(NamedTuple):
    """Normalised text: ``text`` keeps ``","`` clause tokens, ``flat`` and ``tokens`` do not."""

    text: str
    flat: str
    tokens: tuple[str, ...]


def normalize(raw: str) -> Normalized:
    """Normalise ``raw`` (typed or transcribed) as the module docstring describes."""
    text = _prepare(raw.lower())
    words = _TOKEN.findall(text)
    tokens = list(map(_RESPELL.get, words, words))
    if "'s" in text:
        tokens = [t[:-2] if t.endswith("'s") and t[:-2] in _DAYS else t for t in tokens]
    if _RUN3.search(text):
        tokens = [_unstretch(t) for t in tokens]
    if not _SPECIAL.isdisjoint(tokens):
        tokens = _rewrite(tokens)
    if "m" in tokens:
        tokens = _spoken_meridiem(tokens)
    joined = " ".join(tokens)
    if "," not in tokens:
        return Normalized(joined, joined, tuple(tokens))
    flat = tuple(t for t in tokens if t != ",")
    return Normalized(joined, " ".join(flat), flat)


def _spoken_meridiem(tokens: list[str]) -> list[str]:
    """ "3 p m" -> "3 pm", "10:30 a m" -> "10:30 am" (how speech recognisers write them)."""
    out: list[str] = []
    for token in tokens:
        if token == "m" and len(out) >= 2 and out[-1] in ("a", "p") and out[-2][:1].isdecimal():
            out[-1] = out[-1] + "m"
            continue
        out.append(token)
    return out


def _prepare(text: str) -> str:
    """Fold compatibility forms, map emoji and apostrophes, and join "a.m.", "Dr." and "uh-uh"."""
    # The substring tests are fast paths: most answers are plain words, and each skipped pass saves a scan.
    if not text.isascii():
        # NFKC folds compatibility forms: fullwidth "YES?" (U+FF39...) reads as "yes?", superscript 2 as "2".
        text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    elif "@" in text or "&" in text or "`" in text:
        text = text.translate(_TRANSLATE)
    if "." in text:
        text = _TITLE_DOT.sub(r"\1", _AMPM.sub(r"\1m", text))  # "Dr. Scully" is one name, not two clauses
    if "-uh" in text:
        text = _HYPHEN_NO.sub(_NO, text)
    if "-" in text:
        text = _TIME_RANGE.sub(_time_range, text)
        text = _SPLIT_HYPHEN.sub(r"\1 ", _SPACED_DASH.sub(" , ", text.replace("-ish", " ish")))
    if "w/" in text:
        text = _WITH_SLASH.sub("with ", text)
    if "lunch" in text or "first thing" in text:
        text = _TIME_IDIOMS.sub(lambda m: _TIME_IDIOM_WORDS[m[0]], text)
    return text


def _time_range(match: re.Match[str]) -> str:
    first, first_ap, second, second_ap = match.groups()
    if not (first_ap or second_ap or ":" in first or ":" in second):
        return match[0]
    return f"{first}{first_ap or ''} through {second}{second_ap or ''}"


# "lunch time" is noon as "lunchtime" is; "first thing (tomorrow)" is the morning.
_TIME_IDIOM_WORDS: Final[Mapping[str, str]] = {
    "lunch time": "lunchtime", "at lunch": "at lunchtime", "first thing in the morning": "morning",
    "first thing": "morning",
}  # fmt: skip
_TIME_IDIOMS: Final = re.compile(r"\b(?:" + "|".join(sorted(_TIME_IDIOM_WORDS, key=len, reverse=True)) + r")\b")


def _unstretch(token: str) -> str:
    """Repair a stretched word ("yesss", "goood") only if the repair is known vocabulary."""
    if token in _STRETCHABLE or not _RUN3.search(token):
        return token
    double = _RUN3_PLUS.sub(r"\1\1", token)
    if double in _STRETCHABLE:
        return double
    single = _RUN2_PLUS.sub(r"\1", token)
    return single if single in _STRETCHABLE else double


def _rewrite(tokens: Sequence[str]) -> list[str]:
    """Apply the multi-token rewrites: filler pairs, fillers, fractions, number words."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] not in _SPECIAL:
            out.append(tokens[i])
            i += 1
            continue
        emitted, used = _rewrite_at(tokens, i, out)
        out.extend(emitted)
        i += used
    return out


def _rewrite_at(tokens: Sequence[str], i: int, out: Sequence[str]) -> tuple[Sequence[str], int]:
    token = tokens[i]
    after = tokens[i + 1] if i + 1 < len(tokens) else ""
    if (token, after) in _PAIRS:
        return (_PAIRS[token, after],), 2
    if token in _SINGLES:
        return (_SINGLES[token],), 1
    if token == "like" and (after[:1].isdecimal() or after in NUMBER_WORDS):  # "at like eleven", "like 4"
        return (() if out and out[-1] in ("at", "around", "about", "by") else ("about",)), 1
    if token in _FILLERS or (token in _OPENERS and after and (not out or out[-1] == ",")):
        return (), 1
    found = _fraction(tokens, i) or _clock_words(tokens, i, out[-1] if out else "") or _day_ordinal(tokens, i)
    if found is not None:
        return (found[0],), found[1]
    word, used = _number(tokens, i, out[-1] if out else "")
    return (word,), used


def _cardinal(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """The value (0-59) of the number words at ``i`` and how many tokens they take."""
    if i >= len(tokens):
        return None
    token = tokens[i]
    if token in _TENS:
        unit = _UNITS.get(tokens[i + 1]) if i + 1 < len(tokens) else None
        return (_TENS[token] + unit, 2) if unit else (_TENS[token], 1)
    return (_SMALL[token], 1) if token in _SMALL else None


def _number(tokens: Sequence[str], i: int, previous: str) -> tuple[str, int]:
    if tokens[i] == "one" and previous in _ONE_KEEPERS:
        return "one", 1
    found = _cardinal(tokens, i)
    return (str(found[0]), found[1]) if found else (tokens[i], 1)


def _fraction(tokens: Sequence[str], i: int) -> tuple[str, int] | None:
    """``half past two`` -> 2:30, ``quarter past ten`` -> 10:15, ``quarter to ten`` -> 9:45."""
    token, link = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else ""
    if token not in _FRACTIONS or not (link in ("past", "after") or (token, link) == ("quarter", "to")):
        return None
    hour = _cardinal(tokens, i + 2)
    if hour is None or not 1 <= hour[0] <= 12:
        return None
    if link == "to":
        return f"{(hour[0] - 2) % 12 + 1}:45", 2 + hour[1]
    return f"{hour[0]}:{_FRACTIONS[token]:02d}", 2 + hour[1]


def _clock_words(tokens: Sequence[str], i: int, previous: str = "") -> tuple[str, int] | None:
    """``ten thirty`` -> 10:30, ``ten oh five`` -> 10:05; not ``two thirty minute calls``, nor ``not
    ten eleven`` (a corrected hour, then the new one)."""
    hour = _cardinal(tokens, i)
    if hour is None or not 1 <= hour[0] <= 12:
        return None
    j = i + hour[1]
    if j + 1 < len(tokens) and tokens[j] in ("oh", "o") and tokens[j + 1] in _UNITS:
        return f"{hour[0]}:{_UNITS[tokens[j + 1]]:02d}", j + 2 - i
    minute = _cardinal(tokens, j)
    if minute is None or not 10 <= minute[0] <= 59 or (minute[0] <= 12 and previous in ("no", "not")):
        return None
    end = j + minute[1]
    if end < len(tokens) and tokens[end] in _DURATIONS:
        return None
    return f"{hour[0]}:{minute[0]:02d}", end - i


def _day_ordinal(tokens: Sequence[str], i: int) -> tuple[str, int] | None:
    """An ordinal next to a month name ("november twenty fourth", "first of may") -> digits."""
    found = _ordinal(tokens, i)
    if found is None:
        return None
    end = i + found[1]
    following = tokens[end + 1] if end < len(tokens) and tokens[end] == "of" and end + 1 < len(tokens) else ""
    near_month = (i > 0 and tokens[i - 1] in MONTHS) or (end < len(tokens) and tokens[end] in MONTHS)
    if near_month or following in MONTHS:
        return str(found[0]), found[1]
    after = tokens[end] if end < len(tokens) else ""
    if i > 0 and tokens[i - 1] == "the" and after not in _NOT_AFTER_DAY_ORDINAL:
        n = found[0]  # "the twenty seventh" -> "the 27th"; "the first one" stays words
        suffix = "th" if 11 <= n <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return f"{n}{suffix}", found[1]
    return None


def _ordinal(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    token = tokens[i]
    if token in _TENS and i + 1 < len(tokens) and tokens[i + 1] in _UNIT_ORDINALS:
        return _TENS[token] + _UNIT_ORDINALS[tokens[i + 1]], 2
    return (_ORDINALS[token], 1) if token in _ORDINALS else None


def one_edit(a: str, b: str) -> bool:
    """Whether ``a`` is one edit (insert, delete, substitute, swap of neighbours) from ``b``."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (
            len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
        )
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
