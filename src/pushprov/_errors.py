"""Errors: one base class, one stable machine code per class, mapped once to exit and HTTP status.

Messages never carry input data: no card number, plaintext, key material or passphrase. Callers
must raise these ``from None`` when the cause could carry such data in its text.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "DecryptionFailedError",
    "GopcInvalidError",
    "InputTooLargeError",
    "KeyInvalidError",
    "KeyUnusableError",
    "MalformedInputError",
    "PassphraseError",
    "PolicyViolationError",
    "PushprovError",
    "SessionMismatchError",
    "SignatureInvalidError",
    "UnsupportedError",
    "UsageError",
]


class PushprovError(Exception):
    """Base of every error pushprov raises on purpose. ``code`` is stable and machine-readable."""

    code: ClassVar[str] = "internal_error"
    exit_status: ClassVar[int] = 1
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class UsageError(PushprovError):
    """The call itself is wrong: a missing option, an unreadable file name, a bad --at value."""

    code = "usage"
    exit_status = 2
    http_status = 400


class MalformedInputError(PushprovError):
    """Input that is not what it claims to be: bad base64, armor, packet framing or JSON."""

    code = "malformed_input"
    exit_status = 3
    http_status = 400


class InputTooLargeError(PushprovError):
    """Input (or what it inflates to) is over a size cap of the policy."""

    code = "input_too_large"
    exit_status = 4
    http_status = 413


class DecryptionFailedError(PushprovError):
    """The one outward error for every way a decryption can fail (RFC 9580 §13.5).

    Wrong key, no key for us, bad PKESK padding or checksum, MDC mismatch, bad compression and
    truncation all raise this with the same message, so none of them can be told apart.
    """

    code = "decryption_failed"
    exit_status = 5
    http_status = 400

    def __init__(self, message: str = "the message could not be decrypted") -> None:
        super().__init__("the message could not be decrypted")


class SignatureInvalidError(PushprovError):
    """No valid signature by a trusted key (unsigned, bad, unknown, expired or revoked signer)."""

    code = "signature_invalid"
    exit_status = 6
    http_status = 401


class PolicyViolationError(PushprovError):
    """Well-formed input that the policy refuses: weak hash or cipher, no MDC, small key."""

    code = "policy_violation"
    exit_status = 7
    http_status = 400


class KeyInvalidError(PushprovError):
    """Key material that cannot be used at all: malformed, bad self-signature, wrong algorithm."""

    code = "key_invalid"
    exit_status = 8
    http_status = 400


class KeyUnusableError(PushprovError):
    """A valid key that may not be used now: expired, revoked, not yet valid, no capable subkey."""

    code = "key_unusable"
    exit_status = 9
    http_status = 400


class UnsupportedError(PushprovError):
    """A well-formed construct outside our profile: v6 keys, SEIPD v2, non-RSA algorithms."""

    code = "unsupported"
    exit_status = 10
    http_status = 400


class GopcInvalidError(PushprovError):
    """The GOPC (or card data) does not match the schema: fields, types, Luhn, expiry format."""

    code = "gopc_invalid"
    exit_status = 11
    http_status = 400


class SessionMismatchError(PushprovError):
    """The GOPC is valid but carries another serverSessionId than the one expected."""

    code = "session_mismatch"
    exit_status = 12
    http_status = 400


class PassphraseError(PushprovError):
    """A protected secret key could not be unlocked with the passphrase given (or none given)."""

    code = "bad_passphrase"
    exit_status = 13
    http_status = 400
