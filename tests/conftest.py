"""Shared pytest setup. Sections: path setup, GnuPG fixtures (add new sections below)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# ---------------------------------------------------------------------------------------------
# path setup: make `from gpg import Gpg` work from any test module
# ---------------------------------------------------------------------------------------------
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from gpg import Gpg, GpgWorld, build_world, gpg_available  # noqa: E402

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
