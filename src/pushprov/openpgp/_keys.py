"""v4 RSA keys: parsing, self-signature validation, secret-key protection, generation, export.

A ``Certificate`` is built only from packets whose self-signatures verified; key flags, expiry and
revocation come from verified hashed subpackets alone. ``SecretKey`` pairs a certificate with the
private-key backends of its (sub)keys and hands them out only to the sealing and opening code.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable
from typing import NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher

from .._clock import as_unix, from_unix
from .._errors import (
    KeyInvalidError,
    KeyUnusableError,
    PassphraseError,
    UnsupportedError,
    UsageError,
)
from .._policy import GOOGLE_PROFILE, Policy
from ._algorithms import (
    AES256,
    CFB,
    CIPHER_IDS,
    HASH_IDS,
    PK_RSA,
    PK_RSA_ENCRYPT_ONLY,
    PK_RSA_SIGN_ONLY,
    RSA_ALGOS,
    cipher_spec,
    hash_name,
    new_hash,
)
from ._packets import (
    FramingError,
    Tag,
    armor,
    checksum16,
    dearmor,
    encode_packet,
    is_armored,
    mpi,
)
from ._packets import read_mpi as _read_mpi
from ._packets import read_packets as _read_packets
from ._rsa import PrivateKeyOps, SoftwareRsaKey, verify_digest
from ._signature import (
    CERTIFICATIONS,
    KeyFlags,
    Signature,
    SigType,
    Sub,
    UnsupportedSignatureError,
    make_signature,
    parse_signature,
)

__all__ = [
    "Certificate",
    "KeyInfo",
    "SecretKey",
    "contains_secret_key",
    "generate_key",
    "read_certificates",
    "read_secret_keys",
]

# Superseded, retired, user ID no longer valid: effective from the revocation's time. Every
# other reason (none, compromised, unknown) revokes the key for all time (§5.2.3.31).
_SOFT_REASONS = frozenset({1, 3, 32})


# ---------------------------------------------------------------------------------------------
# Public-key packets


class _Key:
    """One primary key or subkey, with what its verified self-signatures say about it."""

    __slots__ = (
        "algo",
        "bits",
        "body",
        "created",
        "expires",
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
        self.public: rsa.RSAPublicKey | None = None
        self.bits = 0
        if self.algo in RSA_ALGOS:
            n, pos = _read_mpi(body, 6)
            e, pos = _read_mpi(body, pos)
            # The public part ends here (a secret-key packet goes on); so does what we hash.
            body = body[:pos]
            n_int = int.from_bytes(n, "big")
            try:
                self.public = rsa.RSAPublicNumbers(int.from_bytes(e, "big"), n_int).public_key()
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


def _public_body(created: int, public: rsa.RSAPublicKey) -> bytes:
    numbers = public.public_numbers()
    return b"\x04" + created.to_bytes(4, "big") + bytes([PK_RSA]) + mpi(numbers.n) + mpi(numbers.e)


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
        self, primary: _Key, user_ids: list[tuple[bytes, list[bytes]]], subkeys: list[_Key]
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

    def _all_keys(self) -> list[_Key]:
        return [self._primary, *self._subkeys]

    def encryption_key(self, at: _dt.datetime, policy: Policy = GOOGLE_PROFILE) -> _Key:
        """The newest valid encryption-capable subkey (the one flagged for encryption)."""
        return self._capable(as_unix(at), KeyFlags.ENCRYPT, "encryption", policy)

    def signing_key(self, at: _dt.datetime, policy: Policy = GOOGLE_PROFILE) -> _Key:
        return self._capable(as_unix(at), KeyFlags.SIGN, "signing", policy)

    def _capable(
        self, at: int, flag: int, what: str, policy: Policy, secret: Iterable[bytes] | None = None
    ) -> _Key:
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

    def _verifying_keys(self) -> list[_Key]:
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
            self.encryption_key(at, policy)
        except KeyUnusableError:
            problems.append("no valid encryption subkey")
        try:
            self.signing_key(at, policy)
        except KeyUnusableError:
            problems.append("no valid signing key")
        return problems

    def to_bytes(self) -> bytes:
        return self._serialize(Tag.PUBLIC_KEY, Tag.PUBLIC_SUBKEY, lambda key: key.body)

    def _serialize(
        self, primary_tag: int, subkey_tag: int, key_body: Callable[[_Key], bytes]
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


def _info(key: _Key, has_secret: bool) -> KeyInfo:
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

    def signer(
        self, at: _dt.datetime, policy: Policy = GOOGLE_PROFILE
    ) -> tuple[_Key, PrivateKeyOps]:
        """The newest valid signing-capable (sub)key with a private half."""
        key = self._certificate._capable(
            as_unix(at), KeyFlags.SIGN, "signing", policy, secret=self._backends
        )
        return key, self._backends[key.fingerprint]

    def decryptors(self) -> list[tuple[_Key, PrivateKeyOps]]:
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

    def _secret_body(self, key: _Key, passphrase: bytes | None) -> bytes:
        backend = self._backends.get(key.fingerprint)
        if not isinstance(backend, SoftwareRsaKey):
            raise UsageError("this key's private half cannot be exported")
        numbers = backend.private_numbers()
        # OpenPGP's u is p^-1 mod q with p < q; PKCS#1's iqmp is q^-1 mod p. Swap to match.
        p, q = sorted((numbers.p, numbers.q))
        u = pow(p, -1, q)
        secret = mpi(numbers.d) + mpi(p) + mpi(q) + mpi(u)
        if passphrase is None:
            checksum = checksum16(secret)
            return key.body + b"\x00" + secret + checksum
        salt = os.urandom(8)
        s2k = bytes([3, HASH_IDS["SHA256"]]) + salt + bytes([_S2K_COUNT_OCTET])
        kek = _s2k_derive(3, HASH_IDS["SHA256"], salt, _S2K_COUNT_OCTET, passphrase, 32)
        iv = os.urandom(16)
        sha1 = hashlib.sha1(secret).digest()  # noqa: S324 - the S2K usage 254 check is SHA-1
        encryptor = Cipher(AES256.factory(kek), CFB(iv)).encryptor()
        sealed = encryptor.update(secret + sha1) + encryptor.finalize()
        return key.body + bytes([254, CIPHER_IDS["AES256"]]) + s2k + iv + sealed

    def __repr__(self) -> str:
        return f"SecretKey(fingerprint={self.fingerprint!r}, [secret])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("secret keys cannot be pickled")


_S2K_COUNT_OCTET = 0xF0  # (16 + 0) << (15 + 6) = 33,554,432 octets hashed


# ---------------------------------------------------------------------------------------------
# Reading


def contains_secret_key(data: bytes) -> bool:
    """True when ``data`` holds secret-key packets (so a file can be told apart for display)."""
    try:
        if is_armored(data):
            _kind, data = dearmor(data)
        return any(tag in (Tag.SECRET_KEY, Tag.SECRET_SUBKEY) for tag, _ in _read_packets(data))
    except FramingError:
        return False


def read_certificates(data: bytes, *, policy: Policy = GOOGLE_PROFILE) -> list[Certificate]:
    """Parse one or more certificates (armored or binary). Secret keys give their public part."""
    return [cert for cert, _ in _read_keys(data, policy=policy, passphrase=None, secret=False)]


def read_secret_keys(
    data: bytes, *, passphrase: bytes | None = None, policy: Policy = GOOGLE_PROFILE
) -> list[SecretKey]:
    """Parse one or more transferable secret keys (as GnuPG exports them or we write them)."""
    keys = []
    for cert, backends in _read_keys(data, policy=policy, passphrase=passphrase, secret=True):
        if not backends:
            raise KeyInvalidError(f"key {cert.fingerprint} has no secret key material")
        keys.append(SecretKey(cert, backends, _token=_NOT_BUILT_AD_HOC))
    return keys


def _read_keys(
    data: bytes, *, policy: Policy, passphrase: bytes | None, secret: bool
) -> list[tuple[Certificate, dict[bytes, PrivateKeyOps]]]:
    if len(data) > policy.max_key_file_bytes:
        raise KeyInvalidError("key file is larger than the policy allows")
    try:
        return _read_key_packets(data, policy=policy, passphrase=passphrase, secret=secret)
    except FramingError:
        raise KeyInvalidError("not an OpenPGP key (bad framing)") from None


def _read_key_packets(
    data: bytes, *, policy: Policy, passphrase: bytes | None, secret: bool
) -> list[tuple[Certificate, dict[bytes, PrivateKeyOps]]]:
    if is_armored(data):
        _kind, data = dearmor(data)
    packets = list(_read_packets(data))
    groups: list[list[tuple[int, bytes]]] = []
    for tag, body in packets:
        if tag in (Tag.PUBLIC_KEY, Tag.SECRET_KEY):
            groups.append([])
        elif not groups:
            if tag in (Tag.MARKER, Tag.PADDING, Tag.TRUST):
                continue
            raise KeyInvalidError("key data does not start with a primary key")
        groups[-1].append((tag, body))
    if not groups:
        raise KeyInvalidError("no key found")
    return [_build(group, policy, passphrase, secret) for group in groups]


def _build(
    packets: list[tuple[int, bytes]], policy: Policy, passphrase: bytes | None, secret: bool
) -> tuple[Certificate, dict[bytes, PrivateKeyOps]]:
    backends: dict[bytes, PrivateKeyOps] = {}

    def key_from(tag: int, body: bytes) -> _Key:
        key = _Key(body)  # the public part only, also of a secret-key packet
        public_packet = tag in (Tag.PUBLIC_KEY, Tag.PUBLIC_SUBKEY)
        if public_packet and key.public is not None and len(key.body) != len(body):
            # Nothing may follow the exponent: it would drop out of the fingerprint unseen.
            raise FramingError("trailing data in a public-key packet")
        # Where a certificate is wanted, a secret key's secret part is never read.
        if secret and key.public is not None and tag in (Tag.SECRET_KEY, Tag.SECRET_SUBKEY):
            backend = _unlock(key, body[len(key.body) :], passphrase)
            if backend is not None:
                backends[key.fingerprint] = backend
        return key

    tag, body = packets[0]
    primary = key_from(tag, body)
    if primary.public is None:
        raise UnsupportedError("only RSA primary keys are supported")
    if primary.bits < policy.min_rsa_bits:
        raise KeyInvalidError(f"RSA key of {primary.bits} bits is below the policy minimum")

    # Each signature with its packet as it came, which export writes back once it verified.
    direct: list[tuple[Signature, bytes]] = []
    user_ids: list[tuple[bytes, list[tuple[Signature, bytes]]]] = []
    subkeys: list[tuple[_Key, list[tuple[Signature, bytes]]]] = []
    current: list[tuple[Signature, bytes]] | None = direct
    for tag, body in packets[1:]:
        if tag == Tag.SIGNATURE:
            if current is None:
                continue  # signatures on a skipped component (user attribute, unknown subkey)
            try:
                sig = parse_signature(body)
            except UnsupportedSignatureError:
                continue
            current.append((sig, encode_packet(Tag.SIGNATURE, body)))
        elif tag == Tag.USER_ID:
            user_ids.append((body, []))
            current = user_ids[-1][1]
        elif tag in (Tag.PUBLIC_SUBKEY, Tag.SECRET_SUBKEY):
            try:
                sub = key_from(tag, body)
            except UnsupportedError:
                current = None  # e.g. a v6 or ECC subkey: not ours to use, not fatal
                continue
            if sub.public is None or sub.bits < policy.min_rsa_bits:
                current = None  # not usable under this policy: leave it out entirely
                continue
            subkeys.append((sub, []))
            current = subkeys[-1][1]
        elif tag in (Tag.USER_ATTRIBUTE,):
            current = None
        elif tag in (Tag.TRUST, Tag.MARKER, Tag.PADDING):
            continue
        else:
            raise KeyInvalidError(f"unexpected packet (tag {tag}) in key data")

    valid_uids = _apply_primary_signatures(primary, direct, user_ids, policy)
    valid_subkeys = []
    for sub, sigs in subkeys:
        if _apply_subkey_signatures(primary, sub, sigs, policy):
            valid_subkeys.append(sub)
        else:
            backends.pop(sub.fingerprint, None)
    return Certificate(primary, valid_uids, valid_subkeys), backends


def _uid_data(primary: _Key, uid: bytes) -> bytes:
    return primary.hash_prefix() + b"\xb4" + len(uid).to_bytes(4, "big") + uid


def _self_signed(signer: _Key, sig: Signature, data: bytes, policy: Policy) -> bool:
    """True when ``sig`` is a policy-conformant signature by ``signer`` over ``data``."""
    if sig.critical_unknown or sig.created is None or signer.public is None:
        return False
    if hash_name(sig.hash_algo) not in policy.signature_hashes:
        return False
    if sig.issuer_fingerprints and signer.fingerprint not in sig.issuer_fingerprints:
        return False
    if sig.issuer_key_ids and signer.key_id not in sig.issuer_key_ids:
        return False
    hasher = new_hash(sig.hash_algo)
    hasher.update(data)
    hasher.update(sig.trailer())
    digest = hasher.finalize()
    if not hmac.compare_digest(digest[:2], sig.left16):
        return False
    return verify_digest(signer.public, sig.hash_algo, digest, sig.value)


def _apply_primary_signatures(
    primary: _Key,
    direct: list[tuple[Signature, bytes]],
    user_ids: list[tuple[bytes, list[tuple[Signature, bytes]]]],
    policy: Policy,
) -> list[tuple[bytes, list[bytes]]]:
    """Apply the verified direct-key and certification signatures to ``primary``; return the
    user IDs that have one, each with its verified signature packets (RSA work done once)."""
    key_data = primary.hash_prefix()
    binding: list[Signature] = []
    for sig, packet in direct:
        if sig.sig_type == SigType.KEY_REVOCATION and _self_signed(primary, sig, key_data, policy):
            _revoke(primary, sig)
            primary.signatures.append(packet)
        elif sig.sig_type == SigType.DIRECT_KEY and _self_signed(primary, sig, key_data, policy):
            binding.append(sig)
            primary.signatures.append(packet)
    valid_uids: list[tuple[bytes, list[bytes]]] = []
    for uid, sigs in user_ids:
        data = _uid_data(primary, uid)
        good = [
            (sig, packet)
            for sig, packet in sigs
            if sig.sig_type in CERTIFICATIONS and _self_signed(primary, sig, data, policy)
        ]
        if good:
            binding += [sig for sig, _ in good]
            valid_uids.append((uid, [packet for _, packet in good]))
    if not binding:
        raise KeyInvalidError(
            f"key {primary.fingerprint.hex().upper()} has no valid self-signature"
        )
    latest = max(binding, key=lambda s: s.created or 0)
    primary.flags = (
        latest.key_flags if latest.key_flags is not None else KeyFlags.CERTIFY | KeyFlags.SIGN
    )
    primary.flags |= KeyFlags.CERTIFY
    if latest.key_expiration:
        primary.expires = primary.created + latest.key_expiration
    return valid_uids


def _apply_subkey_signatures(
    primary: _Key, sub: _Key, sigs: list[tuple[Signature, bytes]], policy: Policy
) -> bool:
    data = primary.hash_prefix() + sub.hash_prefix()
    bindings: list[tuple[Signature, bytes]] = []
    for sig, packet in sigs:
        if not _self_signed(primary, sig, data, policy):
            continue
        if sig.sig_type == SigType.SUBKEY_REVOCATION:
            _revoke(sub, sig)
            sub.signatures.append(packet)
        elif sig.sig_type == SigType.SUBKEY_BINDING:
            flags = sig.key_flags or 0
            if flags & KeyFlags.SIGN and not _back_signed(primary, sub, sig, data, policy):
                # A signing subkey must sign back (§5.2.1): otherwise anyone could claim it.
                continue
            bindings.append((sig, packet))
    if not bindings:
        return False
    latest, packet = max(bindings, key=lambda item: item[0].created or 0)
    sub.signatures.insert(0, packet)
    sub.flags = latest.key_flags or 0
    if sub.algo == PK_RSA_SIGN_ONLY:
        sub.flags &= ~KeyFlags.ENCRYPT
    if sub.algo == PK_RSA_ENCRYPT_ONLY:
        sub.flags &= ~(KeyFlags.SIGN | KeyFlags.CERTIFY)
    if latest.key_expiration:
        sub.expires = sub.created + latest.key_expiration
    return True


def _back_signed(primary: _Key, sub: _Key, binding: Signature, data: bytes, policy: Policy) -> bool:
    for body in binding.embedded:
        try:
            back = parse_signature(body)
        except FramingError:
            continue
        if back.sig_type == SigType.PRIMARY_KEY_BINDING and _self_signed(sub, back, data, policy):
            return True
    return False


def _revoke(key: _Key, sig: Signature) -> None:
    if sig.revocation_reason not in _SOFT_REASONS:
        key.revoked_hard = True
    elif sig.created is not None:
        earliest = sig.created if key.revoked_at is None else min(key.revoked_at, sig.created)
        key.revoked_at = earliest


# ---------------------------------------------------------------------------------------------
# Secret-key material and S2K (RFC 9580 §3.7, §5.5.3)


def _unlock(key: _Key, secret: bytes, passphrase: bytes | None) -> PrivateKeyOps | None:
    if not secret:
        raise FramingError("truncated secret key")
    usage = secret[0]
    if usage == 0:
        if len(secret) < 3:
            raise FramingError("truncated secret key")
        material, check = secret[1:-2], secret[-2:]
        if checksum16(material) != check:
            raise KeyInvalidError("secret key checksum mismatch")
        return _rsa_private(key, material)
    if usage not in (254, 255):
        raise UnsupportedError("secret keys protected without S2K are not supported")
    if len(secret) < 4:
        raise FramingError("truncated secret key")
    spec = cipher_spec(secret[1])
    s2k_type = secret[2]
    if s2k_type == 101:
        return None  # GnuPG stub (secret kept elsewhere, e.g. --export-secret-subkeys)
    if spec is None:
        raise UnsupportedError("secret key is protected with an unsupported cipher")
    if s2k_type not in (0, 1, 3):
        raise UnsupportedError(f"S2K type {s2k_type} is not supported")
    # usage, cipher, S2K type, hash, [salt 8], [count 1], IV, encrypted material
    salt_length = 8 if s2k_type in (1, 3) else 0
    count_length = 1 if s2k_type == 3 else 0
    pos = 4 + salt_length + count_length
    if len(secret) < pos + spec.block_size + 2:
        raise FramingError("truncated secret key")
    hash_algo = secret[3]
    salt = secret[4 : 4 + salt_length]
    count = secret[4 + salt_length] if count_length else 0
    iv = secret[pos : pos + spec.block_size]
    sealed = secret[pos + spec.block_size :]
    if passphrase is None:
        raise PassphraseError(f"key {key.fingerprint.hex().upper()} is protected by a passphrase")
    kek = _s2k_derive(s2k_type, hash_algo, salt, count, passphrase, spec.key_size)
    decryptor = Cipher(spec.factory(kek), CFB(iv)).decryptor()
    clear = decryptor.update(sealed) + decryptor.finalize()
    if usage == 254:
        material, check = clear[:-20], clear[-20:]
        ok = hmac.compare_digest(hashlib.sha1(material).digest(), check)  # noqa: S324
    else:
        material, check = clear[:-2], clear[-2:]
        ok = checksum16(material) == check
    if not ok:
        raise PassphraseError("wrong passphrase")
    return _rsa_private(key, material)


def _s2k_derive(
    s2k_type: int, hash_algo: int, salt: bytes, count_octet: int, passphrase: bytes, size: int
) -> bytes:
    try:
        algorithm = new_hash(hash_algo).algorithm
    except KeyError:
        raise UnsupportedError("S2K hash algorithm is not supported") from None
    data = salt + passphrase
    total = len(data)
    if s2k_type == 3:
        total = max((16 + (count_octet & 15)) << ((count_octet >> 4) + 6), len(data))
    out = b""
    preload = 0
    while len(out) < size:
        hasher = hashes.Hash(algorithm)
        hasher.update(b"\0" * preload)
        _hash_repeated(hasher, data, total)
        out += hasher.finalize()
        preload += 1
    return out[:size]


def _hash_repeated(hasher: hashes.Hash, data: bytes, total: int) -> None:
    if not data:
        return
    block = data * max(1, 65536 // len(data))
    remaining = total
    while remaining >= len(block):
        hasher.update(block)
        remaining -= len(block)
    whole, rest = divmod(remaining, len(data))
    hasher.update(data * whole + data[:rest])


def _rsa_private(key: _Key, material: bytes) -> PrivateKeyOps:
    if key.public is None:
        raise UnsupportedError("only RSA secret keys are supported")
    d, pos = _read_mpi(material, 0)
    p, pos = _read_mpi(material, pos)
    q, pos = _read_mpi(material, pos)
    _u, pos = _read_mpi(material, pos)
    if pos != len(material):
        raise KeyInvalidError("secret key material has trailing data")
    public = key.public.public_numbers()
    d_i, p_i, q_i = (int.from_bytes(x, "big") for x in (d, p, q))
    try:
        private = rsa.RSAPrivateNumbers(
            p=p_i,
            q=q_i,
            d=d_i,
            dmp1=rsa.rsa_crt_dmp1(d_i, p_i),
            dmq1=rsa.rsa_crt_dmq1(d_i, q_i),
            iqmp=rsa.rsa_crt_iqmp(p_i, q_i),
            public_numbers=public,
        ).private_key()
    except ValueError:
        raise KeyInvalidError("secret key does not match its public key") from None
    return SoftwareRsaKey(private)


# ---------------------------------------------------------------------------------------------
# Generation


def generate_key(
    user_id: str,
    *,
    bits: int | None = None,
    validity: _dt.timedelta | None = None,
    at: _dt.datetime,
    policy: Policy = GOOGLE_PROFILE,
) -> SecretKey:
    """An RSA key to Google's rules: [C S] primary, [E] subkey, both expiring after ``validity``.

    Preferences list AES-256 and SHA-384 first and announce MDC support (RFC 9580 §5.2.3.32).
    """
    bits = policy.default_rsa_bits if bits is None else bits
    validity = policy.default_key_validity if validity is None else validity
    if bits < policy.min_rsa_bits or bits > 16384:
        raise UsageError(f"key size must be between {policy.min_rsa_bits} and 16384 bits")
    if validity <= _dt.timedelta(0):
        raise UsageError("validity must be positive")
    if validity > policy.max_key_lifetime:
        raise UsageError(f"validity may not exceed {policy.max_key_lifetime.days} days")
    uid = user_id.encode("utf-8")
    if not uid or b"\n" in uid or b"\r" in uid:
        raise UsageError("user ID must be one non-empty line")
    created = as_unix(at)
    expiry = int(validity.total_seconds()).to_bytes(4, "big")
    hash_algo = HASH_IDS[policy.signing_hash]

    primary_private = rsa.generate_private_key(65537, bits)
    sub_private = rsa.generate_private_key(65537, bits)
    primary = _Key(_public_body(created, primary_private.public_key()))
    sub = _Key(_public_body(created, sub_private.public_key()))
    primary_ops = SoftwareRsaKey(primary_private)

    def self_sign(sig_type: int, data: bytes, subpackets: list[tuple[int, bytes]]) -> bytes:
        hasher = new_hash(hash_algo)
        hasher.update(data)
        body = make_signature(
            primary_ops,
            fingerprint=primary.fingerprint,
            sig_type=sig_type,
            hash_algo=hash_algo,
            data_hash=hasher,
            created=created,
            subpackets=subpackets,
        )
        return encode_packet(Tag.SIGNATURE, body)

    preferred_ciphers = bytes(CIPHER_IDS[c] for c in ("AES256", "AES192", "AES128"))
    preferred_hashes = bytes(HASH_IDS[h] for h in ("SHA384", "SHA512", "SHA256"))
    certification = self_sign(
        SigType.POSITIVE_CERT,
        _uid_data(primary, uid),
        [
            (Sub.KEY_FLAGS, bytes([KeyFlags.CERTIFY | KeyFlags.SIGN])),
            (Sub.KEY_EXPIRATION, expiry),
            (Sub.PREFERRED_CIPHERS, preferred_ciphers),
            (Sub.PREFERRED_HASHES, preferred_hashes),
            (Sub.PREFERRED_COMPRESSION, bytes([2, 1, 0])),  # ZLIB, ZIP, none: all read here
            (Sub.FEATURES, b"\x01"),  # MDC (SEIPD v1)
            (Sub.KEYSERVER_PREFS, b"\x80"),
            (Sub.PRIMARY_USER_ID, b"\x01"),
        ],
    )
    binding = self_sign(
        SigType.SUBKEY_BINDING,
        primary.hash_prefix() + sub.hash_prefix(),
        [(Sub.KEY_FLAGS, bytes([KeyFlags.ENCRYPT])), (Sub.KEY_EXPIRATION, expiry)],
    )
    primary.flags = KeyFlags.CERTIFY | KeyFlags.SIGN
    primary.expires = created + int(validity.total_seconds())
    sub.flags = KeyFlags.ENCRYPT
    sub.expires = primary.expires
    sub.signatures = [binding]
    certificate = Certificate(primary, [(uid, [certification])], [sub])
    backends: dict[bytes, PrivateKeyOps] = {
        primary.fingerprint: primary_ops,
        sub.fingerprint: SoftwareRsaKey(sub_private),
    }
    return SecretKey(certificate, backends, _token=_NOT_BUILT_AD_HOC)
