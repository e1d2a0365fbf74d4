"""JWK, JWK set and PEM key files, as `keys import` and the sandbox read them.

An accepted public key is then used as such keys are: a message is sealed to it and a JWS
checked against it, so a key the loader lets through but the RSA code cannot use is a finding.
"""

from __future__ import annotations

import contextlib

import pushprov
from pushprov import jose

from ._fixtures import AT, expected, jose_keys

_KEYS = jose_keys()
_TOKEN = pushprov.seal_message(
    b"{}", sign_with=[_KEYS.peer], encrypt_to=[_KEYS.ours.public()], format="jwe", at=AT
)


def fuzz_one(data: bytes) -> None:
    try:
        key = jose.load_jwk(data)
    except expected:
        pass
    else:
        key.to_json()
        _ = key.thumbprint
        _use(key.public())
    with contextlib.suppress(expected):
        jose.load_jwks(data)


def _use(key: jose.JwkKey) -> None:
    with contextlib.suppress(expected):
        pushprov.seal_message(b"{}", sign_with=[_KEYS.ours], encrypt_to=[key], format="jwe", at=AT)
    with contextlib.suppress(expected):
        pushprov.open_message(
            _TOKEN, format="jwe", decrypt_with=[_KEYS.ours], verify_with=[key], at=AT
        )
