"""The strict reader and writer of the compact serialization: segments, base64url, headers."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from .._errors import InputTooLargeError, MalformedInputError, PolicyViolationError, PushprovError
from .._json import parse_strict_json
from .._policy import Policy

__all__ = [
    "b64u_decode",
    "b64u_encode",
    "check_header",
    "check_kid",
    "encode_header",
    "parse_json_object",
    "split_compact",
]

_B64U = re.compile(rb"[A-Za-z0-9_-]*")
_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_PADDING = (b"", b"", b"==", b"=")
_UNUSED_BITS = (0, 0, 0x0F, 0x03)  # low bits of the last character that carry no data
# Header members that would let the token choose its own key: we only use keys we were given.
_KEY_SOURCES = ("jwk", "jku", "x5u", "x5c")
_MAX_KID = 256
# Only the ends are trimmed: files and pipes add a final newline, no encoder adds inner spaces.
_EDGES = b" \t\r\n"


def b64u_encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64u_decode(segment: bytes) -> bytes:
    """Unpadded, canonical base64url (RFC 7515 §2); anything else is malformed."""
    tail = len(segment) % 4
    if tail == 1 or _B64U.fullmatch(segment) is None:
        raise MalformedInputError("a segment is not unpadded base64url")
    # Stray bits in the last character would give one token several spellings.
    if tail and _ALPHABET.index(segment[-1]) & _UNUSED_BITS[tail]:
        raise MalformedInputError("a segment is not canonical base64url")
    # The pattern and length checks above leave nothing binascii could refuse.
    return binascii.a2b_base64(segment.translate(_TO_STANDARD) + _PADDING[tail])


def split_compact(token: bytes | str, count: int, policy: Policy) -> list[bytes]:
    """The ``count`` segments of a compact token, after the size caps."""
    if isinstance(token, str):
        if not token.isascii():
            raise MalformedInputError("the token is not ASCII")
        token = token.encode("ascii")
    elif not isinstance(token, bytes):
        raise MalformedInputError("the token must be bytes or str")
    if len(token) > policy.max_jose_token_bytes:
        raise InputTooLargeError("the token is over the size cap")
    segments = token.strip(_EDGES).split(b".")
    if len(segments) != count:
        raise MalformedInputError(f"a compact token has {count} segments")
    if len(segments[0]) > policy.max_jose_header_bytes:
        raise InputTooLargeError("the protected header is over the size cap")
    return segments


def parse_json_object(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object in strict UTF-8 with no duplicate members and no NaN/Infinity."""
    value = parse_strict_json(data, what=f"the {what}", error=MalformedInputError)
    if not isinstance(value, dict):
        raise MalformedInputError(f"the {what} is not a JSON object")
    return value


def check_header(header: dict[str, Any]) -> tuple[str, str | None]:
    """Checks shared by JWE and JWS headers; returns ``alg`` and ``kid``."""
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise MalformedInputError('the header has no "alg" string')
    if "crit" in header:
        raise PolicyViolationError("the header lists critical extensions, none are supported")
    if any(name in header for name in _KEY_SOURCES):
        raise PolicyViolationError("the header names a key source (jwk, jku, x5u, x5c)")
    kid = header.get("kid")
    if kid is not None:
        check_kid(kid, MalformedInputError)
    return alg, kid


def check_kid(kid: object, error: type[PushprovError]) -> None:
    """The one rule for a ``kid``, in JWKs and headers alike: 1 to 256 printable characters."""
    if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID or not kid.isprintable():
        raise error(f"kid must be 1 to {_MAX_KID} printable characters")


def encode_header(header: dict[str, Any]) -> bytes:
    return b64u_encode(json.dumps(header, separators=(",", ":")).encode("ascii"))
