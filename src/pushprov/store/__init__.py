"""Key storage: a narrow interface (``Store``) and the embedded SQLite implementation.

Only ``pushprov.keys`` talks to a store; it hands over plain rows and gets plain rows back.
"""

from ._errors import StoreConflictError, StoreCorruptError, StoreInsecureError
from ._model import AuditEntry, Change, KeyRow, Store, StoreView
from ._paths import default_store_path
from ._sealing import DEFAULT_KDF_LOG2N
from ._sqlite import SqliteStore

__all__ = [
    "DEFAULT_KDF_LOG2N",
    "AuditEntry",
    "Change",
    "KeyRow",
    "SqliteStore",
    "Store",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreInsecureError",
    "StoreView",
    "default_store_path",
]
