"""The README's Python examples run, and the values their comments promise are the values returned."""

from __future__ import annotations

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
