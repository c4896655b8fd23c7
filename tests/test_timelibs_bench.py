"""benchmarks/timelibs.py (issue 12's comparison of time-expression libraries) on a handful of items.

The libraries are not installed in CI: only our parser runs here, so that the benchmark's
selection, completion and scoring cannot rot unnoticed. No speed is asserted (figures come from
the script).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import timelibs
from benchmarks.timelibs import ANCHOR, NOW, Case, Reading


@pytest.fixture(scope="module")
def chosen() -> list[Case]:
    return timelibs.cases(timelibs.load_corpus())


@pytest.fixture(scope="module")
def sample(chosen: list[Case]) -> list[Case]:
    """Two cases per category, named and unnamed, text and voice, where the corpus has them."""
    picked: dict[tuple[str, bool, str], list[Case]] = {}
    for case in chosen:
        group = picked.setdefault((case.item["category"], case.named, case.item["channel"]), [])
        if len(group) < 2:
            group.append(case)
    return [case for group in picked.values() for case in group]


def test_the_cases_are_the_items_that_carry_a_start(chosen: list[Case]) -> None:
    assert {c.item["category"] for c in chosen} == set(timelibs.CATEGORIES)
    assert all(c.item["expect"]["start"] is not None for c in chosen)
    assert not any(c.named for c in chosen if c.item["category"] == "reschedule_next")
    assert all(c.named for c in chosen if c.item["category"] == "reschedule")
    assert all(c.anchor is None for c in chosen if c.item["category"] == "schedule")
    assert all(c.anchor == ANCHOR for c in chosen if c.item["category"] != "schedule")
    assert {c.item["split"] for c in chosen} == {"dev", "heldout"}


def test_a_library_is_given_the_proposal_as_base_only_for_a_move_from_it() -> None:
    item: dict[str, Any] = {"text": "", "expect": {"start": "2026-11-24T11:00"}}

    def case(text: str, anchor: dt.datetime | None = ANCHOR) -> Case:
        return Case({**item, "text": text}, anchor, True, None)

    assert case("an hour later").base == ANCHOR
    assert case("same time next week").base == ANCHOR
    assert case("push it back 30 mins").base == ANCHOR
    assert case("the day after tomorrow at 9").base == NOW
    assert case("tomorrow at 11").base == NOW
    assert case("an hour later", anchor=None).base == NOW


def _oracle(chosen: list[Case], shift: dt.timedelta = dt.timedelta(0)) -> timelibs.Parse:
    """A parser that reads each named case's expected start (shifted), and nothing elsewhere."""
    answers = {c.text: (c.expected + shift) for c in chosen if c.named}

    def parse(text: str, base: dt.datetime, anchor: dt.datetime | None) -> Reading | None:
        moment = answers.get(text)
        return None if moment is None else Reading(moment.date(), moment.time().replace(tzinfo=None))

    return parse


def test_scoring_tells_exact_none_and_wrong(sample: list[Case]) -> None:
    named = sum(c.named for c in sample)
    assert 0 < named < len(sample)
    right = timelibs.run_parser("oracle", _oracle(sample), sample, repeats=1)
    assert right.verdicts == ["exact"] * len(sample)
    silent = timelibs.run_parser("silent", lambda text, base, anchor: None, sample, repeats=1)
    assert silent.verdicts.count("none") == named and silent.verdicts.count("exact") == len(sample) - named
    late = timelibs.run_parser("late", _oracle(sample, dt.timedelta(days=1)), sample, repeats=1)
    assert late.verdicts.count("wrong") == named


def test_a_day_alone_is_its_first_free_slot_and_a_bookable_other_time_is_wrong() -> None:
    item = {"text": "", "expect": {"start": "2026-11-27T09:00"}}
    new_request = Case(item, None, True, None)
    assert timelibs.score(new_request, Reading(dt.date(2026, 11, 27), None)) == "exact"
    assert timelibs.score(new_request, Reading(dt.date(2026, 11, 27), dt.time(10))) == "wrong"
    assert timelibs.score(new_request, Reading(dt.date(2026, 11, 26), None)) == "wrong"
    moved = Case({**item, "expect": {"start": "2026-11-24T10:30"}}, ANCHOR, True, ANCHOR)
    assert timelibs.score(moved, Reading(None, dt.time(10))) == "exact"  # the booked call's slot is taken


def test_ours_reads_the_sample_without_a_confident_wrong_time(sample: list[Case]) -> None:
    run = timelibs.run_parser("ours", timelibs.parse_ours, sample, repeats=1)
    assert set(run.verdicts) <= {"exact", "none", "wrong"}
    wrong = [c.text for c, v in zip(sample, run.verdicts, strict=True) if v == "wrong"]
    assert wrong == []
    assert all(us > 0 for us in run.micros)


def test_the_script_prints_the_table_and_names_a_missing_library(
    sample: list[Case], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(c.item) + "\n" for c in sample), encoding="utf-8")

    def missing() -> timelibs.Parse:
        raise ModuleNotFoundError("No module named 'ctparse'")

    monkeypatch.setitem(timelibs.FACTORIES, "ctparse", missing)
    code = timelibs.main(["--corpus", str(corpus), "--parsers", "ours,ctparse", "--repeats", "1", "--no-import-time"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"{len(sample)} corpus items" in out
    assert "ours" in out and "heldout" in out
    assert "ctparse        not installed (No module named 'ctparse')" in out
