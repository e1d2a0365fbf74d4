"""The service on the real key store: rotation while serving, and `pushprov serve` end to end."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from pushprov import jose, open_gopc, openpgp
from pushprov.cli._demo import random_test_pan
from pushprov.keys import Environment, Format, Keyring, Keystore, SecretCache, StoreKeySource
from pushprov.store import SqliteStore

from .service_support import request_body, running_server

PASSPHRASE = b"service test passphrase"
PAN = random_test_pan().reveal()


def _open(path: Path, cache: SecretCache | None = None) -> Keystore:
    store = SqliteStore.open(path, passphrase=PASSPHRASE, create=True, kdf_log2n=10)
    return Keystore(store, actor="test", secret_cache=cache)


def _new_store(tmp_path: Path) -> tuple[Path, Keystore]:
    """A new key store in a private directory, and the operator's keystore on it."""
    path = tmp_path / "keys" / "keystore.db"
    path.parent.mkdir(mode=0o700)
    return path, _open(path)


def test_rotation_while_serving_fails_no_request(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    path, operator = _new_store(tmp_path)
    env = Environment.SANDBOX
    google_1 = openpgp.generate_key("G1 <g1@google.example>", bits=2048, at=now)
    google_2 = openpgp.generate_key("G2 <g2@google.example>", bits=2048, at=now)
    ours_a = operator.generate(env, user_id="Issuer A <a@issuer.example>", bits=2048, at=now)
    operator.promote(env, ours_a.key_id, at=now)
    g1 = operator.import_key(env, google_1.certificate.armor().encode(), at=now)
    operator.promote(env, g1.key_id, at=now)
    ring = operator.snapshot(env)
    issuer_a = ring.certificate(ring.record(ours_a.key_id))

    source = StoreKeySource(lambda cache: _open(path, cache), env, refresh=0.05)
    results: list[tuple[float, int, bytes]] = []
    stop = threading.Event()
    with running_server(tmp_path, source, rate_limit_per_second=10_000) as server:

        def traffic() -> None:
            with server.client() as client:
                index = 0
                while not stop.is_set():
                    index += 1
                    body = request_body(PAN, request_id=f"rot-{index}", session=f"s-{index}")
                    response = client.post("/v1/gopc", json=body)
                    sealed = response.json().get("googleOpaquePaymentCard", "").encode()
                    results.append((time.monotonic(), response.status_code, sealed))

        thread = threading.Thread(target=traffic)
        thread.start()
        try:
            time.sleep(0.4)
            # Our signing key: B joins as active, A drains as retiring (inbound only).
            later = dt.datetime.now(dt.UTC)
            ours_b = operator.generate(
                env, user_id="Issuer B <b@issuer.example>", bits=2048, at=later
            )
            operator.promote(env, ours_b.key_id, at=later, replacing=[ours_a.key_id])
            time.sleep(0.4)
            # Google's key: G2 is verified and trusted before G1 goes.
            g2 = operator.import_key(env, google_2.certificate.armor().encode(), at=later)
            operator.promote(env, g2.key_id, at=later, replacing=[g1.key_id])
            switched = time.monotonic()
            time.sleep(0.6)
        finally:
            stop.set()
            thread.join(timeout=30)
    ring = operator.snapshot(env)
    issuer_b = ring.certificate(ring.record(ours_b.key_id))
    statuses = [status for _, status, _ in results]
    assert len(statuses) > 20
    assert set(statuses) == {200}, statuses
    for _, _, sealed in results:
        opened = open_gopc(
            sealed,
            session_id=_session_of(sealed, [google_1, google_2], [issuer_a, issuer_b]),
            decrypt_with=[google_1, google_2],
            verify_with=[issuer_a, issuer_b],
        )
        assert opened.gopc.card.account_number.reveal() == PAN
    # After the switch (plus the refresh interval) the service signs with B only, to G2 only.
    settled = [sealed for stamp, _, sealed in results if stamp > switched + 0.2]
    assert settled
    for sealed in settled:
        with pytest.raises(Exception, match="decrypt"):
            open_gopc(
                sealed, session_id="x", decrypt_with=[google_1], verify_with=[issuer_a, issuer_b]
            )
        opened = open_gopc(
            sealed,
            session_id=_session_of(sealed, [google_2], [issuer_b]),
            decrypt_with=[google_2],
            verify_with=[issuer_a, issuer_b],
        )
        assert opened.envelope.signers == (issuer_b.fingerprint,)


def test_jwe_with_jwk_keys_from_the_store(tmp_path: Path) -> None:
    """JWKs in the store (ours sig + enc, Google's enc + sig) beside OpenPGP keys: the service
    seals GOPCs in either envelope, publishes our JWKs, opens Google's JWE echo requests and
    records the use of the kids it sealed with."""
    now = dt.datetime.now(dt.UTC)
    path, operator = _new_store(tmp_path)
    env = Environment.SANDBOX
    google_enc = jose.generate_jwk(bits=2048, at=now, use="enc")
    google_sig = jose.generate_jwk(bits=2048, at=now, use="sig")
    google_pgp = openpgp.generate_key("G <g@google.example>", bits=2048, at=now)
    ids = [
        operator.generate(env, at=now, key_format=Format.JWK, use="sig", bits=2048).key_id,
        operator.generate(env, at=now, key_format=Format.JWK, use="enc", bits=2048).key_id,
        operator.import_key(env, google_enc.public().to_json().encode(), at=now).key_id,
        operator.import_key(env, google_sig.public().to_json().encode(), at=now).key_id,
        operator.generate(env, user_id="Issuer <i@x.example>", bits=2048, at=now).key_id,
        operator.import_key(env, google_pgp.certificate.armor().encode(), at=now).key_id,
    ]
    for key_id in ids:
        operator.promote(env, key_id, at=now)
    ours_sig, ours_enc = ids[0], ids[1]

    source = StoreKeySource(lambda cache: _open(path, cache), env, refresh=60)
    with running_server(tmp_path, source, format="jwe") as server, server.client() as client:
        published = client.get("/v1/keys/public").json()
        assert published["format"] == "jwe"
        keys = {json.loads(text)["kid"]: jose.load_jwk(text) for text in published["keys"]}
        assert set(keys) == {ours_sig, ours_enc}
        assert not any(key.is_private for key in keys.values())
        body = request_body(PAN, request_id="jwe-1", session="s-jwe", format="jwe")
        response = client.post("/v1/gopc", json=body)
        assert response.status_code == 200, response.text
        sealed = response.json()["googleOpaquePaymentCard"].encode()
        opened = open_gopc(
            sealed,
            session_id="s-jwe",
            decrypt_with=[google_enc],
            verify_with=[keys[ours_sig]],
            format="jwe",
            at=dt.datetime.now(dt.UTC),
        )
        assert opened.gopc.card.account_number.reveal() == PAN
        assert opened.envelope.signers == (ours_sig,)
        assert opened.envelope.decryption_key == google_enc.kid
        # The OpenPGP keys in the same store still serve format pgp.
        body = request_body(PAN, request_id="pgp-1", session="s-pgp", format="pgp")
        response = client.post("/v1/gopc", json=body)
        assert response.status_code == 200, response.text
        # Google's echo request: sealed to our enc key, signed by its sig key.
        echo = {
            "requestHeader": {
                "requestId": "echo-1",
                "requestTimestamp": str(int(time.time() * 1000)),
            },
            "clientMessage": "ping",
        }
        token = jose.seal_jwe(
            json.dumps(echo).encode(),
            sign_with=google_sig,
            encrypt_to=keys[ours_enc],
            at=dt.datetime.now(dt.UTC),
        )
        reply = client.post("/v1/echo", content=token, headers={"content-type": "application/jose"})
        assert reply.status_code == 200, reply.text
        answer = jose.open_jwe(
            reply.content,
            decrypt_with=[google_enc],
            verify_with=[keys[ours_sig]],
            at=dt.datetime.now(dt.UTC),
        )
        assert json.loads(answer.plaintext)["clientMessage"] == "ping"
    # The drain window knows the JWKs were used (kids are record ids).
    ring = operator.snapshot(env)
    assert ring.record(ours_sig).last_used is not None
    assert ring.record(google_enc.kid).last_used is not None
    assert ring.record(ours_enc).last_used is None  # opening is not sealing


def _session_of(
    sealed: bytes, decryptors: list[openpgp.SecretKey], verifiers: list[openpgp.Certificate]
) -> str:
    opened = openpgp.open_message(
        sealed, decrypt_with=decryptors, verify_with=verifiers, at=dt.datetime.now(dt.UTC)
    )
    session: str = json.loads(opened.plaintext)["validationContext"]["serverSessionId"]
    return session


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# One worker runs in the process that imported prometheus_client before `serve` set its
# multiprocess directory: its counters must still reach /metrics (they once came out empty).
@pytest.mark.parametrize("workers", [1, 2])
def test_pushprov_serve_end_to_end(tmp_path: Path, workers: int) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    env = {**os.environ, "PUSHPROV_STORE_PASSPHRASE": PASSPHRASE.decode()}
    cli = [sys.executable, "-m", "pushprov"]
    common = ["--store", str(data / "keystore.db"), "--env", "sandbox", "--json"]

    def run(*args: str) -> str:
        result = subprocess.run(
            [*cli, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    ours = json.loads(
        run("keys", "generate", *common, "--uid", "Issuer <i@x.example>", "--bits", "2048")
    )
    google = openpgp.generate_key("G <g@x.example>", bits=2048, at=dt.datetime.now(dt.UTC))
    (tmp_path / "google.pub").write_text(google.certificate.armor())
    theirs = json.loads(run("keys", "import", *common, str(tmp_path / "google.pub")))
    run("keys", "promote", *common, theirs["key_id"])
    run("keys", "promote", *common, ours["key_id"])
    api_key = run("clients", "add", "backend", "--data-dir", str(data)).strip()
    port = _free_port()
    server = subprocess.Popen(
        [*cli, "serve", "--data-dir", str(data), "--port", str(port), "--workers", str(workers)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (data / "dev-tls.crt").exists():  # the server makes it as it starts
            assert server.poll() is None and time.monotonic() < deadline, "no certificate"
            time.sleep(0.1)
        context = ssl.create_default_context(cafile=str(data / "dev-tls.crt"))
        with httpx.Client(
            base_url=f"https://127.0.0.1:{port}",
            verify=context,
            headers={"authorization": f"Bearer {api_key}"},
        ) as client:
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
            responses = [
                client.post("/v1/gopc", json=request_body(PAN, request_id=f"e2e-{i}", session="s"))
                for i in range(6)
            ]
            assert [r.status_code for r in responses] == [200] * 6
            sealed = responses[0].json()["googleOpaquePaymentCard"].encode()
            assert open_gopc(
                sealed,
                session_id="s",
                decrypt_with=[google],
                verify_with=[
                    openpgp.read_certificates(
                        run("keys", "export", *common[:-1], ours["key_id"]).encode()
                    )[0]
                ],
            ).gopc
            metrics = client.get("/metrics").text
            assert 'pushprov_http_requests_total{route="/v1/gopc",status="200"} 6.0' in metrics
            dashboard = client.get("/dashboard", auth=("ops", api_key)).text
            assert "<tr><td>seals</td><td>12</td></tr>" in dashboard  # 6 x (1 signer + 1 recipient)
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    # uvicorn's single server re-raises the SIGTERM it drained on (so the process ends by it);
    # the multiprocess supervisor exits 0.
    assert server.returncode == (0 if workers > 1 else -signal.SIGTERM), stderr.decode()[-2000:]
    logs = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert any(
        entry.get("msg") == "created a self-signed development certificate" for entry in logs
    )
    request_logs = [
        entry
        for entry in logs
        if entry.get("msg") == "request" and entry.get("route") == "/v1/gopc"
    ]
    assert len(request_logs) == 6 and {entry["status"] for entry in request_logs} == {200}
    assert PAN not in stderr.decode()


def test_a_reload_begun_earlier_never_replaces_a_newer_snapshot(tmp_path: Path) -> None:
    # Why: the event loop and the outcomes endpoint's thread both reload the keyring. A reload
    # that read the store before a promotion could finish last and put the old keyring back
    # for a whole refresh period (found in review; a retired key would seal again).
    now = dt.datetime.now(dt.UTC)
    path, operator = _new_store(tmp_path)
    env = Environment.SANDBOX
    first = operator.generate(env, user_id="Issuer A <a@issuer.example>", bits=2048, at=now)
    operator.promote(env, first.key_id, at=now)
    read, release = threading.Event(), threading.Event()

    class HeldBack(Keystore):
        def snapshot(self, env: Environment) -> Keyring:
            ring = super().snapshot(env)
            if threading.current_thread().name == "held back":
                read.set()
                release.wait(30)
            return ring

    def open_held_back(cache: SecretCache) -> Keystore:
        store = SqliteStore.open(path, passphrase=PASSPHRASE)
        return HeldBack(store, actor="test", secret_cache=cache)

    clock = [0.0]
    source = StoreKeySource(open_held_back, env, refresh=60, monotonic=lambda: clock[0])
    before = source.current(now).version
    clock[0] = 61.0  # due for a reload
    earlier = threading.Thread(target=source.current, args=(now,), name="held back")
    earlier.start()
    assert read.wait(30)  # it has read the keyring as it was
    second = operator.generate(env, user_id="Issuer B <b@issuer.example>", bits=2048, at=now)
    operator.promote(env, second.key_id, at=now)
    after = source.current(now).version  # this thread reloads: the new keyring
    release.set()
    earlier.join()
    assert before != after
    assert source.current(now).version == after  # not the earlier reload's older keyring
    operator.close()
