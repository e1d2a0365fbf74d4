"""The PostgreSQL store and service state beyond the shared keystore suite: the schema command,
sealing at rest, NOTIFY on commit, and state shared between two service instances."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading

import psycopg
import pytest

from pushprov import PassphraseError, UsageError
from pushprov.keys import Environment
from pushprov.service import PostgresServiceState
from pushprov.store import (
    Change,
    KeyringWatcher,
    PostgresStore,
    StoreConflictError,
    StoredResponse,
    StoreUnavailableError,
    migrate,
    open_store,
    redacted_url,
)

from .conftest import T0
from .instances import child_env
from .postgres_support import Cluster
from .test_keystore_support import PASSPHRASE, key_pool, keystore

PROD = Environment.PRODUCTION


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pushprov", *args],
        env=child_env({**os.environ, **env}), capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_store_migrate_creates_then_keeps_the_schema(postgres: Cluster) -> None:
    url = postgres.create_database("migrate")
    with pytest.raises(UsageError, match="store migrate"):
        PostgresStore.open(url, passphrase=PASSPHRASE, create=True)
    # The CLI way, with the password outside argv.
    bare = postgres.url("migrate", with_password=False)
    secret = {"PGPASSWORD": postgres.password}
    first = _cli("store", "migrate", "--store", bare, "--json", env=secret)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"store": bare, "from": 0, "to": 4}
    again = _cli("store", "migrate", "--store", bare, env=secret)
    assert again.returncode == 0 and "up to date" in again.stdout
    assert _cli("store", "migrate", "--store", "/tmp/x.db", env=secret).returncode == 2
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version FROM pushprov_schema").fetchall()
    assert sorted(rows) == [(1,), (2,), (3,), (4,)]


def test_keys_cli_and_clients_cli_run_against_postgresql(postgres: Cluster) -> None:
    url = postgres.create_database("cli")
    migrate(url)
    bare = postgres.url("cli", with_password=False)
    env = {"PGPASSWORD": postgres.password, "PUSHPROV_STORE_PASSPHRASE": PASSPHRASE.decode()}
    made = _cli("keys", "generate", "--store", bare, "--env", "sandbox", "--json",
                "--uid", "I <i@x.example>", "--bits", "2048", env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    key_id = json.loads(made.stdout)["key_id"]
    assert (
        _cli("keys", "promote", "--store", bare, "--env", "sandbox", key_id, env=env).returncode
        == 0
    )
    listed = _cli("keys", "list", "--store", bare, "--env", "sandbox", "--json", env=env)
    assert json.loads(listed.stdout)["keys"][0]["state"] == "active", listed.stdout
    audit = _cli("keys", "audit", "--store", bare, "--env", "sandbox", "--verify", env=env)
    assert audit.returncode == 0, audit.stderr
    added = _cli("clients", "add", "backend", "--store", bare, env=env)
    assert added.returncode == 0, added.stderr
    api_key = added.stdout.strip()
    state = PostgresServiceState(url)
    try:
        assert state.authenticate(api_key) == "backend"
    finally:
        state.close()
    assert _cli("clients", "revoke", "backend", "--store", bare, env=env).returncode == 0
    shown = _cli("clients", "list", "--json", "--store", bare, env=env)
    assert json.loads(shown.stdout)[0]["revoked"] is not None


def test_secrets_are_sealed_at_rest_and_the_password_never_shown(postgres: Cluster) -> None:
    url = postgres.create_database("sealing")
    migrate(url)
    store = open_store(url, passphrase=PASSPHRASE, create=True, kdf_log2n=10)
    assert isinstance(store, PostgresStore)
    assert postgres.password not in repr(store) and redacted_url(url) in repr(store)
    ks = keystore(store)
    record = ks.generate(PROD, user_id="I <i@x.example>", at=T0)
    clear = store.load_secret(PROD.value, record.key_id)
    assert clear is not None
    secret_key = next(k for k in key_pool().ours if k.fingerprint == record.key_id)
    assert secret_key.armor().encode() == clear
    with psycopg.connect(url) as conn:
        (sealed,) = conn.execute(
            "SELECT sealed_secret FROM pushprov_keys WHERE key_id = %s", (record.key_id,)
        ).fetchone() or (None,)
        dump = b"".join(bytes(v) for (v,) in conn.execute("SELECT value FROM pushprov_meta"))
    assert sealed is not None and clear not in bytes(sealed) and b"PRIVATE" not in bytes(sealed)
    assert PASSPHRASE not in dump
    with pytest.raises(PassphraseError):
        PostgresStore.open(url, passphrase=b"guess")
    ks.close()
    with pytest.raises(StoreUnavailableError) as failed:
        PostgresStore.open(
            postgres.url("sealing").replace(str(postgres.port), "1"), passphrase=PASSPHRASE
        )
    assert postgres.password not in str(failed.value)


def test_each_commit_is_announced_once_committed(postgres: Cluster) -> None:
    url = postgres.create_database("notify")
    migrate(url)
    heard: list[str | None] = []
    arrived = threading.Event()

    def on_change(env: str | None) -> None:
        heard.append(env)
        if env is not None:
            arrived.set()

    watcher = KeyringWatcher(url, on_change).start()
    try:
        assert watcher.wait_listening(10)
        assert heard == [None]  # a (re)connection alone means: re-read, something may be missed
        shared = open_store(url, passphrase=PASSPHRASE, create=True, kdf_log2n=10)
        ks = keystore(shared)
        record = ks.generate(PROD, user_id="I <i@x.example>", at=T0)
        assert arrived.wait(10)
        assert heard[1:] == ["production"]
        # A change the store rejects announces nothing: its pg_notify rolls back with it.
        arrived.clear()
        view = shared.read(PROD.value)
        stale = Change(env=PROD.value, base_version=view.version - 1, upsert=view.keys)
        with pytest.raises(StoreConflictError, match="re-read and retry"):
            shared.commit(stale)
        assert shared.read(PROD.value) == view
        # Nor does one the keystore's rules refuse before it reaches the store.
        with pytest.raises(Exception, match="pending"):
            ks.retire(PROD, record.key_id, at=T0)
        # The next commit's announcement is the next one heard: nothing came in between.
        ks.promote(PROD, record.key_id, at=T0)
        assert arrived.wait(10)
        assert heard[1:] == ["production", "production"]
        ks.close()
    finally:
        watcher.stop()


def test_two_instances_share_clients_rate_and_idempotency(postgres: Cluster) -> None:
    url = postgres.create_database("state")
    migrate(url)
    first, second = PostgresServiceState(url), PostgresServiceState(url)
    try:
        now = dt.datetime.now(dt.UTC)
        api_key = first.add_client("backend", at=now)
        assert second.authenticate(api_key) == "backend"
        with pytest.raises(UsageError, match="exists"):
            second.add_client("backend", at=now)
        assert first.authenticate("pp_" + "x" * 43) is None
        counts = [state.count_request("backend", 1000) for state in (first, second, first)]
        assert counts == [1, 2, 3]
        assert first.body_fingerprint(b"body") == second.body_fingerprint(b"body")
        since = now - dt.timedelta(hours=24)
        stored = StoredResponse(first.body_fingerprint(b"body"), 200, b"answer-1")
        assert first.remember("backend", "r1", stored, at=now, since=since) == stored
        late = StoredResponse(stored.fingerprint, 200, b"answer-2")
        assert second.remember("backend", "r1", late, at=now, since=since) == stored
        assert second.recall("backend", "r1", since=since) == stored
        # Past the window the record may be replaced.
        later = now + dt.timedelta(hours=25)
        assert (
            second.remember("backend", "r1", late, at=later, since=later - dt.timedelta(hours=24))
            == late
        )
        second.revoke_client("backend", at=now)
        assert first.authenticate(api_key) is None
        assert first.ping() and postgres.password not in repr(first)
    finally:
        first.close()
        second.close()


def test_a_lost_connection_fails_one_call_and_the_next_reconnects(postgres: Cluster) -> None:
    url = postgres.create_database("reconnect")
    migrate(url)
    store = PostgresStore.open(url, passphrase=PASSPHRASE, create=True, kdf_log2n=10)
    state = PostgresServiceState(url)
    ks = keystore(store)
    record = ks.generate(PROD, user_id="I <i@x.example>", at=T0)
    with psycopg.connect(postgres.url(), autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = 'reconnect' AND pid <> pg_backend_pid()"
        )
    with pytest.raises(StoreUnavailableError):
        store.read(PROD.value)
    assert [row.key_id for row in store.read(PROD.value).keys] == [record.key_id]
    with pytest.raises(StoreUnavailableError):
        state.list_clients()
    assert state.list_clients() == []
    # Not ready for a moment after the failure (readiness follows the callers), then ready.
    assert not state.ping()
    state.unready_after_failure_seconds = 0.0
    assert state.ping()
    ks.close()
    state.close()
