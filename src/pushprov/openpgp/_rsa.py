"""The RSA seam: the only place private-key operations happen.

``PrivateKeyOps`` is deliberately narrow — sign a digest, decrypt one PKCS#1 v1.5 block — so a
software key, a PKCS#11 HSM or a cloud KMS can stand behind it. Public-key operations (verify,
encrypt a session key) need no secret and stay here as plain functions.
"""

from __future__ import annotations

from typing import NoReturn, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from ._algorithms import HASHES

__all__ = ["PrivateKeyOps", "SoftwareRsaKey", "encrypt_block", "modulus_octets", "verify_digest"]


@runtime_checkable
class PrivateKeyOps(Protocol):
    """What a private RSA key must offer. Implementations never expose the key itself."""

    @property
    def public_key(self) -> rsa.RSAPublicKey: ...

    def sign_digest(self, hash_algo: int, digest: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 over a precomputed digest of the OpenPGP hash ``hash_algo``."""
        ...

    def decrypt_block(self, block: bytes) -> bytes:
        """RSAES-PKCS1-v1_5 decryption of a modulus-sized block.

        May raise ValueError on bad padding (pyca does) or, with implicit rejection, return
        unrelated bytes: callers treat both the same way.
        """
        ...


class SoftwareRsaKey:
    """A private key held in this process by pyca/cryptography (OpenSSL, constant-time RSA)."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: rsa.RSAPrivateKey) -> None:
        self._key = key
        self._public = key.public_key()

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def sign_digest(self, hash_algo: int, digest: bytes) -> bytes:
        return self._key.sign(digest, padding.PKCS1v15(), utils.Prehashed(HASHES[hash_algo]()))

    def decrypt_block(self, block: bytes) -> bytes:
        return self._key.decrypt(block, padding.PKCS1v15())

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        """For exporting the key to a file; an HSM-backed key has no such method."""
        return self._key.private_numbers()

    def __repr__(self) -> str:
        return f"SoftwareRsaKey(bits={self._public.key_size}, [secret])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("private keys cannot be pickled")


def modulus_octets(public: rsa.RSAPublicKey) -> int:
    return (public.key_size + 7) // 8


def verify_digest(public: rsa.RSAPublicKey, hash_algo: int, digest: bytes, value: bytes) -> bool:
    """Check an RSA signature read from an MPI (leading zeros stripped) over ``digest``."""
    size = modulus_octets(public)
    if len(value) > size or hash_algo not in HASHES:
        return False
    try:
        public.verify(
            value.rjust(size, b"\0"),
            digest,
            padding.PKCS1v15(),
            utils.Prehashed(HASHES[hash_algo]()),
        )
    except InvalidSignature:
        return False
    return True


def encrypt_block(public: rsa.RSAPublicKey, message: bytes) -> bytes:
    return public.encrypt(message, padding.PKCS1v15())
