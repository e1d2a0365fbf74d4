"""The sandbox's unauthenticated ``POST /v1/gopc``: a sealed GOPC judged as Google would.

``Sandbox.accept`` answers every refusal with a verdict; any exception escaping it is a
finding (the route would answer 500).
"""

from __future__ import annotations

from pushprov.keys import FileKeySource
from pushprov.sandbox import Sandbox, SessionBook

from ._fixtures import AT, pgp_keys

_KEYS = pgp_keys()
# The sandbox plays Google: its own key decrypts, the issuer's (the peer's) certificate verifies.
_SANDBOX = Sandbox(
    FileKeySource(signers=[_KEYS.ours], recipients=[_KEYS.peer.certificate]), SessionBook()
)


def fuzz_one(data: bytes) -> None:
    _SANDBOX.accept(data, at=AT)
