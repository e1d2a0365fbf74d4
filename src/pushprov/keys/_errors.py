"""Lifecycle errors (exit statuses 20-23, 30 and 31); their whole outcome: ``pushprov._errors``.

``AuditTamperedError`` (27) is the store's, which checks the audit MACs; re-exported here."""

from __future__ import annotations

from .._errors import KeysError
from ..store import AuditTamperedError

__all__ = [
    "AttentionNeededError",
    "AuditTamperedError",
    "DrainWindowError",
    "KeyNotFoundError",
    "PartnerUnverifiedError",
    "SelfTestFailedError",
    "TransitionRefusedError",
]


class KeyNotFoundError(KeysError):
    """No record matches the key reference in this environment, or several do."""

    code = "key_not_found"
    exit_status = 20
    http_status = 503
    response_code = "KEYS_UNAVAILABLE"


class TransitionRefusedError(KeysError):
    """The state change is not an allowed edge, or breaks a rule (one active JWK per role)."""

    code = "transition_refused"
    exit_status = 21
    http_status = 503
    response_code = "KEYS_UNAVAILABLE"


class SelfTestFailedError(KeysError):
    """The key did not pass the test run before promotion; it stays pending."""

    code = "self_test_failed"
    exit_status = 22
    http_status = 503
    response_code = "KEYS_UNAVAILABLE"


class DrainWindowError(KeysError):
    """The retiring key was active or used inside the drain window; wait, or force with a reason."""

    code = "still_draining"
    exit_status = 23
    http_status = 503
    response_code = "KEYS_UNAVAILABLE"


class PartnerUnverifiedError(KeysError):
    """The last proven key of its role would go before its successor is verified by the partner."""

    code = "partner_unverified"
    exit_status = 31
    http_status = 503
    response_code = "KEYS_UNAVAILABLE"


class AttentionNeededError(KeysError):
    """`keys check` found something an operator must act on (no active key, expiry, drain)."""

    code = "attention_needed"
    exit_status = 30
    http_status = 503
    response_code = "KEYS_UNAVAILABLE"
