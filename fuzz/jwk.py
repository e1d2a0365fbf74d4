"""JWK, JWK set and PEM key files, as `keys import` and the sandbox read them."""

from __future__ import annotations

import contextlib

from pushprov import jose

from ._fixtures import expected


def fuzz_one(data: bytes) -> None:
    try:
        key = jose.load_jwk(data)
    except expected:
        pass
    else:
        key.to_json()
        _ = key.thumbprint
    with contextlib.suppress(expected):
        jose.load_jwks(data)
