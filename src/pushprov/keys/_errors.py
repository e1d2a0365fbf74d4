"""Lifecycle errors, each with a stable code and exit status (20-23, 27-30 of the CLI table)."""

from __future__ import annotations

from .._errors import PushprovError

__all__ = [
    "AttentionNeededError",
    "AuditTamperedError",
    "DrainWindowError",
    "KeyNotFoundError",
    "SelfTestFailedError",
    "TransitionRefusedError",
]


class KeyNotFoundError(PushprovError):
    """No record matches the key reference in this environment (or it matches several)."""

    code = "key_not_found"
    exit_status = 20
    http_status = 404


class TransitionRefusedError(PushprovError):
    """The state change is not an allowed edge, or breaks a rule (one active JWK per role)."""

    code = "transition_refused"
    exit_status = 21
    http_status = 409


class SelfTestFailedError(PushprovError):
    """The key did not pass the test run before promotion; it stays pending."""

    code = "self_test_failed"
    exit_status = 22
    http_status = 409


class DrainWindowError(PushprovError):
    """The retiring key was active or used inside the drain window; wait, or force with a reason."""

    code = "still_draining"
    exit_status = 23
    http_status = 409


class AuditTamperedError(PushprovError):
    """The audit log's hash chain, sequence or head does not check out."""

    code = "audit_tampered"
    exit_status = 27
    http_status = 500


class AttentionNeededError(PushprovError):
    """``keys check`` found something an operator must act on (no active key, expiry, drain)."""

    code = "attention_needed"
    exit_status = 30
    http_status = 500
