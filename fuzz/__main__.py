"""``python -m fuzz TARGET [--seconds N]``: run one target under atheris (libFuzzer).

``python -m fuzz all --seconds N`` runs every target for N seconds, one after the other (each
in its own process), and prints a table of the figures docs/fuzzing.md keeps.

The seeds of ``fuzz/corpus/TARGET`` are copied into a working corpus
(``artifacts/fuzz/TARGET/corpus`` by default) that libFuzzer grows; crashing inputs land in
``.../crashes``. ``--replay FILE...`` runs inputs once without atheris, for a quick look at a
crash. ``--make-seeds`` regenerates the seed corpus, ``--make-keys`` the fixture keys.
Exit status: 0 when the run found nothing, libFuzzer's non-zero status otherwise.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from . import CORPUS, DICTIONARIES, TARGETS, load

# Where coverage is measured: our code, the JOSE library behind it, the TOML reader.
_INSTRUMENTED = ["pushprov", "fuzz", "joserfc", "tomllib"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    parser.add_argument("target", nargs="?", choices=[*sorted(TARGETS), "all"])
    parser.add_argument("--seconds", type=int, default=60, help="total run time (default 60)")
    parser.add_argument("--work", type=Path, help="working directory (default artifacts/fuzz)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    parser.add_argument("--rss-mb", type=int, default=1536, help="memory cap of the process")
    parser.add_argument(
        "--libfuzzer",
        action="append",
        default=[],
        metavar="FLAG",
        help="a libFuzzer flag passed on, e.g. --libfuzzer=-max_len=70000",
    )
    parser.add_argument("--replay", nargs="+", type=Path, metavar="FILE")
    parser.add_argument("--make-seeds", action="store_true")
    parser.add_argument("--make-keys", action="store_true")
    args = parser.parse_args(argv)
    if args.make_keys or args.make_seeds:
        from . import _fixtures, _seeds

        if args.make_keys:
            _fixtures.make_keys()
        _seeds.write_all()
        return 0
    if args.target is None:
        parser.error("a target is required")
    if args.target == "all":
        return _all(args)
    if args.replay:
        fuzz_one = load(args.target)
        for path in args.replay:
            fuzz_one(path.read_bytes())
            print(f"{path}: no finding")
        return 0
    return _fuzz(args)


def _work(args: argparse.Namespace) -> Path:
    return args.work or Path("artifacts") / "fuzz"


def _all(args: argparse.Namespace) -> int:
    """Every target in turn; a table of executions, corpus and findings (Markdown)."""
    print(
        "| target | s | executions | exec/s | corpus after (units/bytes) | slowest unit s "
        "| peak RSS MB | crashes |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    failed = 0
    for target in TARGETS:
        command = [sys.executable, "-m", "fuzz", target, "--seconds", str(args.seconds)]
        command += ["--work", str(_work(args)), "--timeout", str(args.timeout)]
        command += [f"--libfuzzer={flag}" for flag in args.libfuzzer]
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        work = _work(args) / target
        work.mkdir(parents=True, exist_ok=True)
        (work / "last-run.log").write_text(run.stderr)
        stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", run.stderr))
        done = re.findall(r"corp: (\d+/\d+\w*)", run.stderr)
        crashes = len(list((work / "crashes").glob("*")))
        failed += run.returncode != 0 or crashes > 0
        print(
            f"| {target} | {args.seconds} | {stats.get('number_of_executed_units', '?')} "
            f"| {stats.get('average_exec_per_sec', '?')} | {done[-1] if done else '?'} "
            f"| {stats.get('slowest_unit_time_sec', '?')} | {stats.get('peak_rss_mb', '?')} "
            f"| {crashes} |",
            flush=True,
        )
    return 1 if failed else 0


def _fuzz(args: argparse.Namespace) -> int:
    import atheris

    work = _work(args) / args.target
    corpus, crashes = work / "corpus", work / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    for seed in (CORPUS / args.target).iterdir():
        if seed.name != "README.md" and not (corpus / seed.name).exists():
            shutil.copyfile(seed, corpus / seed.name)
    with atheris.instrument_imports(include=_INSTRUMENTED):
        fuzz_one = load(args.target)

    def test_one_input(data: bytes) -> None:
        fuzz_one(data)

    dictionary = DICTIONARIES.get(args.target)
    atheris.Setup(
        [
            sys.argv[0],
            *([f"-dict={dictionary}"] if dictionary else []),
            f"-max_total_time={args.seconds}",
            f"-timeout={args.timeout}",
            f"-rss_limit_mb={args.rss_mb}",
            f"-artifact_prefix={crashes}/",
            "-print_final_stats=1",
            *args.libfuzzer,
            str(corpus),
        ],
        test_one_input,
    )
    atheris.Fuzz()
    return 0  # atheris.Fuzz exits the process itself


if __name__ == "__main__":
    sys.exit(main())
