"""Errors: one class per outcome, and each class carries its whole outcome.

Every class states its ``code`` (stable, machine-readable), the CLI's ``exit_status``, and what
the HTTPS service answers when it meets the error: ``http_status`` and ``response_code`` (the
``errorResponseCode`` of an ``ErrorResponse``). The service, the CLI, ``pushprov --help`` and
the README's table all read them from here. The tree, as httpx groups its exceptions::

    PushprovError            anything raised on purpose; alone: an unexpected failure
    ├── UsageError
    ├── InputError           the input is refused: fix the input
    │   ├── MalformedInputError, InputTooLargeError, DecryptionFailedError,
    │   ├── SignatureInvalidError, PolicyViolationError, UnsupportedError,
    │   └── GopcInvalidError, SessionMismatchError
    ├── KeysError            a key, or the keys' lifecycle, refuses: an operator acts on keys
    │   ├── KeyInvalidError, KeyUnusableError, PassphraseError
    │   ├── pushprov.keys: KeyNotFoundError, TransitionRefusedError, SelfTestFailedError,
    │   │   DrainWindowError, AttentionNeededError
    │   └── pushprov.hsm: TokenUnavailableError, TokenKeyNotFoundError
    └── StoreError           the key store refuses: an operator acts on the store
        └── pushprov.store: StoreConflictError, StoreInsecureError, StoreCorruptError,
            AuditTamperedError (also in pushprov.keys), StoreUnavailableError

The groups are for ``except``/``isinstance`` only and are never raised themselves. Outward, a
key error while serving means our keys cannot serve now (503 ``KEYS_UNAVAILABLE``, retry), and
the statuses are the ones the service documents (400, 413, 500, 503): never 404 or 409, which
mean "unknown caller" and "requestId reused" there.

Messages never carry input data: no card number, plaintext, key material or passphrase. Callers
must raise these ``from None`` when the cause could carry such data in its text.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "DecryptionFailedError",
    "GopcInvalidError",
    "InputError",
    "InputTooLargeError",
    "KeyInvalidError",
    "KeyUnusableError",
    "KeysError",
    "MalformedInputError",
    "PassphraseError",
    "PolicyViolationError",
    "PushprovError",
    "SessionMismatchError",
    "SignatureInvalidError",
    "StoreError",
    "UnsupportedError",
    "UsageError",
    "error_classes",
]

# What a class that can be raised must state itself, so that none inherits an outcome unseen.
_OUTCOME = ("code", "exit_status", "http_status", "response_code")


class PushprovError(Exception):
    """Unexpected failure (details withheld so no data can leak)."""

    code: ClassVar[str] = "internal_error"
    exit_status: ClassVar[int] = 1
    http_status: ClassVar[int] = 500
    response_code: ClassVar[str] = "INTERNAL_ERROR"
    is_group: ClassVar[bool] = False

    def __init_subclass__(cls, *, group: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.is_group = group
        missing = [name for name in _OUTCOME if name not in vars(cls)]
        if not group and missing:
            raise TypeError(f"{cls.__name__} must state its own {', '.join(missing)}")

    def __init__(self, message: str) -> None:
        if self.is_group:
            raise TypeError(f"{type(self).__name__} groups errors; raise one of its classes")
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def error_classes() -> list[type[PushprovError]]:
    """Every class that can be raised, by exit status. Those of ``pushprov.keys``,
    ``pushprov.store`` and ``pushprov.hsm`` are included once those packages are imported."""
    found: list[type[PushprovError]] = [PushprovError]
    pending = list(PushprovError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        # A class refused where it was written can linger here until it is collected.
        if not cls.is_group and all(name in vars(cls) for name in _OUTCOME):
            found.append(cls)
    return sorted(found, key=lambda cls: cls.exit_status)


class InputError(PushprovError, group=True):
    """The input is refused: malformed, too large, against the policy, not for us, untrusted."""


class KeysError(PushprovError, group=True):
    """A key cannot be used, or the keys' lifecycle refuses the change."""


class StoreError(PushprovError, group=True):
    """The key store cannot be used as it is: conflicting, insecure, corrupt or unreachable."""


class UsageError(PushprovError):
    """Bad arguments, an unreadable file, a bad `--at`: the call itself is wrong."""

    code = "usage"
    exit_status = 2
    # A caller meets one when it sends an envelope the service holds no keys for (an echo
    # in the other format): the request, not the service, is at fault.
    http_status = 400
    response_code = "INVALID_PAYLOAD"


class MalformedInputError(InputError):
    """Not base64 / armor / OpenPGP / JOSE / JSON."""

    code = "malformed_input"
    exit_status = 3
    http_status = 400
    response_code = "INVALID_FIELD_VALUE"


class InputTooLargeError(InputError):
    """Over a size cap, before parsing or while inflating."""

    code = "input_too_large"
    exit_status = 4
    http_status = 413
    response_code = "REQUEST_TOO_LARGE"


class DecryptionFailedError(InputError):
    """Any decryption failure (one error): wrong key, not for us, padding, MDC, tag, truncation."""

    code = "decryption_failed"
    exit_status = 5
    http_status = 400
    response_code = "INVALID_PAYLOAD"

    # One message whatever went wrong, so that no failure can be told from another
    # (RFC 9580 §13.5): a caller's message is ignored.
    def __init__(self, message: str = "the message could not be decrypted") -> None:
        super().__init__("the message could not be decrypted")


class SignatureInvalidError(InputError):
    """Unsigned; no trusted signer; bad, expired, revoked, not yet valid or future signature."""

    code = "signature_invalid"
    exit_status = 6
    http_status = 400
    response_code = "INVALID_PAYLOAD"


class PolicyViolationError(InputError):
    """SHA-1/MD5, a cipher not AES-256, no MDC, not encrypted, small RSA key, refused JOSE alg."""

    code = "policy_violation"
    exit_status = 7
    http_status = 400
    response_code = "POLICY_VIOLATION"


class KeyInvalidError(KeysError):
    """Malformed key, no valid self-signature, wrong algorithm: the key cannot be used at all."""

    code = "key_invalid"
    exit_status = 8
    http_status = 503
    response_code = "KEYS_UNAVAILABLE"


class KeyUnusableError(KeysError):
    """Expired, revoked, not yet valid, no capable subkey: a valid key that may not be used now."""

    code = "key_unusable"
    exit_status = 9
    http_status = 503
    response_code = "KEYS_UNAVAILABLE"


class UnsupportedError(InputError):
    """v6 keys, SEIPD v2 / AEAD, password-encrypted messages, non-RSA keys."""

    code = "unsupported"
    exit_status = 10
    http_status = 400
    response_code = "UNSUPPORTED"


class GopcInvalidError(InputError):
    """GOPC / card schema: fields, types, Luhn, expiry format, session ID."""

    code = "gopc_invalid"
    exit_status = 11
    http_status = 400
    response_code = "INVALID_FIELD_VALUE"


class SessionMismatchError(InputError):
    """A valid GOPC carrying another `serverSessionId` than the one expected."""

    code = "session_mismatch"
    exit_status = 12
    http_status = 400
    response_code = "INVALID_FIELD_VALUE"


class PassphraseError(KeysError):
    """A protected key or store with no passphrase, or the wrong one."""

    code = "bad_passphrase"
    exit_status = 13
    http_status = 503
    response_code = "KEYS_UNAVAILABLE"
