"""Generating keys: a certificate to the policy's rules, self-signed, with its secret key."""

from __future__ import annotations

import datetime as _dt

from cryptography.hazmat.primitives.asymmetric import rsa

from .._clock import as_unix
from .._errors import PolicyViolationError, UsageError
from .._policy import GOOGLE_PROFILE, Policy
from ._algorithms import CIPHER_IDS, COMPRESSION_IDS, HASH_IDS, new_hash
from ._cert import Certificate, ComponentKey, public_body, uid_data
from ._packets import Tag, encode_packet
from ._rsa import PrivateKeyOps, SoftwareRsaKey
from ._secret import SecretKey, new_secret_key
from ._signature import KeyFlags, SigType, Sub, make_signature

__all__ = ["certify_keys", "generate_key"]


def generate_key(
    user_id: str,
    *,
    bits: int | None = None,
    validity: _dt.timedelta | None = None,
    policy: Policy = GOOGLE_PROFILE,
    at: _dt.datetime,
) -> SecretKey:
    """An RSA key to Google's rules: [C S] primary, [E] subkey, both expiring after ``validity``.

    The cipher, hash and compression preferences are the policy's; the key announces MDC
    support (RFC 9580 §5.2.3.32).
    """
    bits = policy.default_rsa_bits if bits is None else bits
    validity = policy.default_key_validity if validity is None else validity
    if bits < policy.min_rsa_bits or bits > 16384:
        raise UsageError(f"key size must be between {policy.min_rsa_bits} and 16384 bits")
    _checked_uid(user_id, validity, policy)  # before the costly key generation
    primary_private = rsa.generate_private_key(65537, bits)
    sub_private = rsa.generate_private_key(65537, bits)
    primary_ops = SoftwareRsaKey(primary_private)
    certificate = certify_keys(
        user_id,
        primary=primary_ops,
        subkey=sub_private.public_key(),
        validity=validity,
        policy=policy,
        at=at,
    )
    primary, sub = certificate._all_keys()
    backends: dict[bytes, PrivateKeyOps] = {
        primary.fingerprint: primary_ops,
        sub.fingerprint: SoftwareRsaKey(sub_private),
    }
    return new_secret_key(certificate, backends)


def certify_keys(
    user_id: str,
    *,
    primary: PrivateKeyOps,
    subkey: rsa.RSAPublicKey,
    validity: _dt.timedelta | None = None,
    policy: Policy = GOOGLE_PROFILE,
    at: _dt.datetime,
) -> Certificate:
    """The certificate ``generate_key`` makes, around keys held elsewhere (an HSM, a KMS).

    ``primary`` becomes the [C S] primary and makes the self-signature and the subkey binding
    signature through its ``sign_digest`` (the policy's hash); ``subkey`` is the public half of
    the [E] subkey. Pair the result with its private halves by ``secret_key_from_ops``.
    """
    validity = policy.default_key_validity if validity is None else validity
    uid = _checked_uid(user_id, validity, policy)
    created = as_unix(at)
    expiry = int(validity.total_seconds()).to_bytes(4, "big")
    hash_algo = HASH_IDS[policy.signing_hash]

    for public in (primary.public_key, subkey):
        if public.key_size < policy.min_rsa_bits:
            raise PolicyViolationError(f"RSA keys must have at least {policy.min_rsa_bits} bits")
    primary_key = ComponentKey(public_body(created, primary.public_key))
    sub = ComponentKey(public_body(created, subkey))

    def self_sign(sig_type: int, data: bytes, subpackets: list[tuple[int, bytes]]) -> bytes:
        hasher = new_hash(hash_algo)
        hasher.update(data)
        body = make_signature(
            primary,
            fingerprint=primary_key.fingerprint,
            sig_type=sig_type,
            hash_algo=hash_algo,
            data_hash=hasher,
            created=created,
            subpackets=subpackets,
        )
        return encode_packet(Tag.SIGNATURE, body)

    preferred_ciphers = bytes(CIPHER_IDS[name] for name in policy.preferred_ciphers)
    preferred_hashes = bytes(HASH_IDS[name] for name in policy.preferred_hashes)
    preferred_compression = bytes(COMPRESSION_IDS[name] for name in policy.preferred_compression)
    certification = self_sign(
        SigType.POSITIVE_CERT,
        uid_data(primary_key, uid),
        [
            (Sub.KEY_FLAGS, bytes([KeyFlags.CERTIFY | KeyFlags.SIGN])),
            (Sub.KEY_EXPIRATION, expiry),
            (Sub.PREFERRED_CIPHERS, preferred_ciphers),
            (Sub.PREFERRED_HASHES, preferred_hashes),
            (Sub.PREFERRED_COMPRESSION, preferred_compression),
            (Sub.FEATURES, b"\x01"),  # MDC (SEIPD v1)
            (Sub.KEYSERVER_PREFS, b"\x80"),
            (Sub.PRIMARY_USER_ID, b"\x01"),
        ],
    )
    binding = self_sign(
        SigType.SUBKEY_BINDING,
        primary_key.hash_prefix() + sub.hash_prefix(),
        [(Sub.KEY_FLAGS, bytes([KeyFlags.ENCRYPT])), (Sub.KEY_EXPIRATION, expiry)],
    )
    primary_key.flags = KeyFlags.CERTIFY | KeyFlags.SIGN
    primary_key.expires = created + int(validity.total_seconds())
    sub.flags = KeyFlags.ENCRYPT
    sub.expires = primary_key.expires
    sub.signatures = [binding]
    return Certificate(primary_key, [(uid, [certification])], [sub])


def _checked_uid(user_id: str, validity: _dt.timedelta, policy: Policy) -> bytes:
    if validity <= _dt.timedelta(0):
        raise UsageError("validity must be positive")
    if validity > policy.max_key_lifetime:
        raise UsageError(f"validity may not exceed {policy.max_key_lifetime.days} days")
    uid = user_id.encode("utf-8")
    if not uid or b"\n" in uid or b"\r" in uid:
        raise UsageError("user ID must be one non-empty line")
    return uid
