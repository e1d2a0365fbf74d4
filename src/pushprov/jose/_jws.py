"""The nested JWS (RFC 7515, compact): signed through our seam, verified through joserfc."""

from __future__ import annotations

import datetime as _dt
import functools
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from joserfc.jwa import JWSAlgModel
from joserfc.jws import JWSRegistry

from .._clock import MAX_UNIX_SECONDS, from_unix
from .._errors import (
    InputTooLargeError,
    MalformedInputError,
    PolicyViolationError,
    SignatureInvalidError,
)
from .._opened import VerifiedSignature
from .._policy import Policy
from ._compact import (
    b64u_decode,
    b64u_encode,
    check_header,
    encode_header,
    parse_json_object,
    split_compact,
)
from ._keys import JwkKey, usable_keys

__all__ = ["sign_jws", "verify_jws"]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}


@functools.cache
def _model(alg: str) -> JWSAlgModel:
    # A registry that knows exactly one algorithm: joserfc never picks one for us.
    return JWSRegistry(algorithms=[alg]).get_alg(alg)


def _padding(alg: str) -> tuple[padding.AsymmetricPadding, hashes.HashAlgorithm]:
    digest = _HASHES[alg[2:]]()
    if alg.startswith("PS"):
        # RFC 7518 §3.5: MGF1 with the same hash, salt as long as the hash output.
        return padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size), digest
    return padding.PKCS1v15(), digest


def sign_jws(payload: bytes, key: JwkKey, alg: str) -> bytes:
    """Compact JWS over ``payload``; the protected header holds ``alg`` and ``kid`` only.

    Registered parameters only (RFC 7515 §4.1): strict verifiers such as joserfc's default
    registry refuse any other member, a signing time (``iat``) included.
    """
    header = encode_header({"alg": alg, "kid": key.kid})
    signing_input = header + b"." + b64u_encode(payload)
    pad, digest = _padding(alg)
    ops = key._ops
    assert ops is not None  # callers checked _unusable("sign", ...)
    return signing_input + b"." + b64u_encode(ops.sign(signing_input, pad, digest))


def verify_jws(
    token: bytes, keys: Sequence[JwkKey], policy: Policy, at: _dt.datetime
) -> tuple[bytes, VerifiedSignature]:
    """Payload and signer of a compact JWS signed by one of ``keys``.

    Structure before keys: malformed input raises MalformedInputError, a refused algorithm or
    header PolicyViolationError; no trusted key, a bad signature or a signing time in the
    future all raise SignatureInvalidError. A signing time (``iat``) is optional: checked
    when a sender puts one in the protected header, else the signature has no ``created``.
    """
    header_b64, payload_b64, signature_b64 = split_compact(token, 3, policy)
    header = parse_json_object(b64u_decode(header_b64), "JWS header")
    alg, kid = check_header(header)
    if alg not in policy.jws_algs:
        raise PolicyViolationError("the JWS algorithm is not allowed by the policy")
    if "b64" in header:
        raise PolicyViolationError('unencoded payloads ("b64") are not supported')
    issued = header.get("iat")
    if issued is not None and (type(issued) is not int or not 0 <= issued <= MAX_UNIX_SECONDS):
        # Checked before any RSA work; beyond year 9999 no datetime can hold it.
        raise MalformedInputError('the JWS "iat" must be Unix seconds up to year 9999')
    payload = b64u_decode(payload_b64)
    if len(payload) > policy.max_plaintext_bytes:
        raise InputTooLargeError("the JWS payload is over the size cap")
    signature = b64u_decode(signature_b64)
    candidates = usable_keys(keys, kid, "verify", alg, at, policy)
    model = _model(alg)
    signing_input = header_b64 + b"." + payload_b64
    for key in candidates:
        if not model.verify(signing_input, signature, key._verifier):
            continue
        created = None if issued is None else from_unix(issued)
        # A difference, not at + skew: that sum overflows when at is near the end of year 9999.
        if created is not None and created - at > policy.clock_skew:
            raise SignatureInvalidError("the signature was made in the future")
        return payload, VerifiedSignature(
            certificate=key.kid, signing_key=key.kid, hash_algorithm=alg, created=created
        )
    raise SignatureInvalidError("no valid signature by a trusted key")
