"""Key storage: a narrow interface (``Store``), the embedded SQLite store and the shared
PostgreSQL one (``open_store`` picks by location).

Only ``pushprov.keys`` talks to a store; it hands over plain rows and gets plain rows back.
"""

from ._errors import (
    AuditTamperedError,
    StoreConflictError,
    StoreCorruptError,
    StoreInsecureError,
    StoreUnavailableError,
)
from ._model import AuditEntry, Change, KeyRow, Store, StoreView
from ._paths import default_store_path
from ._postgres import KeyringWatcher, PostgresStore, is_postgres_url, migrate, redacted_url
from ._sealing import DEFAULT_KDF_LOG2N
from ._select import open_store
from ._sqlite import SqliteStore

__all__ = [
    "DEFAULT_KDF_LOG2N",
    "AuditEntry",
    "AuditTamperedError",
    "Change",
    "KeyRow",
    "KeyringWatcher",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreInsecureError",
    "StoreUnavailableError",
    "StoreView",
    "default_store_path",
    "is_postgres_url",
    "migrate",
    "open_store",
    "redacted_url",
]
