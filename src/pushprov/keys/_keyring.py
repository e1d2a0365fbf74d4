"""The immutable keyring snapshot readers work on, and the memo of parsed secret keys."""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Callable, Iterable
from typing import NoReturn

from .. import jose, openpgp
from .._errors import KeyUnusableError
from .._policy import Policy
from ..store import StoreCorruptError
from ._errors import KeyNotFoundError
from ._model import Environment, Format, KeyRecord, Role, State

__all__ = ["Keyring", "SecretCache", "resolve"]

_NOT_BUILT_AD_HOC = object()
_USABLE = frozenset({State.PENDING, State.ACTIVE, State.RETIRING})
_MIN_REFERENCE = 8  # a key reference shorter than a key ID is too easy to mistype into another

#: A parsed secret key of ours: an OpenPGP key, or a private JWK.
SecretKey = openpgp.SecretKey | jose.JwkKey


def key_id_of(key: SecretKey | openpgp.Certificate) -> str:
    """The id a record of this key has: the OpenPGP fingerprint, or the JWK's kid."""
    return key.kid if isinstance(key, jose.JwkKey) else key.fingerprint


class SecretCache:
    """Parsed secret keys (OpenPGP or JWK) by SHA-256 of their stored clear form, in this
    process only.

    Parsing an RSA secret key costs tens of milliseconds (the private key is validated), so a
    long-lived keystore keeps what it parsed. Entries are added only when a secret is asked for
    and dropped when the key is destroyed; nothing here is ever written anywhere.
    """

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[bytes, SecretKey] = {}

    @staticmethod
    def digest(clear: bytes) -> bytes:
        return hashlib.sha256(clear).digest()

    def get(self, clear: bytes) -> SecretKey | None:
        return self._keys.get(self.digest(clear))

    def put(self, clear: bytes, key: SecretKey) -> None:
        self._keys[self.digest(clear)] = key

    def forget(self, key_id: str) -> None:
        for digest in [d for d, key in self._keys.items() if key_id_of(key) == key_id]:
            del self._keys[digest]

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"SecretCache({len(self._keys)} keys, [secret])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("secret keys cannot be pickled")


def resolve(records: Iterable[KeyRecord], reference: str) -> KeyRecord:
    """A record by its full id, or by a unique suffix of at least 8 characters (a key ID)."""
    ref = reference.strip().replace(" ", "")
    candidates = list(records)
    exact = [r for r in candidates if r.key_id.upper() == ref.upper()]
    if exact:
        return exact[0]
    if len(ref) >= _MIN_REFERENCE:
        matches = [r for r in candidates if r.key_id.upper().endswith(ref.upper())]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise KeyNotFoundError(f"{reference!r} matches {len(matches)} keys; give more of it")
    raise KeyNotFoundError(f"no key {reference!r} in this environment")


class Keyring:
    """One environment's keys at one version. Immutable; secrets load only when asked for.

    OpenPGP, outgoing: sign with every active key of ours, encrypt to every active partner key,
    never with an expired one. JWK (the JWE envelope names one ``kid``): the one active key per
    role, or none. Inbound, both formats: decrypt with, and verify against, active and
    retiring keys.
    """

    __slots__ = (
        "_certificates",
        "_env",
        "_jwks",
        "_load_secret",
        "_policy",
        "_records",
        "_version",
    )

    def __init__(
        self,
        env: Environment,
        version: int,
        records: tuple[KeyRecord, ...],
        load_secret: Callable[[KeyRecord], SecretKey],
        policy: Policy,
        *,
        _token: object = None,
    ) -> None:
        if _token is not _NOT_BUILT_AD_HOC:
            raise TypeError("keyrings come from Keystore.snapshot()")
        self._env = env
        self._version = version
        self._records = records
        self._load_secret = load_secret
        self._policy = policy
        self._certificates: dict[str, openpgp.Certificate] = {}
        self._jwks: dict[str, jose.JwkKey] = {}
        # Defence in depth beside the store's row MACs: every key that may be used (pending
        # ones are self-tested) is its record's key, recomputed from the public material.
        for record in records:
            if record.state in _USABLE:
                if record.format is Format.PGP:
                    self.certificate(record)
                else:
                    self.public_jwk(record)

    @property
    def env(self) -> Environment:
        return self._env

    @property
    def version(self) -> int:
        return self._version

    @property
    def records(self) -> tuple[KeyRecord, ...]:
        return self._records

    def record(self, reference: str) -> KeyRecord:
        return resolve(self._records, reference)

    def in_state(self, *states: State) -> tuple[KeyRecord, ...]:
        return tuple(r for r in self._records if r.state in states)

    def certificate(self, record: KeyRecord) -> openpgp.Certificate:
        if record.format is not Format.PGP:
            raise KeyUnusableError(f"key {record.key_id} is not an OpenPGP key")
        cert = self._certificates.get(record.key_id)
        if cert is None:
            (cert,) = openpgp.read_certificates(record.public, policy=self._policy)
            if cert.fingerprint != record.key_id:
                raise StoreCorruptError(f"the certificate stored for {record.key_id} is not it")
            self._certificates[record.key_id] = cert
        return cert

    def public_jwk(self, record: KeyRecord) -> jose.JwkKey:
        """The public half of a JWK record (ours or a partner's). Its ``kid`` must be the
        record's id (a partner's kid is a name, not necessarily the RFC 7638 thumbprint)."""
        if record.format is not Format.JWK:
            raise KeyUnusableError(f"key {record.key_id} is not a JWK")
        key = self._jwks.get(record.key_id)
        if key is None:
            key = jose.load_jwk(record.public, policy=self._policy)
            if key.kid != record.key_id or key.is_private:
                raise StoreCorruptError(f"the public key stored for {record.key_id} is not it")
            self._jwks[record.key_id] = key
        return key

    def secret_key(self, record: KeyRecord) -> openpgp.SecretKey:
        """The OpenPGP secret key of one of our records (an explicit request: loaded now)."""
        if record.format is not Format.PGP:
            raise KeyUnusableError(f"key {record.key_id} is not an OpenPGP key")
        key = self._load_secret(record)
        assert isinstance(key, openpgp.SecretKey)  # the loader parses by the record's format
        return key

    def secret_jwk(self, record: KeyRecord) -> jose.JwkKey:
        """The private JWK of one of our records (an explicit request: loaded now)."""
        if record.format is not Format.JWK:
            raise KeyUnusableError(f"key {record.key_id} is not a JWK")
        key = self._load_secret(record)
        assert isinstance(key, jose.JwkKey)  # the loader parses by the record's format
        return key

    def _select(
        self, fmt: Format, role: Role, states: tuple[State, ...], at: _dt.datetime | None
    ) -> list[KeyRecord]:
        return [
            r
            for r in self._records
            if r.format is fmt
            and role in r.roles
            and r.state in states
            and (at is None or (r.created <= at and not r.expired(at)))
        ]

    # -- OpenPGP ---------------------------------------------------------------------------

    def signing_keys(self, *, at: _dt.datetime) -> tuple[openpgp.SecretKey, ...]:
        chosen = self._select(Format.PGP, Role.SIGN, (State.ACTIVE,), at)
        return tuple(self.secret_key(r) for r in chosen)

    def recipients(self, *, at: _dt.datetime) -> tuple[openpgp.Certificate, ...]:
        chosen = self._select(Format.PGP, Role.ENCRYPT, (State.ACTIVE,), at)
        return tuple(self.certificate(r) for r in chosen)

    def decryption_keys(self) -> tuple[openpgp.SecretKey, ...]:
        chosen = self._select(Format.PGP, Role.DECRYPT, (State.ACTIVE, State.RETIRING), None)
        return tuple(self.secret_key(r) for r in chosen)

    def verification_certs(self) -> tuple[openpgp.Certificate, ...]:
        chosen = self._select(Format.PGP, Role.VERIFY, (State.ACTIVE, State.RETIRING), None)
        return tuple(self.certificate(r) for r in chosen)

    # -- JWK, for the JWE envelope ---------------------------------------------------------

    def _one_active(self, role: Role, at: _dt.datetime) -> KeyRecord | None:
        chosen = self._select(Format.JWK, role, (State.ACTIVE,), at)
        if len(chosen) > 1:
            # The lifecycle rules never let this happen; a store edited behind their back can.
            raise StoreCorruptError(f"{len(chosen)} JWKs are active for role {role.value}")
        return chosen[0] if chosen else None

    def jwe_signing_key(self, *, at: _dt.datetime) -> jose.JwkKey | None:
        """Our one active signing JWK usable at ``at`` (private: loaded now), or None."""
        record = self._one_active(Role.SIGN, at)
        return None if record is None else self.secret_jwk(record)

    def jwe_recipient(self, *, at: _dt.datetime) -> jose.JwkKey | None:
        """The partner's one active encryption JWK usable at ``at``, or None."""
        record = self._one_active(Role.ENCRYPT, at)
        return None if record is None else self.public_jwk(record)

    def jwe_decryption_keys(self) -> tuple[jose.JwkKey, ...]:
        """Our active and retiring decryption JWKs (private: loaded now)."""
        chosen = self._select(Format.JWK, Role.DECRYPT, (State.ACTIVE, State.RETIRING), None)
        return tuple(self.secret_jwk(r) for r in chosen)

    def jwe_verification_keys(self) -> tuple[jose.JwkKey, ...]:
        """The partner's active and retiring signature-verification JWKs."""
        chosen = self._select(Format.JWK, Role.VERIFY, (State.ACTIVE, State.RETIRING), None)
        return tuple(self.public_jwk(r) for r in chosen)

    def __repr__(self) -> str:
        return (
            f"Keyring(env={self._env.value!r}, version={self._version}, keys={len(self._records)})"
        )

    def __reduce__(self) -> NoReturn:
        raise TypeError("keyrings cannot be pickled")
