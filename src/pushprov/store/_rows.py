"""What the SQLite and PostgreSQL stores share: the columns, key rows to and from SQL, and how
a change is written (version check, rows, sealed secrets, audit entries). Only the placeholder
and the table names differ between the two."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, ClassVar

from ._errors import StoreConflictError
from ._model import AuditEntry, Change, KeyRow, StoreView
from ._sealing import SecretBox, secret_aad

__all__ = [
    "AUDIT_COLUMNS",
    "KEY_COLUMNS",
    "ChangeWriter",
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


class ChangeWriter:
    """Writes the parts of a ``Change`` inside the store's own transaction.

    A store sets ``_MARK``, ``_KEYS`` and ``_AUDIT`` and has ``_db`` (a DB-API connection whose
    ``execute`` returns a cursor) and ``_box`` (the secret sealer).
    """

    _MARK: ClassVar[str]
    _KEYS: ClassVar[str]
    _AUDIT: ClassVar[str]
    _db: Any
    _box: SecretBox

    def _check_base(self, change: Change, current: int) -> None:
        if current != change.base_version:
            raise StoreConflictError(
                f"{change.env} keyring is at version {current}, the change was built on "
                f"version {change.base_version}; re-read and retry"
            )

    def _write_change(self, change: Change) -> None:
        env = change.env
        upsert = upsert_key_sql(self._KEYS, self._MARK)
        for row in change.upsert:
            if row.env != env:
                raise ValueError("a change touches one environment only")
            if self._db.execute(upsert, key_params(env, row)).rowcount != 1:
                raise StoreConflictError(f"key {row.key_id} belongs to another environment")
        for key_id, secret in change.secrets:
            self._set_secret(env, key_id, self._box.seal(secret, secret_aad(env, key_id)))
        for key_id in sorted(change.erase):
            self._set_secret(env, key_id, None)
        marks = ", ".join([self._MARK] * 12)
        for entry in change.audit:
            self._db.execute(
                f"INSERT INTO {self._AUDIT} ({AUDIT_COLUMNS}) VALUES ({marks})",  # noqa: S608
                (
                    env, entry.seq, entry.at, entry.actor, entry.action, entry.key_id,
                    entry.from_state, entry.to_state, entry.reason, entry.version,
                    entry.prev_hash, entry.hash,
                ),
            )  # fmt: skip

    def _set_secret(self, env: str, key_id: str, sealed: bytes | None) -> None:
        m = self._MARK
        cursor = self._db.execute(
            f"UPDATE {self._KEYS} SET sealed_secret = {m} WHERE env = {m} AND key_id = {m}",  # noqa: S608
            (sealed, env, key_id),
        )
        if cursor.rowcount != 1:
            raise StoreConflictError(f"no record {key_id} for its secret")
