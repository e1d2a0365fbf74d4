"""A PostgreSQL that stops answering without closing its connections (issue 14): ``connect``
adds keepalives, ``tcp_user_timeout``, ``statement_timeout`` and a bound on each reply unless
the operator's URL sets its own, so the stores fail within seconds, and recover by themselves.
The service under traffic: tests/test_faults.py."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from pushprov.keys import Environment
from pushprov.service import PostgresServiceState
from pushprov.store import PostgresStore, StoreUnavailableError, migrate
from pushprov.store._postgres import connect

from .postgres_support import USER, Cluster, FreezableProxy
from .service_support import ping_while_locked
from .test_keystore_support import PASSPHRASE, keystore

PROD = Environment.PRODUCTION
# What a caller may wait for one store call in a freeze: the 3 s reply bound, or the 2 s
# connect_timeout of a reconnection, plus room for a loaded machine.
BOUND = 4.5


def test_connect_adds_timeouts_unless_the_url_sets_them(postgres: Cluster) -> None:
    url = postgres.create_database("settings")
    with connect(url, application="pushprov-service") as conn:
        given = conn.info.get_parameters()
        assert conn.execute("SHOW statement_timeout").fetchone() == ("2500ms",)
    assert {
        k: given.get(k) for k in ("connect_timeout", "keepalives_idle", "tcp_user_timeout")
    } == {
        "connect_timeout": "2",
        "keepalives_idle": "1",
        "tcp_user_timeout": "3000",
    }
    options = quote("-c statement_timeout=60000 -c lock_timeout=1000")
    own = f"{url}?connect_timeout=9&keepalives_idle=7&options={options}"
    with connect(own, application="pushprov-service") as conn:
        given = conn.info.get_parameters()
        assert conn.execute("SHOW statement_timeout").fetchone() == ("1min",)
        assert conn.execute("SHOW lock_timeout").fetchone() == ("1s",)
    assert (given["connect_timeout"], given["keepalives_idle"]) == ("9", "7")
    assert given["tcp_user_timeout"] == "3000"  # not in the URL: ours
    # A migration may run long: no statement_timeout of ours.
    with connect(url, application="pushprov-migrate") as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("0",)


def test_a_frozen_database_fails_calls_within_seconds_and_they_recover(postgres: Cluster) -> None:
    url = postgres.create_database("frozen_stores")
    migrate(url)
    keystore(PostgresStore.open(url, passphrase=PASSPHRASE, create=True, kdf_log2n=10)).close()
    with FreezableProxy(postgres.port) as proxy:
        via_proxy = f"postgresql://{USER}:{postgres.password}@127.0.0.1:{proxy.port}/frozen_stores"
        store = PostgresStore.open(via_proxy, passphrase=PASSPHRASE)
        skew = [0.0]  # moved on to pass the state's not-ready window after a failure
        state = PostgresServiceState(via_proxy, monotonic=lambda: time.monotonic() + skew[0])
        try:
            assert state.ping() and store.read(PROD.value).keys == ()
            proxy.freeze()
            waits = []
            for call in (
                lambda: store.read(PROD.value),  # an open connection: the reply bound
                lambda: store.read(PROD.value),  # a reconnection: connect_timeout
                state.list_clients,
                state.list_clients,
            ):
                began = time.monotonic()
                with pytest.raises(StoreUnavailableError) as failed:
                    call()
                waits.append(time.monotonic() - began)
                assert postgres.password not in str(failed.value)
            assert max(waits) < BOUND, waits
            assert min(waits) > 1.5, waits  # they did wait on the database: not refused at once
            # Readiness right after a failed call: no again, without touching the database.
            assert not ping_while_locked(state)
            # And past that window, its own probe, bounded like the calls.
            skew[0] += state.unready_after_failure_seconds
            began = time.monotonic()
            assert not state.ping()
            waits.append(time.monotonic() - began)
            assert BOUND > waits[-1] > 1.5, waits
            proxy.thaw()
            # The next call reconnects: no restart, no operator.
            assert state.list_clients() == []
            skew[0] += state.unready_after_failure_seconds
            assert state.ping()
            assert store.read(PROD.value).keys == ()
        finally:
            store.close()
            state.close()
    print(f"\nfrozen store calls gave up after {[round(w, 2) for w in waits]} s")
