"""Key rows to and from SQL, shared by the SQLite and PostgreSQL stores (same columns)."""

from __future__ import annotations

import json
from typing import Any

from ._model import KeyRow

__all__ = ["KEY_COLUMNS", "key_params", "key_row", "upsert_key_sql"]

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
