"""Property suite, layer 2: a second container's turn between one container's read and its
compare-and-set, or between a confirmation's calendar call and its last write (see
``tests/dialog_harness.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.dialog_harness import SITUATIONS, World, each_in_a_fresh_world
from tests.dialog_reference import CATALOGUE, JANUARY_5TH, KINDS, Utterance

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def _redis_reachable(redis_url: str) -> None:
    """Skips (or, with CI=true, fails) this file's tests when the real Redis is unreachable."""


# --- 2. interleaved containers: one turn lands between another's read and write ----------------

INTERLEAVED_SITUATIONS = ("awaiting", "rescheduling", "done_booked", "awaiting_move", "awaiting_cancel")
FIRST_OF_EACH_KIND = {kind: CATALOGUE[kind][0] for kind in KINDS} | {"move_to": JANUARY_5TH}


@pytest.mark.parametrize("situation", INTERLEAVED_SITUATIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_turn_interleaved_with_another_containers_acts_as_if_it_ran_second(
    redis_url: str, situation: str, kind: str
) -> None:
    """The compare-and-set: the other container's turn is never lost, nothing is booked twice."""
    setup, _ = SITUATIONS[situation]

    def case(meanwhile: Utterance) -> Callable[[World], None]:
        def run(world: World) -> None:
            c = setup(world)
            world.interleave(0, c, FIRST_OF_EACH_KIND[kind], c, meanwhile)
            world.check()

        return run

    cases = [(f"meanwhile {other} {u}", case(u)) for other, u in FIRST_OF_EACH_KIND.items()]
    each_in_a_fresh_world(redis_url, cases)


@pytest.mark.parametrize("situation", ("awaiting", "awaiting_move", "awaiting_cancel"))
@pytest.mark.parametrize("kind", KINDS)
def test_a_turn_landing_between_the_calendar_call_and_the_last_write_completes_the_confirmation_once(
    redis_url: str, kind: str, situation: str
) -> None:
    """A "yes" books (moves, cancels); another container's turn arrives after the calendar call:
    one event, booked, moved or removed once."""
    setup, _ = SITUATIONS[situation]

    def case(meanwhile: Utterance) -> Callable[[World], None]:
        def run(world: World) -> None:
            c = setup(world)
            world.cross_mid_confirmation(0, c, CATALOGUE["confirm"][0], meanwhile)
            world.check()

        return run

    each_in_a_fresh_world(redis_url, [(str(u), case(u)) for u in CATALOGUE[kind][:3]])
