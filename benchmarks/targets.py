"""Every benchmark target, in one table: the scripts read their "target" and "met" columns here.

    .venv/bin/python -m benchmarks.targets      # the table, as benchmarks/README.md shows it

A target is a bound on one figure a script measures (``at_least`` or ``at_most``), the issue
that set it, and, where the issue names one, what it aims for beyond the bound. Where a later
issue restates a figure, its bound replaces the earlier one here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Target:
    """``figure`` (as ``unit``) must be ``bound`` ``value``; ``where`` names the script and row."""

    figure: str
    bound: Literal[">=", "<="]
    value: float
    unit: str
    issue: int
    where: str
    aim: float | None = None

    def label(self) -> str:
        """As printed in a "target" column: ``>= 1.0x (aim 1.5x)``, ``<= 40 us``."""
        text = f"{self.bound} {self._number(self.value)}{self.unit}"
        return text if self.aim is None else f"{text} (aim {self._number(self.aim)}{self.unit})"

    def _number(self, value: float) -> str:
        if value != int(value):
            return f"{value:g}"
        return f"{value:.1f}" if self.unit == "x" else f"{value:,.0f}"

    def met(self, measured: float) -> bool:
        return measured >= self.value if self.bound == ">=" else measured <= self.value

    def columns(self, measured: float) -> tuple[str, str]:
        """The "target" and "met" columns of a row that measured ``measured``."""
        return self.label(), "yes" if self.met(measured) else "NO"


ONE_ENGINE = Target("engine / baseline turns/s, one instance", ">=", 1.0, "x", 14, "compare.py section 1", aim=1.5)
TWO_ENGINES = Target("two engines / two baselines turns/s, taking turns", ">=", 0.7, "x", 14, "compare.py section 2")
ROUND_TRIPS = Target(
    "engine round trips per turn, 3-turn dialog, one engine", "<=", 1.34, " RT/turn", 14, "compare.py section 1"
)
ASYNC_ENGINE = Target(
    "AsyncEngine turns/s at 64 in flight / asyncio PING floor", ">=", 0.5, "x", 14, "compare.py section 3"
)
CPU_PER_TURN = Target("engine CPU per turn, in-memory store (best chunk)", "<=", 40, " us", 14, "compare.py section 4")
PENDING_MEMORY = Target("Redis memory per pending conversation", "<=", 400, " B", 7, "compare.py section 5")
PACED_P99 = Target("engine p99 per turn at half its maximum turns/s", "<=", 1000, " us", 7, "compare.py section 6")
HTTP_FLOOR = Target(
    "dialog serve / FastAPI + pydantic + GET + SET requests/s, 32 clients", ">=", 0.7, "x", 14, "load.py"
)
HTTP_ROUND_TRIPS = Target("Redis round trips per HTTP turn", "<=", 1.34, " RT/turn", 14, "load.py")

TARGETS = (
    ONE_ENGINE,
    TWO_ENGINES,
    ROUND_TRIPS,
    ASYNC_ENGINE,
    CPU_PER_TURN,
    PENDING_MEMORY,
    PACED_P99,
    HTTP_FLOOR,
    HTTP_ROUND_TRIPS,
)


def markdown() -> str:
    """The table as a Markdown table (benchmarks/README.md holds a copy, checked by a test)."""
    lines = ["| target | bound | issue | measured by |", "|---|---|---|---|"]
    lines += [f"| {t.figure} | {t.label()} | {t.issue} | `{t.where}` |" for t in TARGETS]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown())
