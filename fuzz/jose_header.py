"""The JWE protected header (JSON), put in front of the other segments of a valid token."""

from __future__ import annotations

import contextlib

import pushprov
from pushprov.jose._compact import b64u_encode

from ._fixtures import AT, expected, jose_keys

_KEYS = jose_keys()
# Encrypted key, IV, ciphertext and tag of a real token: header checks pass on to the RSA step.
_REST = pushprov.seal_message(
    b"{}", sign_with=[_KEYS.peer], encrypt_to=[_KEYS.ours.public()], format="jwe", at=AT
).split(b".", 1)[1]


def fuzz_one(data: bytes) -> None:
    token = b64u_encode(data) + b"." + _REST
    with contextlib.suppress(expected):
        pushprov.open_message(
            token, format="jwe", decrypt_with=[_KEYS.ours], verify_with=[_KEYS.peer], at=AT
        )
