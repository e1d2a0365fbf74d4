"""Crash injection: lifecycle changes killed for real at random points reopen to exactly the
old or the new state, never a mix.

Each run copies a tiny template store, forks a child that performs one change (a rotation of
our key or Google's, a secret import, a destruction), and kills it with SIGKILL either after a
random number of SQLite statements (counted by ``set_trace_callback``) or after a random delay,
which can land inside the commit's writes and fsyncs. The parent reopens the store and compares
a full dump (versions, records, audit chain, secrets) with the two legal states. The children
fork from this process, which already holds the parsed pool keys: no key generation, no
re-parsing. ``bench/soak_rotation.py`` drives the same harness for thousands of runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from pushprov.keys import Environment, Keystore
from pushprov.store import SqliteStore

from .conftest import T0
from .test_keystore_support import DAY, PASSPHRASE, key_pool, keystore

PROD = Environment.PRODUCTION
SANDBOX = Environment.SANDBOX
DB = "keystore.db"
Operation = Callable[[Keystore], object]


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    template: Path  # a directory holding the store in its old state
    operation: Operation
    old: tuple[object, ...]
    new: tuple[object, ...]
    statements: int  # SQLite statements a full, uninterrupted run executes
    seconds: float  # how long a full run took in a child


def _open(
    directory: Path, on_connect: Callable[[sqlite3.Connection], None] | None = None
) -> tuple[SqliteStore, Keystore]:
    store = SqliteStore.open(directory / DB, passphrase=PASSPHRASE, on_connect=on_connect)
    # A fixed wall clock: the audit entries of every run must equal the reference states'.
    return store, keystore(store, actor="crash-test", clock=lambda: T0)


def dump(directory: Path) -> tuple[object, ...]:
    """Everything that defines a store's state, secrets included (as digests)."""
    with sqlite3.connect(directory / DB) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store, ks = _open(directory)
    try:
        state: list[object] = []
        for env in (PROD, SANDBOX):
            ring = ks.snapshot(env)
            secrets = []
            for record in ring.records:
                clear = store.load_secret(env.value, record.key_id)
                digest = None if clear is None else hashlib.sha256(clear).hexdigest()
                secrets.append((record.key_id, digest))
            ks.verify_audit(env)
            state += [ring.version, ring.records, ks.audit_log(env), tuple(secrets)]
        return tuple(state)
    finally:
        ks.close()


def _copy(template: Path, target: Path) -> None:
    target.mkdir(mode=0o700)
    shutil.copy2(template / DB, target / DB)  # the template is checkpointed: one file


def _child(directory: str, operation: Operation, kill_after: int, count_to: str) -> None:
    count = 0

    def trace(_statement: str) -> None:
        nonlocal count
        count += 1
        if count == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    _store, ks = _open(Path(directory), lambda c: c.set_trace_callback(trace))
    operation(ks)
    if count_to:
        Path(count_to).write_text(str(count))
    os._exit(0)  # no cleanup: a normal exit must not tidy up what a crash would leave


_FORK = multiprocessing.get_context("fork")


def run_child(
    directory: Path, operation: Operation, kill_after: int, delay: float | None, count_to: str = ""
) -> int:
    child = _FORK.Process(target=_child, args=(str(directory), operation, kill_after, count_to))
    child.start()
    if delay is not None:
        time.sleep(delay)
        if child.pid is not None:
            with contextlib.suppress(ProcessLookupError):  # it finished first: new state
                os.kill(child.pid, signal.SIGKILL)
    child.join()
    assert child.exitcode is not None
    return child.exitcode


def run_once(scenario: Scenario, workdir: Path, rng: random.Random, index: int) -> tuple[str, str]:
    """One killed run; returns (how it was killed, "old" or "new")."""
    directory = workdir / f"run{index}"
    _copy(scenario.template, directory)
    if rng.random() < 0.5:
        how, kill_after, delay = "statement", rng.randint(1, scenario.statements + 1), None
    else:
        how, kill_after, delay = "delay", 0, rng.uniform(0, scenario.seconds * 1.5)
    run_child(directory, scenario.operation, kill_after, delay)
    state = dump(directory)
    shutil.rmtree(directory)
    if state == scenario.old:
        return how, "old"
    if state == scenario.new:
        return how, "new"
    raise AssertionError(f"{scenario.name}: run {index} ({how}) reopened to a third state")


# ---------------------------------------------------------------------------------------------
# scenarios


def _prepare(base: Path, name: str, setup: Operation, operation: Operation) -> Scenario:
    template = base / f"{name}-template"
    template.mkdir(mode=0o700)
    store = SqliteStore.open(template / DB, passphrase=PASSPHRASE, create=True, kdf_log2n=10)
    setup(keystore(store, actor="crash-test"))
    with contextlib.closing(sqlite3.connect(template / DB)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    old = dump(template)
    # A reference run in a child gives the new state, the statement count and the timing.
    reference = base / f"{name}-reference"
    _copy(template, reference)
    count_file = base / f"{name}-count"
    started = time.perf_counter()
    assert run_child(reference, operation, 0, None, str(count_file)) == 0
    seconds = time.perf_counter() - started
    new = dump(reference)
    assert new != old
    return Scenario(name, template, operation, old, new, int(count_file.read_text()), seconds)


def _ids() -> dict[str, str]:
    pool = key_pool()
    return {
        "A": pool.ours[0].fingerprint,
        "B": pool.ours[1].fingerprint,
        "G1": pool.partners[0].fingerprint,
        "G2": pool.partners[1].fingerprint,
    }


def _base(ks: Keystore) -> None:
    """Our key A and Google's G1 active in production since T0."""
    pool = key_pool()
    ks.generate(PROD, user_id="A", at=T0)  # the pool's keygen hands out ours[0]
    ks.import_key(PROD, pool.partners[0].certificate.armor().encode(), at=T0)
    ks.promote(PROD, pool.ours[0].fingerprint, at=T0)
    ks.promote(PROD, pool.partners[0].fingerprint, at=T0)


def scenarios(base: Path) -> list[Scenario]:
    pool = key_pool()
    ids = _ids()
    at = T0 + 10 * DAY

    def with_pending_b(ks: Keystore) -> None:
        _base(ks)
        ks.import_key(PROD, pool.ours[1].armor().encode(), at=T0 + DAY)

    def with_pending_g2(ks: Keystore) -> None:
        _base(ks)
        ks.import_key(PROD, pool.partners[1].certificate.armor().encode(), at=T0 + DAY)

    def with_retired_a(ks: Keystore) -> None:
        with_pending_b(ks)
        ks.promote(PROD, ids["B"], at=T0 + DAY, replacing=[ids["A"]])
        ks.retire(PROD, ids["A"], at=T0 + 9 * DAY, final=True)

    return [
        _prepare(
            base,
            "rotate-ours",
            with_pending_b,
            lambda ks: ks.promote(PROD, ids["B"], at=at, replacing=[ids["A"]], reason="yearly"),
        ),
        _prepare(
            base,
            "rotate-google",
            with_pending_g2,
            lambda ks: ks.promote(PROD, ids["G2"], at=at, replacing=[ids["G1"]], reason="google"),
        ),
        _prepare(
            base,
            "import-secret",
            _base,
            lambda ks: ks.import_key(SANDBOX, pool.ours[2].armor().encode(), at=at),
        ),
        _prepare(
            base,
            "destroy",
            with_retired_a,
            lambda ks: ks.destroy(PROD, ids["A"], at=at, reason="rotation done"),
        ),
    ]


def crash_runs(base: Path, runs: int, seed: int) -> Counter[tuple[str, str, str]]:
    """``runs`` killed runs spread over the scenarios: counts of (scenario, how, outcome)."""
    rng = random.Random(seed)
    prepared = scenarios(base)
    outcomes: Counter[tuple[str, str, str]] = Counter()
    for index in range(runs):
        scenario = prepared[index % len(prepared)]
        how, outcome = run_once(scenario, base, rng, index)
        outcomes[scenario.name, how, outcome] += 1
    return outcomes


# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_changes_reopen_to_the_old_or_the_new_state(tmp_path: Path) -> None:
    base = tmp_path / "crash"
    base.mkdir(mode=0o700)
    outcomes = crash_runs(base, runs=200, seed=20261101)
    assert sum(outcomes.values()) == 200  # run_once raised for any third state
    for name in ("rotate-ours", "rotate-google", "import-secret", "destroy"):
        old = sum(n for (s, _, o), n in outcomes.items() if s == name and o == "old")
        new = sum(n for (s, _, o), n in outcomes.items() if s == name and o == "new")
        assert old > 0 and new > 0, (name, outcomes)
    assert {how for _, how, _ in outcomes} == {"statement", "delay"}


def test_the_harness_tells_a_torn_state_apart(tmp_path: Path) -> None:
    """The comparison is strict: a store edited outside a transaction is neither state."""
    base = tmp_path / "crash"
    base.mkdir(mode=0o700)
    (scenario,) = [s for s in scenarios(base) if s.name == "rotate-ours"]
    torn = base / "torn"
    _copy(scenario.template, torn)
    with contextlib.closing(sqlite3.connect(torn / DB)) as conn, conn:
        conn.execute("UPDATE keys SET state = 'active' WHERE key_id = ?", (_ids()["B"],))
    with pytest.raises(Exception, match="changed outside pushprov"):
        dump(torn)
    assert scenario.statements > 5 and scenario.old != scenario.new
