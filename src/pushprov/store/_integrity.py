"""What the store keeps in clear is bound to the store's key: an HMAC-SHA-256 per row.

Sealing protects the secrets; everything else (certificates, states, roles, owners, the audit
log) sits in clear columns that anyone with the database could edit. Each such row therefore
carries a MAC under a key derived from the key-encryption key (HKDF-SHA-256, its own info
label; the AES-GCM key is never used for anything else), so a change made outside pushprov
fails on the next read as ``StoreCorruptError`` (key rows, the keyring head) or
``AuditTamperedError`` (audit entries, the audit head).

What is MACed (``mac`` columns, schema version 2):

* a key row: every column (schema 3's ``custody`` only when set, schema 4's ``partner`` state
  and ``evidence`` only once either is set), ``has_secret`` (the sealed secret is AEAD-bound to
  its row already) and ``written``, the keyring version that last wrote the row;
* the keyring row: its version and the environment's rows as (key id, written) pairs, so a row
  deleted, added, or replayed from an older version no longer matches;
* the audit head (``audit_mac``): the entry count, the last hash and the keyring version;
* an audit entry: every column.

The MAC input is a canonical encoding (``encode``): a domain label, the table, the environment,
the row's identity and version, then the columns, each tagged with its type and length-prefixed,
so no two different rows encode alike.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterable, Sequence
from typing import NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._errors import AuditTamperedError, StoreCorruptError
from ._model import AuditEntry, KeyRow

__all__ = ["MAC_INFO", "Field", "RowMac", "derive_mac_key", "encode"]

#: HKDF info of the row-MAC key: no other key of the store is derived under this label.
MAC_INFO = b"pushprov-keystore-v2\0row-mac"
_DOMAIN = "pushprov-store-mac-v1"
_LENGTH = struct.Struct(">Q")

Field = None | bool | int | str | bytes | tuple["Field", ...]


def derive_mac_key(kek: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=MAC_INFO).derive(kek)


def encode(fields: Iterable[Field]) -> bytes:
    """Type-tagged, length-prefixed concatenation: injective over sequences of ``Field``."""
    out = bytearray()
    for field in fields:
        _put(out, field)
    return bytes(out)


def _put(out: bytearray, value: Field) -> None:
    if value is None:
        out += b"N"
    elif isinstance(value, bool):  # before int: a bool is an int
        out += b"T" if value else b"F"
    elif isinstance(value, int):
        text = str(value).encode("ascii")
        out += b"I" + _LENGTH.pack(len(text)) + text
    elif isinstance(value, str):
        data = value.encode("utf-8")
        out += b"S" + _LENGTH.pack(len(data)) + data
    elif isinstance(value, bytes):
        out += b"B" + _LENGTH.pack(len(value)) + value
    else:
        out += b"L" + _LENGTH.pack(len(value))
        for item in value:
            _put(out, item)


class RowMac:
    """MACs and checks of the store's clear rows. Holds the MAC key; shows nothing of it."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _tag(self, table: str, env: str, ident: Field, version: int, fields: Field) -> bytes:
        message = encode((_DOMAIN, table, env, ident, version, fields))
        return hmac.new(self._key, message, hashlib.sha256).digest()

    @staticmethod
    def _same(expected: bytes, stored: object) -> bool:
        return isinstance(stored, bytes | memoryview) and hmac.compare_digest(
            expected, bytes(stored)
        )

    # -- key rows and the keyring head --------------------------------------------------------

    def key_row(self, row: KeyRow, written: int) -> bytes:
        fields: tuple[Field, ...] = (
            row.format, row.owner, row.roles, row.label, row.created, row.expires, row.state,
            row.transitions, row.last_used, row.public, row.has_secret,
        )  # fmt: skip
        if row.custody is not None:
            # Schema 3's column, only when set: a row without it keeps the MAC it had, and
            # adding, removing or changing it no longer matches.
            fields = (*fields, row.custody)
        if row.partner is not None or row.evidence is not None:
            # Schema 4's, the same way (two more fields, so never mistaken for custody alone):
            # which GOPCs a key seals alone, and whether it may be retired, follow from these.
            fields = (*fields, row.partner, row.evidence)
        return self._tag("keys", row.env, row.key_id, written, fields)

    def check_key_row(self, row: KeyRow, written: object, stored: object) -> None:
        if not isinstance(written, int) or not self._same(self.key_row(row, written), stored):
            raise StoreCorruptError(f"key record {row.key_id} was changed outside pushprov")

    def keyring(self, env: str, version: int, members: Iterable[tuple[str, int]]) -> bytes:
        """The head of an environment's keys: its version and which rows, as of which write."""
        return self._tag("keyring", env, None, version, tuple(sorted(members)))

    def check_keyring(
        self, env: str, version: int, members: Iterable[tuple[str, int]], stored: object
    ) -> None:
        if not self._same(self.keyring(env, version, members), stored):
            raise StoreCorruptError(
                f"the {env} keyring's records were added, removed or rolled back outside pushprov"
            )

    # -- the audit log ------------------------------------------------------------------------

    def audit_entry(self, entry: AuditEntry) -> bytes:
        fields: Field = (
            entry.at, entry.ref_at, entry.actor, entry.action, entry.key_id, entry.from_state,
            entry.to_state, entry.reason, entry.prev_hash, entry.hash,
        )  # fmt: skip
        return self._tag("audit", entry.env, entry.seq, entry.version, fields)

    def audit_head(self, env: str, version: int, seq: int, head: str | None) -> bytes:
        return self._tag("audit-head", env, seq, version, head)

    def check_audit(
        self,
        env: str,
        entries: Sequence[tuple[AuditEntry, object]],
        head: tuple[int, int, str | None, object] | None,
    ) -> None:
        """Every entry's MAC, then the head's (``version, seq, hash, mac``; None before the
        first commit): an entry dropped from the tail, edited or reordered shows here."""
        for entry, stored in entries:
            if entry.env != env or not self._same(self.audit_entry(entry), stored):
                raise AuditTamperedError(f"audit entry {entry.seq} was altered or moved")
        if head is None:
            if entries:
                raise AuditTamperedError("the audit log has entries but no recorded head")
            return
        version, seq, last, stored = head
        if not self._same(self.audit_head(env, version, seq, last), stored):
            raise AuditTamperedError("the audit head was changed outside pushprov")
        if len(entries) != seq or (entries and entries[-1][0].hash != last):
            raise AuditTamperedError("the audit log does not end at the recorded head")

    def __repr__(self) -> str:
        return "RowMac([secret])"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a MAC key cannot be pickled")
