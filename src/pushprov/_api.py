"""The verbs: seal and open messages and GOPCs. Faces (CLI, service, sandbox) call only these.

One call shape for both envelopes: ``format="pgp"`` (default) or ``format="jwe"`` picks
OpenPGP or JWE/JWS, so a caller switches by configuration, not by rewriting code. The
reference time is taken here, once, when the caller passes none; nothing below reads a clock.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Sequence
from typing import Literal, TypeVar

from . import jose, openpgp
from ._card import Gopc, check_session_id
from ._clock import now
from ._encoding import Encoding
from ._errors import UsageError
from ._opened import Opened
from ._policy import GOOGLE_PROFILE, Policy

__all__ = [
    "Format",
    "JweOptions",
    "OpenedGopc",
    "open_gopc",
    "open_message",
    "seal_gopc",
    "seal_message",
]

Format = Literal["pgp", "jwe"]
SigningKey = openpgp.SecretKey | jose.JwkKey
RecipientKey = openpgp.Certificate | jose.JwkKey
_K = TypeVar("_K")


@dataclasses.dataclass(frozen=True)
class JweOptions:
    """Sealing choices for the JWE envelope; ``None`` means the key's pinned alg or the policy's."""

    alg: str | None = None
    enc: str | None = None
    jws_alg: str | None = None
    compress: bool = False


def seal_message(
    plaintext: bytes,
    *,
    sign_with: Sequence[SigningKey],
    encrypt_to: Sequence[RecipientKey],
    format: Format = "pgp",
    encoding: Encoding | None = None,
    jwe: JweOptions | None = None,
    at: _dt.datetime | None = None,
    policy: Policy = GOOGLE_PROFILE,
) -> bytes:
    """Sign, then encrypt.

    OpenPGP: every key signs, every certificate can decrypt; ``encoding`` defaults to the
    policy's (standard base64 for Google). JWE: exactly one signing key and one recipient (a
    JWE names one ``kid``); the compact token is returned as is.
    """
    at = now() if at is None else at
    if format == "pgp":
        if jwe is not None:
            raise UsageError("JWE options apply to --format jwe only")
        binary = openpgp.seal(
            plaintext,
            sign_with=_only(sign_with, openpgp.SecretKey, "an OpenPGP secret key"),
            encrypt_to=_only(encrypt_to, openpgp.Certificate, "an OpenPGP certificate"),
            at=at,
            policy=policy,
        )
        chosen = policy.output_encoding if encoding is None else encoding
        return openpgp.encode_message(binary, chosen)
    if format != "jwe":
        raise UsageError("format must be pgp or jwe")
    if encoding is not None:
        raise UsageError("a JWE is compact base64url text; --encoding applies to pgp only")
    options = jwe or JweOptions()
    return jose.seal_jwe(
        plaintext,
        sign_with=_one(_only(sign_with, jose.JwkKey, "a JWK"), "signing key"),
        encrypt_to=_one(_only(encrypt_to, jose.JwkKey, "a JWK"), "recipient"),
        at=at,
        policy=policy,
        alg=options.alg,
        enc=options.enc,
        jws_alg=options.jws_alg,
        compress=options.compress,
    )


def open_message(
    message: bytes,
    *,
    decrypt_with: Sequence[SigningKey],
    verify_with: Sequence[RecipientKey],
    format: Format = "pgp",
    allow_unsigned: bool = False,
    at: _dt.datetime | None = None,
    policy: Policy = GOOGLE_PROFILE,
) -> Opened:
    """Decrypt with any of ``decrypt_with``; require one valid signature by any of ``verify_with``.

    OpenPGP input may be base64 (either alphabet), armored or binary. ``allow_unsigned`` is the
    explicit opt-in for Google's older JWE variant whose plaintext is the bare payload.
    """
    at = now() if at is None else at
    if not decrypt_with:
        raise UsageError("at least one decryption key is required")
    if format == "pgp":
        if allow_unsigned:
            raise UsageError("unsigned messages are never accepted for OpenPGP")
        if not verify_with:
            raise UsageError("at least one verification certificate is required")
        return openpgp.open_message(
            message,
            decrypt_with=_only(decrypt_with, openpgp.SecretKey, "an OpenPGP secret key"),
            verify_with=_only(verify_with, openpgp.Certificate, "an OpenPGP certificate"),
            at=at,
            policy=policy,
        )
    if format != "jwe":
        raise UsageError("format must be pgp or jwe")
    if not verify_with and not allow_unsigned:
        raise UsageError("at least one verification key is required")
    return jose.open_jwe(
        message,
        decrypt_with=_only(decrypt_with, jose.JwkKey, "a JWK"),
        verify_with=_only(verify_with, jose.JwkKey, "a JWK"),
        at=at,
        policy=policy,
        allow_unsigned=allow_unsigned,
    )


def seal_gopc(
    gopc: Gopc,
    *,
    sign_with: Sequence[SigningKey],
    encrypt_to: Sequence[RecipientKey],
    format: Format = "pgp",
    encoding: Encoding | None = None,
    jwe: JweOptions | None = None,
    at: _dt.datetime | None = None,
    policy: Policy = GOOGLE_PROFILE,
) -> bytes:
    """The GOPC as Google takes it: signed, encrypted, base64 (standard alphabet by default)."""
    check_session_id(gopc.server_session_id, policy)
    return seal_message(
        gopc.to_json(),
        sign_with=sign_with,
        encrypt_to=encrypt_to,
        format=format,
        encoding=encoding,
        jwe=jwe,
        at=at,
        policy=policy,
    )


@dataclasses.dataclass(frozen=True)
class OpenedGopc:
    """An opened, validated GOPC and how it was protected. Its repr masks the card number."""

    gopc: Gopc
    envelope: Opened


def open_gopc(
    message: bytes,
    *,
    session_id: str,
    decrypt_with: Sequence[SigningKey],
    verify_with: Sequence[RecipientKey],
    format: Format = "pgp",
    allow_unsigned: bool = False,
    at: _dt.datetime | None = None,
    policy: Policy = GOOGLE_PROFILE,
) -> OpenedGopc:
    """Open a GOPC as Google would and check it carries the expected ``serverSessionId``."""
    opened = open_message(
        message,
        decrypt_with=decrypt_with,
        verify_with=verify_with,
        format=format,
        allow_unsigned=allow_unsigned,
        at=at,
        policy=policy,
    )
    gopc = Gopc.from_json(opened.plaintext, policy=policy)
    gopc.check_session(session_id)
    return OpenedGopc(gopc=gopc, envelope=opened)


def _only(keys: Sequence[object], kind: type[_K], what: str) -> list[_K]:
    chosen = [key for key in keys if isinstance(key, kind)]
    if len(chosen) != len(keys):
        raise UsageError(f"every key must be {what} for this format")
    return chosen


def _one(keys: list[_K], what: str) -> _K:
    if len(keys) != 1:
        raise UsageError(f"a JWE takes exactly one {what} (rotate with an explicit switch)")
    return keys[0]
