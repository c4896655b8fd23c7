"""The README's Python examples run, and the values their comments promise are the values returned."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

import dialog.engine
from tests.conftest import MONDAY_8AM

README = Path(__file__).resolve().parent.parent / "README.md"
CLAIM = re.compile(r'^(?P<expr>[a-z_][\w.]*)\s+# "(?P<value>[^"]*)"$')


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples() -> None:
    assert len(python_blocks()) >= 1


@pytest.mark.parametrize("block", python_blocks())
def test_readme_example(block: str, redis_url: str, redis_client: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dialog.engine, "utc_now", lambda: MONDAY_8AM)
    namespace: dict[str, object] = {}
    claims = 0
    for line in block.replace("redis://127.0.0.1:6379/0", redis_url).splitlines():
        claim = CLAIM.match(line.strip())
        if claim:
            assert str(eval(claim["expr"], namespace)) == claim["value"], line
            claims += 1
        else:
            exec(line, namespace)
    assert claims >= 3


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
