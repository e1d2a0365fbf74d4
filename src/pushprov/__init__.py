"""pushprov: issuer-side Google Pay push provisioning.

Seal Google Opaque Payment Cards (GOPCs) for Google, open what Google sends, under Google's
profile (``GOOGLE_PROFILE``)::

    import pushprov
    from pushprov import openpgp

    issuer = openpgp.generate_key("Issuer <ops@issuer.example>", at=when)
    card = pushprov.Card(pushprov.Pan(digits), "12", "29")
    gopc = pushprov.Gopc(server_session_id=sid, card=card)
    sealed = pushprov.seal_gopc(gopc, sign_with=[issuer], encrypt_to=[google_certificate])

``format="jwe"`` switches the same verbs to the JWE/JWS envelope (keys from ``pushprov.jose``).
Every error raised on purpose is a ``PushprovError`` with a stable ``code``; ``InputError``,
``KeysError`` and ``StoreError`` group them for ``except``.
"""

from ._api import JweOptions, OpenedGopc, open_gopc, open_message, seal_gopc, seal_message
from ._card import Card, Gopc, Pan
from ._encoding import Encoding
from ._errors import (
    DecryptionFailedError,
    GopcInvalidError,
    InputError,
    InputTooLargeError,
    KeyInvalidError,
    KeysError,
    KeyUnusableError,
    MalformedInputError,
    PassphraseError,
    PolicyViolationError,
    PushprovError,
    SessionMismatchError,
    SignatureInvalidError,
    StoreError,
    UnsupportedError,
    UsageError,
)
from ._opened import Opened, VerifiedSignature
from ._policy import GOOGLE_PROFILE, Policy
from .jose import JwkKey
from .openpgp import Certificate, SecretKey, generate_key, read_certificates, read_secret_keys

__version__ = "0.1.0"

__all__ = [
    "GOOGLE_PROFILE",
    "Card",
    "Certificate",
    "DecryptionFailedError",
    "Encoding",
    "Gopc",
    "GopcInvalidError",
    "InputError",
    "InputTooLargeError",
    "JweOptions",
    "JwkKey",
    "KeyInvalidError",
    "KeyUnusableError",
    "KeysError",
    "MalformedInputError",
    "Opened",
    "OpenedGopc",
    "Pan",
    "PassphraseError",
    "Policy",
    "PolicyViolationError",
    "PushprovError",
    "SecretKey",
    "SessionMismatchError",
    "SignatureInvalidError",
    "StoreError",
    "UnsupportedError",
    "UsageError",
    "VerifiedSignature",
    "__version__",
    "generate_key",
    "open_gopc",
    "open_message",
    "read_certificates",
    "read_secret_keys",
    "seal_gopc",
    "seal_message",
]
