"""Google's side, for tests and rehearsals: issue session ids, accept or reject GOPCs.

A GOPC is accepted the way Google's SDK hand-off would: decode (either base64 alphabet),
decrypt with any active or retiring sandbox key, require a valid signature by a trusted issuer
key, validate the GOPC, and check that its session id was issued here, is unexpired and unused.
Each way to fail has its own reason code, so a rehearsal says exactly what went wrong.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import secrets
import threading

from .. import _api
from .._card import Gopc
from .._errors import (
    DecryptionFailedError,
    GopcInvalidError,
    InputTooLargeError,
    KeyUnusableError,
    MalformedInputError,
    PolicyViolationError,
    SignatureInvalidError,
    UnsupportedError,
)
from ..keys import KeySource

__all__ = ["Reason", "Sandbox", "SessionBook", "Verdict"]

DEFAULT_SESSION_LIFETIME = _dt.timedelta(minutes=10)


class Reason(enum.StrEnum):
    ACCEPTED = "ACCEPTED"
    MALFORMED = "MALFORMED"  # not base64 / not an OpenPGP message
    DECRYPTION_FAILED = "DECRYPTION_FAILED"  # not to an active or retiring sandbox key
    SIGNATURE_UNTRUSTED = "SIGNATURE_UNTRUSTED"  # unsigned, or no signature by a trusted issuer
    POLICY_VIOLATION = "POLICY_VIOLATION"  # weak hash or cipher, no MDC
    GOPC_INVALID = "GOPC_INVALID"  # schema: card, expiry, session id format
    SESSION_UNKNOWN = "SESSION_UNKNOWN"
    SESSION_EXPIRED = "SESSION_EXPIRED"
    SESSION_REUSED = "SESSION_REUSED"


@dataclasses.dataclass(frozen=True)
class Verdict:
    reason: Reason
    signers: tuple[str, ...] = ()
    decryption_key: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is Reason.ACCEPTED


class SessionBook:
    """Single-use session ids with a lifetime. In memory: one sandbox process holds them."""

    def __init__(self, lifetime: _dt.timedelta = DEFAULT_SESSION_LIFETIME) -> None:
        self.lifetime = lifetime
        self._issued: dict[str, _dt.datetime] = {}
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def issue(self, at: _dt.datetime) -> tuple[str, _dt.datetime]:
        session_id = secrets.token_urlsafe(32)
        expires = at + self.lifetime
        with self._lock:
            self._issued[session_id] = expires
        return session_id, expires

    def redeem(self, session_id: str, at: _dt.datetime) -> Reason:
        """Use a session id once; the verdict names why it cannot be used."""
        with self._lock:
            expires = self._issued.get(session_id)
            if expires is None:
                return Reason.SESSION_UNKNOWN
            if session_id in self._used:
                return Reason.SESSION_REUSED
            if at >= expires:
                return Reason.SESSION_EXPIRED
            self._used.add(session_id)
            return Reason.ACCEPTED


_FAILURES: tuple[tuple[type[Exception], Reason], ...] = (
    (DecryptionFailedError, Reason.DECRYPTION_FAILED),
    (SignatureInvalidError, Reason.SIGNATURE_UNTRUSTED),
    (KeyUnusableError, Reason.SIGNATURE_UNTRUSTED),
    (PolicyViolationError, Reason.POLICY_VIOLATION),
    (GopcInvalidError, Reason.GOPC_INVALID),
    (MalformedInputError, Reason.MALFORMED),
    (InputTooLargeError, Reason.MALFORMED),
    (UnsupportedError, Reason.MALFORMED),
)


class Sandbox:
    """The checks Google makes on a GOPC, against the sandbox's keys of the moment.

    ``keys`` is the sandbox's key source: its own keys (active and retiring) decrypt; the
    issuer's certificates it trusts (active and retiring partner keys) verify.
    """

    def __init__(self, keys: KeySource, sessions: SessionBook) -> None:
        self._keys = keys
        self.sessions = sessions

    def accept(self, sealed: bytes, *, at: _dt.datetime) -> Verdict:
        snapshot = self._keys.current(at)
        # The sandbox takes OpenPGP GOPCs; JWKs in its store play no part here.
        decryptors, verifiers = snapshot.inbound("pgp")
        if not decryptors:
            return Verdict(Reason.DECRYPTION_FAILED)
        if not verifiers:
            return Verdict(Reason.SIGNATURE_UNTRUSTED)
        try:
            opened = _api.open_message(
                sealed, decrypt_with=decryptors, verify_with=verifiers, at=at
            )
            gopc = Gopc.from_json(opened.plaintext)
        except tuple(cls for cls, _ in _FAILURES) as failure:
            reason = next(r for cls, r in _FAILURES if isinstance(failure, cls))
            return Verdict(reason)
        reason = self.sessions.redeem(gopc.server_session_id, at)
        return Verdict(reason, opened.signers, opened.decryption_key)
