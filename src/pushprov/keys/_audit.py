"""The audit log: every change appended, hash-chained, never carrying secret material.

Each entry's ``hash`` is SHA-256 over the canonical JSON (sorted keys, no spaces, ASCII) of all
its other fields, ``prev_hash`` included, so editing, dropping or reordering an entry breaks the
chain. The keyring row stores the head (last seq and hash), and the store MACs every entry and
the head under its key (``pushprov.store``), so cutting the tail and moving the head back, or
rewriting the whole chain, shows too without the passphrase's holder; anchoring the head
elsewhere (``keys audit --verify`` prints it) also catches a rollback of the whole store.

An entry's ``at`` is the wall-clock time of the action and ``ref_at`` the reference time it was
judged at (``--at``), so the log runs forward in time whatever ``--at`` said. Entries from before
``ref_at`` was recorded hash without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence

from ..store import AuditEntry
from ._errors import AuditTamperedError

__all__ = ["entry_hash", "genesis_hash", "make_entry", "verify_chain"]


def genesis_hash(env: str) -> str:
    """The ``prev_hash`` of an environment's first entry: binds the chain to its environment."""
    return hashlib.sha256(b"pushprov-audit-v1\0" + env.encode()).hexdigest()


def entry_hash(entry: AuditEntry) -> str:
    body = dataclasses.asdict(entry)
    del body["hash"]
    if body["ref_at"] is None:
        del body["ref_at"]  # an entry written before the reference time was recorded
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def make_entry(
    *,
    env: str,
    seq: int,
    at: int,
    ref_at: int,
    actor: str,
    action: str,
    key_id: str,
    from_state: str | None,
    to_state: str | None,
    reason: str,
    version: int,
    prev_hash: str,
) -> AuditEntry:
    draft = AuditEntry(
        env=env,
        seq=seq,
        at=at,
        ref_at=ref_at,
        actor=actor,
        action=action,
        key_id=key_id,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        version=version,
        prev_hash=prev_hash,
        hash="",
    )
    return dataclasses.replace(draft, hash=entry_hash(draft))


def verify_chain(
    env: str, entries: Sequence[AuditEntry], head_seq: int, head_hash: str | None
) -> str:
    """Check the whole chain against the stored head; return the head hash."""
    prev = genesis_hash(env)
    for expected_seq, entry in enumerate(entries, start=1):
        if entry.env != env or entry.seq != expected_seq:
            raise AuditTamperedError(f"audit entry {expected_seq} is missing or out of order")
        if entry.prev_hash != prev:
            raise AuditTamperedError(f"audit entry {entry.seq} does not follow its predecessor")
        if entry_hash(entry) != entry.hash:
            raise AuditTamperedError(f"audit entry {entry.seq} was altered")
        prev = entry.hash
    if len(entries) != head_seq or (entries and head_hash != prev):
        raise AuditTamperedError("the audit log does not end at the recorded head")
    return prev
