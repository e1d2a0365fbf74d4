"""Soak test: many more killed lifecycle changes than the suite runs, then a summary.

Usage (from the repository root)::

    PYTHONPATH=src:. python bench/soak_rotation.py --runs 5000 [--seed N]

Each run copies a tiny store, forks a child that rotates our key or Google's, imports a secret
or destroys a key, and SIGKILLs it after a random number of SQLite statements or a random
delay; the reopened store must be exactly the old or the new state (the harness of
``tests/test_lifecycle_crash.py``). Exits 1 on the first third state, else 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=2000, help="killed runs (default 2000)")
    parser.add_argument("--seed", type=int, default=int(time.time()), help="random seed")
    args = parser.parse_args(argv)

    from tests.test_lifecycle_crash import crash_runs

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pushprov-soak-") as tmp:
        base = Path(tmp) / "soak"
        base.mkdir(mode=0o700)
        try:
            outcomes = crash_runs(base, runs=args.runs, seed=args.seed)
        except AssertionError as error:
            print(f"FAILED (seed {args.seed}): {error}", file=sys.stderr)
            return 1
    elapsed = time.perf_counter() - started
    print(f"{args.runs} killed runs in {elapsed:.1f} s (seed {args.seed}): no third state")
    print(f"{'scenario':<16}{'killed by':<12}{'old':>7}{'new':>7}")
    for scenario in sorted({s for s, _, _ in outcomes}):
        for how in ("statement", "delay"):
            old, new = outcomes[scenario, how, "old"], outcomes[scenario, how, "new"]
            print(f"{scenario:<16}{how:<12}{old:>7}{new:>7}")
    total_old = sum(n for (_, _, o), n in outcomes.items() if o == "old")
    print(f"{'total':<28}{total_old:>7}{args.runs - total_old:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
