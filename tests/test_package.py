"""The wheel, as a new user gets it: built, installed into a fresh venv outside the clone, and the
README's commands and Python examples run from there (no extras, then the server extra).

Dependencies come from the package index as pip is configured on this machine. About 10 s here
(wheel ~2 s, venv ~3 s, install ~4 s, runs ~1 s) with the index and pip's cache local.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.test_readme import README_REDIS_URL, claims, create_app_block, example_block

ROOT = Path(__file__).resolve().parent.parent
# What a build needs is the clone without its local state (and without a build/ left in it).
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "node_modules"
)

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    cwd: Path  # outside the clone: `import dialog` can only find the installed package
    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            input=stdin,
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _check(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"{result.args}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    tmp = tmp_path_factory.mktemp("package")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIALOG_", "PYTHON", "VIRTUAL_ENV"))}
    env["DIALOG_HOME"] = str(tmp / "home")
    _check(
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp / "dist"), str(source)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    )
    (wheel,) = (tmp / "dist").glob("durable_dialog-*.whl")
    _check(subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], capture_output=True, text=True))
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    done = Installed(wheel, tmp / "venv", cwd, env)
    _check(done.run("pip", "install", "--quiet", str(wheel), timeout=600))
    yield done
    # a server `dialog demo` started is stopped at its exit; nothing else runs in tmp


def test_the_installed_package_is_the_one_imported(installed: Installed) -> None:
    result = _check(installed.run("python", "-c", "import dialog; print(dialog.__file__)"))
    assert Path(result.stdout.strip()).is_relative_to(installed.venv), result.stdout


def test_dialog_demo_works_with_no_extras(installed: Installed) -> None:
    result = _check(installed.run("dialog", "demo"))
    assert "Calendar: 1 event(s)" in result.stdout, result.stdout
    assert "fakeredis" not in result.stdout  # the embedded server came with the base install


# "tomorrow" is the day of the run here (tests/test_readme.py pins the README's date): dates and
# times in the output and in the comments are compared as placeholders.
DATES = [
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d"), "<datetime>"),
    (re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} [A-Z][a-z]{2}, \d\d:\d\d\b"), "<day, time>"),
]


def _undated(line: str) -> str:
    for pattern, placeholder in DATES:
        line = pattern.sub(placeholder, line)
    return line


def test_the_readme_example_prints_what_the_readme_shows(
    installed: Installed, redis_url: str, redis_client: object
) -> None:
    block = example_block().replace(README_REDIS_URL, redis_url)
    result = _check(installed.run("python", "-c", block))
    printed = result.stdout.splitlines()
    assert [_undated(line) for line in printed] == [_undated(claim) for claim in claims(example_block())]


def test_the_readme_create_app_snippet_builds_with_the_server_extra(
    installed: Installed, redis_url: str, redis_client: object
) -> None:
    _check(installed.run("pip", "install", "--quiet", f"{installed.wheel}[server]", timeout=600))
    # Not as __main__: the snippet would start uvicorn and serve forever.
    runner = (
        "import sys; namespace = {'__name__': 'readme'}; exec(sys.stdin.read(), namespace); "
        "app = namespace['app']; print(type(app).__name__, sorted(r.path for r in app.routes if 'messages' in r.path))"
    )
    snippet = create_app_block().replace(README_REDIS_URL, redis_url)
    result = _check(installed.run("python", "-c", runner, stdin=snippet))
    assert result.stdout.strip() == "FastAPI ['/v1/conversations/{conversation_id}/messages']", result.stdout
