"""Seal (sign, then encrypt) and open (decrypt, then verify) a nested JWS in a compact JWE."""

from __future__ import annotations

import binascii
import datetime as _dt
import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from .._errors import (
    DecryptionFailedError,
    InputTooLargeError,
    KeyUnusableError,
    MalformedInputError,
    PolicyViolationError,
    SignatureInvalidError,
    UsageError,
)
from .._opened import Opened, VerifiedSignature
from .._policy import GOOGLE_PROFILE, Policy
from ._cek import unwrap_cek, wrap_cek
from ._compact import (
    b64u_decode,
    b64u_encode,
    check_header,
    encode_header,
    parse_json_object,
    split_compact,
)
from ._content import (
    TAG_BYTES,
    cek_bytes,
    decrypt_content,
    deflate,
    encrypt_content,
    inflate,
    iv_bytes,
)
from ._jws import sign_jws, verify_jws
from ._keys import TOO_SMALL, JwkKey, check_time, usable_keys

__all__ = ["open_jwe", "seal_jwe"]

# RFC 7519 §5.2: "JWT" marks a nested JWS, as RFC 7515 §4.1.10 "JOSE" marks compact content;
# media types compare case-blind. Most senders set none: then the plaintext's shape decides.
_NESTED_CTY = frozenset({"jwt", "application/jwt", "jose", "application/jose"})
_B64U = re.compile(rb"[A-Za-z0-9_-]*")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def seal_jwe(
    plaintext: bytes,
    *,
    sign_with: JwkKey,
    encrypt_to: JwkKey,
    policy: Policy = GOOGLE_PROFILE,
    at: _dt.datetime,
    alg: str | None = None,
    enc: str | None = None,
    jws_alg: str | None = None,
    compress: bool = False,
) -> bytes:
    """Sign ``plaintext`` (compact JWS), then encrypt that to ``encrypt_to`` (compact JWE).

    Algorithms default to the key's pinned ``alg``, else the policy's choice; either must be
    allowed by the policy. Returns the ASCII token. ``compress`` adds ``zip: "DEF"``.
    """
    check_time(at)
    if not isinstance(plaintext, bytes):
        raise UsageError("plaintext must be bytes")
    if len(plaintext) > policy.max_plaintext_bytes:
        raise InputTooLargeError("the plaintext is over the size cap")
    if not isinstance(sign_with, JwkKey) or not isinstance(encrypt_to, JwkKey):
        raise UsageError("sign_with and encrypt_to must be JwkKey objects")
    jws_alg = _choose(jws_alg, sign_with.alg, policy.jws_alg, policy.jws_algs, "JWS algorithm")
    alg = _choose(alg, encrypt_to.alg, policy.jwe_alg, policy.jwe_algs, "JWE algorithm")
    enc = _choose(enc, None, policy.jwe_enc, policy.jwe_encs, "JWE content encryption")
    for role, key, operation, key_alg in (
        ("signing", sign_with, "sign", jws_alg),
        ("recipient", encrypt_to, "encrypt", alg),
    ):
        reason = key._unusable(operation, key_alg, at, policy)
        if reason == TOO_SMALL:
            raise PolicyViolationError(f"the {role} key is smaller than the policy allows")
        if reason is not None:
            raise KeyUnusableError(f"the {role} key cannot {operation} with {key_alg}: {reason}")
    jws = sign_jws(plaintext, sign_with, jws_alg)
    header: dict[str, str] = {"alg": alg, "enc": enc}
    if compress:
        header["zip"] = "DEF"
    header["kid"] = encrypt_to.kid
    header["cty"] = "JWT"
    header_b64 = encode_header(header)
    cek = os.urandom(cek_bytes(enc))
    iv = os.urandom(iv_bytes(enc))
    ciphertext, tag = encrypt_content(enc, cek, iv, deflate(jws) if compress else jws, header_b64)
    encrypted_key = wrap_cek(encrypt_to._public, alg, cek)
    return b".".join(
        (
            header_b64,
            b64u_encode(encrypted_key),
            b64u_encode(iv),
            b64u_encode(ciphertext),
            b64u_encode(tag),
        )
    )


def open_jwe(
    token: bytes | str,
    *,
    decrypt_with: Sequence[JwkKey],
    verify_with: Sequence[JwkKey],
    policy: Policy = GOOGLE_PROFILE,
    at: _dt.datetime,
    allow_unsigned: bool = False,
) -> Opened:
    """Decrypt a compact JWE with one of ``decrypt_with``, then verify its nested JWS.

    The JWE's ``kid`` picks the key; without one, every key fit for its ``alg`` is tried (each
    once, at most ``policy.max_rsa_private_ops`` of them).
    Keys whose ``iat`` lies after ``at`` are never tried, for decryption or verification.
    Every failure to decrypt raises the one DecryptionFailedError.

    The plaintext is a nested JWS when ``cty`` says ``JWT`` or ``JOSE`` (any case), or when
    there is no ``cty`` and it has the shape of a compact JWS, as most libraries send it. A
    plaintext of that shape is always verified, ``allow_unsigned`` or not. Anything else is
    unsigned content: refused unless ``allow_unsigned`` (another ``cty`` before any RSA
    work), and then returned with no signatures.
    """
    check_time(at)
    keys, verifiers = _key_arguments(decrypt_with, verify_with)
    header_b64, *rest = split_compact(token, 5, policy)
    header = parse_json_object(b64u_decode(header_b64), "JWE header")
    alg, kid = check_header(header)
    enc, compressed, declared = _check_content_header(header, alg, policy, allow_unsigned)
    encrypted_key, iv, ciphertext, tag = (b64u_decode(segment) for segment in rest)
    if not encrypted_key or len(iv) != iv_bytes(enc) or len(tag) != TAG_BYTES[enc]:
        raise MalformedInputError("the JWE key, IV or tag has the wrong length")
    # Key choice uses public metadata only: a key pinned to another alg never sees RSA work.
    # Each key once (by thumbprint), however often it is passed; more than the budget allows
    # (no kid, many keys) is refused before any RSA work, like OpenPGP's PKESK trials.
    candidates = _candidates(keys, kid, alg, at, policy)
    parts = _Parts(header_b64, encrypted_key, iv, ciphertext, tag)
    content, opened_by = _decrypt(candidates, alg, enc, parts)
    plaintext = inflate(content, policy.max_plaintext_bytes) if compressed else content
    if len(plaintext) > policy.max_plaintext_bytes:
        raise InputTooLargeError("the plaintext is over the size cap")
    signatures: tuple[VerifiedSignature, ...] = ()
    if declared or _has_jws_shape(plaintext, policy):
        plaintext, signature = verify_jws(plaintext, verifiers, policy, at)
        signatures = (signature,)
    elif not allow_unsigned:
        raise SignatureInvalidError(_UNSIGNED)
    return Opened(
        plaintext=plaintext,
        format="jwe",
        decryption_key=opened_by.kid,
        cipher=enc,
        signatures=signatures,
    )


_UNSIGNED = "the message carries no nested JWS signature"


def _key_arguments(
    decrypt_with: Sequence[JwkKey], verify_with: Sequence[JwkKey]
) -> tuple[list[JwkKey], list[JwkKey]]:
    keys = list(decrypt_with)
    if not keys or not all(isinstance(key, JwkKey) and key.is_private for key in keys):
        raise UsageError("decrypt_with must be one or more private JwkKey objects")
    verifiers = list(verify_with)
    if not all(isinstance(key, JwkKey) for key in verifiers):
        raise UsageError("verify_with must hold JwkKey objects")
    return keys, verifiers


def _check_content_header(
    header: Mapping[str, Any], alg: str, policy: Policy, allow_unsigned: bool
) -> tuple[str, bool, bool]:
    """``enc``, whether the content is compressed, and whether ``cty`` declares a nested JWS;
    all refused here are refused before any RSA work."""
    enc = header.get("enc")
    if not isinstance(enc, str):
        raise MalformedInputError('the JWE header has no "enc" string')
    if alg not in policy.jwe_algs:
        raise PolicyViolationError("the JWE key algorithm is not allowed by the policy")
    if enc not in policy.jwe_encs:
        raise PolicyViolationError("the JWE content encryption is not allowed by the policy")
    compressed = "zip" in header
    if compressed and header["zip"] != "DEF":
        raise PolicyViolationError('the only compression supported is "DEF"')
    cty = header.get("cty")
    if cty is not None and not isinstance(cty, str):
        raise MalformedInputError('the JWE header "cty" is not a string')
    declared = cty is not None and cty.lower() in _NESTED_CTY
    if cty is not None and not declared and not allow_unsigned:
        # Another content type, declared: unsigned by its own header, refused with no RSA work.
        raise SignatureInvalidError(_UNSIGNED)
    return enc, compressed, declared


def _candidates(
    keys: list[JwkKey], kid: str | None, alg: str, at: _dt.datetime, policy: Policy
) -> list[JwkKey]:
    """The keys to try, each once (by thumbprint), within the policy's RSA budget."""
    unique: dict[str, JwkKey] = {}
    for key in usable_keys(keys, kid, "decrypt", alg, at, policy):
        unique.setdefault(key._thumbprint, key)
    candidates = list(unique.values())
    if len(candidates) > policy.max_rsa_private_ops:
        raise PolicyViolationError(
            f"opening the token takes {len(candidates)} private-key operations,"
            f" more than the policy's {policy.max_rsa_private_ops}; give the keys a kid"
        )
    return candidates


def _has_jws_shape(plaintext: bytes, policy: Policy) -> bool:
    """Whether an undeclared plaintext looks like a compact JWS: three base64url segments, the
    first a JSON object with an ``alg``.

    Lenient on purpose (duplicate members, stray bits pass): whatever passes goes to the
    strict verifier, so a signed message is never taken for unsigned content.
    """
    segments = plaintext.strip(b" \t\r\n").split(b".")
    # Payload and signature may be empty (RFC 7515 Appendix F; "alg": "none"), the header not.
    if len(segments) != 3 or not all(map(_B64U.fullmatch, segments)) or not segments[0]:
        return False
    if len(segments[0]) > policy.max_jose_header_bytes:
        return True  # too long to read here: the verifier refuses it by its size
    try:
        header = json.loads(binascii.a2b_base64(_standard_b64(segments[0])))
    except (ValueError, RecursionError, binascii.Error):
        return False
    return isinstance(header, dict) and isinstance(header.get("alg"), str)


def _standard_b64(segment: bytes) -> bytes:
    return segment.translate(_TO_STANDARD) + b"=" * (-len(segment) % 4)


class _Parts(NamedTuple):
    aad: bytes  # the encoded protected header, as it came
    encrypted_key: bytes
    iv: bytes
    ciphertext: bytes
    tag: bytes


def _decrypt(
    candidates: Sequence[JwkKey], alg: str, enc: str, parts: _Parts
) -> tuple[bytes, JwkKey]:
    """The content and the key that opened it; one DecryptionFailedError for every failure."""
    for key in candidates:
        ops = key._ops
        assert ops is not None  # candidates passed _unusable("decrypt", ...)
        cek = unwrap_cek(ops, alg, parts.encrypted_key, cek_bytes(enc))
        try:
            content = decrypt_content(
                enc, cek, iv=parts.iv, ciphertext=parts.ciphertext, tag=parts.tag, aad=parts.aad
            )
        except DecryptionFailedError:
            continue
        return content, key
    raise DecryptionFailedError


def _choose(
    requested: str | None, pinned: str | None, default: str, allowed: frozenset[str], what: str
) -> str:
    chosen = requested or pinned or default
    if chosen not in allowed:
        raise PolicyViolationError(f"the {what} is not allowed by the policy")
    return chosen
