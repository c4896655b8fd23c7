"""The README's Python examples run as scripts, and print what their comments say they print."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import re
import sys
import types
from pathlib import Path

import pytest

import dialog.engine
from tests.conftest import MONDAY_8AM

README = Path(__file__).resolve().parent.parent / "README.md"
README_REDIS_URL = "redis://127.0.0.1:6379/0"
# `print(expression)  # what it prints`: two or more spaces before the comment.
CLAIM = re.compile(r"^print\(.*?\)\s{2,}# (?P<value>.*)$")


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def example_block() -> str:
    """The "Use it from Python" block: the one that prints what it shows."""
    (block,) = [b for b in python_blocks() if "engine.handle(" in b]
    return block


def create_app_block() -> str:
    (block,) = [b for b in python_blocks() if "create_app(" in b]
    return block


def claims(block: str) -> list[str]:
    """What each print in ``block`` promises to print, in order; a print without its promise fails."""
    promised = []
    for line in block.splitlines():
        if line.lstrip().startswith("print("):
            claim = CLAIM.match(line.strip())
            assert claim, f"a print in the README without '  # what it prints': {line!r}"
            promised.append(claim["value"].rstrip())
        else:
            assert "print(" not in line, line
    return promised


def run_script(block: str, namespace: dict[str, object] | None = None) -> list[str]:
    """``block`` executed as a script would be, its standard output as lines."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {"__name__": "__main__", **(namespace or {})})
    return [line.rstrip() for line in out.getvalue().splitlines()]


def test_every_python_block_is_run_by_a_test() -> None:
    assert sorted(python_blocks()) == sorted([example_block(), create_app_block()])


def test_the_example_prints_what_its_comments_say(
    redis_url: str, redis_client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dialog.engine, "utc_now", lambda: MONDAY_8AM)  # the README's "tomorrow" is Tue 24 Nov
    block = example_block()
    assert README_REDIS_URL in block
    promised = claims(block)
    assert len(promised) >= 6
    assert run_script(block.replace(README_REDIS_URL, redis_url)) == promised


def test_the_example_runs_again_on_the_same_redis(
    redis_url: str, redis_client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader runs the script twice: the booked conversation takes the new request as a new one."""
    monkeypatch.setattr(dialog.engine, "utc_now", lambda: MONDAY_8AM)
    block = example_block().replace(README_REDIS_URL, redis_url)
    run_script(block)
    assert run_script(block) == claims(example_block())


def test_the_create_app_snippet_builds_an_app_that_answers(
    redis_url: str, redis_client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run as a script with uvicorn stood in for: the app it hands to uvicorn takes a turn."""
    import httpx
    from fastapi import FastAPI

    served: list[tuple[object, dict[str, object]]] = []
    fake_uvicorn = types.ModuleType("uvicorn")
    fake_uvicorn.run = lambda app, **options: served.append((app, options))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "uvicorn", fake_uvicorn)
    monkeypatch.setattr(dialog.engine, "utc_now", lambda: MONDAY_8AM)
    block = create_app_block()
    assert README_REDIS_URL in block
    run_script(block.replace(README_REDIS_URL, redis_url))
    ((app, options),) = served
    assert options == {"host": "127.0.0.1", "port": 8000}
    assert isinstance(app, FastAPI)

    async def a_turn() -> httpx.Response:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dialog")
        async with app.router.lifespan_context(app), http:
            return await http.post(
                "/v1/conversations/c1/messages",
                headers={"Authorization": "Bearer devkey"},
                json={"text": "Schedule a call with Dana Scully tomorrow at 10am"},
            )

    response = asyncio.run(a_turn())
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "proposed"
    assert response.json()["text"] == "Shall I book a call with Dana Scully on Tue 24 Nov, 10:00 (UTC)?"


def test_the_readme_tenants_file_is_valid() -> None:
    import tomllib

    from dialog.calendar import Schedule
    from dialog.calendar.config import parse_tenants

    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    tenants = parse_tenants(tomllib.loads(blocks[0]))
    assert tenants.default.timezone == "Europe/Berlin"
    assert tenants["acme"] == Schedule(
        timezone="America/New_York",
        working_days=(0, 1, 2, 3),
        day_start=dt.time(8, 30),
        day_end=dt.time(16),
        slot_minutes=45,
        horizon_days=21,
    )
