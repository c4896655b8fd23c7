"""The command line as a user runs it: `dialog demo` and `dialog chat`, in real subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def dialog(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dialog.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_demo_shows_the_proposal_surviving_a_restart_and_one_booking(redis_url: str, redis_client: object) -> None:
    result = dialog("demo", "--redis-url", redis_url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "RedisCalendar" in out  # the default calendar: in Redis, shared by every process
    assert "Container B loads it from Redis: state=awaiting_confirmation" in out
    assert "outcome=booked" in out and "outcome=already_booked" in out
    # the true reason (spec 4.3): after every container restarted, the booked slot is not offered
    assert "10:30 (UTC) is already taken" in out
    assert "outcome=moved" in out
    assert "Calendar: 1 event(s): Dana Scully" in out and "15:00" in out.rsplit("Calendar:", 1)[1]


def test_demo_runs_again_on_the_same_redis(redis_url: str, redis_client: object) -> None:
    """Each demo books in a tenant of its own, so earlier demos' events never get in its way."""
    for _ in range(2):
        result = dialog("demo", "--redis-url", redis_url)
        assert result.returncode == 0, result.stdout + result.stderr


def test_a_booking_made_in_one_chat_is_never_offered_in_another(redis_url: str, redis_client: object) -> None:
    """Two CLI processes on one Redis share the calendar: a booked slot is not offered again."""
    first = dialog("chat", "--redis-url", redis_url, "--conversation", "a", stdin=f"{SCHEDULE}\nyes\n")
    assert "Booked: a call with Dana Scully" in first.stdout, first.stdout + first.stderr
    marcus = "schedule a call with Marcus Lee tomorrow at 10am\n"
    second = dialog("chat", "--redis-url", redis_url, "--conversation", "b", stdin=marcus)
    assert "is already taken" in second.stdout and "10:30" in second.stdout, second.stdout


def test_memory_calendar_is_an_explicit_opt_in(redis_url: str, redis_client: object) -> None:
    result = dialog("demo", "--redis-url", redis_url, env={"DIALOG_CALENDAR_URL": "memory://"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "InMemoryCalendar" in result.stdout


SCHEDULE = "schedule a call with Dana Scully tomorrow at 10am"


def test_demo_on_the_embedded_default(tmp_path: Path) -> None:
    env = {"DIALOG_HOME": str(tmp_path)}
    env.pop("DIALOG_REDIS_URL", None)
    result = dialog("demo", env={**env, "DIALOG_REDIS_URL": ""})
    assert result.returncode == 0, result.stderr
    assert "Calendar: 1 event(s)" in result.stdout
    assert "fakeredis" not in result.stdout  # the real embedded server started


def test_chat_answers_and_the_conversation_survives_a_restart_of_the_cli(tmp_path: Path) -> None:
    env = {"DIALOG_HOME": str(tmp_path), "DIALOG_REDIS_URL": ""}
    first = dialog("chat", "--conversation", "me", stdin="schedule a call with Dana Scully tomorrow at 10am\n", env=env)
    assert first.returncode == 0, first.stderr
    assert "Shall I book a call with Dana Scully" in first.stdout
    second = dialog("chat", "--conversation", "me", stdin="yes\n", env=env)
    assert "Booked: a call with Dana Scully" in second.stdout
    assert "[done / booked]" in second.stdout


def test_chat_reports_bad_input_without_a_traceback(redis_url: str, redis_client: object) -> None:
    result = dialog("chat", "--redis-url", redis_url, stdin=("x" * 5000) + "\nyes\n")
    assert result.returncode == 0
    assert "error: text is 5000 bytes" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert "nothing_pending" in result.stdout


@pytest.mark.parametrize("args", [["chat", "--redis-url", "redis://127.0.0.1:1/0"]])
def test_an_unreachable_redis_is_a_one_line_error(args: list[str]) -> None:
    result = dialog(*args, stdin="yes\n")
    assert "Traceback" not in result.stderr + result.stdout
    assert "Redis is unavailable" in result.stdout + result.stderr


def test_recover_every_sweeps_until_interrupted_and_settles_a_stranded_confirmation(
    redis_url: str, redis_client: object
) -> None:
    """`dialog recover --every 1s` keeps sweeping: a confirmation stranded later is settled too."""
    import signal
    import time

    import redis

    from dialog import Engine
    from dialog.engine import Checkpoint
    from tests.test_crashes import Crash, crash_at

    sweeper = subprocess.Popen(
        [sys.executable, "-m", "dialog.cli", "recover", "--every", "1s", "--redis-url", redis_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DIALOG_CALENDAR_URL": "memory://"},
    )
    try:
        time.sleep(1.5)  # a sweep or two with nothing to do
        client = redis.Redis.from_url(redis_url)
        Engine(client).handle("c1", "schedule a call with Dana Scully tomorrow at 10am")
        with pytest.raises(Crash):
            Engine(client, checkpoint=crash_at(Checkpoint.INTENT_COMMITTED)).handle("c1", "yes")
        deadline = time.monotonic() + 10
        while Engine(client).snapshot("c1").booking_pending:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the sweep never settled it"
            time.sleep(0.1)
        client.close()
        time.sleep(1.5)  # the sweep that settled it prints after its commit: let it finish before SIGINT
    finally:
        sweeper.send_signal(signal.SIGINT)
        out, err = sweeper.communicate(timeout=10)
    assert sweeper.returncode == 0, err
    assert "default/c1: booked" in out
    assert out.count("settled 0 outstanding") >= 1
    assert "Traceback" not in err


def test_recover_every_refuses_a_bad_duration() -> None:
    result = dialog("recover", "--every", "soon")
    assert result.returncode == 2
    assert "not a duration" in result.stderr


def test_trim_removes_only_events_that_ended_before_the_cutoff(redis_url: str, redis_client: object) -> None:
    """`dialog trim --older-than 90d` is the documented retention command for RedisCalendar."""
    import datetime as dt

    import redis

    from dialog import RedisCalendar

    calendar = RedisCalendar(redis.Redis.from_url(redis_url))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    old, recent = now - dt.timedelta(days=100), now + dt.timedelta(days=1)
    for key, start in (("old", old), ("recent", recent)):
        calendar.book("acme", lead=key, start=start, end=start + dt.timedelta(minutes=30), idempotency_key=key)
    result = dialog("trim", "--older-than", "90d", "--redis-url", redis_url)
    assert result.returncode == 0, result.stderr
    assert "removed 1 event(s)" in result.stdout
    assert [e.lead for e in calendar.events("acme")] == ["recent"]
    assert dialog("trim", "--older-than", "10m", "--redis-url", redis_url).returncode == 2


@pytest.mark.parametrize(
    ("module", "args", "extra"),
    [("pygraphviz", ["diagram", "--format", "svg"], "diagrams"), ("uvicorn", ["serve"], "server")],
)
def test_a_missing_extra_is_a_one_line_message_naming_it(module: str, args: list[str], extra: str) -> None:
    code = (
        f"import sys; sys.modules[{module!r}] = None; from dialog.cli import main; raise SystemExit(main({args!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"pip install 'durable-dialog[{extra}]'" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_chat_shows_the_history(redis_url: str, redis_client: object) -> None:
    result = dialog("chat", "--redis-url", redis_url, "--conversation", "h", stdin=f"{SCHEDULE}\nyes\n/history\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("/history shows")[1].splitlines()
    history = [line for line in lines if line.startswith("  v")]
    assert len(history) == 3
    assert "'yes': awaiting_confirmation --confirm--> done (booked) event=" in history[-1]
