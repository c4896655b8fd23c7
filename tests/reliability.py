"""The reliability table: fault tests report what they injected and what they found.

Set DIALOG_RELIABILITY_REPORT=path to write the table (Markdown) at the end of the run;
`make reliability` runs the fault suites at their long settings and writes it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Row:
    runs: int = 0
    expected: int = 0
    found: int = 0
    lost_updates: int = 0
    applied_twice: int = 0
    errors: int = 0


@dataclass
class Table:
    rows: dict[str, Row] = field(default_factory=dict)

    def record(
        self,
        fault: str,
        *,
        expected: int,
        found: int,
        lost_updates: int = 0,
        applied_twice: int = 0,
        errors: int = 0,
    ) -> None:
        row = self.rows.setdefault(fault, Row())
        row.runs += 1
        row.expected += expected
        row.found += found
        row.lost_updates += lost_updates
        row.applied_twice += applied_twice
        row.errors += errors

    def markdown(self) -> str:
        lines = [
            "| fault | runs | events expected | events found | lost updates | turns applied twice | errors |",
            "|---|---|---|---|---|---|---|",
        ]
        for fault, r in sorted(self.rows.items()):
            cells = (r.runs, r.expected, r.found, r.lost_updates, r.applied_twice, r.errors)
            lines.append(f"| {fault} | " + " | ".join(map(str, cells)) + " |")
        return "\n".join(lines) + "\n"


TABLE = Table()


@pytest.fixture(scope="session")
def reliability() -> Table:
    return TABLE


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("DIALOG_RELIABILITY_REPORT")
    if target and TABLE.rows:
        Path(target).write_text(TABLE.markdown())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """DIALOG_RELIABILITY_RUNS=N repeats every test that reports to the table N times."""
    runs = int(os.environ.get("DIALOG_RELIABILITY_RUNS", "1"))
    if runs > 1 and "reliability" in metafunc.fixturenames:
        metafunc.fixturenames.append("reliability_run")
        metafunc.parametrize("reliability_run", range(runs))
