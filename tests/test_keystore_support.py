"""Helpers shared by the keystore, lifecycle and rotation tests (this module holds no tests).

* ``STORE_FACTORIES``: how to open each store implementation; keystore tests parametrize their
  ``store_factory`` fixture over it. Each entry takes the test's request (PostgreSQL needs the
  session's ``postgres`` cluster) and returns a factory: the same directory, the same store.
* ``key_pool()``: RSA-2048 keys made once per session, so "generate" costs no key generation.
* ``shared_cache()``: the pool's secrets already parsed (parsing validates the RSA key, slow).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pushprov import Policy, openpgp
from pushprov.keys import Environment, Keystore, SecretCache
from pushprov.store import PostgresStore, SqliteStore, Store, migrate

from .conftest import T0
from .postgres_support import Cluster

PASSPHRASE = b"correct horse battery staple"
PROD = Environment.PRODUCTION
SANDBOX = Environment.SANDBOX
DAY = dt.timedelta(days=1)

StoreFactory = Callable[[Path], Store]


def sqlite_factory(directory: Path) -> Store:
    return SqliteStore.open(
        directory / "keystore.db", passphrase=PASSPHRASE, create=True, kdf_log2n=10
    )


def postgres_factory(cluster: Cluster) -> StoreFactory:
    """One database per test directory, made and migrated on first use."""
    urls: dict[Path, str] = {}

    def factory(directory: Path) -> Store:
        if directory not in urls:
            name = "ks_" + hashlib.sha256(str(directory).encode()).hexdigest()[:16]
            urls[directory] = cluster.create_database(name)
            migrate(urls[directory])
        return PostgresStore.open(urls[directory], passphrase=PASSPHRASE, create=True, kdf_log2n=10)

    return factory


STORE_FACTORIES: dict[str, Callable[[pytest.FixtureRequest], StoreFactory]] = {
    "sqlite": lambda request: sqlite_factory,
    "postgresql": lambda request: postgres_factory(request.getfixturevalue("postgres")),
}


class KeyPool:
    """Keys of ours and of a stand-in Google, all created at T0, valid one year."""

    def __init__(self, ours: int = 8, partners: int = 6) -> None:
        self.ours = tuple(
            openpgp.generate_key(f"Issuer {i} <i{i}@issuer.example>", bits=2048, at=T0)
            for i in range(ours)
        )
        self.partners = tuple(
            openpgp.generate_key(f"Google {i} <g{i}@google.example>", bits=2048, at=T0)
            for i in range(partners)
        )

    def keygen(self) -> Callable[..., openpgp.SecretKey]:
        """A ``Keystore(keygen=...)`` that hands out the pool's own keys in turn."""
        supply: Iterator[openpgp.SecretKey] = itertools.cycle(self.ours)

        def generate(
            user_id: str,
            *,
            bits: int | None = None,
            validity: dt.timedelta | None = None,
            at: dt.datetime,
            policy: Policy,
        ) -> openpgp.SecretKey:
            return next(supply)

        return generate


@functools.cache
def key_pool() -> KeyPool:
    return KeyPool()


@functools.cache
def shared_cache() -> SecretCache:
    cache = SecretCache()
    pool = key_pool()
    for key in pool.ours + pool.partners:
        cache.put(key.armor().encode(), key)
    return cache


def keystore(store: Store, *, actor: str = "alice", **options: object) -> Keystore:
    """A keystore on the pool: fast generate, pre-parsed secrets."""
    return Keystore(
        store,
        actor=actor,
        secret_cache=shared_cache(),
        keygen=key_pool().keygen(),
        **options,  # type: ignore[arg-type]
    )


def store_files(directory: Path) -> bytes:
    """Every byte SQLite keeps on disk for the store in ``directory`` (db, WAL, SHM)."""
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())
