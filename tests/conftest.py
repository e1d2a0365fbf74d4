"""Shared fixtures: keys made once per session, the vectors folder, a fixed reference time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pushprov import openpgp

# CI clones the repository with a copy of shared/ beside it; so does every developer checkout.
VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"

# A fixed reference time so every validity check in the suite is reproducible.
T0 = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="session")
def vectors() -> Path:
    if not VECTORS.is_dir():
        pytest.fail(f"test vectors not found at {VECTORS} (shared/ must sit beside the repo)")
    return VECTORS


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
