"""Mutation check: seed each known bug in turn and require the property suite to catch it.

Run from the repository root (needs the test Redis, as the suite does):

    .venv/bin/python scripts/mutations.py                  # the suite unmutated, then every mutant
    .venv/bin/python scripts/mutations.py cas_plain_set    # only the named mutants
    .venv/bin/python scripts/mutations.py --stateful-only  # only the hypothesis state machine

Each run is a fresh Python process that applies one mutant from ``scripts/mutants.py`` by
monkeypatching (production code is never edited), then runs the property suite (its three
files, ``tests/test_dialog_properties_{table,interleaved,stateful}.py``, in that order) with
``-x`` under the ``mutations`` profile (the ``ci`` profile's examples, without shrinking).
A mutant is caught when pytest reports failing tests and the first of them passes again without
the mutant (a control run, so that a failure from elsewhere, say another suite flushing the same
Redis database, never counts as a catch). The script prints a table (mutant, caught, seconds,
first failing test) and exits non-zero when the unmutated suite does not pass cleanly or any
mutant survives.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.mutants import MUTANTS  # noqa: E402  (the repository root must be importable first)

# The property suite, cheapest and most certain layer first (see tests/dialog_harness.py).
SUITE = (
    "tests/test_dialog_properties_table.py",
    "tests/test_dialog_properties_interleaved.py",
    "tests/test_dialog_properties_stateful.py",
)
UNMUTATED = "(none)"
CANNOT_APPLY = 99
# Seeds the mutant, then runs pytest in the same process, so the patch is in place for the tests.
BOOTSTRAP = f"""
import sys, traceback
from scripts import mutants
if sys.argv[1] != {UNMUTATED!r}:
    try:
        mutants.apply(sys.argv[1])
    except Exception:
        traceback.print_exc()
        raise SystemExit({CANNOT_APPLY})
import pytest
raise SystemExit(pytest.main(sys.argv[2:]))
"""
TIMEOUT_SECONDS = 600


@dataclass(frozen=True)
class Run:
    mutant: str
    returncode: int
    seconds: float
    output: str

    @property
    def first_failure(self) -> str | None:
        """The node id of the first failing test, if any."""
        found = re.search(r"^FAILED (\S+)", self.output, re.MULTILINE)
        return found.group(1) if found else None

    @property
    def summary(self) -> str:
        lines = [line for line in self.output.splitlines() if line.strip()]
        return lines[-1] if lines else ""


def run(mutant: str, pytest_args: list[str], targets: Sequence[str] = SUITE) -> Run:
    env = {**os.environ, "DIALOG_HYPOTHESIS_PROFILE": "mutations"}  # ci's examples, no shrinking
    command = [sys.executable, "-c", BOOTSTRAP, mutant, "-x", "-q", "-p", "no:cacheprovider", *pytest_args, *targets]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
        returncode, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        returncode, output = -1, f"timed out after {TIMEOUT_SECONDS} s: {exc}"
    return Run(mutant, returncode, time.monotonic() - started, output)


def verdict(r: Run, control: Run | None) -> tuple[str, bool]:
    """What the table says about a run, and whether it is what the check needs."""
    if r.mutant == UNMUTATED:
        clean = r.returncode == 0 and "skipped" not in r.summary
        return ("passes" if clean else f"FAILS (exit {r.returncode})"), clean
    if r.returncode == 1:
        if control is None or control.returncode != 0:
            return "UNSURE", False  # the test that failed fails without the mutant too
        return "yes", True
    if r.returncode == 0:
        return "NO (survived)", False
    if r.returncode == CANNOT_APPLY:
        return "NOT APPLIED", False
    return f"ERROR (exit {r.returncode})", False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mutants", nargs="*", choices=[[], *MUTANTS], help="default: all")
    parser.add_argument("--stateful-only", action="store_true", help="run only the hypothesis state machine")
    args = parser.parse_args(argv)
    pytest_args = ["-k", "TestDialogMachine"] if args.stateful_only else []
    names = [UNMUTATED, *(args.mutants or MUTANTS)]

    print(f"{'mutant':24} {'caught':14} {'seconds':>8}  first failing test", flush=True)
    ok = True
    for name in names:
        r = run(name, pytest_args)
        failed = r.first_failure
        control = run(UNMUTATED, [], [failed]) if name != UNMUTATED and r.returncode == 1 and failed else None
        said, good = verdict(r, control)
        ok &= good
        seconds = r.seconds + (control.seconds if control else 0)
        shown = failed.removeprefix("tests/test_dialog_properties_") if failed else "-"
        print(f"{name:24} {said:14} {seconds:8.1f}  {shown}", flush=True)
        if not good:
            print("    " + "\n    ".join(r.output.splitlines()[-30:]), flush=True)
            if control is not None:
                print("    control run without the mutant:\n    " + "\n    ".join(control.output.splitlines()[-30:]))
        if name == UNMUTATED and not good:
            print("the unmutated suite must pass first; no mutant was tried", flush=True)
            return 1
    print("every mutant was caught" if ok else "SOME MUTANTS WERE NOT CAUGHT", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
