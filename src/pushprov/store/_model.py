"""What crosses the storage interface: plain values only, so any backend can hold them.

The lifecycle layer (``pushprov.keys``) maps these rows to its typed records; the store never
interprets states or roles. Clear secrets cross only inside ``Change.secrets`` (never in a repr)
and ``Store.load_secret``; the store seals them at rest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from typing import Protocol

__all__ = ["AuditEntry", "Change", "KeyRow", "Store", "StoreView"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class KeyRow:
    """One key record. Times are Unix seconds. ``public`` is the certificate (or public JWK)."""

    key_id: str
    env: str
    format: str
    owner: str
    roles: tuple[str, ...]
    label: str
    created: int
    expires: int | None
    state: str
    transitions: tuple[tuple[str, int], ...]  # every state entered, in order, with its time
    last_used: int | None
    public: bytes = dataclasses.field(repr=False)
    has_secret: bool = False  # read-only: the store sets it from the sealed column
    custody: str | None = None  # where a key kept outside the store lives (opaque text)
    partner: str | None = None  # what the partner's outcomes proved: canary, verified, stopped
    evidence: str | None = None  # uses and outcomes per role (JSON); advisory, like last_used


@dataclasses.dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One hash-chained audit entry; ``hash`` = SHA-256 of the canonical JSON of the others.

    ``at`` is when the action was done (wall clock); ``ref_at`` the reference time it was
    judged at (``--at``; None in entries written before it was recorded).
    """

    env: str
    seq: int
    at: int
    ref_at: int | None = None
    actor: str
    action: str
    key_id: str
    from_state: str | None
    to_state: str | None
    reason: str
    version: int
    prev_hash: str
    hash: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class StoreView:
    """A consistent read of one environment: its version, records and audit head."""

    env: str
    version: int
    keys: tuple[KeyRow, ...]
    audit_seq: int
    audit_head: str | None  # hash of the last entry, None before the first


@dataclasses.dataclass(frozen=True, kw_only=True)
class Change:
    """A new version of one environment, built on ``base_version``; applied all or nothing."""

    env: str
    base_version: int
    upsert: tuple[KeyRow, ...] = ()
    secrets: tuple[tuple[str, bytes], ...] = dataclasses.field(default=(), repr=False)
    erase: frozenset[str] = frozenset()
    audit: tuple[AuditEntry, ...] = ()


class Store(Protocol):
    """The storage interface, implemented by ``SqliteStore`` and ``PostgresStore``.

    ``commit`` must be atomic and must raise ``StoreConflictError`` when the environment is no
    longer at ``change.base_version`` (or a key id is already used in another environment).
    Secrets are sealed at rest with the record's environment and id as associated data.
    """

    def read(self, env: str) -> StoreView: ...

    def commit(self, change: Change) -> int:
        """Apply ``change``; return the new version (``base_version + 1``)."""
        ...

    def load_secret(self, env: str, key_id: str) -> bytes | None:
        """The clear secret of a record, or None when it has none (partner key, destroyed)."""
        ...

    def audit_log(self, env: str) -> tuple[AuditEntry, ...]: ...

    def record_use(self, env: str, key_ids: Collection[str], at: int) -> None:
        """Raise ``last_used`` to ``at``; advisory, so it bumps no version and writes no audit."""
        ...

    def record_evidence(self, env: str, update: Callable[[str, str | None], str | None]) -> None:
        """Rewrite the ``evidence`` of the environment's keys, in one write transaction:
        ``update(key_id, evidence)`` gives the new value (None: leave the row as it is).
        Advisory like ``record_use``: no version, no audit; each row keeps its MAC."""
        ...

    def close(self) -> None: ...
