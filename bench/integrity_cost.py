"""What checking the store's MACs costs the service's keyring refresh (one a second per worker).

Usage (from the repository root)::

    PYTHONPATH=src:. python bench/integrity_cost.py [--rounds 2000] [--postgres]

Builds a store holding a realistic keyring (our OpenPGP key and Google's, active; a retired
pair; our signing and decryption JWKs and Google's two, active), then times, per refresh:

* ``read``: the store's read of the environment with every row's and the head's MAC checked,
  and the same read with the checks skipped (the MAC object swapped for one that accepts all);
* ``mac_checks_only``: the checks alone, on rows already fetched (the CPU a refresh adds,
  the same for both stores; the read difference on PostgreSQL drowns in round-trip noise);
* ``refresh``: the whole service refresh (``StoreKeySource.current``: read, snapshot with the
  fingerprint/kid check, and the service's key set), which is what runs once a second.

The figures are medians of ``--rounds`` runs (microseconds), printed as JSON. A measurement,
not a timing test: nothing here asserts a bound.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests/ helpers: the throwaway cluster

from pushprov import jose, openpgp  # noqa: E402
from pushprov.keys import Environment, Format, Keystore, SecretCache, StoreKeySource  # noqa: E402
from pushprov.store import PostgresStore, SqliteStore, Store, migrate  # noqa: E402
from pushprov.store._rows import HEAD_READ, KEY_READ, store_view  # noqa: E402

PASSPHRASE = b"bench words"
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
ENV = Environment.PRODUCTION


class _AcceptAll:
    """Stands in for the store's MAC checks, to time the read without them."""

    def check_key_row(self, *_: object) -> None:
        return None

    def check_keyring(self, *_: object) -> None:
        return None


def _populate(keystore: Keystore) -> int:
    made = 0
    for index in range(2):
        ours = openpgp.generate_key(f"Issuer {index} <i@x>", bits=3072, at=T0)
        google = openpgp.generate_key(f"Google {index} <g@x>", bits=3072, at=T0)
        a = keystore.import_key(ENV, ours.armor().encode(), at=T0)
        b = keystore.import_key(ENV, google.certificate.armor().encode(), at=T0)
        keystore.promote(ENV, a.key_id, at=T0)
        keystore.promote(ENV, b.key_id, at=T0)
        if index == 0:
            later = T0 + dt.timedelta(days=1)
            keystore.retire(ENV, a.key_id, at=later)
            keystore.retire(ENV, b.key_id, at=later)
        made += 2
    for use in ("sig", "enc"):
        ours_jwk = keystore.generate(ENV, at=T0, key_format=Format.JWK, use=use, bits=3072)
        keystore.promote(ENV, ours_jwk.key_id, at=T0)
        partner = jose.generate_jwk(bits=3072, at=T0, use=use, validity=dt.timedelta(days=300))
        imported = keystore.import_key(ENV, partner.public().to_json().encode(), at=T0)
        keystore.promote(ENV, imported.key_id, at=T0)
        made += 2
    return made


def _median_us(action: Callable[[], object], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1e6, 1)


def _interleaved_reads(store: Any, rounds: int) -> tuple[float, float]:
    """Medians of reads with and without the MAC checks, alternating round by round so that
    the machine's drift (other processes on 2 cores) falls on both alike."""
    macs, accept_all = store._box.rows, _AcceptAll()
    checked: list[float] = []
    unchecked: list[float] = []
    for _ in range(rounds):
        for rows, samples in ((macs, checked), (accept_all, unchecked)):
            store._box.rows = rows
            started = time.perf_counter()
            store.read(ENV.value)
            samples.append(time.perf_counter() - started)
    store._box.rows = macs
    return (
        round(statistics.median(checked) * 1e6, 1),
        round(statistics.median(unchecked) * 1e6, 1),
    )


def _check_all(store: Any) -> None:
    """The CPU part alone, on rows already fetched: what a refresh adds, whatever the store."""
    rows, head = _RAW[id(store)]
    store_view(ENV.value, head, rows, store._box.rows)


_RAW: dict[int, tuple[list[Any], Any]] = {}


def _fetch_raw(store: Any) -> None:
    table, mark = store._dialect.table, store._dialect.mark
    head = store._db.execute(
        f"SELECT {HEAD_READ} FROM {table('keyring')} WHERE env = {mark}", (ENV.value,)
    ).fetchone()
    rows = store._db.execute(
        f"SELECT {KEY_READ} FROM {table('keys')} WHERE env = {mark}", (ENV.value,)
    ).fetchall()
    _RAW[id(store)] = (rows, head)


@contextlib.contextmanager
def _stores(postgres: bool, directory: Path) -> Iterator[Callable[[], Store]]:
    if not postgres:
        path = directory / "keystore.db"
        SqliteStore.open(path, passphrase=PASSPHRASE, create=True, kdf_log2n=10).close()
        yield lambda: SqliteStore.open(path, passphrase=PASSPHRASE)
        return
    from tests.postgres_support import find_binaries, postgres_cluster

    binaries = find_binaries()
    if binaries is None:
        raise SystemExit("no PostgreSQL binaries (initdb, pg_ctl)")
    with postgres_cluster(binaries) as cluster:
        url = cluster.create_database("integrity_bench")
        migrate(url)
        PostgresStore.open(url, passphrase=PASSPHRASE, create=True, kdf_log2n=10).close()
        yield lambda: PostgresStore.open(url, passphrase=PASSPHRASE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL store")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, _stores(args.postgres, Path(tmp)) as open_store:
        cache = SecretCache()
        keys = _populate(Keystore(open_store(), actor="bench", secret_cache=cache))
        store: Any = open_store()
        checked_read, unchecked_read = _interleaved_reads(store, args.rounds)
        _fetch_raw(store)
        checks_only = _median_us(lambda: _check_all(store), args.rounds)
        source = StoreKeySource(
            lambda shared: Keystore(open_store(), actor="bench", secret_cache=shared),
            ENV,
            refresh=0.0,
        )
        source.current(T0 + dt.timedelta(days=2))  # parse the secrets once, as a service does
        refresh = _median_us(
            lambda: source.current(T0 + dt.timedelta(days=2)), max(args.rounds // 10, 20)
        )
    result = {
        "store": "postgresql" if args.postgres else "sqlite",
        "keys": keys,
        "rounds": args.rounds,
        "read_us_with_macs": checked_read,
        "read_us_without_macs": unchecked_read,
        "read_difference_us": round(checked_read - unchecked_read, 1),
        "mac_checks_only_us": checks_only,
        "refresh_us": refresh,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
