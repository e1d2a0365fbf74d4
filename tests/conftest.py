"""Shared pytest setup. Sections: reference time and vectors, our keys, GnuPG, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pushprov import openpgp
from pushprov.store import PostgresServiceState, SqliteServiceState, migrate

from .gpg import Gpg, GpgWorld, build_world, gpg_available
from .postgres_support import Cluster, find_binaries, postgres_cluster

# ---------------------------------------------------------------------------------------------
# reference time and vectors
# ---------------------------------------------------------------------------------------------

# Published vectors, kept in the repository with their provenance (tests/vectors/README.md).
VECTORS = Path(__file__).resolve().parent / "vectors"

# A fixed reference time so every validity check in the suite is reproducible.
T0 = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def vectors() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"test vectors not found at {VECTORS}")
    return VECTORS


# ---------------------------------------------------------------------------------------------
# our keys
# ---------------------------------------------------------------------------------------------


class Keys:
    """Two issuer signing keys and two 'Google' keys, RSA-2048 to keep the suite quick."""

    def __init__(self) -> None:
        self.issuer_a = openpgp.generate_key("Issuer A <a@issuer.example>", bits=2048, at=T0)
        self.issuer_b = openpgp.generate_key("Issuer B <b@issuer.example>", bits=2048, at=T0)
        self.google_1 = openpgp.generate_key("Google 1 <g1@google.example>", bits=2048, at=T0)
        self.google_2 = openpgp.generate_key("Google 2 <g2@google.example>", bits=2048, at=T0)
        self.stranger = openpgp.generate_key("Stranger <x@evil.example>", bits=2048, at=T0)


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys()


#: The payload the OpenPGP tests seal.
PAYLOAD = b'{"hello":"world"}'


@pytest.fixture(scope="session")
def sealed_by_two(keys: Keys) -> bytes:
    """PAYLOAD signed by issuers A and B, encrypted to Google 1: what the fuzz tests mutate."""
    return openpgp.seal(
        PAYLOAD,
        sign_with=[keys.issuer_a, keys.issuer_b],
        encrypt_to=[keys.google_1.certificate],
        at=T0,
    )


# ---------------------------------------------------------------------------------------------
# GnuPG fixtures (driver and key/message inventory: tests/gpg.py)
#
#   gpg_factory  (session)  gpg_factory() -> a fresh, empty, isolated Gpg home; every home it
#                           made is closed (agents killed, dir removed) at session end
#   gpg          (function) one fresh empty home
#   gpg_world    (session)  GpgWorld: one home holding all fixture keys (alice, carol, dave,
#                           sam, erin, ed, rex) + their exports + premade messages; read-only
# ---------------------------------------------------------------------------------------------

GpgFactory = Callable[[], Gpg]


@pytest.fixture(scope="session")
def gpg_factory() -> Iterator[GpgFactory]:
    if not gpg_available():
        if os.environ.get("CI"):
            pytest.fail("GnuPG is required in CI: .ci/run must install it")
        pytest.skip("GnuPG (gpg, gpgconf) not installed")
    homes: list[Gpg] = []

    def make() -> Gpg:
        home = Gpg.create()
        homes.append(home)
        return home

    yield make
    for home in homes:
        home.close()


@pytest.fixture
def gpg(gpg_factory: GpgFactory) -> Gpg:
    return gpg_factory()


@pytest.fixture(scope="session")
def gpg_world(gpg_factory: GpgFactory) -> GpgWorld:
    return build_world(gpg_factory())


# ---------------------------------------------------------------------------------------------
# PostgreSQL (helper: tests/postgres_support.py)
#
#   postgres     (session)  a throwaway cluster on 127.0.0.1, random port, stopped at the end;
#                           skipped without the binaries, a failure when $CI is set
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    binaries = find_binaries()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is required in CI: .ci/run must install it")
        pytest.skip("PostgreSQL (initdb, pg_ctl) not installed")
    with postgres_cluster(binaries) as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def make_state(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], SqliteServiceState | PostgresServiceState]:
    """A service state store of each kind, opened afresh by each call (both stores run every
    test that asks for it); the PostgreSQL database is named after the test."""
    if request.param == "sqlite":
        return lambda: SqliteServiceState(tmp_path / "service.sqlite")
    cluster: Cluster = request.getfixturevalue("postgres")
    module = request.node.module.__name__.rpartition(".")[2].removeprefix("test_")[:12]
    url = cluster.create_database(f"{module}_{request.node.name.split('[')[0][-40:]}")
    migrate(url)
    return lambda: PostgresServiceState(url)
