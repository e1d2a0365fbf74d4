"""What the SQLite and PostgreSQL stores share: the columns, key rows to and from SQL, and the
store itself (``SqlStore``: reads, sealed secrets, the audit log and how a change is committed).
Only the dialect (placeholder, table names), the transactions and the connection differ."""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from ._errors import StoreConflictError
from ._model import AuditEntry, Change, KeyRow, StoreView
from ._schema import Dialect
from ._sealing import SecretBox, secret_aad

__all__ = [
    "AUDIT_COLUMNS",
    "KEY_COLUMNS",
    "SqlStore",
    "audit_entry",
    "key_params",
    "key_row",
    "store_view",
    "upsert_key_sql",
]

AUDIT_COLUMNS = (
    "env, seq, at, actor, action, key_id, from_state, to_state, reason, version, prev_hash, hash"
)

_AUDIT_NAMES = AUDIT_COLUMNS.split(", ")

KEY_COLUMNS = (
    "key_id, env, format, owner, roles, label, created, expires, state, transitions, "
    "last_used, public"
)


def upsert_key_sql(table: str, mark: str) -> str:
    """INSERT or UPDATE of one key row; ``mark`` is the driver's placeholder (``?``, ``%s``).

    The update applies only within the row's own environment, so a key id can never move
    between sandbox and production.
    """
    marks = ", ".join([mark] * 12)
    return (
        f"INSERT INTO {table} ({KEY_COLUMNS}) VALUES ({marks}) "  # noqa: S608 - fixed names
        "ON CONFLICT (key_id) DO UPDATE SET format = excluded.format, "
        "owner = excluded.owner, roles = excluded.roles, label = excluded.label, "
        "created = excluded.created, expires = excluded.expires, state = excluded.state, "
        "transitions = excluded.transitions, last_used = excluded.last_used, "
        f"public = excluded.public WHERE {table}.env = excluded.env"
    )


def key_params(env: str, row: KeyRow) -> tuple[object, ...]:
    return (
        row.key_id, env, row.format, row.owner, ",".join(row.roles), row.label,
        row.created, row.expires, row.state, json.dumps(row.transitions),
        row.last_used, row.public,
    )  # fmt: skip


def key_row(r: tuple[Any, ...]) -> KeyRow:
    """A row read as ``KEY_COLUMNS, has_secret``."""
    (key_id, env, fmt, owner, roles, label, created, expires, state, transitions, last_used,
     public, has_secret) = r  # fmt: skip
    return KeyRow(
        key_id=str(key_id),
        env=str(env),
        format=str(fmt),
        owner=str(owner),
        roles=tuple(str(roles).split(",")) if roles else (),
        label=str(label),
        created=int(created),
        expires=None if expires is None else int(expires),
        state=str(state),
        transitions=tuple((str(s), int(t)) for s, t in json.loads(str(transitions))),
        last_used=None if last_used is None else int(last_used),
        public=bytes(public),
        has_secret=bool(has_secret),
    )


def audit_entry(r: tuple[Any, ...]) -> AuditEntry:
    """A row read as ``AUDIT_COLUMNS``."""
    return AuditEntry(**dict(zip(_AUDIT_NAMES, r, strict=True)))


def store_view(
    env: str, head: tuple[Any, ...] | None, rows: Iterable[tuple[Any, ...]]
) -> StoreView:
    """The view from the keyring row (``version, audit_seq, audit_head``; None before the
    first commit) and the key rows (``KEY_COLUMNS, has_secret``)."""
    version, seq, audit_head = head if head is not None else (0, 0, None)
    return StoreView(
        env=env,
        version=int(version),
        keys=tuple(key_row(r) for r in rows),
        audit_seq=int(seq),
        audit_head=audit_head,
    )


class SqlStore:
    """``Store``'s reads and its commit, once for both databases.

    A store sets ``_dialect`` and has ``_db`` (a DB-API connection whose ``execute`` returns a
    cursor) and ``_box`` (the secret sealer), and gives ``_transaction``: a snapshot for reads,
    a write lock for writes, and a clash with a stored record as ``StoreConflictError``.
    ``_announce`` runs inside a commit's transaction, ``_committed`` after it.
    """

    _dialect: ClassVar[Dialect]
    _db: Any
    _box: SecretBox

    def _transaction(self, *, write: bool) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _announce(self, env: str, version: int) -> None:
        """Tell listeners of the new version (inside the transaction: only if it commits)."""

    def _committed(self, change: Change) -> None:
        """After a commit."""

    # -- reads -------------------------------------------------------------------------------

    def read(self, env: str) -> StoreView:
        t, m = self._dialect.table, self._dialect.mark
        with self._transaction(write=False):
            head = self._db.execute(
                f"SELECT version, audit_seq, audit_head FROM {t('keyring')} WHERE env = {m}",  # noqa: S608
                (env,),
            ).fetchone()
            rows = self._db.execute(
                f"SELECT {KEY_COLUMNS}, sealed_secret IS NOT NULL FROM {t('keys')} "  # noqa: S608
                f"WHERE env = {m} ORDER BY created, key_id",
                (env,),
            ).fetchall()
        return store_view(env, head, rows)

    def load_secret(self, env: str, key_id: str) -> bytes | None:
        t, m = self._dialect.table, self._dialect.mark
        with self._transaction(write=False):
            found = self._db.execute(
                f"SELECT sealed_secret FROM {t('keys')} WHERE env = {m} AND key_id = {m}",  # noqa: S608
                (env, key_id),
            ).fetchone()
        if found is None or found[0] is None:
            return None
        return self._box.open(bytes(found[0]), secret_aad(env, key_id))

    def audit_log(self, env: str) -> tuple[AuditEntry, ...]:
        t, m = self._dialect.table, self._dialect.mark
        with self._transaction(write=False):
            rows = self._db.execute(
                f"SELECT {AUDIT_COLUMNS} FROM {t('audit')} WHERE env = {m} ORDER BY seq",  # noqa: S608
                (env,),
            ).fetchall()
        return tuple(audit_entry(r) for r in rows)

    # -- writes ------------------------------------------------------------------------------

    def commit(self, change: Change) -> int:
        env = change.env
        keyring, m = self._dialect.table("keyring"), self._dialect.mark
        with self._transaction(write=True):
            # Make the env's row exist, then lock it: concurrent writers of one environment
            # queue here, and the second sees the first one's version once it commits.
            self._db.execute(
                f"INSERT INTO {keyring} (env, version, audit_seq) VALUES ({m}, 0, 0) "  # noqa: S608
                "ON CONFLICT (env) DO NOTHING",
                (env,),
            )
            head = self._db.execute(
                f"SELECT version FROM {keyring} WHERE env = {m}{self._dialect.row_lock}",  # noqa: S608
                (env,),
            ).fetchone()
            current = int(head[0])
            if current != change.base_version:
                raise StoreConflictError(
                    f"{env} keyring is at version {current}, the change was built on "
                    f"version {change.base_version}; re-read and retry"
                )
            self._write_change(change)
            last = change.audit[-1] if change.audit else None
            self._db.execute(
                f"UPDATE {keyring} SET version = {m}, audit_seq = coalesce({m}, audit_seq), "  # noqa: S608
                f"audit_head = coalesce({m}, audit_head) WHERE env = {m}",
                (current + 1, None if last is None else last.seq,
                 None if last is None else last.hash, env),
            )  # fmt: skip
            self._announce(env, current + 1)
        self._committed(change)
        return current + 1

    def _write_change(self, change: Change) -> None:
        env = change.env
        t, m = self._dialect.table, self._dialect.mark
        upsert = upsert_key_sql(t("keys"), m)
        for row in change.upsert:
            if row.env != env:
                raise ValueError("a change touches one environment only")
            if self._db.execute(upsert, key_params(env, row)).rowcount != 1:
                raise StoreConflictError(f"key {row.key_id} belongs to another environment")
        for key_id, secret in change.secrets:
            self._set_secret(env, key_id, self._box.seal(secret, secret_aad(env, key_id)))
        for key_id in sorted(change.erase):
            self._set_secret(env, key_id, None)
        marks = ", ".join([m] * 12)
        for entry in change.audit:
            self._db.execute(
                f"INSERT INTO {t('audit')} ({AUDIT_COLUMNS}) VALUES ({marks})",  # noqa: S608
                (
                    env, entry.seq, entry.at, entry.actor, entry.action, entry.key_id,
                    entry.from_state, entry.to_state, entry.reason, entry.version,
                    entry.prev_hash, entry.hash,
                ),
            )  # fmt: skip

    def _set_secret(self, env: str, key_id: str, sealed: bytes | None) -> None:
        keys, m = self._dialect.table("keys"), self._dialect.mark
        cursor = self._db.execute(
            f"UPDATE {keys} SET sealed_secret = {m} WHERE env = {m} AND key_id = {m}",  # noqa: S608
            (sealed, env, key_id),
        )
        if cursor.rowcount != 1:
            raise StoreConflictError(f"no record {key_id} for its secret")
