"""A compact JWE as it comes over the wire: segments, base64url, header, key, content."""

from __future__ import annotations

import contextlib

import pushprov

from ._fixtures import AT, expected, jose_keys

_KEYS = jose_keys()


def fuzz_one(data: bytes) -> None:
    with contextlib.suppress(expected):
        pushprov.open_message(
            data, format="jwe", decrypt_with=[_KEYS.ours], verify_with=[_KEYS.peer], at=AT
        )
