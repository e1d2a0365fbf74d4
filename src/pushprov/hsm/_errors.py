"""Token errors (exit statuses 14 and 15); their whole outcome: ``pushprov._errors``.

A wrong or missing PIN is a ``PassphraseError``, a key without the needed attribute a
``KeyUnusableError``, a mechanism the token lacks an ``UnsupportedError``: those fit as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pkcs11 import exceptions as p11

from .._errors import KeysError, PassphraseError

__all__ = [
    "TOKEN_FAILURES",
    "TokenKeyNotFoundError",
    "TokenUnavailableError",
    "general_error_unavailable",
    "token_errors",
]


class TokenUnavailableError(KeysError):
    """The PKCS#11 module, token or session cannot be reached now; a retry may succeed."""

    code = "token_unavailable"
    exit_status = 14
    http_status = 503
    response_code = "SERVICE_UNAVAILABLE"


class TokenKeyNotFoundError(KeysError):
    """No key object in the token matches the pkcs11: URI, or several do."""

    code = "token_key_not_found"
    exit_status = 15
    http_status = 503
    response_code = "KEYS_UNAVAILABLE"


# Errors that say the module, token or session is gone: never caused by the data in a request.
_UNAVAILABLE: tuple[type[Exception], ...] = (
    p11.DeviceRemoved,
    p11.DeviceError,
    p11.DeviceMemory,
    p11.TokenNotPresent,
    p11.TokenNotRecognised,
    p11.SessionClosed,
    p11.SessionHandleInvalid,
    p11.SessionCount,
    p11.UserNotLoggedIn,
    p11.NoSuchToken,
    p11.MultipleTokensReturned,
    p11.SlotIDInvalid,
    # A key handle the token no longer knows: its objects were reloaded or its store went away
    # (SoftHSM2 when its token directory vanishes). Ours, never a request's, so no oracle.
    p11.ObjectHandleInvalid,
    p11.KeyHandleInvalid,
)
_BAD_PIN: tuple[type[Exception], ...] = (
    p11.PinIncorrect,
    p11.PinInvalid,
    p11.PinLenRange,
    p11.PinExpired,
    p11.PinLocked,
    p11.UserPinNotInitialized,
)

# What token_errors maps: the token, not the data it was given, failed.
TOKEN_FAILURES = _UNAVAILABLE + _BAD_PIN


@contextlib.contextmanager
def token_errors() -> Iterator[None]:
    """Map an unavailable token and a refused PIN to their errors; the rest passes through."""
    try:
        yield
    except _BAD_PIN as error:
        locked = isinstance(error, p11.PinLocked)
        raise PassphraseError(
            "the token PIN is locked" if locked else "the token refused the PIN"
        ) from None
    except _UNAVAILABLE as error:
        raise TokenUnavailableError(
            f"the token is not available ({type(error).__name__})"
        ) from None


@contextlib.contextmanager
def general_error_unavailable() -> Iterator[None]:
    """CKR_GENERAL_ERROR as ``TokenUnavailableError``, where no request's data is involved:
    finding the token, logging in, finding a key and reading its attributes. The library lost
    its state (SoftHSM2 after its token store vanished) and wants C_Finalize/C_Initialize.
    Never around a decryption: there the same code must stay the one bad-padding outcome."""
    try:
        yield
    except p11.GeneralError:
        raise TokenUnavailableError("the token is not available (GeneralError)") from None
