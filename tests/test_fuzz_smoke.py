"""A short coverage-guided run of every fuzz target (fuzz/), as CI's smoke of the fuzzers.

Each target runs a few seconds under atheris in its own process, from its seed corpus: the
seeds themselves must pass, and nothing the fuzzer makes from them in that time may escape as
anything but a ``PushprovError`` (or hang, or blow up memory). docs/fuzzing.md has the longer
runs and their figures; `python -m fuzz TARGET --seconds N` is the same run, longer.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz import CORPUS, TARGETS

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 4


@pytest.fixture(scope="module", autouse=True)
def _atheris() -> None:
    if importlib.util.find_spec("atheris") is None:
        if os.environ.get("CI"):
            pytest.fail("atheris is required in CI (the test extra installs it)")
        pytest.skip("atheris not installed")


def test_every_target_has_seeds_and_a_readme() -> None:
    for target in TARGETS:
        folder = CORPUS / target
        seeds = [p for p in folder.iterdir() if p.name != "README.md"]
        assert seeds, target
        assert max(p.stat().st_size for p in seeds) <= 8 * 1024, target  # small on purpose
        assert len((folder / "README.md").read_text().strip().splitlines()) == 1, target


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz_target_briefly(target: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "fuzz", target, "--seconds", str(SECONDS), "--work", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
        check=False,
    )
    crashes = sorted((tmp_path / target / "crashes").iterdir())
    assert run.returncode == 0 and not crashes, run.stderr[-4000:]
    executed = re.search(r"stat::number_of_executed_units: (\d+)", run.stderr)
    assert executed is not None, run.stderr[-2000:]
    # More than the seeds alone: the fuzzer really mutated and ran inputs.
    assert int(executed.group(1)) > len(list((CORPUS / target).iterdir())), run.stderr[-2000:]
