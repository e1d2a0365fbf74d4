"""The store's clear rows are bound to its key: edits made outside pushprov, with plain SQL and
no passphrase, are ``store_corrupt`` (26) on every read path, and cuts or edits of the audit log
are ``audit_tampered`` (27). Both stores, through the CLI as an operator runs it and through
the snapshot the service re-reads.

Also here: the upgrade of a store from before the MACs (schema 1), the audit log's times
under ``--at`` (the wall clock runs forward, the reference time sits beside it), and damage that
is no edit (a file cut or scrambled, a table dropped): ``store_corrupt`` too, never exit 1.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pushprov import openpgp
from pushprov.cli import main
from pushprov.keys import (
    AuditTamperedError,
    Environment,
    Keystore,
    Partner,
    Role,
    RoleEvidence,
    StoreKeySource,
    entry_hash,
    genesis_hash,
)
from pushprov.store import StoreCorruptError, migrate, open_store
from pushprov.store._integrity import MAC_INFO, encode
from pushprov.store._sealing import derive_kek

from .conftest import T0
from .postgres_support import Cluster
from .test_keystore_support import key_pool

PASSPHRASE = "integrity words"
AT = "2026-11-01T12:00:00Z"
SESSION = "c2Vzc2lvbi1mcm9tLWdvb2dsZQ"
CARD = b'{"accountNumber":"4111111111111111","expiryMonth":"12","expiryYear":"29"}'
SANDBOX = Environment.SANDBOX


@dataclasses.dataclass
class World:
    """A store (SQLite file or PostgreSQL database) with our key and Google's, both active,
    driven through the CLI; ``sql`` edits it the way a database administrator could."""

    kind: str
    location: str
    directory: Path
    capsys: pytest.CaptureFixture[bytes]
    ours: str = ""
    google: str = ""

    def __call__(self, *argv: str, stdin: bytes = b"") -> tuple[int, bytes, str]:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
        status = main(list(argv))
        out, err = self.capsys.readouterr()
        return status, out, err.decode()

    def keys(self, command: str, *argv: str, at: str = AT) -> tuple[int, bytes, str]:
        return self(
            "keys", command, "--store", self.location, "--env", "sandbox", "--at", at, *argv
        )

    def ok(self, command: str, *argv: str, at: str = AT) -> Any:
        status, out, err = self.keys(command, "--json", *argv, at=at)
        assert status == 0, err
        return json.loads(out)

    def seal(self) -> tuple[int, bytes, str]:
        return self(
            "gopc", "seal", "--session-id", SESSION, "--store", self.location, "--env",
            "sandbox", "--at", AT, stdin=CARD,
        )  # fmt: skip

    def file(self, name: str, data: bytes) -> str:
        path = self.directory / name
        path.write_bytes(data)
        return str(path)

    def table(self, name: str) -> str:
        return name if self.kind == "sqlite" else f"pushprov_{name}"

    def sql(self, statement: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement, as plain SQL: ``{keys}``-style table names, ``?`` placeholders."""
        text = statement.format(**{t: self.table(t) for t in ("keys", "keyring", "audit", "meta")})
        if self.kind == "sqlite":
            with sqlite3.connect(self.location) as conn:
                return conn.execute(text, params).fetchall()
        with psycopg.connect(self.location, autocommit=True) as pg:
            cursor = pg.execute(text.replace("?", "%s").encode(), params)
            return cursor.fetchall() if cursor.description else []

    def keystore(self) -> Keystore:
        return Keystore(open_store(self.location, passphrase=PASSPHRASE.encode()), actor="t")


@pytest.fixture(params=["sqlite", "postgresql"])
def world(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    capsysbinary: pytest.CaptureFixture[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[World]:
    monkeypatch.setenv("PUSHPROV_STORE_PASSPHRASE", PASSPHRASE)
    monkeypatch.setattr(sys, "stdin", sys.stdin)  # restored after the test
    if request.param == "sqlite":
        location = str(tmp_path / "store" / "keystore.db")
    else:
        cluster: Cluster = request.getfixturevalue("postgres")
        location = cluster.create_database("integrity_" + os.urandom(6).hex())
        migrate(location)
    world = World(request.param, location, tmp_path, capsysbinary)
    pool = key_pool()
    world.ours = world.ok("import", world.file("ours.asc", pool.ours[0].armor().encode()))["key_id"]
    google = pool.partners[0].certificate.armor().encode()
    world.google = world.ok("import", world.file("google.asc", google))["key_id"]
    world.ok("promote", world.ours)
    world.ok("promote", world.google)
    assert world.seal()[0] == 0
    yield world


def _every_read_path_is_corrupt(world: World) -> None:
    """keys list/show/check, gopc seal --store, the keyring snapshot and the service's refresh
    all refuse the store with ``store_corrupt`` (26)."""
    for command, argv in (("list", ()), ("show", (world.google,)), ("check", ())):
        status, out, err = world.keys(command, *argv)
        assert (status, out) == (26, b""), (command, err)
        assert err.startswith("error: store_corrupt"), (command, err)
    status, out, err = world.seal()
    assert (status, out) == (26, b""), err
    keystore = world.keystore()
    try:
        with pytest.raises(StoreCorruptError):
            keystore.snapshot(SANDBOX)
    finally:
        keystore.close()
    source = StoreKeySource(
        lambda cache: Keystore(
            open_store(world.location, passphrase=PASSPHRASE.encode()), actor="svc",
            secret_cache=cache,
        ),
        SANDBOX,
        refresh=0.0,
    )  # fmt: skip
    with pytest.raises(StoreCorruptError):
        source.current(T0)


def _attacker_certificate() -> bytes:
    return key_pool().partners[1].certificate.armor().encode()


# Each edit is one an operator with the database (or a restored, edited backup) could make.
ATTACKS: dict[str, Callable[[World], object]] = {
    # The finding's exact attack: Google's certificate replaced by the attacker's.
    "swap-google-certificate": lambda w: w.sql(
        "UPDATE {keys} SET public = ? WHERE key_id = ?", (_attacker_certificate(), w.google)
    ),
    "state": lambda w: w.sql("UPDATE {keys} SET state = 'pending' WHERE key_id = ?", (w.google,)),
    "role": lambda w: w.sql("UPDATE {keys} SET roles = 'encrypt' WHERE key_id = ?", (w.google,)),
    "env": lambda w: w.sql("UPDATE {keys} SET env = 'production' WHERE key_id = ?", (w.google,)),
    "owner": lambda w: w.sql("UPDATE {keys} SET owner = 'ours' WHERE key_id = ?", (w.google,)),
    "expiry": lambda w: w.sql("UPDATE {keys} SET expires = NULL WHERE key_id = ?", (w.google,)),
    "mac-deleted": lambda w: w.sql("UPDATE {keys} SET mac = NULL WHERE key_id = ?", (w.google,)),
    "row-deleted": lambda w: w.sql("DELETE FROM {keys} WHERE key_id = ?", (w.google,)),
    "head-mac-deleted": lambda w: w.sql("UPDATE {keyring} SET mac = NULL"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_row_edited_outside_pushprov_is_store_corrupt_everywhere(
    world: World, attack: str
) -> None:
    ATTACKS[attack](world)
    _every_read_path_is_corrupt(world)


def test_the_certificate_swap_with_its_row_mac_copied_is_still_refused(world: World) -> None:
    """Copying a valid row (public, MAC and all) under Google's id fails: the MAC covers the
    key id, and the certificate's fingerprint is not the id."""
    pool = key_pool()
    other = world.ok(
        "import", world.file("other.asc", pool.partners[2].certificate.armor().encode())
    )
    ((public, mac, written),) = world.sql(
        "SELECT public, mac, written FROM {keys} WHERE key_id = ?", (other["key_id"],)
    )
    world.sql(
        "UPDATE {keys} SET public = ?, mac = ?, written = ? WHERE key_id = ?",
        (bytes(public), bytes(mac), written, world.google),
    )
    _every_read_path_is_corrupt(world)


def test_a_row_replayed_from_an_older_version_is_store_corrupt(world: World) -> None:
    """A retired Google key brought back with its own, once valid, active row and MAC."""
    (active_row,) = world.sql(
        "SELECT state, transitions, written, mac FROM {keys} WHERE key_id = ?", (world.google,)
    )
    world.ok("retire", world.google, "--reason", "rotation")
    world.sql(
        "UPDATE {keys} SET state = ?, transitions = ?, written = ?, mac = ? WHERE key_id = ?",
        (*active_row[:2], active_row[2], bytes(active_row[3]), world.google),
    )
    _every_read_path_is_corrupt(world)


def test_partner_state_and_evidence_edited_outside_pushprov_are_store_corrupt(
    world: World,
) -> None:
    keystore = world.keystore()
    try:
        keystore.record_evidence(
            SANDBOX, {world.google: [(Role.ENCRYPT, RoleEvidence(sealed=3, canary=1))]}
        )
        (google,) = [r for r in keystore.snapshot(SANDBOX).records if r.key_id == world.google]
    finally:
        keystore.close()
    # Evidence is added under the row MAC: it reads back, and the rest still checks out.
    assert google.partner is Partner.CANARY
    assert google.evidence["encrypt"] == RoleEvidence(sealed=3, canary=1)
    assert world.keys("check")[0] == 0
    # A canary "verified" by editing the row, or its counts inflated, is refused everywhere.
    world.sql("UPDATE {keys} SET partner = 'verified' WHERE key_id = ?", (world.google,))
    _every_read_path_is_corrupt(world)
    world.sql("UPDATE {keys} SET partner = 'canary' WHERE key_id = ?", (world.google,))
    assert world.keys("check")[0] == 0
    world.sql(
        "UPDATE {keys} SET evidence = ? WHERE key_id = ?",
        ('{"encrypt":{"canary_accepted":999}}', world.google),
    )
    _every_read_path_is_corrupt(world)


def test_an_untouched_store_reads_and_records_use(world: World) -> None:
    """The counterpart: nothing edited, every path works, and a use recorded (a write that
    re-MACs the row) reads back."""
    assert world.keys("list")[0] == 0
    assert world.keys("check")[0] == 0
    assert world.ok("show", world.ours)["last_used"] == AT
    assert world.ok("audit", "--verify")["verified"] is True


# ---------------------------------------------------------------------------------------------
# the audit log


def _audit_status(world: World) -> tuple[tuple[int, str], tuple[int, str]]:
    plain = world.keys("audit")
    verify = world.keys("audit", "--verify")
    return (plain[0], plain[2]), (verify[0], verify[2])


def _assert_tampered(world: World) -> None:
    for status, err in _audit_status(world):
        assert status == 27, err
        assert err.startswith("error: audit_tampered"), err
    keystore = world.keystore()
    try:
        with pytest.raises(AuditTamperedError):
            keystore.verify_audit(SANDBOX)
    finally:
        keystore.close()


def _export_secret(world: World) -> dict[str, Any]:
    path = world.file("export-pass", b"export words\n")
    status, _, err = world.keys("export", world.ours, "--secret", "--passphrase-file", path)
    assert status == 0, err
    entries = world.ok("audit")["entries"]
    assert entries[-1]["action"] == "export-secret"
    return dict(entries[-2])


def test_the_audit_tail_cut_and_the_head_moved_back_is_audit_tampered(world: World) -> None:
    """The finding's attack: the newest entry (an export-secret) deleted and the head moved
    back to the entry before it — a consistent chain, but not the one the store's key sealed."""
    before = _export_secret(world)
    seq = before["seq"]
    world.sql("DELETE FROM {audit} WHERE seq = ?", (seq + 1,))
    world.sql("UPDATE {keyring} SET audit_seq = ?, audit_head = ?", (seq, before["hash"]))
    _assert_tampered(world)


def test_the_audit_head_moved_back_alone_is_audit_tampered(world: World) -> None:
    before = _export_secret(world)
    world.sql("UPDATE {keyring} SET audit_seq = ?, audit_head = ?", (before["seq"], before["hash"]))
    _assert_tampered(world)


def test_an_audit_entry_edited_with_its_chain_rehashed_is_audit_tampered(world: World) -> None:
    """Hashes alone are public: an editor can redo them. The MACs are not."""
    entries = world.ok("audit")["entries"]
    first = entries[0]
    keystore = world.keystore()
    try:
        stored = keystore.audit_log(SANDBOX)
    finally:
        keystore.close()
    prev = genesis_hash("sandbox")
    rewritten = []
    for entry in stored:
        edited = dataclasses.replace(
            entry,
            prev_hash=prev,
            reason="nothing to see" if entry.seq == first["seq"] else entry.reason,
            hash="",
        )
        edited = dataclasses.replace(edited, hash=entry_hash(edited))
        rewritten.append(edited)
        prev = edited.hash
    for entry in rewritten:
        world.sql(
            "UPDATE {audit} SET reason = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (entry.reason, entry.prev_hash, entry.hash, entry.seq),
        )
    world.sql("UPDATE {keyring} SET audit_head = ?", (prev,))
    _assert_tampered(world)


def test_audit_entries_swapped_are_audit_tampered(world: World) -> None:
    rows = world.sql("SELECT seq, mac FROM {audit} ORDER BY seq")
    (seq1, mac1), (seq2, mac2) = rows[0], rows[1]
    world.sql("UPDATE {audit} SET mac = ? WHERE seq = ?", (bytes(mac2), seq1))
    world.sql("UPDATE {audit} SET mac = ? WHERE seq = ?", (bytes(mac1), seq2))
    _assert_tampered(world)


def test_audit_times_run_forward_with_the_reference_time_beside_them(world: World) -> None:
    """An action judged at a past or future ``--at`` is recorded when it was done."""
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    world.ok("retire", world.google, "--reason", "rotation", at="2030-01-02T03:04:05Z")
    world.ok("retire", world.ours, "--reason", "rotation", at="2026-11-02T00:00:00Z")
    after = dt.datetime.now(dt.UTC)
    entries = world.ok("audit")["entries"]
    done = [dt.datetime.fromisoformat(e["at"]) for e in entries]
    assert done == sorted(done)  # the wall clock only moves forward
    assert before <= done[-2] <= done[-1] <= after
    assert [e["ref_at"] for e in entries[-2:]] == ["2030-01-02T03:04:05Z", "2026-11-02T00:00:00Z"]
    assert all(e["ref_at"] == AT for e in entries[:-2])  # the fixture ran at AT
    text = world.keys("audit")[1].decode().splitlines()
    assert "at 2030-01-02T03:04:05Z" in text[-2] and entries[-2]["at"] in text[-2]
    assert world.ok("audit", "--verify")["verified"] is True


# ---------------------------------------------------------------------------------------------
# upgrading a store from before the MACs (schema 1)

_V1_CHECK_PLAINTEXT = b"pushprov keystore key-encryption key check v1"
_V1_CHECK_AAD = b"pushprov-keystore-v1\0kek-check"
_NEW_COLUMNS = (("keyring", "mac"), ("keyring", "audit_mac"), ("keys", "written"),
                ("keys", "mac"), ("audit", "ref_at"), ("audit", "mac"),
                ("keys", "custody"), ("keys", "partner"), ("keys", "evidence"))  # fmt: skip


def _downgrade_to_v1(world: World) -> None:
    """What a schema 1 store holds: no MAC columns, no reference times (entries hashed
    without them), a KEK check sealed under the v1 label."""
    keystore = world.keystore()
    try:
        entries = keystore.audit_log(SANDBOX)
    finally:
        keystore.close()
    prev = genesis_hash("sandbox")
    for entry in entries:
        old = dataclasses.replace(entry, ref_at=None, prev_hash=prev, hash="")
        old = dataclasses.replace(old, hash=entry_hash(old))
        world.sql(
            "UPDATE {audit} SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, old.hash, old.seq)
        )
        prev = old.hash
    world.sql("UPDATE {keyring} SET audit_head = ?", (prev,))
    for table, column in _NEW_COLUMNS:
        world.sql(f"ALTER TABLE {{{table}}} DROP COLUMN {column}")
    meta = dict(world.sql("SELECT name, value FROM {meta}"))
    kek = derive_kek(PASSPHRASE.encode(), bytes(meta["kdf_salt"]), int(bytes(meta["kdf_log2n"])))
    nonce = os.urandom(12)
    check = nonce + AESGCM(kek).encrypt(nonce, _V1_CHECK_PLAINTEXT, _V1_CHECK_AAD)
    world.sql("UPDATE {meta} SET value = ? WHERE name = 'kek_check'", (check,))
    if world.kind == "sqlite":
        world.sql("UPDATE meta SET value = ? WHERE name = 'schema'", (b"1",))
    else:
        for column in ("keys", "outcome"):  # schema 4's service columns
            world.sql(f"ALTER TABLE pushprov_idempotency DROP COLUMN {column}")
        world.sql("DELETE FROM pushprov_schema WHERE version >= 2")


def test_a_schema_1_store_is_upgraded_when_opened_with_its_passphrase(world: World) -> None:
    listed = world.ok("list")
    for key in listed["keys"]:
        key["partner"] = None  # schema 4's: a schema 1 store has no partner state
    _downgrade_to_v1(world)
    if world.kind == "postgresql":
        assert migrate(world.location) == (1, 4)
    else:
        ((schema,),) = world.sql("SELECT value FROM meta WHERE name = 'schema'")
        assert bytes(schema) == b"1"
    # The first open MACs every row as it stands; the old entries verify without ref_at.
    assert world.ok("list") == listed
    assert world.ok("audit", "--verify")["verified"] is True
    assert all(mac is not None for (mac,) in world.sql("SELECT mac FROM {keys}"))
    assert all(mac is not None for (mac,) in world.sql("SELECT mac FROM {audit}"))
    if world.kind == "sqlite":
        ((schema,),) = world.sql("SELECT value FROM meta WHERE name = 'schema'")
        assert bytes(schema) == b"4"
    # From now on a MAC removed is an attack, never a row still to be MACed.
    world.sql("UPDATE {keys} SET mac = NULL WHERE key_id = ?", (world.google,))
    _every_read_path_is_corrupt(world)


def test_a_schema_2_store_gains_the_custody_column_and_keeps_its_macs(world: World) -> None:
    listed = world.ok("list")
    macs = sorted(world.sql("SELECT key_id, mac FROM {keys}"))
    world.sql("ALTER TABLE {keys} DROP COLUMN custody")
    if world.kind == "postgresql":
        world.sql("DELETE FROM pushprov_schema WHERE version >= 3")
        assert migrate(world.location) == (2, 4)  # schema 4's columns, there already, kept
    else:
        world.sql("UPDATE meta SET value = ? WHERE name = 'schema'", (b"2",))
    assert world.ok("list") == listed
    assert sorted(world.sql("SELECT key_id, mac FROM {keys}")) == macs
    if world.kind == "sqlite":
        ((schema,),) = world.sql("SELECT value FROM meta WHERE name = 'schema'")
        assert bytes(schema) == b"4"
    # The new column is MACed: custody written behind pushprov's back is refused.
    world.sql("UPDATE {keys} SET custody = ? WHERE key_id = ?", ('{"x": 1}', world.google))
    _every_read_path_is_corrupt(world)


def test_a_row_mac_is_hmac_sha256_under_the_hkdf_key_over_the_canonical_row(
    world: World,
) -> None:
    """Pins the design: HMAC-SHA-256 under HKDF(KEK, MAC_INFO) over the canonical encoding of
    (domain, table, env, key id, written, columns); the KEK itself is never the MAC key."""
    meta = dict(world.sql("SELECT name, value FROM {meta}"))
    kek = derive_kek(PASSPHRASE.encode(), bytes(meta["kdf_salt"]), int(bytes(meta["kdf_log2n"])))
    ((mac, written),) = world.sql(
        "SELECT mac, written FROM {keys} WHERE key_id = ?", (world.google,)
    )
    keystore = world.keystore()
    try:
        (row,) = [r for r in keystore.snapshot(SANDBOX).records if r.key_id == world.google]
    finally:
        keystore.close()
    stored = row.to_row()
    message = encode((
        "pushprov-store-mac-v1", "keys", "sandbox", world.google, written,
        (stored.format, stored.owner, stored.roles, stored.label, stored.created,
         stored.expires, stored.state, stored.transitions, stored.last_used, stored.public,
         stored.has_secret, stored.partner, stored.evidence),
    ))  # fmt: skip
    assert stored.partner == "canary"  # promoted: on probation, so its state is MACed too
    mac_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=MAC_INFO).derive(kek)
    assert bytes(mac) == hmac.new(mac_key, message, hashlib.sha256).digest()
    assert bytes(mac) != hmac.new(kek, message, hashlib.sha256).digest()


def test_the_canonical_encoding_tells_apart_what_plain_joins_would_not() -> None:
    pairs = [
        (("ab", "c"), ("a", "bc")),
        ((None,), ("",)),
        ((True,), (1,)),
        ((b"1",), ("1",)),
        ((1,), ("1",)),
        (((("a", "b"),),), (("a", "b"),)),
        ((("a",), "b"), ("a", ("b",))),
        ((("pending", 1), ("active", 2)), (("pending", 1, "active", 2),)),
    ]
    for left, right in pairs:
        assert encode(left) != encode(right), (left, right)


def test_keys_imported_are_their_certificates_fingerprints(world: World) -> None:
    """The id check on load (beside the MAC) holds for what the CLI stored."""
    keystore = world.keystore()
    try:
        ring = keystore.snapshot(SANDBOX)
        for record in ring.records:
            (cert,) = openpgp.read_certificates(record.public)
            assert cert.fingerprint == record.key_id
    finally:
        keystore.close()


# ---------------------------------------------------------------------------------------------
# damage (finding 9): a damaged store is ``store_corrupt`` (26) from the CLI, never
# ``internal_error`` (1): the file overwritten, cut, emptied or a page of it scrambled, a table
# dropped, values no pushprov writes. ``--at`` outside what OpenPGP can record is usage (2).


def _file(damage: Callable[[bytes], bytes]) -> Callable[[World], object]:
    def apply(w: World) -> None:
        path = Path(w.location)
        assert not Path(f"{w.location}-wal").exists()  # the CLI checkpointed it on close
        path.write_bytes(damage(path.read_bytes()))

    return apply


def _page_scrambled(data: bytes) -> bytes:
    return data[:4096] + os.urandom(4096) + data[8192:]


# A file's damage: the PostgreSQL store has no file of ours to cut.
FILE_DAMAGE: dict[str, Callable[[World], object]] = {
    "random-bytes": _file(lambda data: os.urandom(len(data))),
    "truncated-half": _file(lambda data: data[: len(data) // 2]),
    "truncated-in-header": _file(lambda data: data[:50]),
    "emptied": _file(lambda data: b""),
    "page-scrambled": _file(_page_scrambled),
    # SQLite lets a column hold any type: a time written as text.
    "created-as-text": lambda w: w.sql("UPDATE {keys} SET created = 'yesterday'"),
}
ROW_DAMAGE: dict[str, Callable[[World], object]] = {
    "unknown-state": lambda w: w.sql("UPDATE {keys} SET state = 'bogus'"),
    "unknown-role": lambda w: w.sql("UPDATE {keys} SET roles = 'sign,teleport'"),
    "created-beyond-9999": lambda w: w.sql("UPDATE {keys} SET created = 99999999999999"),
    "expires-before-year-1": lambda w: w.sql("UPDATE {keys} SET expires = -99999999999"),
    "transitions-unparsable": lambda w: w.sql("UPDATE {keys} SET transitions = 'nope'"),
    "keys-table-dropped": lambda w: w.sql("DROP TABLE {keys}"),
    "keyring-table-dropped": lambda w: w.sql("DROP TABLE {keyring}"),
    "meta-table-dropped": lambda w: w.sql("DROP TABLE {meta}"),
}


def _corrupt_from_the_cli(world: World, kind: str) -> None:
    seen = {command: world.keys(command) for command in ("list", "check")}
    seen["audit --verify"] = world.keys("audit", "--verify")
    seen["gopc seal --store"] = world.seal()
    statuses = {command: status for command, (status, _, _) in seen.items()}
    print(f"\nDAMAGE {world.kind} {kind}: {statuses}")
    for command, (status, out, err) in seen.items():
        assert (status, out) == (26, b""), (command, err)
        assert err.startswith("error: store_corrupt: "), (command, err)


@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
@pytest.mark.parametrize("kind", sorted(FILE_DAMAGE))
def test_a_damaged_store_file_is_store_corrupt_from_the_cli(world: World, kind: str) -> None:
    FILE_DAMAGE[kind](world)
    _corrupt_from_the_cli(world, kind)


@pytest.mark.parametrize("kind", sorted(ROW_DAMAGE))
def test_damaged_rows_and_tables_are_store_corrupt_from_the_cli(world: World, kind: str) -> None:
    ROW_DAMAGE[kind](world)
    _corrupt_from_the_cli(world, kind)


def test_a_dropped_audit_table_is_store_corrupt_where_the_audit_is_read(world: World) -> None:
    """Reading keys does not read the audit log; reading or writing the audit does."""
    world.sql("DROP TABLE {audit}")
    retired = world.keys("retire", world.google, "--reason", "r")
    for status, out, err in (world.keys("audit"), retired):
        assert (status, out) == (26, b""), err
        assert err.startswith("error: store_corrupt: "), err


# The option is parsed before the store is opened: one store is enough.
@pytest.mark.parametrize("world", ["sqlite"], indirect=True)
def test_at_outside_openpgp_times_is_a_usage_error(world: World) -> None:
    outside = ("1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "-1", "2106-02-07T06:28:16Z",
               "9999-12-31T23:59:59Z")  # fmt: skip
    inside = ("1970-01-01T00:00:00Z", "2106-02-07T06:28:15Z")  # OpenPGP's unsigned 32 bits
    for at in outside + inside:
        generated = world.keys("generate", "--uid", "X <x@x.example>", "--bits", "2048", at=at)
        sealed = world(
            "gopc", "seal", "--session-id", "s", "--store", world.location, "--env", "sandbox",
            "--at", at, stdin=b"{}",
        )  # fmt: skip
        if at in outside:
            for status, _, err in (generated, sealed):
                assert status == 2 and err.startswith("error: usage: "), (at, err)
        else:  # the seal goes on and refuses something else ({} is no card)
            assert generated[0] == 0, (at, generated[2])
            assert sealed[0] not in (0, 1, 2), (at, sealed[2])
