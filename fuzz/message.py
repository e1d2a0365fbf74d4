"""An OpenPGP message as it comes over the wire: armor/base64, PKESKs, SEIPD."""

from __future__ import annotations

import contextlib

import pushprov

from ._fixtures import AT, expected, pgp_keys

_KEYS = pgp_keys()


def fuzz_one(data: bytes) -> None:
    with contextlib.suppress(expected):
        pushprov.open_message(
            data, decrypt_with=[_KEYS.ours], verify_with=[_KEYS.peer.certificate], at=AT
        )
