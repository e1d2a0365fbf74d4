"""Secrets at rest: AES-256-GCM under a key-encryption key (KEK) derived with scrypt.

Why scrypt and not HKDF over a key file: the passphrase may come from an environment variable
or a file an operator typed, so it can be low in entropy; only a memory-hard KDF makes guessing
it from a stolen database expensive. A random 32-byte key file works as a passphrase too (scrypt
then costs a fraction of a second at open, nothing more). The KDF parameters and salt live in
the store, so the cost can be raised for new stores without breaking old ones.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._errors import PassphraseError
from ._errors import StoreCorruptError
from ._integrity import RowMac, derive_mac_key

__all__ = [
    "DEFAULT_KDF_LOG2N",
    "MAX_KDF_LOG2N",
    "MIN_KDF_LOG2N",
    "SecretBox",
    "derive_kek",
    "secret_aad",
    "unlock",
]

DEFAULT_KDF_LOG2N = 15  # N = 32768, r = 8: 32 MiB and ~0.1 s per open
MIN_KDF_LOG2N = 10  # tests only; a value read from a store is clamped to these bounds
MAX_KDF_LOG2N = 20
_R, _P = 8, 1
_NONCE = 12
_CHECK_PLAINTEXT = b"pushprov keystore key-encryption key check v1"
_CHECK_AAD = b"pushprov-keystore-v1\0kek-check"
# A store whose check is sealed under this label has every clear row MACed (``_integrity``):
# a row without its MAC is then corrupt, never a row still to be MACed. Only the KEK can make
# such a check, so nobody without it can mark a store as one whose rows may be (re-)MACed.
_CHECK_AAD_MACED = b"pushprov-keystore-v2\0kek-check\0rows-maced"


def derive_kek(passphrase: bytes, salt: bytes, log2n: int) -> bytes:
    if not MIN_KDF_LOG2N <= log2n <= MAX_KDF_LOG2N:
        raise StoreCorruptError("store KDF parameters are out of bounds")
    if not passphrase:
        raise PassphraseError("the store passphrase is empty")
    n = 1 << log2n
    return hashlib.scrypt(
        passphrase, salt=salt, n=n, r=_R, p=_P, maxmem=128 * _R * n + (1 << 20), dklen=32
    )


def secret_aad(env: str, key_id: str) -> bytes:
    """Binds a sealed secret to its record: moving the blob to another row fails to open."""
    return b"pushprov-keystore-v1\0secret\0" + env.encode() + b"\0" + key_id.encode()


class SecretBox:
    """AES-256-GCM with a random 96-bit nonce per secret. Holds the KEK; shows nothing of it.

    ``rows`` MACs the store's clear rows under a key derived from the KEK (never the KEK).
    """

    __slots__ = ("_aead", "rows")

    def __init__(self, kek: bytes) -> None:
        self._aead = AESGCM(kek)
        self.rows = RowMac(derive_mac_key(kek))

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except (InvalidTag, ValueError):
            raise StoreCorruptError("a sealed secret failed its integrity check") from None

    def make_check(self) -> bytes:
        """The KEK check of a store whose rows are MACed (every store this code writes)."""
        return self.seal(_CHECK_PLAINTEXT, _CHECK_AAD_MACED)

    def verify_check(self, blob: bytes) -> bool:
        """True for a store whose rows are MACed, False for one from before (to upgrade)."""
        for aad, maced in ((_CHECK_AAD_MACED, True), (_CHECK_AAD, False)):
            try:
                self._aead.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
            except (InvalidTag, ValueError):
                continue
            return maced
        raise PassphraseError("wrong store passphrase")

    def __repr__(self) -> str:
        return "SecretBox([secret])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a key-encryption key cannot be pickled")


def unlock(meta: Mapping[str, bytes], passphrase: bytes) -> tuple[SecretBox, bool]:
    """The box for a store whose metadata (``kdf_log2n``, ``kdf_salt``, ``kek_check``) is
    ``meta``, and whether its rows are MACed (False: a store to upgrade); a wrong passphrase
    raises ``PassphraseError``."""
    try:
        log2n = int(meta["kdf_log2n"])
        salt, check = bytes(meta["kdf_salt"]), bytes(meta["kek_check"])
    except (KeyError, ValueError):
        raise StoreCorruptError("key store metadata is incomplete") from None
    box = SecretBox(derive_kek(passphrase, salt, log2n))
    return box, box.verify_check(check)
