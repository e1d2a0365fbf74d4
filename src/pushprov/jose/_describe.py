"""What a compact JWE says about itself before any key is used: its header and wrapped key."""

from __future__ import annotations

import dataclasses

from .._errors import MalformedInputError
from .._policy import GOOGLE_PROFILE, Policy
from ._compact import b64u_decode, check_header, parse_json_object, split_compact

__all__ = ["JweInfo", "describe_jwe"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class JweInfo:
    """The protected header's ``alg``, ``enc`` and ``kid``, and the wrapped key's size. Holds
    no secret: nothing is decrypted."""

    alg: str
    enc: str
    kid: str | None
    encrypted_key_bytes: int


def describe_jwe(token: bytes | str, *, policy: Policy = GOOGLE_PROFILE) -> JweInfo:
    """Read a compact JWE's envelope with the size caps and header rules of ``open_jwe``."""
    header_b64, encrypted_key, _iv, _ciphertext, _tag = split_compact(token, 5, policy)
    header = parse_json_object(b64u_decode(header_b64), "JWE header")
    alg, kid = check_header(header)
    enc = header.get("enc")
    if not isinstance(enc, str):
        raise MalformedInputError('the JWE header has no "enc" string')
    return JweInfo(alg=alg, enc=enc, kid=kid, encrypted_key_bytes=len(b64u_decode(encrypted_key)))
