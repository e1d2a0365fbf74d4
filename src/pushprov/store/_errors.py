"""Storage errors (exit statuses 24-28); their whole outcome: ``pushprov._errors``."""

from __future__ import annotations

from .._errors import StoreError

__all__ = [
    "AuditTamperedError",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreInsecureError",
    "StoreUnavailableError",
]


class StoreConflictError(StoreError):
    """The store moved on since the change was prepared (optimistic version check): re-read."""

    code = "store_conflict"
    exit_status = 24
    http_status = 500
    response_code = "INTERNAL_ERROR"


class StoreInsecureError(StoreError):
    """The store file or its directory is accessible by group or others, or not ours."""

    code = "store_insecure"
    exit_status = 25
    http_status = 500
    response_code = "INTERNAL_ERROR"


class StoreCorruptError(StoreError):
    """Unreadable, or changed outside pushprov: unknown schema, a row MAC or a seal fails."""

    code = "store_corrupt"
    exit_status = 26
    http_status = 500
    response_code = "INTERNAL_ERROR"


class AuditTamperedError(StoreError):
    """The audit log's hash chain, sequence, head or MACs do not check out."""

    code = "audit_tampered"
    exit_status = 27
    http_status = 500
    response_code = "INTERNAL_ERROR"


class StoreUnavailableError(StoreError):
    """Store out of reach: PostgreSQL down, SQLite locked, disk full, I/O error; retry later."""

    code = "store_unavailable"
    exit_status = 28
    http_status = 503
    response_code = "SERVICE_UNAVAILABLE"
