"""Three `pushprov serve` instances on one PostgreSQL: rotation under spread traffic, and an
instance killed mid-traffic. Each instance is a real process with its own TLS port.

The instances poll the keyring only every 30 s here, so a switch seen within ``BOUND`` can only
come from LISTEN/NOTIFY: the bound these tests hold the service to.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from pushprov import DecryptionFailedError, open_gopc, openpgp
from pushprov.cli._demo import random_test_pan
from pushprov.keys import Environment, Keystore
from pushprov.service import PostgresServiceState
from pushprov.store import PostgresStore, migrate

from .instances import Instance, child_env, running_instances
from .postgres_support import Cluster
from .service_support import request_body

PASSPHRASE = b"scale-out test passphrase"
PAN = random_test_pan().reveal()
ENV = Environment.SANDBOX
BOUND = 1.0  # seconds from a rotation's commit to every instance sealing with the new keys


@dataclasses.dataclass
class Deployment:
    url: str
    operator: Keystore
    instances: list[Instance]
    api_key: str
    env: dict[str, str]
    google_1: openpgp.SecretKey
    google_2: openpgp.SecretKey
    ours_a: str
    g1: str


@dataclasses.dataclass(frozen=True)
class Outcome:
    instance: int
    started: float
    status: int  # 0: no HTTP answer (connection refused or reset)
    body: bytes  # what was sent, byte for byte
    answer: bytes


@pytest.fixture(scope="module")
def deployment(postgres: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    url = postgres.create_database("scale_out")
    migrate(url)
    now = dt.datetime.now(dt.UTC)
    store = PostgresStore.open(url, passphrase=PASSPHRASE, create=True, kdf_log2n=10)
    operator = Keystore(store, actor="operator")
    google_1 = openpgp.generate_key("G1 <g1@google.example>", bits=2048, at=now)
    google_2 = openpgp.generate_key("G2 <g2@google.example>", bits=2048, at=now)
    ours_a = operator.generate(ENV, user_id="Issuer A <a@issuer.example>", bits=2048, at=now)
    operator.promote(ENV, ours_a.key_id, at=now)
    g1 = operator.import_key(ENV, google_1.certificate.armor().encode(), at=now)
    operator.promote(ENV, g1.key_id, at=now)
    state = PostgresServiceState(url)
    api_key = state.add_client("backend", at=now)
    state.close()
    env = {
        **os.environ,
        "PGPASSWORD": postgres.password,  # the URL on argv carries no password
        "PUSHPROV_STORE_PASSPHRASE": PASSPHRASE.decode(),
        "PUSHPROV_KEY_REFRESH_SECONDS": "30",
        "PUSHPROV_RATE_LIMIT_PER_SECOND": "100000",
        "PUSHPROV_LOG_LEVEL": "warning",
    }
    bare = postgres.url("scale_out", with_password=False)
    root = tmp_path_factory.mktemp("scale-out")
    with running_instances(3, root, store=bare, env=env) as instances:
        yield Deployment(
            bare, operator, instances, api_key, env, google_1, google_2, ours_a.key_id, g1.key_id
        )
    operator.close()


class Traffic:
    """One thread per instance, each sending GOPC requests back to back until stopped."""

    def __init__(self, deployment: Deployment, tag: str) -> None:
        self._deployment = deployment
        self._tag = tag
        self._stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self._threads = [
            threading.Thread(target=self._run, args=(instance,))
            for instance in deployment.instances
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self, instance: Instance) -> None:
        headers = {
            "authorization": f"Bearer {self._deployment.api_key}",
            "content-type": "application/json",
        }
        with httpx.Client(base_url=instance.url, verify=instance.tls(), headers=headers) as client:
            index = 0
            while not self._stop.is_set():
                index += 1
                request_id = f"{self._tag}-{instance.index}-{index}"
                body = json.dumps(request_body(PAN, request_id=request_id, session=request_id))
                started = time.monotonic()
                try:
                    response = client.post("/v1/gopc", content=body.encode())
                    status, answer = response.status_code, response.content
                except httpx.TransportError:
                    status, answer = 0, b""
                    time.sleep(0.05)
                self.outcomes.append(
                    Outcome(instance.index, started, status, body.encode(), answer)
                )


def _sealed(outcome: Outcome) -> bytes:
    return str(json.loads(outcome.answer)["googleOpaquePaymentCard"]).encode()


def test_rotation_under_traffic_over_three_instances(deployment: Deployment) -> None:
    operator, now = deployment.operator, dt.datetime.now(dt.UTC)
    with Traffic(deployment, "rot") as traffic:
        time.sleep(0.8)
        # Our signing key A -> B (B active, A retiring: still accepted inbound) ...
        ours_b = operator.generate(ENV, user_id="Issuer B <b@issuer.example>", bits=2048, at=now)
        operator.promote(ENV, ours_b.key_id, at=now, replacing=[deployment.ours_a])
        signer_switch = time.monotonic()
        time.sleep(BOUND + 0.8)
        # ... then Google's key G1 -> G2, verified and trusted before G1 goes.
        g2 = operator.import_key(ENV, deployment.google_2.certificate.armor().encode(), at=now)
        operator.promote(ENV, g2.key_id, at=now, replacing=[deployment.g1])
        recipient_switch = time.monotonic()
        time.sleep(BOUND + 0.8)
    ring = operator.snapshot(ENV)
    issuer_a = ring.certificate(ring.record(deployment.ours_a))
    issuer_b = ring.certificate(ring.record(ours_b.key_id))
    outcomes = traffic.outcomes
    # The answer of a refusal names its code (never card data): what to look at when it fails.
    assert [(o.status, o.answer[:300]) for o in outcomes if o.status != 200] == []
    assert {o.instance for o in outcomes} == {0, 1, 2}
    google = [deployment.google_1, deployment.google_2]
    for outcome in outcomes:
        opened = open_gopc(
            _sealed(outcome),
            session_id=json.loads(outcome.body)["serverSessionId"],
            decrypt_with=google,
            verify_with=[issuer_a, issuer_b],
        )
        assert opened.gopc.card.account_number.reveal() == PAN
    between = [o for o in outcomes if signer_switch + BOUND < o.started < recipient_switch]
    after = [o for o in outcomes if o.started > recipient_switch + BOUND]
    for phase in (between, after):
        assert {o.instance for o in phase} == {0, 1, 2}
    for outcome in between + after:
        opened = open_gopc(
            _sealed(outcome),
            session_id=json.loads(outcome.body)["serverSessionId"],
            decrypt_with=google,
            verify_with=[issuer_a, issuer_b],
        )
        assert opened.envelope.signers == (issuer_b.fingerprint,)
    for outcome in after:
        with pytest.raises(DecryptionFailedError):  # sealed to G2 only
            open_gopc(
                _sealed(outcome),
                session_id="x",
                decrypt_with=[deployment.google_1],
                verify_with=[issuer_b],
            )


def test_an_instance_killed_mid_traffic_loses_no_accepted_request(
    deployment: Deployment,
) -> None:
    victim = deployment.instances[2]
    with Traffic(deployment, "kill") as traffic:
        time.sleep(1.0)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(timeout=10)
        time.sleep(0.8)
    accepted = [o for o in traffic.outcomes if o.status == 200]
    assert any(o.instance == victim.index for o in accepted)  # it did answer before dying
    assert {o.status for o in traffic.outcomes} <= {200, 0}
    survivors = deployment.instances[:2]
    headers = {
        "authorization": f"Bearer {deployment.api_key}",
        "content-type": "application/json",
    }
    clients = [httpx.Client(base_url=i.url, verify=i.tls(), headers=headers) for i in survivors]
    try:
        for outcome in accepted:
            # Through an instance other than the one that answered.
            client = clients[(outcome.instance + 1) % len(clients)]
            replay = client.post("/v1/gopc", content=outcome.body)
            assert replay.status_code == 200
            assert replay.content == outcome.answer
    finally:
        for client in clients:
            client.close()
    # The store is still whole: the audit chain verifies and the keyring reads.
    audit = subprocess.run(
        [sys.executable, "-m", "pushprov", "keys", "audit", "--store", deployment.url,
         "--env", ENV.value, "--verify"],
        env=child_env(deployment.env), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert audit.returncode == 0, audit.stderr
    ring = deployment.operator.snapshot(ENV)
    at = dt.datetime.now(dt.UTC)
    assert ring.signing_keys(at=at) and ring.recipients(at=at)
