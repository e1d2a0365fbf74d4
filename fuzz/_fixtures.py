"""The fixed keys and reference time every harness and every seed uses.

The keys in ``fuzz/keys/`` are test keys made by ``python -m fuzz --make-keys`` (RSA-2048, so
each RSA step costs little); they protect nothing. A fixed reference time keeps every run
reproducible whatever the date.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from pushprov import PushprovError, jose, openpgp
from pushprov.openpgp._algorithms import CFB

__all__ = [
    "AT",
    "KEYS",
    "Jose",
    "Pgp",
    "expected",
    "jose_keys",
    "make_keys",
    "pgp_keys",
    "seipd",
]

KEYS = Path(__file__).resolve().parent / "keys"
#: When the fixture keys were made; harnesses open messages one day later.
MADE = dt.datetime(2026, 11, 1, 12, 0, 0, tzinfo=dt.UTC)
AT = MADE + dt.timedelta(days=1)

#: The one expected way for a parser to refuse input.
expected = PushprovError


class Pgp:
    def __init__(self) -> None:
        (self.ours,) = openpgp.read_secret_keys((KEYS / "ours.asc").read_bytes())
        (self.peer,) = openpgp.read_secret_keys((KEYS / "peer.asc").read_bytes())


class Jose:
    def __init__(self) -> None:
        self.ours = jose.load_jwk((KEYS / "ours.jwk").read_bytes())
        self.peer = jose.load_jwk((KEYS / "peer.jwk").read_bytes())


@functools.cache
def pgp_keys() -> Pgp:
    return Pgp()


@functools.cache
def jose_keys() -> Jose:
    return Jose()


def make_keys() -> None:
    """Write fresh fixture keys (then regenerate the seeds: they are encrypted to these)."""
    KEYS.mkdir(exist_ok=True)
    for name in ("ours", "peer"):
        secret = openpgp.generate_key(f"fuzz {name} <{name}@fuzz.example>", bits=2048, at=MADE)
        (KEYS / f"{name}.asc").write_text(secret.armor())
        jwk = jose.generate_jwk(bits=2048, at=MADE, kid=f"fuzz-{name}")
        (KEYS / f"{name}.jwk").write_text(jwk.to_json(private=True))


def seipd(inner: bytes, session_key: bytes) -> bytes:
    """A SEIPD v1 body holding ``inner`` under AES-256 with a matching MDC (RFC 9580 §5.13.1)."""
    prefix = os.urandom(16)
    clear = prefix + prefix[-2:] + inner + b"\xd3\x14"
    clear += hashlib.sha1(clear).digest()  # noqa: S324 - the MDC is SHA-1 by definition
    encryptor = Cipher(algorithms.AES(session_key), CFB(bytes(16))).encryptor()
    return b"\x01" + encryptor.update(clear) + encryptor.finalize()
