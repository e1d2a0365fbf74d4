"""What opening a sealed message yields, whatever the envelope (OpenPGP or JWE)."""

from __future__ import annotations

import dataclasses
import datetime as _dt

__all__ = ["Opened", "VerifiedSignature"]


@dataclasses.dataclass(frozen=True)
class VerifiedSignature:
    """One signature that verified under the policy: who made it, with what, when."""

    certificate: str  # fingerprint (OpenPGP) or kid (JWS) of the trusted key it chains to
    signing_key: str  # fingerprint of the (sub)key or kid that made it
    hash_algorithm: str
    created: _dt.datetime | None


@dataclasses.dataclass(frozen=True)
class Opened:
    """A message that passed decryption, integrity, signature and policy checks.

    ``plaintext`` is excluded from repr and comparison so it cannot reach a log by accident.
    """

    plaintext: bytes = dataclasses.field(repr=False, compare=False)
    format: str  # "pgp" or "jwe"
    decryption_key: str  # fingerprint of the subkey, or kid, that decrypted it
    cipher: str
    signatures: tuple[VerifiedSignature, ...]

    @property
    def signers(self) -> tuple[str, ...]:
        return tuple(sig.certificate for sig in self.signatures)
