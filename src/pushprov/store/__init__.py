"""Key storage and the service's state: a narrow interface (``Store``), the embedded SQLite
store and the shared PostgreSQL one; ``open_backend`` picks by location, once.

Only ``pushprov.keys`` talks to a store; it hands over plain rows and gets plain rows back. The
service's state (clients, idempotency, rate limits) lives beside the keys: ``Backend``.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from ._backend import Backend, open_backend, open_store
from ._errors import (
    AuditTamperedError,
    StoreConflictError,
    StoreCorruptError,
    StoreInsecureError,
    StoreUnavailableError,
)
from ._model import AuditEntry, Change, KeyRow, Store, StoreView
from ._paths import default_store_path, passphrase_file_beside, read_passphrase_beside
from ._sealing import DEFAULT_KDF_LOG2N
from ._sqlite import SqliteStore
from ._state import (
    ClientInfo,
    OutcomeRecord,
    OutcomeResult,
    ServiceState,
    SqliteServiceState,
    StoredResponse,
)

if TYPE_CHECKING:
    from ._postgres import KeyringWatcher, PostgresStore, migrate, redacted_url
    from ._state_postgres import PostgresServiceState

# These load psycopg, so only when used: a store on SQLite needs none of them.
__getattr__ = lazy_exports(
    __name__,
    {
        **dict.fromkeys(
            ["KeyringWatcher", "PostgresStore", "migrate", "redacted_url"], "._postgres"
        ),
        "PostgresServiceState": "._state_postgres",
    },
)

__all__ = [
    "DEFAULT_KDF_LOG2N",
    "AuditEntry",
    "AuditTamperedError",
    "Backend",
    "Change",
    "ClientInfo",
    "KeyRow",
    "KeyringWatcher",
    "OutcomeRecord",
    "OutcomeResult",
    "PostgresServiceState",
    "PostgresStore",
    "ServiceState",
    "SqliteServiceState",
    "SqliteStore",
    "Store",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreInsecureError",
    "StoreUnavailableError",
    "StoreView",
    "StoredResponse",
    "default_store_path",
    "migrate",
    "open_backend",
    "open_store",
    "passphrase_file_beside",
    "read_passphrase_beside",
    "redacted_url",
]
