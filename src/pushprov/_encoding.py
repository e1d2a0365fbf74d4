"""Base64 in both alphabets (RFC 4648 §4 and §5), strict on output and tolerant on input."""

from __future__ import annotations

import base64
import binascii
import enum
import re

from ._errors import MalformedInputError

__all__ = ["Encoding", "b64decode_any", "b64encode"]


class Encoding(enum.Enum):
    """How a sealed message is written out."""

    BASE64 = "base64"  # RFC 4648 §4, padded: what Google's GOPC spec asks for
    BASE64URL = "base64url"  # RFC 4648 §5 ("web-safe"), padded
    ARMOR = "armor"  # OpenPGP ASCII armor
    BINARY = "binary"


_B64_ANY = re.compile(rb"[A-Za-z0-9+/_-]*={0,2}")


def b64encode(data: bytes, encoding: Encoding) -> bytes:
    if encoding is Encoding.BASE64:
        return base64.b64encode(data)
    if encoding is Encoding.BASE64URL:
        return base64.urlsafe_b64encode(data)
    raise ValueError(f"{encoding.value} is not a base64 encoding")


def b64decode_any(text: bytes) -> bytes:
    """Decode base64 in either alphabet, padded or not, possibly line-wrapped.

    Mixing the two alphabets in one input is refused: no encoder produces that.
    """
    if text and len(text) % 4 == 0:
        try:  # the common case, what Google's spec asks for: standard alphabet, padded, one line
            return binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error:
            pass
    compact = text.translate(None, b" \t\r\n")
    if not compact or _B64_ANY.fullmatch(compact) is None:
        raise MalformedInputError("input is not base64")
    has_std = b"+" in compact or b"/" in compact
    has_url = b"-" in compact or b"_" in compact
    if has_std and has_url:
        raise MalformedInputError("input mixes the two base64 alphabets")
    if has_url:
        compact = compact.translate(bytes.maketrans(b"-_", b"+/"))
    stripped = compact.rstrip(b"=")
    if len(stripped) % 4 == 1:
        raise MalformedInputError("input is not base64")
    padded = stripped + b"=" * (-len(stripped) % 4)
    if len(compact) != len(stripped) and compact != padded:
        raise MalformedInputError("input has wrong base64 padding")
    try:
        return base64.b64decode(padded, validate=True)
    except binascii.Error:
        raise MalformedInputError("input is not base64") from None
