"""The understanding corpus of issue 12 (tests/corpus/understanding.jsonl) and its benchmark.

The corpus's shape, that ``benchmarks/understanding.py`` runs, and floors under what the tuned
understanding reaches (issue 12), so that a regression fails CI: on the whole corpus no false
accept at all (nothing booked, moved or cancelled that was not confirmed); on the held-out part
at most the confident wrong dates measured, and per category an accuracy floor two points under
the measured figure (rounded down). The corpus runs once per module on fakeredis (about 2 s), so
no other user of the shared test database can disturb it.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from benchmarks.understanding import (
    CATEGORIES,
    CORPUS,
    SITUATIONS,
    Result,
    figures,
    load_corpus,
    run_corpus,
    table,
    time_understand,
)

OUTCOMES = {
    "proposed", "rescheduled", "booked", "already_booked", "cancelled", "reprompted", "nothing_pending",
    "expired", "slot_taken", "no_free_slot", "moved", "call_cancelled", "kept",
}  # fmt: skip
KEYS = {"id", "category", "channel", "situation", "text", "expect", "split"}
NOW = dt.datetime(2026, 11, 23, 8, 0)


@pytest.fixture(scope="module")
def corpus() -> list[dict[str, Any]]:
    return load_corpus()


def test_every_line_is_one_json_object() -> None:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)


def test_size_and_categories(corpus: list[dict[str, Any]]) -> None:
    assert len(corpus) >= 1600
    counts = collections.Counter(item["category"] for item in corpus)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 60, counts
    assert {item["channel"] for item in corpus} == {"text", "voice"}
    assert {item["situation"] for item in corpus} == set(SITUATIONS)


def test_ids_are_unique(corpus: list[dict[str, Any]]) -> None:
    ids = [item["id"] for item in corpus]
    assert len(ids) == len(set(ids))


def test_fields(corpus: list[dict[str, Any]]) -> None:
    for item in corpus:
        assert set(item) == KEYS, item
        assert isinstance(item["id"], str) and item["id"]
        assert item["category"] in CATEGORIES
        assert item["channel"] in ("text", "voice")
        assert item["situation"] in SITUATIONS
        assert isinstance(item["text"], str) and item["text"].strip()
        assert len(item["text"].encode()) <= 4096
        assert item["split"] in ("dev", "heldout")
        expect = item["expect"]
        assert set(expect) == {"outcome", "start", "lead", "kind"}, item
        assert expect["outcome"] in OUTCOMES
        assert expect["kind"] in (None, "book", "move", "cancel")
        assert expect["lead"] is None or (isinstance(expect["lead"], str) and expect["lead"].strip())
        if expect["start"] is None:
            assert expect["lead"] is None and expect["kind"] is None, item
        else:
            _check_start(expect["start"], item)


def _check_start(value: str, item: dict[str, Any]) -> None:
    """An expected start is a free slot of the default schedule: a working day, on the grid, in hours."""
    moment = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M")
    assert moment.weekday() < 5, item
    assert dt.time(9) <= moment.time() <= dt.time(16, 30) and moment.minute in (0, 30), item
    assert NOW < moment <= NOW + dt.timedelta(days=366), item


def test_voice_items_read_like_transcripts(corpus: list[dict[str, Any]]) -> None:
    for item in corpus:
        if item["channel"] == "voice":
            assert all(c.islower() or c in " '" for c in item["text"]), item


def test_about_thirty_percent_is_held_out(corpus: list[dict[str, Any]]) -> None:
    held = [item for item in corpus if item["split"] == "heldout"]
    assert 0.27 <= len(held) / len(corpus) <= 0.33
    for category in CATEGORIES:
        group = [item for item in corpus if item["category"] == category]
        share = sum(item["split"] == "heldout" for item in group) / len(group)
        assert 0.25 <= share <= 0.35, (category, share)


@pytest.fixture(scope="module")
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.flushdb()
    client.close()


def test_the_benchmark_runs_on_a_sample(corpus: list[dict[str, Any]], client: redis.Redis) -> None:
    firsts: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in corpus:  # one item per category, situation and channel that the corpus has
        firsts.setdefault((item["category"], item["situation"], item["channel"]), item)
    sample = list(firsts.values())
    results = run_corpus(sample, client)
    assert [r.item["id"] for r in results] == [item["id"] for item in sample]
    assert all(isinstance(r, Result) for r in results)
    printed = table(results, ("dev", "heldout", "all"))
    assert all(category in printed for category in CATEGORIES)
    assert figures(results).n == len(sample)
    median_us, max_us, slowest = time_understand(sample[:5], repeats=3)
    assert 0 < median_us <= max_us and slowest


# Held-out accuracy per category as measured when issue 12 was done (README, "Choices where the
# spec is silent"), and the floors CI holds: two points under, rounded down.
HELDOUT_MEASURED = {
    "confirm": 94.3, "refuse": 97.9, "hesitate": 97.9, "question": 100.0, "reschedule": 98.6,
    "reschedule_next": 95.2, "schedule": 98.3, "lead_change": 92.0, "booked_change": 100.0, "unreadable": 98.0,
}  # fmt: skip
HELDOUT_FLOORS = {category: float(int(measured) - 2) for category, measured in HELDOUT_MEASURED.items()}
HELDOUT_WRONG_DATES = 3  # confident wrong dates measured on the held-out part; never more


@pytest.fixture(scope="module")
def results(corpus: list[dict[str, Any]]) -> list[Result]:
    client = fakeredis.FakeRedis()
    try:
        return run_corpus(corpus, client)
    finally:
        client.close()


def test_no_refusal_or_hesitation_changes_the_calendar(results: list[Result]) -> None:
    for category in ("refuse", "hesitate"):
        mine = [r for r in results if r.item["category"] == category]
        accepted = [(r.item["id"], r.item["text"], r.outcome) for r in mine if r.false_accept]
        assert mine and accepted == [], category


def test_no_false_accept_on_the_whole_corpus(results: list[Result]) -> None:
    accepted = [(r.item["id"], r.item["text"], r.outcome) for r in results if r.false_accept]
    assert accepted == []


def test_heldout_wrong_dates_stay_at_most_the_measured_count(results: list[Result]) -> None:
    held = figures(r for r in results if r.item["split"] == "heldout")
    assert held.wrong_dates <= HELDOUT_WRONG_DATES


@pytest.mark.parametrize("category", CATEGORIES)
def test_heldout_accuracy_per_category_stays_above_its_floor(results: list[Result], category: str) -> None:
    held = figures(r for r in results if r.item["split"] == "heldout" and r.item["category"] == category)
    assert held.n and held.accuracy >= HELDOUT_FLOORS[category], (category, round(held.accuracy, 1))
