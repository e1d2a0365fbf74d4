"""Key lifecycle: records, states, checked transitions, keyring snapshots, the audit log.

States ``pending -> active -> retiring -> retired -> destroyed`` (and ``retiring -> active``
to roll back, ``pending -> destroyed`` to discard). Promotion runs a self-test first; final
retirement waits out a drain window; every change is one versioned, audited commit::

    store = SqliteStore.open(path, passphrase=..., create=True)
    keystore = Keystore(store, actor="alice")
    new = keystore.generate(Environment.PRODUCTION, user_id="Issuer <ops@x>", at=when)
    keystore.promote(Environment.PRODUCTION, new.key_id, at=when, replacing=[old_id])
    ring = keystore.snapshot(Environment.PRODUCTION)
    seal_gopc(gopc, sign_with=ring.signing_keys(at=when), encrypt_to=ring.recipients(at=when))

A JWK (``key_format=Format.JWK``) does one job (``use="sig"`` or ``"enc"``) and one is active
per role, so the JWE envelope gets ``ring.jwe_signing_key(at=when)`` and
``ring.jwe_recipient(at=when)`` (each a key or None); inbound, ``ring.jwe_decryption_keys()``
and ``ring.jwe_verification_keys()``.
"""

from ._audit import entry_hash, genesis_hash
from ._errors import (
    AttentionNeededError,
    AuditTamperedError,
    DrainWindowError,
    KeyNotFoundError,
    PartnerUnverifiedError,
    SelfTestFailedError,
    TransitionRefusedError,
)
from ._evidence import Partner, RoleEvidence
from ._keyring import Keyring, SecretCache, key_id_of
from ._keystore import KeyGenerator, Keystore
from ._model import ALLOWED_EDGES, OURS, Environment, Format, KeyRecord, Role, State
from ._rules import (
    DEFAULT_DRAIN_WINDOW,
    DEFAULT_EXPIRY_WARNING,
    Finding,
    findings,
    key_warnings,
    partner_use,
)
from ._source import (
    FileKeySource,
    KeySource,
    KeyStatus,
    Sealing,
    ServiceKeys,
    StoreKeySource,
)

__all__ = [
    "ALLOWED_EDGES",
    "DEFAULT_DRAIN_WINDOW",
    "DEFAULT_EXPIRY_WARNING",
    "OURS",
    "AttentionNeededError",
    "AuditTamperedError",
    "DrainWindowError",
    "Environment",
    "FileKeySource",
    "Finding",
    "Format",
    "KeyGenerator",
    "KeyNotFoundError",
    "KeyRecord",
    "KeySource",
    "KeyStatus",
    "Keyring",
    "Keystore",
    "Partner",
    "PartnerUnverifiedError",
    "Role",
    "RoleEvidence",
    "Sealing",
    "SecretCache",
    "SelfTestFailedError",
    "ServiceKeys",
    "State",
    "StoreKeySource",
    "TransitionRefusedError",
    "entry_hash",
    "findings",
    "genesis_hash",
    "key_id_of",
    "key_warnings",
    "partner_use",
]
