"""Known bugs, seeded one at a time into a test process by monkeypatching; production code is never edited.

``apply(name)`` patches the already-imported ``dialog`` modules in this process only, so it must
run before the tests do (``scripts/mutations.py`` starts one Python process per mutant). A patch
that no longer finds what it replaces raises ``MutantDoesNotApply`` instead of silently seeding
nothing: a mutant that cannot be applied must not count as caught.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class MutantDoesNotApply(RuntimeError):
    """The code a mutant patches has changed; update the mutant."""


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    apply: Callable[[], None]


# Words that make an answer affirmative, for the negation mutant (its own list, on purpose).
_AFFIRMATIVE = frozenset(
    ("yes", "yeah", "yep", "yup", "sure", "ok", "okay", "fine", "alright", "go", "book", "perfect", "good")
)


def _rewrite_cas_script(*rewrites: tuple[str, str]) -> None:
    """Rewrite the compare-and-set Lua script before any engine registers it.

    ``rewrites`` are (regex, replacement) pairs for the script's known shapes; the first that
    matches is applied.
    """
    from dialog.store import redis_store

    for pattern, replacement in rewrites:
        mutated, found = re.subn(pattern, replacement, redis_store.CAS_SCRIPT, count=1, flags=re.DOTALL)
        if found:
            redis_store.CAS_SCRIPT = mutated
            return
    raise MutantDoesNotApply(f"the CAS script matches none of {[p for p, _ in rewrites]}")


def _wrap_understanding(change: Callable[[str, Any], Any]) -> None:
    """Replace what the engine calls to understand an utterance; ``change(text, real_answer)``."""
    from dialog import engine

    # the name the engine imported from dialog.understanding, patched where the engine looks it up
    namespace = vars(engine)
    real = namespace["understand"]

    def understand(text: str, *, pending: bool) -> Any:
        return change(text, real(text, pending=pending))

    namespace["understand"] = understand


def not_yet_confirms() -> None:
    """Hesitation ("not yet", "wait", "hmm") is read as a confirmation."""
    from dialog.understanding import Intent, Understanding

    def change(text: str, u: Any) -> Any:
        return Understanding(Intent.CONFIRM, u.when, u.lead) if u.intent is Intent.HESITATE else u

    _wrap_understanding(change)


def negation_removed() -> None:
    """Refusal and hesitation words are ignored when an affirmative word is present ("yes but not now")."""
    from dialog.understanding import Intent, Understanding

    def change(text: str, u: Any) -> Any:
        words = set(re.findall(r"[a-z]+", text.lower()))
        if u.intent in (Intent.REFUSE, Intent.HESITATE) and words & _AFFIRMATIVE:
            return Understanding(Intent.CONFIRM, u.when, u.lead)
        return u

    _wrap_understanding(change)


def done_confirm_rebooks() -> None:
    """A "yes" in done (booked) books the proposal again, under a fresh idempotency key."""
    import msgspec

    from dialog import turn
    from dialog.machine import State
    from dialog.results import Outcome
    from dialog.store.record import Booking
    from dialog.understanding import Intent

    real = turn.decide

    def decide(ctx: Any, u: Any) -> Any:
        booked = ctx.record.booking
        if ctx.record.state is State.DONE and booked is not None and u.intent is Intent.CONFIRM:
            again = Booking(key=booked.key + "-again", lead=booked.lead, start=booked.start, end=booked.end)
            record = msgspec.structs.replace(ctx.record, state=State.AWAITING_CONFIRMATION, booking=again)
            return turn.Step(record, Outcome.BOOKED, books=True)
        return real(ctx, u)

    turn.decide = decide  # the engine looks it up at each turn


def cas_plain_set() -> None:
    """The compare-and-set writes without checking the version (a plain SET)."""
    _rewrite_cas_script(
        (r"if token ~= (?:ARGV\[1\]|expected)[^\n]*\bend\n", ""),
        (r"if [^\n]*~= ARGV\[1\] then.*?\bend\n", ""),
    )


# The conversation key's write, with its TTL: a SET with PX (schema 2) or a PEXPIRE (schema 1).
_SET_WITH_TTL = r"redis\.call\('SET', KEYS\[1\], ([^\n]*?), 'PX', ARGV\[4\]\)"
_PEXPIRE = r"redis\.call\('PEXPIRE', KEYS\[1\], ARGV\[4\]\)"


def ttl_not_set() -> None:
    """The conversation key is written without a TTL."""
    _rewrite_cas_script((_SET_WITH_TTL, r"redis.call('SET', KEYS[1], \1)"), (_PEXPIRE + r"\n", ""))


def ttl_not_refreshed() -> None:
    """The conversation key's TTL is set when it is created and never refreshed by later turns."""
    _rewrite_cas_script(
        (
            _SET_WITH_TTL,
            r"if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('SET', KEYS[1], \1, 'KEEPTTL') "
            r"else redis.call('SET', KEYS[1], \1, 'PX', ARGV[4]) end",
        ),
        (_PEXPIRE, "if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end"),
    )


MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant("not_yet_confirms", not_yet_confirms.__doc__ or "", not_yet_confirms),
        Mutant("done_confirm_rebooks", done_confirm_rebooks.__doc__ or "", done_confirm_rebooks),
        Mutant("negation_removed", negation_removed.__doc__ or "", negation_removed),
        Mutant("cas_plain_set", cas_plain_set.__doc__ or "", cas_plain_set),
        Mutant("ttl_not_set", ttl_not_set.__doc__ or "", ttl_not_set),
        Mutant("ttl_not_refreshed", ttl_not_refreshed.__doc__ or "", ttl_not_refreshed),
    )
}


def apply(name: str) -> None:
    """Seed the mutant ``name`` into this process."""
    MUTANTS[name].apply()
