"""Signatures without encryption: detached signatures and inline-signed messages (RFC 9580 §10.3).

The Stateless OpenPGP face needs them (``sop sign``/``verify``, ``inline-sign``/``inline-verify``);
GOPCs never use them. Signing and checking follow the same profile as sealing and opening: RSA
keys, the policy's hash, a signature counts only when it verifies by a trusted, valid key.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

from .._clock import as_unix
from .._errors import (
    InputTooLargeError,
    MalformedInputError,
    SignatureInvalidError,
    UsageError,
)
from .._opened import VerifiedSignature
from .._policy import GOOGLE_PROFILE, Policy
from ._algorithms import HASH_IDS, new_hash
from ._cert import Certificate, ComponentKey
from ._message import (
    _Literal,
    _parse_signed_literal,
    _readable_signature,
    _verify,
    canonical_text,
    decode_message,
    signed_literal,
)
from ._packets import FramingError, Tag, dearmor, encode_packet, is_armored, read_packets
from ._rsa import PrivateKeyOps
from ._secret import SecretKey
from ._signature import SigType, make_signature

__all__ = ["sign_detached", "sign_inline", "verify_detached", "verify_inline"]


def _signers(
    sign_with: Sequence[SecretKey], at: _dt.datetime, policy: Policy
) -> list[tuple[ComponentKey, PrivateKeyOps]]:
    if not sign_with:
        raise UsageError("at least one signing key is required")
    chosen: dict[bytes, tuple[ComponentKey, PrivateKeyOps]] = {}
    for secret in sign_with:
        key, backend = secret.signer(policy, at)
        chosen.setdefault(key.fingerprint, (key, backend))
    return list(chosen.values())


def sign_detached(
    data: bytes,
    *,
    sign_with: Sequence[SecretKey],
    at: _dt.datetime,
    text: bool = False,
    policy: Policy = GOOGLE_PROFILE,
) -> bytes:
    """One binary (or, with ``text``, text) signature packet per key over ``data``; binary."""
    if len(data) > policy.max_plaintext_bytes:
        raise InputTooLargeError("data is larger than the policy allows")
    hash_algo = HASH_IDS[policy.signing_hash]
    hasher_input = canonical_text(data) if text else data
    out = []
    for key, backend in _signers(sign_with, at, policy):
        hasher = new_hash(hash_algo)
        hasher.update(hasher_input)
        body = make_signature(
            backend,
            fingerprint=key.fingerprint,
            sig_type=SigType.TEXT if text else SigType.BINARY,
            hash_algo=hash_algo,
            data_hash=hasher,
            created=as_unix(at),
        )
        out.append(encode_packet(Tag.SIGNATURE, body))
    return b"".join(out)


def verify_detached(
    data: bytes,
    signatures: bytes,
    *,
    verify_with: Sequence[Certificate],
    at: _dt.datetime,
    policy: Policy = GOOGLE_PROFILE,
) -> tuple[VerifiedSignature, ...]:
    """The signatures in ``signatures`` (binary or armored) that verify over ``data``.

    Raises ``SignatureInvalidError`` (or ``PolicyViolationError`` for a refused hash) when none.
    """
    binary = _dearmored(signatures, policy)
    parsed = []
    try:
        for tag, body in read_packets(binary):
            if tag != Tag.SIGNATURE:
                raise MalformedInputError("expected signature packets only")
            sig = _readable_signature(body)
            if sig is not None:
                parsed.append(sig)
    except FramingError:
        raise MalformedInputError("bad signature packets") from None
    if not parsed:
        raise SignatureInvalidError("no readable signature")
    # A literal with an empty name and time: only its data is hashed for a document signature.
    literal = _Literal(b"b\x00\x00\x00\x00\x00" + data)
    return _verify(literal, parsed, verify_with, policy, at)


def sign_inline(
    data: bytes,
    *,
    sign_with: Sequence[SecretKey],
    at: _dt.datetime,
    text: bool = False,
    policy: Policy = GOOGLE_PROFILE,
) -> bytes:
    """An inline-signed, unencrypted message (one-pass signatures, literal, signatures); binary."""
    if len(data) > policy.max_plaintext_bytes:
        raise InputTooLargeError("data is larger than the policy allows")
    return signed_literal(
        data,
        _signers(sign_with, at, policy),
        created=as_unix(at),
        hash_algo=HASH_IDS[policy.signing_hash],
        text=text,
    )


def verify_inline(
    message: bytes,
    *,
    verify_with: Sequence[Certificate],
    at: _dt.datetime,
    policy: Policy = GOOGLE_PROFILE,
) -> tuple[bytes, tuple[VerifiedSignature, ...]]:
    """The data of an inline-signed message and the signatures on it that verify."""
    binary = decode_message(message, policy)
    try:
        literal, signatures = _parse_signed_literal(binary, policy)
    except FramingError:
        raise MalformedInputError("not an inline-signed message") from None
    return literal.data, _verify(literal, signatures, verify_with, policy, at)


def _dearmored(data: bytes, policy: Policy) -> bytes:
    if len(data) > policy.max_message_bytes:
        raise InputTooLargeError("signature data is larger than the policy allows")
    if not is_armored(data):
        return data
    try:
        kind, binary = dearmor(data)
    except FramingError:
        raise MalformedInputError("bad ASCII armor") from None
    if kind != "SIGNATURE":
        raise MalformedInputError("expected an armored SIGNATURE")
    return binary
