"""Signed, unencrypted OpenPGP (the ``sop`` verbs): inline, cleartext and detached signatures,
and armor on its own.

``data[0]`` picks the reader, the rest is its input; signatures are checked against the
peer's certificate, over a fixed document for detached ones.
"""

from __future__ import annotations

import contextlib

from pushprov import openpgp

from ._fixtures import AT, expected, pgp_keys

_KEYS = pgp_keys()
_TRUSTED = [_KEYS.peer.certificate]
#: The document detached-signature seeds sign.
DOCUMENT = b"pushprov fuzz document\n"


def _inline(data: bytes) -> None:
    openpgp.verify_inline(data, verify_with=_TRUSTED, at=AT)


def _cleartext(data: bytes) -> None:
    openpgp.verify_cleartext(data, verify_with=_TRUSTED, at=AT)


def _detached(data: bytes) -> None:
    openpgp.verify_detached(DOCUMENT, data, verify_with=_TRUSTED, at=AT)


def _armor(data: bytes) -> None:
    armored = openpgp.armor_data(data)
    if openpgp.dearmor_data(armored) != openpgp.dearmor_data(data):
        raise AssertionError("armor, then dearmor, changed the data")


_READERS = (_inline, _cleartext, _detached, _armor)


def fuzz_one(data: bytes) -> None:
    if not data:
        return
    with contextlib.suppress(expected):
        _READERS[data[0] % len(_READERS)](data[1:])
