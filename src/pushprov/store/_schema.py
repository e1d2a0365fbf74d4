"""The tables, described once and rendered for each dialect (SQLite and PostgreSQL).

Schema version 4::

    meta        (name PRIMARY KEY, value)          kdf_log2n, kdf_salt, kek_check; in PostgreSQL
                                                   also service_hmac_key
    keyring     (env PRIMARY KEY, version, audit_seq, audit_head, mac², audit_mac²)
    keys        (key_id PRIMARY KEY, env, format, owner, roles, label, created, expires, state,
                 transitions (JSON text), last_used, public, sealed_secret NULL, written², mac²,
                 custody³ NULL, partner⁴, evidence⁴)
    audit       (env, seq, at, actor, action, key_id, from_state, to_state, reason, version,
                 prev_hash, hash, ref_at², mac²; PRIMARY KEY (env, seq))
    clients     (name PRIMARY KEY, key_hash UNIQUE, created, revoked)
    idempotency (client, request_id, fingerprint, status, body, created, keys⁴, outcome⁴;
                 PRIMARY KEY (client, request_id); index on request_id⁴)
    rate        (client, window, count; PRIMARY KEY (client, window))

The key tables and the service tables share one PostgreSQL database (``pushprov_`` names,
created by ``pushprov store migrate``). The embedded deployment keeps them in two files: the
key store (``keystore.db``: plain names) and the service's own file (``service.sqlite``:
``service_`` names, with its own ``service_meta`` for the body-fingerprint key), so that the
service's frequent small writes never wait on the key store's FULL-sync commits.

² Version 2 added the row MACs (``_integrity``) and the audit's reference time: a column's
``@2`` below, last in its table (so a new table and a migrated one have one column order).
``create_statements`` renders any version (a new store is created at the latest;
PostgreSQL's migration 1 stays version 1), ``added_columns`` the ``ALTER TABLE`` steps to one
(PostgreSQL's migration 2, SQLite's upgrade on open). A change to these tables is a new version
in both, never an edit of an old one.

³ Version 3 added ``custody``: where the private halves of a key kept outside the store live
(an HSM key's ``pkcs11:`` URIs, as JSON text; never a secret). The row MAC covers it.

⁴ Version 4 added what a partner's outcomes prove: a key's partner state (``partner``: canary,
verified or stopped; it decides which GOPCs a key seals alone, so the row MAC covers it) and its
evidence (``evidence``: uses and outcomes per role, JSON, MACed too), and with each sealed
answer the keys that sealed it (``keys``: fingerprints and roles, never card data) and the
outcome reported for it (``outcome``).
"""

from __future__ import annotations

import dataclasses
from typing import Literal

__all__ = [
    "KEY_TABLES",
    "LATEST",
    "POSTGRES",
    "SERVICE_TABLES",
    "SQLITE",
    "SQLITE_SERVICE",
    "Dialect",
    "added_columns",
    "columns_added",
    "create_statements",
]

_Kind = Literal["text", "int", "int32", "blob"]


#: The schema version this code creates and expects.
LATEST = 4


@dataclasses.dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[tuple[str, _Kind, bool, int], ...]  # name, kind, NOT NULL, version added
    primary_key: tuple[str, ...]
    unique: tuple[str, ...] = ()
    indexes: tuple[tuple[str, int], ...] = ()  # (column, version added): one column each


def _cols(spec: str) -> tuple[tuple[str, _Kind, bool, int], ...]:
    """``"name kind, other kind?, later kind?@2"``: a trailing ``?`` makes the column
    nullable, ``@N`` says which schema version added it (else 1)."""
    columns = []
    for item in spec.split(","):
        name, kind = item.split()
        kind, _, since = kind.partition("@")
        columns.append((name, kind.rstrip("?"), not kind.endswith("?"), int(since or 1)))
    return tuple(columns)  # type: ignore[arg-type]


_TABLES = {
    table.name: table
    for table in (
        _Table("meta", _cols("name text, value blob"), ("name",)),
        _Table(
            "keyring",
            _cols(
                "env text, version int, audit_seq int, audit_head text?, mac blob?@2, "
                "audit_mac blob?@2"
            ),
            ("env",),
        ),
        _Table(
            "keys",
            _cols(
                "key_id text, env text, format text, owner text, roles text, label text, "
                "created int, expires int?, state text, transitions text, last_used int?, "
                "public blob, sealed_secret blob?, written int?@2, mac blob?@2, custody text?@3, "
                "partner text?@4, evidence text?@4"
            ),
            ("key_id",),
            indexes=(("env", 1),),
        ),
        _Table(
            "audit",
            _cols(
                "env text, seq int, at int, actor text, action text, key_id text, "
                "from_state text?, to_state text?, reason text, version int, prev_hash text, "
                "hash text, ref_at int?@2, mac blob?@2"
            ),
            ("env", "seq"),
        ),
        _Table(
            "clients",
            _cols("name text, key_hash text, created int, revoked int?"),
            ("name",),
            unique=("key_hash",),
        ),
        _Table(
            "idempotency",
            _cols(
                "client text, request_id text, fingerprint blob, status int32, body blob, "
                "created int, keys text?@4, outcome text?@4"
            ),
            ("client", "request_id"),
            indexes=(("created", 1), ("request_id", 4)),
        ),
        _Table("rate", _cols("client text, window int, count int32"), ("client", "window")),
    )
}

KEY_TABLES = ("meta", "keyring", "keys", "audit")
SERVICE_TABLES = ("clients", "idempotency", "rate")


@dataclasses.dataclass(frozen=True)
class Dialect:
    """How one database spells the description: table names, column types, the placeholder."""

    mark: str  # the driver's placeholder
    prefix: str  # before every table name
    kinds: dict[str, str]
    window: str  # the rate table's window column (``window`` is reserved in PostgreSQL)
    row_lock: str  # appended to a SELECT that locks the rows it reads, within a write

    def table(self, name: str) -> str:
        return self.prefix + name

    def column(self, name: str) -> str:
        return self.window if name == "window" else name


_SQLITE_KINDS = {"text": "TEXT", "int": "INTEGER", "int32": "INTEGER", "blob": "BLOB"}
# SQLite: a write transaction (BEGIN IMMEDIATE) holds the database's one write lock already.
SQLITE = Dialect(mark="?", prefix="", kinds=_SQLITE_KINDS, window="window", row_lock="")
SQLITE_SERVICE = dataclasses.replace(SQLITE, prefix="service_")
POSTGRES = Dialect(
    mark="%s",
    prefix="pushprov_",
    kinds={"text": "TEXT", "int": "BIGINT", "int32": "INTEGER", "blob": "BYTEA"},
    window="window_start",
    row_lock=" FOR UPDATE",
)


def _column(dialect: Dialect, column: str, kind: _Kind, required: bool) -> str:
    line = f"{dialect.column(column)} {dialect.kinds[kind]}"
    if required:
        line += " NOT NULL"
    return line


def create_statements(
    dialect: Dialect,
    tables: tuple[str, ...],
    *,
    if_not_exists: bool = False,
    version: int = LATEST,
) -> list[str]:
    """``CREATE TABLE`` (and ``CREATE INDEX``) statements, one per list item, for the tables
    as they were at schema ``version``."""
    guard = "IF NOT EXISTS " if if_not_exists else ""
    statements = []
    for name in tables:
        table = _TABLES[name]
        physical = dialect.table(name)
        lines = []
        for column, kind, required, since in table.columns:
            if since > version:
                continue
            line = _column(dialect, column, kind, required)
            if table.primary_key == (column,):
                line += " PRIMARY KEY"
            if column in table.unique:
                line += " UNIQUE"
            lines.append(line)
        if len(table.primary_key) > 1:
            key = ", ".join(dialect.column(column) for column in table.primary_key)
            lines.append(f"PRIMARY KEY ({key})")
        statements.append(f"CREATE TABLE {guard}{physical} ({', '.join(lines)})")
        statements += [
            _index(dialect, name, column, guard)
            for column, since in table.indexes
            if since <= version
        ]
    return statements


def _index(dialect: Dialect, name: str, column: str, guard: str = "") -> str:
    physical = dialect.table(name)
    return f"CREATE INDEX {guard}{physical}_{column} ON {physical} ({column})"


def added_columns(
    dialect: Dialect, tables: tuple[str, ...], version: int, *, if_not_exists: bool = False
) -> list[str]:
    """The ``ALTER TABLE ... ADD COLUMN`` (and ``CREATE INDEX``) statements that bring
    ``tables`` from ``version - 1`` to ``version`` (added columns are nullable: the rows already
    there have none). ``if_not_exists`` (PostgreSQL): a column already there is kept."""
    return [
        *(
            f"ALTER TABLE {dialect.table(name)} ADD COLUMN "
            + ("IF NOT EXISTS " if if_not_exists else "")
            + _column(dialect, column, kind, required)
            for name in tables
            for column, kind, required, since in _TABLES[name].columns
            if since == version
        ),
        *(
            _index(dialect, name, column, "IF NOT EXISTS ")
            for name in tables
            for column, since in _TABLES[name].indexes
            if since == version
        ),
    ]


def columns_added(table: str, version: int) -> tuple[str, ...]:
    """The columns of ``table`` that schema ``version`` added."""
    return tuple(column for column, _, _, since in _TABLES[table].columns if since == version)
