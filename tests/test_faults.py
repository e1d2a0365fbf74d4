"""Faults under traffic, with real parts (issue 14): PostgreSQL stopped and started again under
`pushprov serve`, PostgreSQL frozen with its connections open (behind ``FreezableProxy``), the
SQLite store's disk full, a worker of `serve --workers 2` killed.

Each test runs `pushprov serve` as a real process and a steady stream of authenticated
POST /v1/gopc requests against it, then breaks something underneath. What callers may see is
200 or 503 ``SERVICE_UNAVAILABLE`` (a worker killed: also a dropped connection, the only thing
a process that is gone can give), never a 500 and never a wait beyond the client's deadline.
No accepted answer may be lost: every 200 is replayed by its requestId afterwards and must come
back byte for byte, and open. Each test prints its figures (``pytest -s`` shows them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import errno
import json
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from pushprov import open_gopc, openpgp
from pushprov.cli._demo import random_test_pan
from pushprov.keys import Environment, FileKeySource, Keystore
from pushprov.store import (
    PostgresServiceState,
    PostgresStore,
    ServiceState,
    SqliteServiceState,
    SqliteStore,
    Store,
    _state,
    migrate,
)

from .instances import child_env
from .postgres_support import Cluster, FreezableProxy, find_binaries, postgres_cluster
from .service_support import request_body, running_server

PASSPHRASE = b"faults test passphrase"
PAN = random_test_pan().reveal()
ENV = Environment.SANDBOX
DEADLINE = 15.0  # seconds a caller waits for an answer: none may take longer
SETTINGS = {
    "PUSHPROV_STORE_PASSPHRASE": PASSPHRASE.decode(),
    "PUSHPROV_KEY_REFRESH_SECONDS": "1",
    "PUSHPROV_RATE_LIMIT_PER_SECOND": "100000",
    "PUSHPROV_LOG_LEVEL": "warning",
    # The replays at the end come up to a minute after their first send.
    "PUSHPROV_TIMESTAMP_SKEW": "600",
}


# ---------------------------------------------------------------------------------------------
# the parts: keys, a served process, traffic, a readiness probe
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Provisioned:
    api_key: str
    google: openpgp.SecretKey
    ours: openpgp.Certificate


def provision(store: Store, state: ServiceState) -> Provisioned:
    """One active key of ours and one of Google's, and an API client."""
    now = dt.datetime.now(dt.UTC)
    operator = Keystore(store, actor="operator")
    try:
        google = openpgp.generate_key("G <g@google.example>", bits=2048, at=now)
        ours = operator.generate(ENV, user_id="Issuer <i@issuer.example>", bits=2048, at=now)
        operator.promote(ENV, ours.key_id, at=now)
        theirs = operator.import_key(ENV, google.certificate.armor().encode(), at=now)
        operator.promote(ENV, theirs.key_id, at=now)
        ring = operator.snapshot(ENV)
        cert = ring.certificate(ring.record(ours.key_id))
        api_key = state.add_client("backend", at=now)
    finally:
        operator.close()
        state.close()
    return Provisioned(api_key, google, cert)


@dataclasses.dataclass
class Served:
    url: str
    data: Path
    log: Path
    process: subprocess.Popen[bytes]

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.data / "dev-tls.crt"))

    def client(self, api_key: str, timeout: float = DEADLINE) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            verify=self.tls(),
            timeout=timeout,
            headers={"authorization": f"Bearer {api_key}", "content-type": "application/json"},
        )

    def workers(self) -> list[int]:
        """The supervisor's worker processes (not multiprocessing's resource tracker)."""
        found = []
        for child in _children(self.process.pid):
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()  # a zombie's is empty
            except OSError:  # gone meanwhile
                continue
            if b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline:
                found.append(child)
        return found


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(
    data: Path, log: Path, *, store: str, env: Mapping[str, str], workers: int = 1
) -> Iterator[Served]:
    """`pushprov serve --store STORE --data-dir DATA`, its log (stderr) in ``log``; ready."""
    port = _free_port()
    with open(log, "wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "pushprov", "serve", "--store", store, "--data-dir", str(data),
             "--port", str(port), "--workers", str(workers)],
            env=child_env({**os.environ, **SETTINGS, **env}), stdout=subprocess.DEVNULL,
            stderr=sink,
        )  # fmt: skip
    served = Served(f"https://127.0.0.1:{port}", data, log, process)
    try:
        deadline = time.monotonic() + 60
        while _probe(served) != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _probe(served: Served, timeout: float = 5.0) -> int:
    """/readyz's status; 0 when nothing answered within ``timeout``."""
    if not (served.data / "dev-tls.crt").exists():  # serve makes it as it starts
        return 0
    try:
        with httpx.Client(verify=served.tls(), timeout=timeout) as probe:
            return probe.get(f"{served.url}/readyz").status_code
    except httpx.TransportError:
        return 0


@dataclasses.dataclass(frozen=True)
class Outcome:
    started: float
    ended: float
    status: int  # 0: no HTTP answer (the connection was dropped or refused)
    code: str | None  # errorResponseCode of an error answer
    body: bytes
    answer: bytes


class Traffic:
    """``threads`` callers, each sending GOPC requests back to back until stopped."""

    def __init__(self, served: Served, api_key: str, tag: str, threads: int = 2) -> None:
        self._served = served
        self._api_key = api_key
        self._tag = tag
        self._stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self._threads = [threading.Thread(target=self._run, args=(n,)) for n in range(threads)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=DEADLINE + 10)

    def _run(self, thread: int) -> None:
        with self._served.client(self._api_key) as client:
            index = 0
            while not self._stop.is_set():
                index += 1
                request_id = f"{self._tag}-{thread}-{index}"
                body = json.dumps(request_body(PAN, request_id=request_id, session=request_id))
                started = time.monotonic()
                try:
                    response = client.post("/v1/gopc", content=body.encode())
                    status, answer = response.status_code, response.content
                except httpx.TransportError:
                    status, answer = 0, b""
                ended = time.monotonic()
                code = None
                if status not in (0, 200) and answer:
                    code = json.loads(answer).get("errorResponseCode")
                self.outcomes.append(Outcome(started, ended, status, code, body.encode(), answer))
                if status != 200:
                    time.sleep(0.02)  # a caller backs off a little

    def first(self, status: int, after: float) -> float | None:
        """When the first request started after ``after`` got ``status``."""
        times = [o.started for o in self.outcomes if o.status == status and o.started >= after]
        return min(times) if times else None

    def counts(self) -> dict[str, int]:
        return dict(
            Counter(str(o.status) + (f" {o.code}" if o.code else "") for o in self.outcomes)
        )


class Readiness:
    """GET /readyz every 0.1 s: (time, status). ``timeout``: how long a probe waits."""

    def __init__(self, served: Served, timeout: float = 5.0) -> None:
        self._served = served
        self._timeout = timeout
        self._stop = threading.Event()
        self.seen: list[tuple[float, int]] = []
        self.answered: list[tuple[float, int]] = []  # (when the answer came, status)
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Readiness:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            sent = time.monotonic()
            status = _probe(self._served, self._timeout)
            self.seen.append((sent, status))
            self.answered.append((time.monotonic(), status))

    def first(self, status: int, after: float) -> float | None:
        times = [t for t, s in self.seen if s == status and t >= after]
        return min(times) if times else None


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def check_answers_kept(served: Served, provisioned: Provisioned, outcomes: list[Outcome]) -> int:
    """Every 200 replayed by its requestId gives the same bytes, and opens; how many."""
    accepted = [o for o in outcomes if o.status == 200]
    with served.client(provisioned.api_key) as client:
        for outcome in accepted:
            again = client.post("/v1/gopc", content=outcome.body)
            assert again.status_code == 200, again.text
            assert again.content == outcome.answer
    for outcome in accepted[:: max(1, len(accepted) // 50)]:  # opening all adds nothing
        session = json.loads(outcome.body)["serverSessionId"]
        sealed = json.loads(outcome.answer)["googleOpaquePaymentCard"].encode()
        opened = open_gopc(
            sealed,
            session_id=session,
            decrypt_with=[provisioned.google],
            verify_with=[provisioned.ours],
        )
        assert opened.gopc.card.account_number.reveal() == PAN
    return len(accepted)


def check_log(served: Served) -> str:
    text = served.log.read_text(errors="replace")
    assert PAN not in text
    assert "Traceback" not in text, text[-3000:]
    return text


def figures(name: str, **values: object) -> None:
    print(f"\nFAULT {name}: " + json.dumps(values, sort_keys=True))


# ---------------------------------------------------------------------------------------------
# PostgreSQL stopped mid-traffic and started again
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[Cluster]:
    """A cluster of this module's own: stopping the session's would fail other tests."""
    binaries = find_binaries()
    if binaries is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is required in CI: .ci/run must install it")
        pytest.skip("PostgreSQL (initdb, pg_ctl) not installed")
    with postgres_cluster(binaries) as cluster:
        yield cluster


def _provisioned_database(cluster: Cluster, name: str) -> Provisioned:
    """A new database of ``cluster``, migrated, with the keys and client the traffic uses."""
    url = cluster.create_database(name)
    migrate(url)
    store = PostgresStore.open(url, passphrase=PASSPHRASE, create=True, kdf_log2n=10)
    return provision(store, PostgresServiceState(url))


def test_postgres_stopped_and_started_under_traffic(own_cluster: Cluster, tmp_path: Path) -> None:
    provisioned = _provisioned_database(own_cluster, "faults")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    bare = own_cluster.url("faults", with_password=False)
    env = {"PGPASSWORD": own_cluster.password}
    with (
        serving(data, tmp_path / "serve.log", store=bare, env=env) as served,
        Readiness(served) as readiness,
        Traffic(served, provisioned.api_key, "pg") as traffic,
    ):
        wait_for(lambda: traffic.first(200, 0) is not None, 20, "a first 200")
        time.sleep(1.0)
        stopping = time.monotonic()
        own_cluster.stop()
        stopped = time.monotonic()
        wait_for(lambda: readiness.first(503, stopping) is not None, 10, "/readyz 503")
        wait_for(lambda: traffic.first(503, stopped) is not None, 10, "a caller's 503")
        time.sleep(3.0)  # callers keep coming while the database is away
        starting = time.monotonic()
        own_cluster.start()
        started = time.monotonic()
        wait_for(lambda: readiness.first(200, started) is not None, 20, "/readyz 200 again")
        wait_for(lambda: traffic.first(200, started) is not None, 20, "a caller's 200 again")
        time.sleep(1.0)
        assert served.process.poll() is None  # recovered without a restart
    outcomes = traffic.outcomes
    statuses = Counter(o.status for o in outcomes)
    assert set(statuses) <= {200, 503}, traffic.counts()
    assert {o.code for o in outcomes if o.status == 503} == {"SERVICE_UNAVAILABLE"}
    slowest = max(o.ended - o.started for o in outcomes)
    assert slowest < DEADLINE
    to_503 = readiness.first(503, stopping)
    back = traffic.first(200, started)
    ready_again = readiness.first(200, started)
    assert to_503 is not None and back is not None and ready_again is not None
    assert to_503 - stopping < 5.0
    assert ready_again - started < 5.0 and back - started < 5.0
    kept = check_answers_kept(served_for_replay(data, tmp_path, bare, env), provisioned, outcomes)
    check_log(served)
    figures(
        "postgres-stop-start",
        callers=traffic.counts(),
        pg_ctl_stop_seconds=round(stopped - stopping, 2),
        readyz_503_after_stop_began_seconds=round(to_503 - stopping, 2),
        outage_seconds=round(started - stopping, 2),
        readyz_200_after_start_seconds=round(ready_again - started, 2),
        first_caller_200_after_start_seconds=round(back - started, 2),
        slowest_answer_seconds=round(slowest, 3),
        accepted_replayed=kept,
        down_for_starting_seconds=round(started - starting, 2),
    )


def served_for_replay(data: Path, tmp_path: Path, store: str, env: Mapping[str, str]) -> Served:
    """A fresh `serve` over the same store (the first one is gone): an accepted answer must
    survive the instance that gave it."""
    stack = contextlib.ExitStack()
    served = stack.enter_context(serving(data, tmp_path / "replay.log", store=store, env=env))
    _CLEANUP.append(stack)
    return served


_CLEANUP: list[contextlib.ExitStack] = []


@pytest.fixture(autouse=True)
def _close_replay_servers() -> Iterator[None]:
    yield
    while _CLEANUP:
        _CLEANUP.pop().close()


# ---------------------------------------------------------------------------------------------
# PostgreSQL that stops answering without closing its connections
# ---------------------------------------------------------------------------------------------


PARTITION_SECONDS = 20.0  # frozen long past every timeout: what would otherwise hang, hangs


def test_postgres_frozen_under_traffic(own_cluster: Cluster, tmp_path: Path) -> None:
    """The database stops answering and keeps its connections open: callers get 503 within
    the client's deadline (not TCP's minutes), /readyz 503; once it answers again, the same
    `serve` recovers by itself and no accepted answer is lost."""
    provisioned = _provisioned_database(own_cluster, "frozen")
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    env = {"PGPASSWORD": own_cluster.password}
    with FreezableProxy(own_cluster.port) as proxy:
        # serve knows the proxy only, with no timeout of its own in the URL: our defaults.
        via_proxy = f"postgresql://pushprov@127.0.0.1:{proxy.port}/frozen"
        with (
            serving(data, tmp_path / "serve.log", store=via_proxy, env=env) as served,
            Readiness(served, timeout=DEADLINE) as readiness,
            Traffic(served, provisioned.api_key, "frozen") as traffic,
        ):
            wait_for(lambda: traffic.first(200, 0) is not None, 20, "a first 200")
            time.sleep(1.0)
            freezing = time.monotonic()
            proxy.freeze()
            wait_for(lambda: traffic.first(503, freezing) is not None, 20, "a caller's 503")
            # Probes queue behind the callers' stalled calls: up to a probe's 15 s timeout each.
            wait_for(lambda: readiness.first(503, freezing) is not None, 35, "/readyz 503")
            time.sleep(max(0.0, freezing + PARTITION_SECONDS - time.monotonic()))
            thawing = time.monotonic()
            proxy.thaw()
            wait_for(lambda: traffic.first(200, thawing) is not None, 20, "a caller's 200 again")
            wait_for(lambda: readiness.first(200, thawing) is not None, 20, "/readyz 200 again")
            time.sleep(1.0)
            assert served.process.poll() is None  # recovered without a restart
        outcomes = traffic.outcomes
        during = [o for o in outcomes if freezing <= o.started < thawing]
        assert set(Counter(o.status for o in outcomes)) <= {200, 503}, traffic.counts()
        assert {o.code for o in outcomes if o.status == 503} == {"SERVICE_UNAVAILABLE"}
        # Nothing waited for TCP: every answer, frozen or not, within the caller's deadline.
        slowest = max(o.ended - o.started for o in outcomes)
        assert slowest < DEADLINE
        # Started in the freeze and answered: 503 (a 200 only for what finished before it).
        first_503 = min(o.ended for o in during if o.status == 503)
        assert sum(o.status == 503 for o in during) >= 2
        # Begun and answered inside the freeze (not just before it): only 503s.
        frozen = [o for o in during if o.started > freezing + 1.0 and o.ended < thawing]
        assert frozen and {o.status for o in frozen} == {503}, Counter(o.status for o in frozen)
        to_503 = readiness.first(503, freezing)
        back = traffic.first(200, thawing)
        ready_again = readiness.first(200, thawing)
        assert to_503 is not None and back is not None and ready_again is not None
        # Seconds, not TCP's minutes: each stalled store call gives up after 3 s, and a worker
        # meets a few in a row (refresh, evidence, the request's own) before its first 503.
        assert first_503 - freezing < 20.0
        kept = check_answers_kept(
            served_for_replay(data, tmp_path, via_proxy, env), provisioned, outcomes
        )
    check_log(served)
    figures(
        "postgres-frozen",
        callers=traffic.counts(),
        callers_while_frozen=dict(Counter(o.status for o in during)),
        frozen_seconds=round(thawing - freezing, 2),
        first_caller_503_after_freeze_seconds=round(first_503 - freezing, 2),
        readyz_503_probe_sent_after_freeze_seconds=round(to_503 - freezing, 2),
        readyz_503_answered_after_freeze_seconds=round(
            min(t for t, s in readiness.answered if s == 503 and t >= freezing) - freezing, 2
        ),
        readyz_while_frozen=dict(Counter(s for t, s in readiness.seen if freezing <= t < thawing)),
        slowest_answer_seconds=round(slowest, 3),
        slowest_while_frozen_seconds=round(max(o.ended - o.started for o in during), 3),
        first_caller_200_after_thaw_seconds=round(back - thawing, 2),
        readyz_200_after_thaw_seconds=round(ready_again - thawing, 2),
        accepted_replayed=kept,
    )


# ---------------------------------------------------------------------------------------------
# the SQLite store's disk full
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``where``: a real full disk (ENOSPC), and room again when a file
    on it is deleted. Mounting needs root (CI runs as root on a fresh machine)."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is made by mounting a small tmpfs, which needs root")
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def fill(path: Path) -> int:
    """Write ``path`` until the filesystem is full; the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as filler:
        while True:
            try:
                written += filler.write(chunk)
            except OSError as error:
                assert error.errno == errno.ENOSPC
                break
    # The last partial chunk too: down to the last block.
    with open(path, "ab", buffering=0) as filler, contextlib.suppress(OSError):
        while filler.write(b"\0" * 512):
            written += 512
    return written


def test_sqlite_disk_full_under_traffic(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "small", "16m") as data:
        store = data / "keystore.db"
        provisioned = provision(
            SqliteStore.open(store, passphrase=PASSPHRASE, create=True, kdf_log2n=10),
            SqliteServiceState(data / "service.sqlite"),
        )
        with serving(data, tmp_path / "serve.log", store=str(store), env={}) as served:
            with (
                Readiness(served) as readiness,
                Traffic(served, provisioned.api_key, "full") as traffic,
            ):
                wait_for(lambda: traffic.first(200, 0) is not None, 20, "a first 200")
                time.sleep(1.0)
                filling = time.monotonic()
                filled = fill(data / "filler")
                wait_for(lambda: traffic.first(503, filling) is not None, 30, "a caller's 503")
                first_503 = traffic.first(503, filling)
                assert first_503 is not None
                time.sleep(2.0)
                freeing = time.monotonic()
                (data / "filler").unlink()
                wait_for(lambda: traffic.first(200, freeing) is not None, 20, "a 200 again")
                wait_for(lambda: readiness.first(200, freeing) is not None, 10, "/readyz 200")
                time.sleep(1.0)
                assert served.process.poll() is None  # kept running through it
            during = [o for o in traffic.outcomes if filling <= o.started < freeing]
            # From half a second after the first 503: a probe begun before it may still pass.
            full_probes = Counter(s for t, s in readiness.seen if first_503 + 0.5 <= t < freeing)
            # After the traffic, so that every 200 it got is replayed.
            kept = check_answers_kept(served, provisioned, traffic.outcomes)
        leftovers = sorted(p.name for p in data.iterdir())
    outcomes = traffic.outcomes
    assert set(Counter(o.status for o in outcomes)) <= {200, 503}, traffic.counts()
    assert {o.code for o in outcomes if o.status == 503} == {"SERVICE_UNAVAILABLE"}
    for outcome in outcomes:
        if outcome.status == 503:  # the code and a fixed text: no path, statement or value
            assert b"SQLITE" in outcome.answer and b"INSERT" not in outcome.answer
            assert str(data).encode() not in outcome.answer
    text = check_log(served)
    assert "store_unavailable" in text
    # Nothing of ours beyond the stores, their WAL files and the certificate.
    assert not [
        name
        for name in leftovers
        if not name.startswith(("keystore.db", "service.sqlite", "dev-tls."))
    ], leftovers
    back = traffic.first(200, freeing)
    ready_again = readiness.first(200, freeing)
    assert back is not None and ready_again is not None
    # Readiness writes too (a full disk still reads): not ready while the writes fail.
    assert full_probes[503] > 0 and set(full_probes) == {503}, full_probes
    figures(
        "sqlite-disk-full",
        callers=traffic.counts(),
        callers_while_full=dict(Counter(o.status for o in during)),
        filler_bytes=filled,
        first_503_after_fill_seconds=round(first_503 - filling, 2),
        first_200_after_freeing_seconds=round(back - freeing, 2),
        readyz_while_full=dict(full_probes),
        readyz_200_after_freeing_seconds=round(ready_again - freeing, 2),
        accepted_replayed=kept,
        slowest_answer_seconds=round(max(o.ended - o.started for o in outcomes), 3),
    )


# ---------------------------------------------------------------------------------------------
# a worker killed under load
# ---------------------------------------------------------------------------------------------


def test_worker_killed_under_load(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    store = data / "keystore.db"
    provisioned = provision(
        SqliteStore.open(store, passphrase=PASSPHRASE, create=True, kdf_log2n=10),
        SqliteServiceState(data / "service.sqlite"),
    )
    with (
        serving(data, tmp_path / "serve.log", store=str(store), env={}, workers=2) as served,
        Readiness(served) as readiness,
        Traffic(served, provisioned.api_key, "kill", threads=4) as traffic,
    ):
        wait_for(lambda: len(served.workers()) == 2, 30, "two workers")
        before = served.workers()
        wait_for(lambda: traffic.first(200, 0) is not None, 20, "a first 200")
        time.sleep(1.5)
        killed_at = time.monotonic()
        os.kill(before[0], signal.SIGKILL)
        # One listing judged and kept: /proc's children file is a snapshot that may miss a
        # process being spawned, so a second read can disagree with the first.
        now_running: list[int] = []

        def replaced_worker() -> bool:
            now_running[:] = served.workers()
            fresh = set(now_running) - set(before)
            return len(now_running) == 2 and before[0] not in now_running and bool(fresh)

        wait_for(replaced_worker, 30, "the supervisor to start a new worker")
        replaced = time.monotonic()
        replacement = (set(now_running) - set(before)).pop()
        time.sleep(2.0)
        assert served.process.poll() is None
    outcomes = traffic.outcomes
    dropped = [o for o in outcomes if o.status == 0]
    # A dropped connection is the only trace: callers on the dead worker's connections (at
    # most one each), never an error answer.
    assert set(Counter(o.status for o in outcomes)) <= {0, 200}, traffic.counts()
    assert len(dropped) <= 4
    # The other worker kept answering while the new one started.
    answered = [o for o in outcomes if o.status == 200 and killed_at < o.started < replaced]
    assert answered or replaced - killed_at < 0.5
    # A probe may land on the dead worker's connection queue too (a reset), never an error.
    probes = Counter(s for t, s in readiness.seen if t > killed_at)
    assert set(probes) <= {0, 200} and probes[200] > probes[0], probes
    # A dropped request may still have been answered and stored: sent again with the same
    # requestId, it gets the stored answer or a fresh seal, never an error.
    again = served_for_replay(data, tmp_path, str(store), {})
    with again.client(provisioned.api_key) as client:
        for outcome in dropped:
            assert client.post("/v1/gopc", content=outcome.body).status_code == 200
    kept = check_answers_kept(again, provisioned, outcomes)
    check_log(served)
    figures(
        "worker-killed",
        callers=traffic.counts(),
        worker_replaced_after_seconds=round(replaced - killed_at, 2),
        answered_while_one_worker=len(answered),
        replacement_is_new_process=replacement not in before,
        readyz_after_kill=dict(probes),
        accepted_replayed=kept,
    )


# ---------------------------------------------------------------------------------------------
# in process, without PostgreSQL or root: the SQLite state store locked past the wait
# ---------------------------------------------------------------------------------------------


def test_a_locked_state_store_is_503_for_callers_and_readiness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the write lock past the wait (its own lock: a real one): the
    request's idempotency write and the readiness probe give up, 503, never 500; released,
    both work again."""
    monkeypatch.setattr(_state, "_BUSY_TIMEOUT_SECONDS", 0.2)
    now = dt.datetime.now(dt.UTC)
    key = openpgp.generate_key("I <i@issuer.example>", bits=2048, at=now)
    google = openpgp.generate_key("G <g@google.example>", bits=2048, at=now)
    keys = FileKeySource(signers=[key], recipients=[google.certificate])
    with running_server(tmp_path, keys) as server, server.client() as client:
        holder = sqlite3.connect(tmp_path / "service.sqlite", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            refused = client.post("/v1/gopc", json=request_body(PAN, request_id="locked"))
            not_ready = client.get("/readyz")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["errorResponseCode"] == "SERVICE_UNAVAILABLE"
        assert b"INSERT" not in refused.content and PAN.encode() not in refused.content
        assert not_ready.status_code == 503
        assert "state store unreachable" in not_ready.json()["problems"]
        again = client.post("/v1/gopc", json=request_body(PAN, request_id="locked"))
        assert again.status_code == 200, again.text
        # Ready again once the not-ready window after the failure has passed.
        deadline = time.monotonic() + 5.0
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "/readyz never 200 again"
            time.sleep(0.1)
