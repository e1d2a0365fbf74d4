"""What a SEIPD holds once decrypted: anyone with our certificate can make it say anything.

``data`` is put, as the inner packet stream, into a correctly encrypted message (one PKESK to
our key under a fixed session key, a SEIPD with a matching MDC), so every input reaches the
signed-message grammar, decompression, the literal packet and signature verification.
"""

from __future__ import annotations

import contextlib

import pushprov
from pushprov import GOOGLE_PROFILE
from pushprov.openpgp._packets import Tag, checksum16, encode_packet, mpi
from pushprov.openpgp._rsa import encrypt_block

from ._fixtures import AT, expected, pgp_keys, seipd

_KEYS = pgp_keys()
_SESSION_KEY = bytes(range(32))
_AES256 = 9


def _pkesk() -> bytes:
    key = _KEYS.ours.certificate.encryption_key(GOOGLE_PROFILE, AT)
    assert key.public is not None
    block = bytes([_AES256]) + _SESSION_KEY + checksum16(_SESSION_KEY)
    encrypted = encrypt_block(key.public, block)
    return encode_packet(Tag.PKESK, b"\x03" + key.key_id + b"\x01" + mpi(encrypted))


_PKESK = _pkesk()


def wrap(inner: bytes) -> bytes:
    """The binary message whose SEIPD decrypts to ``inner``."""
    return _PKESK + encode_packet(Tag.SEIPD, seipd(inner, _SESSION_KEY))


def fuzz_one(data: bytes) -> None:
    with contextlib.suppress(expected):
        pushprov.open_message(
            wrap(data), decrypt_with=[_KEYS.ours], verify_with=[_KEYS.peer.certificate], at=AT
        )
