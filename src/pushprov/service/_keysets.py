"""Which of a snapshot's keys an envelope format uses, and how a key is named in logs/metrics."""

from __future__ import annotations

from typing import Any

from .. import jose, openpgp
from .._errors import KeyUnusableError
from ..keys import ServiceKeys

__all__ = ["inbound", "key_id", "outgoing"]


def key_id(key: object) -> str:
    if isinstance(key, openpgp.SecretKey | openpgp.Certificate):
        return key.fingerprint
    assert isinstance(key, jose.JwkKey)
    return key.kid


def outgoing(
    snapshot: ServiceKeys, fmt: str, *, strict: bool = True
) -> tuple[list[Any], list[Any]]:
    """Signers and recipients of one envelope: PGP uses every active key; JWE one each."""
    kind_secret = openpgp.SecretKey if fmt == "pgp" else jose.JwkKey
    kind_public = openpgp.Certificate if fmt == "pgp" else jose.JwkKey
    signers = [key for key in snapshot.signers if isinstance(key, kind_secret)]
    recipients = [key for key in snapshot.recipients if isinstance(key, kind_public)]
    if strict and (not signers or not recipients):
        raise KeyUnusableError(f"no active {fmt} keys for both roles")
    return signers, recipients


def inbound(snapshot: ServiceKeys, fmt: str) -> tuple[list[Any], list[Any]]:
    """Decryptors and verifiers of one envelope format (active and retiring keys)."""
    kind_secret = openpgp.SecretKey if fmt == "pgp" else jose.JwkKey
    kind_public = openpgp.Certificate if fmt == "pgp" else jose.JwkKey
    return (
        [key for key in snapshot.decryptors if isinstance(key, kind_secret)],
        [key for key in snapshot.verifiers if isinstance(key, kind_public)],
    )
