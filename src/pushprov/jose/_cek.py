"""RSA key management for JWE (RFC 7518 §4.2, §4.3): wrap and unwrap the content key."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ._keys import PrivateOps

__all__ = ["unwrap_cek", "wrap_cek"]

_PADDING: dict[str, padding.AsymmetricPadding] = {
    "RSA-OAEP-256": padding.OAEP(
        mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    ),
    "RSA1_5": padding.PKCS1v15(),
}


def wrap_cek(public: rsa.RSAPublicKey, alg: str, cek: bytes) -> bytes:
    return public.encrypt(cek, _PADDING[alg])


def unwrap_cek(ops: PrivateOps, alg: str, encrypted_key: bytes, cek_len: int) -> bytes:
    """The CEK, or a fresh random one of ``cek_len`` bytes; never raises (RFC 7516 §11.5).

    Every problem (bad padding, OpenSSL's implicit-rejection output, a CEK of the wrong length,
    an error from the key backend) yields random bytes, so the message then fails at the tag
    like any forgery. Applied to OAEP too: one failure path for both algorithms.
    """
    substitute = os.urandom(cek_len)  # drawn first, so both outcomes do the same work
    try:
        cek = ops.decrypt(encrypted_key, _PADDING[alg])
    except Exception:  # any backend error is one more bad ciphertext
        return substitute
    return cek if len(cek) == cek_len else substitute
