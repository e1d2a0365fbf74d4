"""The hosting layer and the backend: one passphrase rule, one socket per worker spread by the
kernel, one schema description for both databases, one file check for both SQLite files."""

from __future__ import annotations

import pickle
import socket
import sqlite3
from pathlib import Path

import psycopg
import pytest

from pushprov import InputTooLargeError, UsageError
from pushprov.cli._io import first_line as cli_first_line
from pushprov.hosting import PASSPHRASE_ENV, ServiceConfig, bind, listen_socket, read_passphrase
from pushprov.hosting._server import _OwnSocket
from pushprov.store import (
    PostgresServiceState,
    SqliteServiceState,
    SqliteStore,
    StoreCorruptError,
    StoreInsecureError,
    migrate,
    open_backend,
    passphrase_file_beside,
)

from .postgres_support import Cluster
from .test_keystore_support import PASSPHRASE


def test_one_passphrase_rule_refuses_empty_from_a_file_and_from_the_environment(
    tmp_path: Path,
) -> None:
    backend = open_backend(tmp_path / "keystore.db")
    assert read_passphrase(None, backend, {PASSPHRASE_ENV: "words"}) == b"words"
    with pytest.raises(UsageError, match="passphrase is missing"):
        read_passphrase(None, backend, {PASSPHRASE_ENV: ""})  # the service once accepted this
    with pytest.raises(UsageError, match="passphrase is missing"):
        read_passphrase(None, backend, {})
    empty = tmp_path / "empty"
    empty.write_bytes(b"\nsecond line\n")
    with pytest.raises(UsageError, match="store_passphrase_file, or keep it in"):
        read_passphrase(empty, backend, {PASSPHRASE_ENV: "not used when a file is named"})
    words = tmp_path / "words"
    words.write_bytes(b"from the file\nignored\n")
    assert read_passphrase(words, backend, {PASSPHRASE_ENV: "env"}) == b"from the file"
    # The file `pushprov init` makes beside the store comes last, and only when it is ours alone.
    beside = tmp_path / "store-passphrase"
    beside.write_bytes(b"beside\n")
    beside.chmod(0o600)
    assert read_passphrase(None, backend, {}) == b"beside"
    assert read_passphrase(None, backend, {PASSPHRASE_ENV: "env"}) == b"env"
    beside.chmod(0o644)
    with pytest.raises(StoreInsecureError):
        read_passphrase(None, backend, {})


def test_a_named_passphrase_file_is_read_alike_by_the_service_and_the_cli(tmp_path: Path) -> None:
    # One reading rule (pushprov._files): the first line of at most 4096 bytes, else refused.
    backend = open_backend(tmp_path / "keystore.db")
    environ = {PASSPHRASE_ENV: "not used when a file is named"}
    largest = tmp_path / "largest"
    largest.write_bytes(b"x" * 4095 + b"\n")
    too_large = tmp_path / "too-large"
    too_large.write_bytes(b"x" * 4097)
    missing = tmp_path / "missing"
    for read in (lambda path: read_passphrase(path, backend, environ), cli_first_line):
        assert read(str(largest)) == b"x" * 4095
        with pytest.raises(InputTooLargeError, match="too-large is larger than the policy allows"):
            read(str(too_large))
        with pytest.raises(UsageError, match=r"cannot read .*missing: No such file"):
            read(str(missing))


def test_the_passphrase_file_beside_the_store_follows_the_same_rule(tmp_path: Path) -> None:
    # Found without being named, it is read as a named one is: an oversized file is refused,
    # not cut at 4096 bytes into a passphrase nobody chose.
    tmp_path.chmod(0o700)
    backend = open_backend(tmp_path / "keystore.db")
    beside = passphrase_file_beside(tmp_path / "keystore.db")
    beside.touch(mode=0o600)
    beside.write_bytes(b"x" * 4095 + b"\n")
    assert read_passphrase(None, backend, {}) == b"x" * 4095
    beside.write_bytes(b"x" * 4097)
    with pytest.raises(InputTooLargeError, match="larger than the policy allows"):
        read_passphrase(None, backend, {})


def test_each_worker_binds_its_own_socket_and_the_kernel_spreads_connections() -> None:
    with bind(ServiceConfig(port=0, workers=2)) as reserved:
        port = reserved.getsockname()[1]
        assert port != 0
        # What each worker process unpickles: a list holding a fresh listening socket.
        unpickled = [pickle.loads(pickle.dumps(_OwnSocket("127.0.0.1", port))) for _ in range(2)]
        listeners = [sockets[0] for sockets in unpickled]
        assert [len(sockets) for sockets in unpickled] == [1, 1]
        assert {sock.getsockname()[1] for sock in listeners} == {port}
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(64)]
        accepted = []
        for sock in listeners:
            sock.setblocking(False)
            count = 0
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                count += 1
            accepted.append(count)
        # Every connection reached a listening worker (none waits at the parent's reserving
        # socket, which is bound but not listening), and both workers got a share.
        assert sum(accepted) == 64 and min(accepted) > 0, accepted
        for each in clients + listeners:
            each.close()
    # A port another server holds is refused at once (ours all need SO_REUSEPORT).
    with listen_socket("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        for workers in (1, 2):
            with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}"):
                bind(ServiceConfig(port=port, workers=workers))


def test_the_backend_is_chosen_once_from_the_location(tmp_path: Path) -> None:
    config = ServiceConfig(data_dir=tmp_path / "data")
    embedded = config.backend()
    assert not embedded.shared and embedded.name == str(tmp_path / "data" / "keystore.db")
    assert embedded.watch(lambda env: None) is None
    with pytest.raises(UsageError, match="postgresql://"):
        embedded.migrate()
    state = embedded.open_state()
    assert isinstance(state, SqliteServiceState)
    state.close()
    assert (tmp_path / "data" / "service.sqlite").exists()
    shared = open_backend("postgresql://user:hunter2@db.example:5433/keys")
    assert shared.shared and "hunter2" not in shared.name + repr(shared)


def test_the_state_file_passes_the_key_stores_checks(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    directory.mkdir(mode=0o700)
    real = tmp_path / "elsewhere.sqlite"
    real.touch(mode=0o600)
    (directory / "service.sqlite").symlink_to(real)
    with pytest.raises(StoreInsecureError, match="symbolic link"):
        SqliteServiceState(directory / "service.sqlite")
    (directory / "service.sqlite").unlink()
    (directory / "service.sqlite").touch(mode=0o640)
    with pytest.raises(StoreInsecureError, match="group or others"):
        SqliteServiceState(directory / "service.sqlite")


def test_the_state_schema_is_made_in_one_transaction(tmp_path: Path) -> None:
    path = tmp_path / "service.sqlite"
    path.touch(mode=0o600)
    with sqlite3.connect(path) as conn:  # a table named as the index to be
        conn.execute("CREATE TABLE service_idempotency_created (x)")
    with pytest.raises(StoreCorruptError):  # not the schema we make: not ours
        SqliteServiceState(path)
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    # Before, executescript() committed the tables made before the failure.
    assert tables == {"service_idempotency_created"}


def _sqlite_columns(path: Path, tables: dict[str, str]) -> dict[str, list[tuple[str, bool]]]:
    with sqlite3.connect(path) as conn:
        return {
            logical: [(row[1], bool(row[3] or row[5])) for row in conn.execute(
                f"PRAGMA table_info({physical})"
            )]
            for logical, physical in tables.items()
        }  # fmt: skip


def test_both_databases_have_the_tables_of_one_description(
    postgres: Cluster, tmp_path: Path
) -> None:
    url = postgres.create_database("one_schema")
    migrate(url)
    PostgresServiceState(url).close()
    SqliteStore.open(tmp_path / "keystore.db", passphrase=PASSPHRASE, create=True, kdf_log2n=10)
    SqliteServiceState(tmp_path / "service.sqlite").close()
    logical = ("meta", "keyring", "keys", "audit", "clients", "idempotency", "rate")
    embedded = _sqlite_columns(tmp_path / "keystore.db", {n: n for n in logical[:4]})
    embedded |= _sqlite_columns(
        tmp_path / "service.sqlite", {n: f"service_{n}" for n in logical[4:]}
    )
    with psycopg.connect(url) as conn:
        shared = {
            name: [
                (str(column).replace("window_start", "window"), nullable == "NO")
                for column, nullable in conn.execute(
                    "SELECT column_name, is_nullable FROM information_schema.columns "
                    "WHERE table_name = %s ORDER BY ordinal_position",
                    (f"pushprov_{name}",),
                ).fetchall()
            ]
            for name in logical
        }
    assert embedded == shared
    # Columns are added in schema order: the row MACs (schema 2) after what version 1 had, then
    # the custody of HSM keys (schema 3), then the partner state and evidence (schema 4).
    assert embedded["keys"][-6:] == [
        ("sealed_secret", False),
        ("written", False),
        ("mac", False),
        ("custody", False),
        ("partner", False),
        ("evidence", False),
    ]
