"""Secret keys: a certificate paired with the private-key backends of its keys."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import NoReturn

from cryptography.hazmat.primitives.asymmetric import rsa

from .._clock import as_unix
from .._errors import KeyInvalidError, UsageError
from .._policy import Policy
from ._cert import Certificate, ComponentKey, KeyInfo
from ._packets import Tag, armor
from ._rsa import PrivateKeyOps, SoftwareRsaKey
from ._s2k import protect
from ._signature import KeyFlags

__all__ = ["SecretKey", "new_secret_key", "secret_key_from_ops"]

_NOT_BUILT_AD_HOC = object()


class SecretKey:
    """A certificate with private keys behind the RSA seam. Not picklable; repr shows no secret."""

    __slots__ = ("_backends", "_certificate")

    def __init__(
        self,
        certificate: Certificate,
        backends: dict[bytes, PrivateKeyOps],
        *,
        _token: object = None,
    ) -> None:
        if _token is not _NOT_BUILT_AD_HOC:
            raise TypeError("use read_secret_keys() or generate_key()")
        self._certificate = certificate
        self._backends = backends

    @property
    def certificate(self) -> Certificate:
        return self._certificate

    @property
    def fingerprint(self) -> str:
        return self._certificate.fingerprint

    def key_infos(self) -> tuple[KeyInfo, ...]:
        return self._certificate.key_infos(self._backends)

    def signer(self, policy: Policy, at: _dt.datetime) -> tuple[ComponentKey, PrivateKeyOps]:
        """The newest valid signing-capable (sub)key with a private half."""
        key = self._certificate._capable(
            policy, as_unix(at), KeyFlags.SIGN, "signing", secret=self._backends
        )
        return key, self._backends[key.fingerprint]

    def decryptors(self) -> list[tuple[ComponentKey, PrivateKeyOps]]:
        """Every encryption-capable (sub)key with a private half, whatever its validity now.

        Expired or revoked encryption keys still decrypt: messages sealed before the change must
        keep opening (the key lifecycle, not this check, decides when a key is retired).
        """
        return [
            (key, self._backends[key.fingerprint])
            for key in self._certificate._all_keys()
            if key.flags & KeyFlags.ENCRYPT and key.fingerprint in self._backends
        ]

    def armor(self, passphrase: bytes | None = None) -> str:
        """Export as an armored secret key block; S2K + AES-256 protected with a passphrase."""
        return armor("PRIVATE KEY BLOCK", self._to_bytes(passphrase))

    def _to_bytes(self, passphrase: bytes | None) -> bytes:
        return self._certificate._serialize(
            Tag.SECRET_KEY, Tag.SECRET_SUBKEY, lambda key: self._secret_body(key, passphrase)
        )

    def _secret_body(self, key: ComponentKey, passphrase: bytes | None) -> bytes:
        backend = self._backends.get(key.fingerprint)
        if not isinstance(backend, SoftwareRsaKey):
            raise UsageError("this key's private half cannot be exported")
        return protect(key, backend.private_numbers(), passphrase)

    def __repr__(self) -> str:
        return f"SecretKey(fingerprint={self.fingerprint!r}, [secret])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("secret keys cannot be pickled")


def new_secret_key(certificate: Certificate, backends: dict[bytes, PrivateKeyOps]) -> SecretKey:
    """The one way in for ``_parse`` and ``_builder``: users read or generate secret keys."""
    return SecretKey(certificate, backends, _token=_NOT_BUILT_AD_HOC)


def secret_key_from_ops(certificate: Certificate, ops: Sequence[PrivateKeyOps]) -> SecretKey:
    """``certificate`` with private halves held elsewhere (an HSM, a KMS): each of ``ops`` is
    paired with the component key whose public key it has; one that matches none is refused."""
    keys = {_public_numbers(key.public): key for key in certificate._all_keys() if key.public}
    backends: dict[bytes, PrivateKeyOps] = {}
    for backend in ops:
        key = keys.get(_public_numbers(backend.public_key))
        if key is None:
            raise KeyInvalidError("a private key does not belong to this certificate")
        backends[key.fingerprint] = backend
    return new_secret_key(certificate, backends)


def _public_numbers(public: rsa.RSAPublicKey) -> tuple[int, int]:
    numbers = public.public_numbers()
    return numbers.n, numbers.e
