"""Reading keys: packets to certificates, with every self-signature checked against the policy.

Only verified self-signatures count: key flags, expiry and revocation come from their hashed
subpackets alone, and a subkey without a valid binding (a signing one also without its
back-signature) is left out. Secret parts are unlocked (``_s2k``) only where secret keys are read.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes

from .._errors import KeyInvalidError, UnsupportedError
from .._policy import GOOGLE_PROFILE, Policy
from ._algorithms import PK_RSA_ENCRYPT_ONLY, PK_RSA_SIGN_ONLY, RSA_ALGOS, hash_name, new_hash
from ._cert import Certificate, ComponentKey, uid_data
from ._packets import FramingError, Tag, dearmor, encode_packet, is_armored, read_packets
from ._rsa import PrivateKeyOps, verify_digest
from ._s2k import unlock
from ._secret import SecretKey, new_secret_key
from ._signature import (
    CERTIFICATIONS,
    KeyFlags,
    Signature,
    SigType,
    UnsupportedSignatureError,
    parse_signature,
)

__all__ = ["contains_secret_key", "read_certificates", "read_secret_keys"]

# Superseded, retired, user ID no longer valid: effective from the revocation's time. Every
# other reason (none, compromised, unknown) revokes the key for all time (§5.2.3.31).
_SOFT_REASONS = frozenset({1, 3, 32})


def contains_secret_key(data: bytes) -> bool:
    """True when ``data`` holds secret-key packets (so a file can be told apart for display)."""
    try:
        if is_armored(data):
            _kind, data = dearmor(data)
        return any(tag in (Tag.SECRET_KEY, Tag.SECRET_SUBKEY) for tag, _ in read_packets(data))
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
        keys.append(new_secret_key(cert, backends))
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
    packets = list(read_packets(data))
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

    def key_from(tag: int, body: bytes) -> ComponentKey:
        key = ComponentKey(body)  # the public part only, also of a secret-key packet
        public_packet = tag in (Tag.PUBLIC_KEY, Tag.PUBLIC_SUBKEY)
        if public_packet and len(key.body) != len(body):
            # Nothing may follow the exponent: it would drop out of the fingerprint unseen.
            raise FramingError("trailing data in a public-key packet")
        # Where a certificate is wanted, a secret key's secret part is never read.
        if secret and tag in (Tag.SECRET_KEY, Tag.SECRET_SUBKEY) and _usable_size(key, policy):
            backend = unlock(key, body[len(key.body) :], passphrase)
            if backend is not None:
                backends[key.fingerprint] = backend
        return key

    tag, body = packets[0]
    if body[:1] == b"\x04" and len(body) > 5 and body[5] not in RSA_ALGOS:
        raise UnsupportedError("only RSA primary keys are supported")
    primary = key_from(tag, body)
    _check_primary_size(primary, policy)
    components = _Components(policy, key_from)
    for tag, body in packets[1:]:
        components.add(tag, body)
    direct, user_ids, subkeys = components.direct, components.user_ids, components.subkeys

    budget = _Budget(policy)
    valid_uids = _apply_primary_signatures(primary, direct, user_ids, policy, budget)
    valid_subkeys = []
    for sub, sigs in subkeys:
        if _apply_subkey_signatures(primary, sub, sigs, policy, budget):
            valid_subkeys.append(sub)
        else:
            backends.pop(sub.fingerprint, None)
    return Certificate(primary, valid_uids, valid_subkeys), backends


def _check_primary_size(primary: ComponentKey, policy: Policy) -> None:
    if primary.bits < policy.min_rsa_bits:
        raise KeyInvalidError(f"RSA key of {primary.bits} bits is below the policy minimum")
    if not _usable_size(primary, policy):
        # Checked before any signature work: a huge e or n makes every RSA check slow.
        raise KeyInvalidError(
            f"RSA key of {primary.bits} bits or its public exponent exceeds the policy's limits"
        )


_SignaturePackets = list[tuple[Signature, bytes]]


class _Components:
    """The packets after the primary key, sorted into its components as they come, within the
    policy's counts; each signature with its packet as it came, which export writes back once
    it verified."""

    def __init__(self, policy: Policy, key_from: Callable[[int, bytes], ComponentKey]) -> None:
        self._policy = policy
        self._key_from = key_from
        self.direct: _SignaturePackets = []
        self.user_ids: list[tuple[bytes, _SignaturePackets]] = []
        self.subkeys: list[tuple[ComponentKey, _SignaturePackets]] = []
        self._current: _SignaturePackets | None = self.direct
        self._on_component = 0  # signature packets on the current component, read or not
        self._subkey_packets = 0

    def add(self, tag: int, body: bytes) -> None:
        if tag == Tag.SIGNATURE:
            self._add_signature(body)
            return
        self._on_component = 0
        if tag == Tag.USER_ID:
            self._add_user_id(body)
        elif tag in (Tag.PUBLIC_SUBKEY, Tag.SECRET_SUBKEY):
            self._add_subkey(tag, body)
        elif tag in (Tag.USER_ATTRIBUTE,):
            self._current = None
        elif tag not in (Tag.TRUST, Tag.MARKER, Tag.PADDING):
            raise KeyInvalidError(f"unexpected packet (tag {tag}) in key data")

    def _add_signature(self, body: bytes) -> None:
        policy = self._policy
        self._on_component += 1
        if self._on_component > policy.max_signatures_per_component:
            raise KeyInvalidError(
                f"a key component carries more than {policy.max_signatures_per_component}"
                " signatures, more than the policy allows"
            )
        if self._current is None:
            return  # signatures on a skipped component (user attribute, unknown subkey)
        try:
            sig = parse_signature(body)
        except UnsupportedSignatureError:
            return
        self._current.append((sig, encode_packet(Tag.SIGNATURE, body)))

    def _add_user_id(self, body: bytes) -> None:
        if len(self.user_ids) == self._policy.max_user_ids:
            raise KeyInvalidError(
                f"the key has more than {self._policy.max_user_ids} user IDs, more than the"
                " policy allows"
            )
        self.user_ids.append((body, []))
        self._current = self.user_ids[-1][1]

    def _add_subkey(self, tag: int, body: bytes) -> None:
        policy = self._policy
        self._subkey_packets += 1
        if self._subkey_packets > policy.max_subkeys:
            raise KeyInvalidError(
                f"the key has more than {policy.max_subkeys} subkeys, more than the policy allows"
            )
        try:
            sub = self._key_from(tag, body)
        except UnsupportedError:
            self._current = None  # e.g. a v6 or ECC subkey: not ours to use, not fatal
            return
        if sub.bits < policy.min_rsa_bits or not _usable_size(sub, policy):
            self._current = None  # not usable under this policy: leave it out entirely
            return
        self.subkeys.append((sub, []))
        self._current = self.subkeys[-1][1]


def _usable_size(key: ComponentKey, policy: Policy) -> bool:
    """Whether the RSA numbers are small enough to work with: n and e within the policy (pyca
    already insists on an odd e of at least 3)."""
    return key.bits <= policy.max_rsa_bits and key.exponent <= policy.max_rsa_exponent


class _Budget:
    """The RSA signature checks one certificate may still cost."""

    __slots__ = ("_left", "_limit")

    def __init__(self, policy: Policy) -> None:
        self._limit = self._left = policy.max_key_signature_verifications

    def spend(self) -> None:
        if self._left == 0:
            raise KeyInvalidError(
                f"the key asks for more than {self._limit} self-signature checks, more than the"
                " policy allows"
            )
        self._left -= 1


class _Signed:
    """What a component's signatures hash before their own trailer (§5.2.4), hashed once per
    hash algorithm: each signature goes on from a copy, so a long user ID is read once, not
    once per signature."""

    __slots__ = ("_data", "_states")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._states: dict[int, hashes.Hash] = {}

    def hasher(self, hash_algo: int) -> hashes.Hash:
        state = self._states.get(hash_algo)
        if state is None:
            state = self._states[hash_algo] = new_hash(hash_algo)
            state.update(self._data)
        return state.copy()


def _self_signed(
    signer: ComponentKey, sig: Signature, signed: _Signed, policy: Policy, budget: _Budget
) -> bool:
    """True when ``sig`` is a policy-conformant signature by ``signer`` over ``signed``."""
    if sig.critical_unknown or sig.created is None or signer.public is None:
        return False
    if hash_name(sig.hash_algo) not in policy.signature_hashes:
        return False
    # Another issuer's signature (a third-party certification) is dropped before any hashing.
    if sig.issuer_fingerprints and signer.fingerprint not in sig.issuer_fingerprints:
        return False
    if sig.issuer_key_ids and signer.key_id not in sig.issuer_key_ids:
        return False
    hasher = signed.hasher(sig.hash_algo)
    hasher.update(sig.trailer())
    digest = hasher.finalize()
    if not hmac.compare_digest(digest[:2], sig.left16):
        return False
    budget.spend()
    return verify_digest(signer.public, sig.hash_algo, digest, sig.value)


def _apply_primary_signatures(
    primary: ComponentKey,
    direct: list[tuple[Signature, bytes]],
    user_ids: list[tuple[bytes, list[tuple[Signature, bytes]]]],
    policy: Policy,
    budget: _Budget,
) -> list[tuple[bytes, list[bytes]]]:
    """Apply the verified direct-key and certification signatures to ``primary``; return the
    user IDs that have one, each with its verified signature packets (RSA work done once)."""
    key_data = _Signed(primary.hash_prefix())
    binding: list[Signature] = []
    for sig, packet in direct:
        if sig.sig_type == SigType.KEY_REVOCATION and _self_signed(
            primary, sig, key_data, policy, budget
        ):
            _revoke(primary, sig)
            primary.signatures.append(packet)
        elif sig.sig_type == SigType.DIRECT_KEY and _self_signed(
            primary, sig, key_data, policy, budget
        ):
            binding.append(sig)
            primary.signatures.append(packet)
    valid_uids: list[tuple[bytes, list[bytes]]] = []
    for uid, sigs in user_ids:
        data = _Signed(uid_data(primary, uid))
        good = [
            (sig, packet)
            for sig, packet in sigs
            if sig.sig_type in CERTIFICATIONS and _self_signed(primary, sig, data, policy, budget)
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
    primary: ComponentKey,
    sub: ComponentKey,
    sigs: list[tuple[Signature, bytes]],
    policy: Policy,
    budget: _Budget,
) -> bool:
    data = _Signed(primary.hash_prefix() + sub.hash_prefix())
    bindings: list[tuple[Signature, bytes]] = []
    for sig, packet in sigs:
        if not _self_signed(primary, sig, data, policy, budget):
            continue
        if sig.sig_type == SigType.SUBKEY_REVOCATION:
            _revoke(sub, sig)
            sub.signatures.append(packet)
        elif sig.sig_type == SigType.SUBKEY_BINDING:
            flags = sig.key_flags or 0
            if flags & KeyFlags.SIGN and not _back_signed(primary, sub, sig, data, policy, budget):
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


def _back_signed(
    primary: ComponentKey,
    sub: ComponentKey,
    binding: Signature,
    data: _Signed,
    policy: Policy,
    budget: _Budget,
) -> bool:
    for body in binding.embedded:
        try:
            back = parse_signature(body)
        except FramingError:
            continue
        if back.sig_type == SigType.PRIMARY_KEY_BINDING and _self_signed(
            sub, back, data, policy, budget
        ):
            return True
    return False


def _revoke(key: ComponentKey, sig: Signature) -> None:
    if sig.revocation_reason not in _SOFT_REASONS:
        key.revoked_hard = True
    elif sig.created is not None:
        earliest = sig.created if key.revoked_at is None else min(key.revoked_at, sig.created)
        key.revoked_at = earliest
