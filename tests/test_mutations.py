"""The property tests bite: scripts/mutations.py seeds known bugs one at a time and each must be caught.

Slow (about 2 minutes: the property suite once unmutated, then once per mutant, each in its
own process). It flushes the test Redis database in every run, like the suite it drives.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.redis
def test_every_seeded_bug_is_caught_by_the_property_suite(redis_url: str) -> None:
    """The unmutated property suite passes, and it fails under every mutant in scripts/mutants.py."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "mutations.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    table = done.stdout + done.stderr
    assert done.returncode == 0, table
    assert "every mutant was caught" in table, table
