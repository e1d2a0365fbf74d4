"""What the SQLite and PostgreSQL stores share: the columns, key rows to and from SQL, and the
store itself (``SqlStore``: reads, sealed secrets, the audit log and how a change is committed).
Only the dialect (placeholder, table names), the transactions and the connection differ."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from ._errors import StoreConflictError, StoreCorruptError
from ._integrity import RowMac
from ._model import AuditEntry, Change, KeyRow, StoreView
from ._schema import Dialect
from ._sealing import SecretBox, secret_aad

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_READ",
    "HEAD_READ",
    "KEY_COLUMNS",
    "KEY_READ",
    "SqlStore",
    "audit_entries",
    "key_params",
    "key_row",
    "store_view",
    "upsert_key_sql",
]

AUDIT_COLUMNS = (
    "env, seq, at, ref_at, actor, action, key_id, from_state, to_state, reason, version, "
    "prev_hash, hash"
)
#: What a read of the audit log selects: the entry and its MAC.
AUDIT_READ = f"{AUDIT_COLUMNS}, mac"

_AUDIT_NAMES = AUDIT_COLUMNS.split(", ")

KEY_COLUMNS = (
    "key_id, env, format, owner, roles, label, created, expires, state, transitions, "
    "last_used, public, custody"
)
#: What a read of key rows selects: the columns, whether a secret is sealed, the MAC's own, and
#: what schema 4 added (after the MAC, so that older reads keep their positions).
KEY_READ = f"{KEY_COLUMNS}, sealed_secret IS NOT NULL, written, mac, partner, evidence"
#: What a read of an environment's keyring row selects.
HEAD_READ = "version, audit_seq, audit_head, mac, audit_mac"


def upsert_key_sql(table: str, mark: str) -> str:
    """INSERT or UPDATE of one key row; ``mark`` is the driver's placeholder (``?``, ``%s``).

    The update applies only within the row's own environment, so a key id can never move
    between sandbox and production.
    """
    marks = ", ".join([mark] * 17)
    return (
        f"INSERT INTO {table} ({KEY_COLUMNS}, written, mac, partner, evidence) "  # noqa: S608
        f"VALUES ({marks}) "
        "ON CONFLICT (key_id) DO UPDATE SET format = excluded.format, "
        "owner = excluded.owner, roles = excluded.roles, label = excluded.label, "
        "created = excluded.created, expires = excluded.expires, state = excluded.state, "
        "transitions = excluded.transitions, last_used = excluded.last_used, "
        "public = excluded.public, custody = excluded.custody, written = excluded.written, "
        "mac = excluded.mac, partner = excluded.partner, evidence = excluded.evidence "
        f"WHERE {table}.env = excluded.env"
    )


def key_params(env: str, row: KeyRow, written: int, mac: bytes) -> tuple[object, ...]:
    return (
        row.key_id, env, row.format, row.owner, ",".join(row.roles), row.label,
        row.created, row.expires, row.state, json.dumps(row.transitions),
        row.last_used, row.public, row.custody, written, mac, row.partner, row.evidence,
    )  # fmt: skip


def key_row(r: tuple[Any, ...]) -> KeyRow:
    """A row read as ``KEY_COLUMNS, has_secret`` (then, as ``KEY_READ``, written, mac, partner
    and evidence; a shorter read has no partner state or evidence).

    Any value of an unexpected shape is ``StoreCorruptError``: the row was not written by us.
    """
    (key_id, env, fmt, owner, roles, label, created, expires, state, transitions, last_used,
     public, custody, has_secret) = r[:14]  # fmt: skip
    partner, evidence = r[16:18] if len(r) >= 18 else (None, None)
    try:
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
            custody=None if custody is None else str(custody),
            partner=None if partner is None else str(partner),
            evidence=None if evidence is None else str(evidence),
        )
    except (TypeError, ValueError):
        raise StoreCorruptError(f"key record {key_id!s:.64} is unreadable") from None


def checked_key_rows(rows: Iterable[tuple[Any, ...]], macs: RowMac) -> list[tuple[KeyRow, int]]:
    """Rows read as ``KEY_READ``, each checked against its MAC; with the version that wrote it."""
    checked = []
    for r in rows:
        row, written, stored = key_row(r), r[14], r[15]
        macs.check_key_row(row, written, stored)
        checked.append((row, int(written)))
    return checked


def store_view(
    env: str, head: tuple[Any, ...] | None, rows: Iterable[tuple[Any, ...]], macs: RowMac
) -> StoreView:
    """The view from the keyring row (``HEAD_READ``; None before the first commit) and the
    key rows (``KEY_READ``), every row checked against its MAC and the set of rows against
    the keyring's: a row edited, added, removed or rolled back is ``StoreCorruptError``."""
    checked = checked_key_rows(rows, macs)
    members = [(row.key_id, written) for row, written in checked]
    version, seq, audit_head = 0, 0, None
    if head is not None:
        version, seq, audit_head, mac, _ = head
        version = int(version)
        if mac is not None or version or members:
            macs.check_keyring(env, version, members, mac)
    elif members:
        raise StoreCorruptError(f"the {env} keyring has records but no head")
    return StoreView(
        env=env,
        version=version,
        keys=tuple(row for row, _ in checked),
        audit_seq=int(seq),
        audit_head=audit_head,
    )


def audit_entries(
    env: str, head: tuple[Any, ...] | None, rows: Iterable[tuple[Any, ...]], macs: RowMac
) -> tuple[AuditEntry, ...]:
    """Entries read as ``AUDIT_READ``, checked (each, and the head's ``HEAD_READ``) against
    their MACs: an entry edited, dropped or reordered is ``AuditTamperedError``."""
    pairs = [(AuditEntry(**dict(zip(_AUDIT_NAMES, r[:-1], strict=True))), r[-1]) for r in rows]
    checked_head = None
    if head is not None:
        version, seq, audit_head, _, audit_mac = head
        checked_head = (int(version), int(seq), audit_head, audit_mac)
    macs.check_audit(env, pairs, checked_head)
    return tuple(entry for entry, _ in pairs)


class SqlStore:
    """``Store``'s reads and its commit, once for both databases.

    A store sets ``_dialect`` and has ``_db`` (a DB-API connection whose ``execute`` returns a
    cursor) and ``_box`` (the secret sealer and the row MACs), and gives ``_transaction``: a
    snapshot for reads, a write lock for writes, and a clash with a stored record as
    ``StoreConflictError``.
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
            head = self._head(env)
            rows = self._db.execute(
                f"SELECT {KEY_READ} FROM {t('keys')} "  # noqa: S608
                f"WHERE env = {m} ORDER BY created, key_id",
                (env,),
            ).fetchall()
        return store_view(env, head, rows, self._box.rows)

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
            head = self._head(env)
            rows = self._db.execute(
                f"SELECT {AUDIT_READ} FROM {t('audit')} WHERE env = {m} ORDER BY seq",  # noqa: S608
                (env,),
            ).fetchall()
        return audit_entries(env, head, rows, self._box.rows)

    def _head(self, env: str) -> tuple[Any, ...] | None:
        t, m = self._dialect.table, self._dialect.mark
        head: tuple[Any, ...] | None = self._db.execute(
            f"SELECT {HEAD_READ} FROM {t('keyring')} WHERE env = {m}",  # noqa: S608
            (env,),
        ).fetchone()
        return head

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
            self._check_head(env)
            self._write_change(change, current + 1)
            last = change.audit[-1] if change.audit else None
            self._db.execute(
                f"UPDATE {keyring} SET version = {m}, audit_seq = coalesce({m}, audit_seq), "  # noqa: S608
                f"audit_head = coalesce({m}, audit_head) WHERE env = {m}",
                (current + 1, None if last is None else last.seq,
                 None if last is None else last.hash, env),
            )  # fmt: skip
            self._seal_head(env)
            self._announce(env, current + 1)
        self._committed(change)
        return current + 1

    def record_use(self, env: str, key_ids: Collection[str], at: int) -> None:
        if not key_ids:
            return
        with self._transaction(write=True):
            self._note_use(env, key_ids, at)

    def record_evidence(self, env: str, update: Callable[[str, str | None], str | None]) -> None:
        """Each row of ``env`` is read locked and checked against its MAC, then rewritten with
        ``update``'s evidence and MACed anew (a tampered row is never MACed again)."""
        keys, m = self._dialect.table("keys"), self._dialect.mark
        macs = self._box.rows
        with self._transaction(write=True):
            # Locked in key id order, as every writer of key rows takes them: concurrent
            # instances queue instead of deadlocking.
            found = self._db.execute(
                f"SELECT {KEY_READ} FROM {keys} WHERE env = {m} ORDER BY key_id"  # noqa: S608
                f"{self._dialect.row_lock}",
                (env,),
            ).fetchall()
            for row, written in checked_key_rows(found, macs):
                evidence = update(row.key_id, row.evidence)
                if evidence is None or evidence == row.evidence:
                    continue
                updated = dataclasses.replace(row, evidence=evidence)
                self._db.execute(
                    f"UPDATE {keys} SET evidence = {m}, mac = {m} "  # noqa: S608
                    f"WHERE env = {m} AND key_id = {m}",
                    (evidence, macs.key_row(updated, written), env, row.key_id),
                )

    def _write_change(self, change: Change, version: int) -> None:
        """The rows of ``change`` as written by ``version``, each with its MAC."""
        env = change.env
        t, m = self._dialect.table, self._dialect.mark
        upsert = upsert_key_sql(t("keys"), m)
        macs = self._box.rows
        for row in sorted(change.upsert, key=lambda row: row.key_id):  # the lock order
            if row.env != env:
                raise ValueError("a change touches one environment only")
            row = self._current_evidence(env, row)  # noqa: PLW2901 - the row as written
            params = key_params(env, row, version, macs.key_row(row, version))
            if self._db.execute(upsert, params).rowcount != 1:
                raise StoreConflictError(f"key {row.key_id} belongs to another environment")
        for key_id, secret in change.secrets:
            self._set_secret(env, key_id, self._box.seal(secret, secret_aad(env, key_id)))
        for key_id in sorted(change.erase):
            self._set_secret(env, key_id, None)
        marks = ", ".join([m] * 14)
        for entry in change.audit:
            if entry.env != env or entry.version != version:
                raise ValueError("an audit entry belongs to its change's environment and version")
            self._db.execute(
                f"INSERT INTO {t('audit')} ({AUDIT_COLUMNS}, mac) VALUES ({marks})",  # noqa: S608
                (
                    env, entry.seq, entry.at, entry.ref_at, entry.actor, entry.action,
                    entry.key_id, entry.from_state, entry.to_state, entry.reason, entry.version,
                    entry.prev_hash, entry.hash, macs.audit_entry(entry),
                ),
            )  # fmt: skip

    def _current_evidence(self, env: str, row: KeyRow) -> KeyRow:
        """``row`` with the evidence stored now (checked against its MAC): evidence is added
        without a new version, so a change prepared before it must not write it back older."""
        keys, m = self._dialect.table("keys"), self._dialect.mark
        found = self._db.execute(
            f"SELECT {KEY_READ} FROM {keys} WHERE env = {m} AND key_id = {m}",  # noqa: S608
            (env, row.key_id),
        ).fetchone()
        if found is None:
            return row
        ((stored, _),) = checked_key_rows([found], self._box.rows)
        return dataclasses.replace(row, evidence=stored.evidence)

    # -- the MACs of the keyring row ------------------------------------------------------------

    def _members(self, env: str) -> list[tuple[str, int]]:
        keys, m = self._dialect.table("keys"), self._dialect.mark
        rows = self._db.execute(
            f"SELECT key_id, written FROM {keys} WHERE env = {m}",  # noqa: S608
            (env,),
        ).fetchall()
        return [(str(key_id), int(written)) for key_id, written in rows]

    def _check_head(self, env: str) -> None:
        """Before a write: the environment's rows are still the ones its head names, so a
        commit never blesses a row removed or replayed behind our back."""
        keyring, m = self._dialect.table("keyring"), self._dialect.mark
        head = self._db.execute(
            f"SELECT version, mac FROM {keyring} WHERE env = {m}",  # noqa: S608
            (env,),
        ).fetchone()
        members = self._members(env)
        version, mac = (0, None) if head is None else (int(head[0]), head[1])
        if mac is not None or version or members:
            self._box.rows.check_keyring(env, version, members, mac)

    def _seal_head(self, env: str) -> None:
        """After a write (inside its transaction): the keyring row's two MACs, over what it
        now says and which rows the environment now has."""
        keyring, m = self._dialect.table("keyring"), self._dialect.mark
        version, seq, audit_head = self._db.execute(
            f"SELECT version, audit_seq, audit_head FROM {keyring} WHERE env = {m}",  # noqa: S608
            (env,),
        ).fetchone()
        macs = self._box.rows
        self._db.execute(
            f"UPDATE {keyring} SET mac = {m}, audit_mac = {m} WHERE env = {m}",  # noqa: S608
            (
                macs.keyring(env, int(version), self._members(env)),
                macs.audit_head(env, int(version), int(seq), audit_head),
                env,
            ),
        )

    def _note_use(self, env: str, key_ids: Collection[str], at: int) -> None:
        """Raise ``last_used`` to ``at`` (inside a write transaction): each row is checked
        against its MAC first, so a tampered row is never MACed anew."""
        keys, m = self._dialect.table("keys"), self._dialect.mark
        macs = self._box.rows
        for key_id in sorted(key_ids):
            found = self._db.execute(
                f"SELECT {KEY_READ} FROM {keys} WHERE env = {m} AND key_id = {m}"  # noqa: S608
                f"{self._dialect.row_lock}",
                (env, key_id),
            ).fetchone()
            if found is None:
                continue
            ((row, written),) = checked_key_rows([found], macs)
            if row.last_used is not None and row.last_used >= at:
                continue
            row = dataclasses.replace(row, last_used=at)
            self._db.execute(
                f"UPDATE {keys} SET last_used = {m}, mac = {m} "  # noqa: S608
                f"WHERE env = {m} AND key_id = {m}",
                (at, macs.key_row(row, written), env, key_id),
            )

    def _mac_existing_rows(self) -> None:
        """The upgrade to MACed rows (inside a write transaction, once, with the passphrase):
        every row of every environment, as it stands, written by its keyring's version."""
        t, m = self._dialect.table, self._dialect.mark
        macs = self._box.rows
        heads = self._db.execute(f"SELECT env, version FROM {t('keyring')}").fetchall()  # noqa: S608
        for env, version in heads:
            rows = self._db.execute(
                f"SELECT {KEY_COLUMNS}, sealed_secret IS NOT NULL FROM {t('keys')} "  # noqa: S608
                f"WHERE env = {m}",
                (env,),
            ).fetchall()
            for r in rows:
                row = key_row(r)
                self._db.execute(
                    f"UPDATE {t('keys')} SET written = {m}, mac = {m} WHERE key_id = {m}",  # noqa: S608
                    (int(version), macs.key_row(row, int(version)), row.key_id),
                )
            entries = self._db.execute(
                f"SELECT {AUDIT_COLUMNS} FROM {t('audit')} WHERE env = {m}",  # noqa: S608
                (env,),
            ).fetchall()
            for r in entries:
                entry = AuditEntry(**dict(zip(_AUDIT_NAMES, r, strict=True)))
                self._db.execute(
                    f"UPDATE {t('audit')} SET mac = {m} WHERE env = {m} AND seq = {m}",  # noqa: S608
                    (macs.audit_entry(entry), env, entry.seq),
                )
            self._seal_head(str(env))

    def _set_secret(self, env: str, key_id: str, sealed: bytes | None) -> None:
        keys, m = self._dialect.table("keys"), self._dialect.mark
        cursor = self._db.execute(
            f"UPDATE {keys} SET sealed_secret = {m} WHERE env = {m} AND key_id = {m}",  # noqa: S608
            (sealed, env, key_id),
        )
        if cursor.rowcount != 1:
            raise StoreConflictError(f"no record {key_id} for its secret")
