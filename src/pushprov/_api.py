"""The verbs: seal and open messages and GOPCs. Faces (CLI, service, sandbox) call only these.

The reference time is taken here, once, when the caller passes none; nothing below reads a clock.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Sequence

from . import openpgp
from ._card import Gopc
from ._clock import now
from ._encoding import Encoding
from ._errors import UsageError
from ._opened import Opened
from ._policy import GOOGLE_PROFILE, Policy

__all__ = ["OpenedGopc", "open_gopc", "open_message", "seal_gopc", "seal_message"]


def seal_message(
    plaintext: bytes,
    *,
    sign_with: Sequence[openpgp.SecretKey],
    encrypt_to: Sequence[openpgp.Certificate],
    encoding: Encoding | None = None,
    at: _dt.datetime | None = None,
    policy: Policy = GOOGLE_PROFILE,
) -> bytes:
    """Sign with every signing key and encrypt to every certificate; encode as asked.

    ``encoding`` defaults to the policy's (standard base64 for Google).
    """
    binary = openpgp.seal(
        plaintext,
        sign_with=sign_with,
        encrypt_to=encrypt_to,
        at=now() if at is None else at,
        policy=policy,
    )
    return openpgp.encode_message(binary, policy.output_encoding if encoding is None else encoding)


def open_message(
    message: bytes,
    *,
    decrypt_with: Sequence[openpgp.SecretKey],
    verify_with: Sequence[openpgp.Certificate],
    at: _dt.datetime | None = None,
    policy: Policy = GOOGLE_PROFILE,
) -> Opened:
    """Open base64 (either alphabet), armored or binary input; see ``openpgp.open_message``."""
    if not decrypt_with:
        raise UsageError("at least one decryption key is required")
    if not verify_with:
        raise UsageError("at least one verification certificate is required")
    return openpgp.open_message(
        message,
        decrypt_with=decrypt_with,
        verify_with=verify_with,
        at=now() if at is None else at,
        policy=policy,
    )


def seal_gopc(
    gopc: Gopc,
    *,
    sign_with: Sequence[openpgp.SecretKey],
    encrypt_to: Sequence[openpgp.Certificate],
    encoding: Encoding | None = None,
    at: _dt.datetime | None = None,
    policy: Policy = GOOGLE_PROFILE,
) -> bytes:
    """The GOPC as Google takes it: signed, encrypted, base64 (standard alphabet by default)."""
    return seal_message(
        gopc.to_json(),
        sign_with=sign_with,
        encrypt_to=encrypt_to,
        encoding=encoding,
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
    decrypt_with: Sequence[openpgp.SecretKey],
    verify_with: Sequence[openpgp.Certificate],
    at: _dt.datetime | None = None,
    policy: Policy = GOOGLE_PROFILE,
) -> OpenedGopc:
    """Open a GOPC as Google would and check it carries the expected ``serverSessionId``."""
    opened = open_message(
        message, decrypt_with=decrypt_with, verify_with=verify_with, at=at, policy=policy
    )
    gopc = Gopc.from_json(opened.plaintext, policy=policy)
    gopc.check_session(session_id)
    return OpenedGopc(gopc=gopc, envelope=opened)
