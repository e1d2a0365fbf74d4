"""What a JWE holds once decrypted: the nested compact JWS, as anyone with our JWK can send it.

``data`` becomes the A256GCM plaintext of a valid JWE to our key (a fixed content key wrapped
once), so every input reaches the JWS reader and verifier.
"""

from __future__ import annotations

import contextlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import pushprov
from pushprov.jose._cek import wrap_cek
from pushprov.jose._compact import b64u_encode, encode_header

from ._fixtures import AT, expected, jose_keys

_KEYS = jose_keys()
_CEK = bytes(range(32))
_HEADER = encode_header(
    {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": _KEYS.ours.kid, "cty": "JWT"}
)
_ENCRYPTED_KEY = b64u_encode(wrap_cek(_KEYS.ours._public, "RSA-OAEP-256", _CEK))


def wrap(jws: bytes) -> bytes:
    """The compact JWE whose plaintext is ``jws``."""
    iv = os.urandom(12)
    sealed = AESGCM(_CEK).encrypt(iv, jws, _HEADER)
    ciphertext, tag = sealed[:-16], sealed[-16:]
    parts = (_HEADER, _ENCRYPTED_KEY, b64u_encode(iv), b64u_encode(ciphertext), b64u_encode(tag))
    return b".".join(parts)


def fuzz_one(data: bytes) -> None:
    with contextlib.suppress(expected):
        pushprov.open_message(
            wrap(data), format="jwe", decrypt_with=[_KEYS.ours], verify_with=[_KEYS.peer], at=AT
        )
