"""The Cleartext Signature Framework (RFC 9580 §7): text signatures a reader sees as text.

The signed text is the cleartext with each line's trailing spaces and tabs removed, lines joined
by CRLF, without the line ending before the signature (§7.2). Lines that start with "-" are
dash-escaped ("- "). Used by the SOP face (``inline-sign --as=clearsigned``, ``inline-verify``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

from .._errors import MalformedInputError
from .._opened import VerifiedSignature
from .._policy import GOOGLE_PROFILE, Policy
from ._cert import Certificate
from ._detached import sign_detached, verify_detached
from ._packets import FramingError, armor, dearmor, read_packets
from ._secret import SecretKey

__all__ = ["sign_cleartext", "verify_cleartext"]

_HEADER = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"


def sign_cleartext(
    text: str, *, sign_with: Sequence[SecretKey], at: _dt.datetime, policy: Policy = GOOGLE_PROFILE
) -> bytes:
    """``text`` as a cleartext-signed message, one text signature per key.

    A final line ending is kept as part of the signed text (an empty line before the signature),
    so that verifying gives back exactly ``text``, up to trailing whitespace and CRLF.
    """
    lines = [line.removesuffix("\r").rstrip(" \t") for line in text.split("\n")]
    signature = sign_detached(
        "\n".join(lines).encode("utf-8"), sign_with=sign_with, at=at, text=True, policy=policy
    )
    escaped = "\n".join(f"- {line}" if line.startswith("-") else line for line in lines)
    head = f"{_HEADER}\nHash: {policy.signing_hash}\n\n"
    return (head + escaped + "\n" + armor("SIGNATURE", signature)).encode("utf-8")


def verify_cleartext(
    message: bytes,
    *,
    verify_with: Sequence[Certificate],
    at: _dt.datetime,
    policy: Policy = GOOGLE_PROFILE,
) -> tuple[bytes, tuple[VerifiedSignature, ...]]:
    """The signed text of a cleartext-signed message (LF line endings) and its verified signatures.

    The ``Hash:`` headers are not trusted for anything: each signature names its own hash, which
    the policy then judges.
    """
    if len(message) > policy.max_message_bytes:
        raise MalformedInputError("message is larger than the policy allows")
    try:
        lines = message.decode("utf-8").lstrip().split("\n")
    except UnicodeDecodeError:
        raise MalformedInputError("a cleartext-signed message must be UTF-8") from None
    lines = [line.removesuffix("\r") for line in lines]
    if not lines or lines[0].rstrip() != _HEADER:
        raise MalformedInputError("not a cleartext-signed message")
    position = 1
    while position < len(lines) and lines[position].strip():
        if ":" not in lines[position]:
            raise MalformedInputError("bad cleartext header")
        position += 1
    position += 1  # the blank line after the headers
    body: list[str] = []
    while position < len(lines) and lines[position].rstrip() != _SIGNATURE:
        line = lines[position]
        body.append(line[2:] if line.startswith("- ") else line)
        position += 1
    if position >= len(lines):
        raise MalformedInputError("cleartext-signed message without its signature")
    signature = "\n".join(lines[position:]).encode("ascii", "replace")
    _require_text_signatures(signature)
    text = "\n".join(line.rstrip(" \t") for line in body)
    verified = verify_detached(
        text.encode("utf-8"), signature, verify_with=verify_with, at=at, policy=policy
    )
    return "\n".join(body).encode("utf-8"), verified


def _require_text_signatures(armored: bytes) -> None:
    """§7: the signatures of a cleartext message are text signatures (type 0x01), nothing else."""
    try:
        _kind, binary = dearmor(armored)
        types = {body[1] for tag, body in read_packets(binary) if tag == 2 and len(body) > 1}
    except FramingError:
        raise MalformedInputError("bad signature armor in a cleartext-signed message") from None
    if types - {0x01}:
        raise MalformedInputError("a cleartext-signed message carries a non-text signature")
