"""The certificate model: component keys, the public view of each, and the certificate.

A ``Certificate`` is built (by ``_parse`` or ``_builder``) only from packets whose
self-signatures verified; key flags, expiry and revocation come from verified hashed subpackets
alone. It answers which of its keys serves a job under a ``Policy`` at a time, and exports itself.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
from collections.abc import Callable, Iterable

from cryptography.hazmat.primitives.asymmetric import rsa

from .._clock import as_unix, from_unix
from .._errors import KeyInvalidError, KeyUnusableError, UnsupportedError
from .._policy import Policy
from ._algorithms import PK_RSA, RSA_ALGOS
from ._packets import FramingError, Tag, armor, encode_packet, mpi, read_mpi
from ._signature import KeyFlags

__all__ = ["Certificate", "ComponentKey", "KeyInfo", "public_body", "uid_data"]

# What OpenSSL's RSA will still run: moduli up to 16384 bits, exponents up to 64 bits (over a
# 3072-bit modulus); 2^32 keeps every public operation cheap.
_MAX_RSA_BITS = 16384
_MAX_RSA_EXPONENT = 2**32


class ComponentKey:
    """One key of a certificate, its primary key or a subkey (Sequoia's "component key"), with
    what its verified self-signatures say about it.

    Built by reading or generating a certificate; ``fingerprint`` and ``key_id`` are the raw
    v4 octets (``KeyInfo`` shows them as hex). Holds public material only.
    """

    __slots__ = (
        "algo",
        "bits",
        "body",
        "created",
        "expires",
        "exponent",
        "fingerprint",
        "flags",
        "key_id",
        "public",
        "revoked_at",
        "revoked_hard",
        "signatures",
    )

    def __init__(self, body: bytes) -> None:
        if not body:
            raise FramingError("empty key packet")
        version = body[0]
        if version != 4:
            raise UnsupportedError(f"version {version} keys are not supported (only v4)")
        if len(body) < 6:
            raise FramingError("truncated key packet")
        self.created = int.from_bytes(body[1:5], "big")
        self.algo = body[5]
        if self.algo not in RSA_ALGOS:
            # Where another algorithm's public part ends is not ours to know, so neither is its
            # fingerprint (nor the size limit of what it hashes).
            raise UnsupportedError(f"only RSA keys are supported (algorithm {self.algo})")
        n, pos = read_mpi(body, 6)
        e, pos = read_mpi(body, pos)
        # The public part ends here (a secret-key packet goes on); so does what we hash: two
        # MPIs, within the two-octet length the fingerprint hashes.
        body = body[:pos]
        n_int = int.from_bytes(n, "big")
        self.exponent = int.from_bytes(e, "big")
        # pyca builds these, then OpenSSL refuses to encrypt with them (ValueError): a key that
        # reads fine would break whoever seals to it. Real keys use e = 65537. (The Policy may
        # bound n and e tighter still; _parse checks that before any signature work.)
        if not n_int & 1 or n_int.bit_length() > _MAX_RSA_BITS or self.exponent > _MAX_RSA_EXPONENT:
            raise KeyInvalidError("RSA public key is invalid")
        try:
            self.public: rsa.RSAPublicKey | None = rsa.RSAPublicNumbers(
                self.exponent, n_int
            ).public_key()
        except ValueError:
            raise KeyInvalidError("RSA public key is invalid") from None
        self.bits = n_int.bit_length()
        self.body = body
        # The v4 fingerprint is defined as SHA-1.
        self.fingerprint = hashlib.sha1(self.hash_prefix()).digest()  # noqa: S324
        self.key_id = self.fingerprint[-8:]
        self.flags = 0
        self.expires: int | None = None
        self.revoked_at: int | None = None
        self.revoked_hard = False
        self.signatures: list[bytes] = []  # verified packets, re-emitted on export

    def hash_prefix(self) -> bytes:
        return b"\x99" + len(self.body).to_bytes(2, "big") + self.body

    def problem_at(self, at: int) -> str | None:
        """Why this key may not be used at ``at`` ("revoked", "not valid yet", "expired")."""
        if self.revoked_at_time(at):
            return "revoked"
        if self.created > at:
            return "not valid yet"
        if self.expires is not None and at >= self.expires:
            return "expired"
        return None

    def valid_at(self, at: int) -> bool:
        return self.problem_at(at) is None

    def revoked_at_time(self, at: int) -> bool:
        if self.revoked_hard:
            return True
        return self.revoked_at is not None and self.revoked_at <= at


def public_body(created: int, public: rsa.RSAPublicKey) -> bytes:
    """The body of a v4 RSA public-key packet (§5.5.2), as generation writes it."""
    numbers = public.public_numbers()
    return b"\x04" + created.to_bytes(4, "big") + bytes([PK_RSA]) + mpi(numbers.n) + mpi(numbers.e)


def uid_data(primary: ComponentKey, uid: bytes) -> bytes:
    """What a certification over ``uid`` by ``primary`` hashes (§5.2.4)."""
    return primary.hash_prefix() + b"\xb4" + len(uid).to_bytes(4, "big") + uid


# ---------------------------------------------------------------------------------------------
# The public view


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """What inspection shows about one (sub)key. Holds no secret."""

    fingerprint: str
    key_id: str
    algorithm: str
    bits: int
    created: _dt.datetime
    expires: _dt.datetime | None
    capabilities: str  # gpg style: c s e
    revoked: bool
    has_secret: bool


class Certificate:
    """A validated OpenPGP certificate (transferable public key). Identify it by ``fingerprint``."""

    __slots__ = ("_primary", "_subkeys", "_user_ids")

    def __init__(
        self,
        primary: ComponentKey,
        user_ids: list[tuple[bytes, list[bytes]]],
        subkeys: list[ComponentKey],
    ):
        self._primary = primary
        self._user_ids = user_ids
        self._subkeys = subkeys

    @property
    def fingerprint(self) -> str:
        return self._primary.fingerprint.hex().upper()

    @property
    def user_ids(self) -> tuple[str, ...]:
        return tuple(uid.decode("utf-8", "replace") for uid, _ in self._user_ids)

    @property
    def created(self) -> _dt.datetime:
        return from_unix(self._primary.created)

    @property
    def expires(self) -> _dt.datetime | None:
        return None if self._primary.expires is None else from_unix(self._primary.expires)

    def key_infos(self, secret_fingerprints: Iterable[bytes] = ()) -> tuple[KeyInfo, ...]:
        secret = set(secret_fingerprints)
        return tuple(_info(key, key.fingerprint in secret) for key in self._all_keys())

    def _all_keys(self) -> list[ComponentKey]:
        return [self._primary, *self._subkeys]

    def encryption_key(self, policy: Policy, at: _dt.datetime) -> ComponentKey:
        """The newest valid encryption-capable subkey (the one flagged for encryption)."""
        return self._capable(policy, as_unix(at), KeyFlags.ENCRYPT, "encryption")

    def signing_key(self, policy: Policy, at: _dt.datetime) -> ComponentKey:
        return self._capable(policy, as_unix(at), KeyFlags.SIGN, "signing")

    def _capable(
        self, policy: Policy, at: int, flag: int, what: str, secret: Iterable[bytes] | None = None
    ) -> ComponentKey:
        """The newest (sub)key with ``flag`` that is valid at ``at`` and big enough for policy
        (and, given ``secret``, one whose private half we hold)."""
        self._check_primary(at)
        candidates = [
            key
            for key in self._all_keys()
            if key.flags & flag
            and key.valid_at(at)
            and key.bits >= policy.min_rsa_bits
            and (secret is None or key.fingerprint in secret)
        ]
        if not candidates:
            raise KeyUnusableError(f"certificate {self.fingerprint} has no valid {what} key")
        return max(candidates, key=lambda key: key.created)

    def _check_primary(self, at: int) -> None:
        problem = self._primary.problem_at(at)
        if problem is not None:
            raise KeyUnusableError(f"certificate {self.fingerprint} is {problem}")

    def _verifying_keys(self) -> list[ComponentKey]:
        return [key for key in self._all_keys() if key.flags & KeyFlags.SIGN]

    def policy_problems(self, policy: Policy, at: _dt.datetime) -> list[str]:
        """What keeps this certificate from Google's profile (empty: it complies)."""
        problems: list[str] = []
        now = as_unix(at)
        max_life = int(policy.max_key_lifetime.total_seconds())
        for key in self._all_keys():
            name = "primary key" if key is self._primary else f"subkey {key.key_id.hex().upper()}"
            if key.bits < policy.min_rsa_bits:
                problems.append(f"{name} has {key.bits} bits (< {policy.min_rsa_bits})")
            if key.expires is None:
                problems.append(f"{name} never expires")
            elif key.expires - key.created > max_life:
                problems.append(f"{name} lifetime exceeds {policy.max_key_lifetime.days} days")
            elif key.expires <= now:
                problems.append(f"{name} is expired")
            if key.revoked_at_time(now):
                problems.append(f"{name} is revoked")
        try:
            self.encryption_key(policy, at)
        except KeyUnusableError:
            problems.append("no valid encryption subkey")
        try:
            self.signing_key(policy, at)
        except KeyUnusableError:
            problems.append("no valid signing key")
        return problems

    def to_bytes(self) -> bytes:
        return self._serialize(Tag.PUBLIC_KEY, Tag.PUBLIC_SUBKEY, lambda key: key.body)

    def _serialize(
        self, primary_tag: int, subkey_tag: int, key_body: Callable[[ComponentKey], bytes]
    ) -> bytes:
        """The transferable key (§10.1), each key packet's body from ``key_body``."""
        out = [encode_packet(primary_tag, key_body(self._primary))]
        out += self._primary.signatures
        for uid, sigs in self._user_ids:
            out.append(encode_packet(Tag.USER_ID, uid))
            out += sigs
        for sub in self._subkeys:
            out.append(encode_packet(subkey_tag, key_body(sub)))
            out += sub.signatures
        return b"".join(out)

    def armor(self) -> str:
        return armor("PUBLIC KEY BLOCK", self.to_bytes())

    def __repr__(self) -> str:
        return f"Certificate(fingerprint={self.fingerprint!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Certificate):
            return NotImplemented
        return self.to_bytes() == other.to_bytes()

    def __hash__(self) -> int:
        return hash(self._primary.fingerprint)


def _info(key: ComponentKey, has_secret: bool) -> KeyInfo:
    caps = "".join(
        letter
        for letter, flag in (("c", KeyFlags.CERTIFY), ("s", KeyFlags.SIGN), ("e", KeyFlags.ENCRYPT))
        if key.flags & flag
    )
    return KeyInfo(
        fingerprint=key.fingerprint.hex().upper(),
        key_id=key.key_id.hex().upper(),
        algorithm="RSA" if key.algo in RSA_ALGOS else f"algorithm-{key.algo}",
        bits=key.bits,
        created=from_unix(key.created),
        expires=None if key.expires is None else from_unix(key.expires),
        capabilities=caps,
        revoked=key.revoked_hard or key.revoked_at is not None,
        has_secret=has_secret,
    )
