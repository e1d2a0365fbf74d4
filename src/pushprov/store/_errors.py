"""Storage errors, each with a stable code and exit status (24-26 and 28 of the CLI table)."""

from __future__ import annotations

from .._errors import PushprovError

__all__ = [
    "StoreConflictError",
    "StoreCorruptError",
    "StoreInsecureError",
    "StoreUnavailableError",
]


class StoreConflictError(PushprovError):
    """The store moved on since the change was prepared (optimistic version check): re-read."""

    code = "store_conflict"
    exit_status = 24
    http_status = 409


class StoreInsecureError(PushprovError):
    """The store file or its directory is accessible by group or others, or not ours."""

    code = "store_insecure"
    exit_status = 25
    http_status = 500


class StoreCorruptError(PushprovError):
    """The store is unreadable: unknown schema, or a sealed secret failed its integrity check."""

    code = "store_corrupt"
    exit_status = 26
    http_status = 500


class StoreUnavailableError(PushprovError):
    """The shared (PostgreSQL) store cannot be reached now; a retry may succeed."""

    code = "store_unavailable"
    exit_status = 28
    http_status = 503
