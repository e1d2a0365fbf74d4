"""The HTTPS service against a real server on loopback over TLS, driven by a real HTTP client."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pushprov import GOOGLE_PROFILE, jose, open_gopc, openpgp
from pushprov.cli._demo import random_test_pan
from pushprov.keys import FileKeySource

from .conftest import Keys
from .service_support import Server, as_json, request_body, running_server

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def live_keys() -> Keys:
    """Keys valid now (the service reads the real clock), RSA-2048 for speed."""
    keys = Keys.__new__(Keys)
    for name in ("issuer_a", "issuer_b", "google_1", "google_2", "stranger"):
        setattr(keys, name, openpgp.generate_key(f"{name} <{name}@x.example>", bits=2048, at=NOW))
    return keys


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, live_keys: Keys) -> Iterator[Server]:
    source = FileKeySource(
        signers=[live_keys.issuer_a, live_keys.issuer_b],
        recipients=[live_keys.google_1.certificate, live_keys.google_2.certificate],
        verifiers=[live_keys.google_1.certificate],
    )
    with running_server(
        tmp_path_factory.mktemp("svc"), source, rate_limit_per_second=10_000
    ) as srv:
        yield srv


PAN = random_test_pan().reveal()


def test_gopc_happy_path_opens_as_google_would(server: Server, live_keys: Keys) -> None:
    with server.client() as client:
        response = client.post("/v1/gopc", json=request_body(PAN, request_id="happy-1"))
    assert response.status_code == 200, response.text
    document = as_json(response)
    assert document["responseHeader"]["requestId"] == "happy-1"
    assert abs(int(document["responseHeader"]["responseTimestamp"]) / 1000 - time.time()) < 60
    assert response.headers["strict-transport-security"].startswith("max-age=")
    sealed = document["googleOpaquePaymentCard"].encode()
    for google in (live_keys.google_1, live_keys.google_2):
        opened = open_gopc(
            sealed,
            session_id="sess-1",
            decrypt_with=[google],
            verify_with=[live_keys.issuer_a.certificate, live_keys.issuer_b.certificate],
        )
        assert opened.gopc.card.account_number.reveal() == PAN
        assert len(opened.envelope.signatures) == 2  # every active signing key signed


def test_unknown_callers_get_404_and_nothing_else(server: Server) -> None:
    body = request_body(PAN, request_id="anon-1")
    with httpx.Client(base_url=server.url, verify=server.tls()) as anonymous:
        for headers in ({}, {"authorization": "Bearer pp_wrong"}, {"authorization": "Basic x"}):
            response = anonymous.post("/v1/gopc", json=body, headers=headers)
            assert response.status_code == 404
            assert response.content == b""
        assert anonymous.get("/v1/keys").status_code == 404


def test_revoked_client_is_unknown(server: Server) -> None:
    key = server.state.add_client("short-lived", at=NOW)
    with httpx.Client(
        base_url=server.url, verify=server.tls(), headers={"authorization": f"Bearer {key}"}
    ) as client:
        assert client.get("/v1/keys").status_code == 200
        server.state.revoke_client("short-lived", at=NOW)
        assert client.get("/v1/keys").status_code == 404


@pytest.mark.parametrize(
    ("mutate", "status", "code"),
    [
        (lambda b: b["requestHeader"].update(requestId="bad id!"), 400, "INVALID_FIELD_VALUE"),
        (lambda b: b["requestHeader"].update(requestId="x" * 101), 400, "INVALID_FIELD_VALUE"),
        (lambda b: b.pop("serverSessionId"), 400, "MISSING_REQUIRED_FIELD"),
        (lambda b: b["card"].update(expiryMonth="13"), 400, "INVALID_FIELD_VALUE"),
        (
            lambda b: b["card"].update(accountNumber=PAN[:-1] + str((int(PAN[-1]) + 1) % 10)),
            400,
            "INVALID_FIELD_VALUE",
        ),
        (lambda b: b.update(extra="field"), 400, "INVALID_FIELD_VALUE"),
        (lambda b: b.update(format="jwe", encoding="base64"), 400, "INVALID_FIELD_VALUE"),
        (
            lambda b: b["requestHeader"].update(
                requestTimestamp=str(int((time.time() - 120) * 1000))
            ),
            400,
            "REQUEST_TIMESTAMP_OUT_OF_RANGE",
        ),
    ],
)
def test_error_codes(server: Server, mutate: object, status: int, code: str) -> None:
    body = request_body(PAN, request_id=f"err-{code[:10]}-{time.monotonic_ns()}")
    mutate(body)  # type: ignore[operator]
    with server.client() as client:
        response = client.post("/v1/gopc", json=body)
    assert response.status_code == status, response.text
    document = as_json(response)
    assert document["errorResponseCode"] == code
    assert set(document) == {"responseHeader", "errorResponseCode", "errorDescription"}
    assert PAN not in response.text and PAN[6:] not in response.text


def test_not_json_and_oversized_bodies(server: Server) -> None:
    with server.client() as client:
        response = client.post(
            "/v1/gopc", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert as_json(response)["errorResponseCode"] == "INVALID_FIELD_VALUE"
        big = json.dumps(request_body(PAN, request_id="big", session="s" * 17000)).encode()
        response = client.post(
            "/v1/gopc", content=big, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert as_json(response)["errorResponseCode"] == "REQUEST_TOO_LARGE"

        def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while reading
            for _ in range(20):
                yield b" " * 1024

        response = client.post(
            "/v1/gopc", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413


def test_idempotent_replay_and_conflict(server: Server) -> None:
    body = request_body(PAN, request_id="idem-1")
    with server.client() as client:
        first = client.post("/v1/gopc", json=body)
        again = client.post("/v1/gopc", json=body)
        assert first.status_code == again.status_code == 200
        assert first.content == again.content  # the stored answer, not a new seal
        other = request_body(PAN, request_id="idem-1", session="another-session")
        conflict = client.post("/v1/gopc", json=other)
    assert conflict.status_code == 409
    assert as_json(conflict)["errorResponseCode"] == "IDEMPOTENCY_VIOLATION"
    stored = server.state.recall("backend", "idem-1", since=NOW - dt.timedelta(days=1))
    assert stored is not None and PAN.encode() not in stored.body


def test_a_stored_record_wins_over_a_later_refusal(server: Server) -> None:
    # The record is looked up after the checks that follow the timestamp, when one refuses:
    # a reused requestId whose new card is refused is still a conflict, not a 400.
    with server.client() as client:
        assert client.post("/v1/gopc", json=request_body(PAN, request_id="idem-2")).is_success
        bad_card = request_body("4111111111111112", request_id="idem-2")  # fails Luhn
        assert client.post("/v1/gopc", json=bad_card).status_code == 409
        fresh = client.post("/v1/gopc", json=request_body("4111111111111112", request_id="n-3"))
    assert fresh.status_code == 400
    assert as_json(fresh)["errorResponseCode"] == "INVALID_FIELD_VALUE"


def test_key_endpoints_and_health(server: Server, live_keys: Keys) -> None:
    with server.client() as client:
        public = as_json(client.get("/v1/keys/public"))
        assert public["format"] == "pgp"
        certs = [openpgp.read_certificates(text.encode())[0] for text in public["keys"]]
        assert {c.fingerprint for c in certs} == {
            live_keys.issuer_a.fingerprint,
            live_keys.issuer_b.fingerprint,
        }
        states = as_json(client.get("/v1/keys"))
        assert {k["owner"] for k in states["keys"]} == {"ours", "google"}
        assert all(360 < k["daysToExpiry"] <= 365 for k in states["keys"])
        assert client.get("/livez").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["problems"] == []
        metrics = client.get("/metrics").text
    assert 'pushprov_http_requests_total{route="/v1/gopc",status="200"}' in metrics
    assert f'pushprov_seals_total{{key="{live_keys.issuer_a.fingerprint}",use="sign"}}' in metrics
    assert "pushprov_key_seconds_to_expiry" in metrics


def test_no_keys_means_not_ready_and_503(tmp_path: Path, live_keys: Keys) -> None:
    source = FileKeySource(signers=[live_keys.issuer_a], recipients=[])
    with running_server(tmp_path, source) as srv, srv.client() as client:
        assert client.get("/readyz").status_code == 503
        response = client.post("/v1/gopc", json=request_body(PAN, request_id="nokeys"))
    assert response.status_code == 503
    assert as_json(response)["errorResponseCode"] == "KEYS_UNAVAILABLE"
    assert response.headers["retry-after"] == "1"


def test_rate_limit(tmp_path: Path, live_keys: Keys) -> None:
    source = FileKeySource(
        signers=[live_keys.issuer_a], recipients=[live_keys.google_1.certificate]
    )
    with running_server(tmp_path, source, rate_limit_per_second=3) as srv, srv.client() as client:
        statuses = [
            client.post("/v1/gopc", json=request_body(PAN, request_id=f"rl-{i}")).status_code
            for i in range(8)
        ]
    assert 429 in statuses and 200 in statuses
    assert set(statuses) <= {200, 429}


def test_overload_answers_503_with_retry_after(tmp_path: Path) -> None:
    """A full crypto queue refuses at once (how fast is measured by bench/load.py, not here)."""
    slow = openpgp.generate_key("slow <s@x.example>", bits=4096, at=NOW)
    google = openpgp.generate_key("g <g@x.example>", bits=2048, at=NOW)
    source = FileKeySource(signers=[slow], recipients=[google.certificate])
    clients = 16
    # Connections are made first and the requests released together, so several arrive while
    # one 4096-bit seal holds the worker's loop: with a queue of one, some must be refused.
    ready = threading.Barrier(clients)
    with running_server(tmp_path, source, queue_limit=1, rate_limit_per_second=10_000) as srv:

        def post(index: int) -> list[tuple[int, str | None]]:
            with srv.client() as client:
                assert client.get("/livez").status_code == 200  # TLS is set up before the burst
                ready.wait(timeout=30)
                answers = []
                for round_ in range(3):
                    body = request_body(PAN, request_id=f"ov-{index}-{round_}")
                    response = client.post("/v1/gopc", json=body)
                    answers.append((response.status_code, response.headers.get("retry-after")))
                return answers

        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            results = [answer for answers in pool.map(post, range(clients)) for answer in answers]
    statuses = {status for status, _ in results}
    assert statuses <= {200, 503}
    assert 503 in statuses and 200 in statuses
    assert all(retry == "1" for status, retry in results if status == 503)


def test_echo_over_pgp(server: Server, live_keys: Keys) -> None:
    echo = {
        "requestHeader": {"requestId": "echo-1", "requestTimestamp": str(int(time.time() * 1000))},
        "clientMessage": "ping",
    }
    sealed = openpgp.encode_message(
        openpgp.seal(
            json.dumps(echo).encode(),
            sign_with=[live_keys.google_1],
            encrypt_to=[live_keys.issuer_a.certificate],
            at=dt.datetime.now(dt.UTC),
        ),
        __import__("pushprov").Encoding.BASE64URL,
    )
    # Google calls echo as an API client of ours, like any other caller.
    google_key = server.state.add_client("google-echo", at=NOW)
    with httpx.Client(
        base_url=server.url, verify=server.tls(), headers={"authorization": f"Bearer {google_key}"}
    ) as google:
        response = google.post(
            "/v1/echo", content=sealed, headers={"content-type": "application/octet-stream"}
        )
        assert response.status_code == 200, response.text
        opened = openpgp.open_message(
            response.content,
            decrypt_with=[live_keys.google_1],
            verify_with=[live_keys.issuer_a.certificate],
            at=dt.datetime.now(dt.UTC),
        )
        reply = json.loads(opened.plaintext)
        assert reply["clientMessage"] == "ping"
        assert reply["responseHeader"]["requestId"] == "echo-1"
        assert reply["serverMessage"]
        # A caller whose signature is unknown learns nothing: 404, empty body.
        stranger = openpgp.encode_message(
            openpgp.seal(
                json.dumps(echo).encode(),
                sign_with=[live_keys.stranger],
                encrypt_to=[live_keys.issuer_a.certificate],
                at=dt.datetime.now(dt.UTC),
            ),
            __import__("pushprov").Encoding.BASE64URL,
        )
        unknown = google.post(
            "/v1/echo", content=stranger, headers={"content-type": "application/octet-stream"}
        )
        assert unknown.status_code == 404 and unknown.content == b""
        garbage = google.post(
            "/v1/echo", content=b"AAAA", headers={"content-type": "application/octet-stream"}
        )
        assert garbage.status_code in (400, 404)


def test_echo_over_jwe(tmp_path: Path) -> None:
    ours = jose.generate_jwk(bits=2048, at=NOW)
    google = jose.generate_jwk(bits=2048, at=NOW)
    source = FileKeySource(signers=[ours], recipients=[google.public()])
    echo = {
        "requestHeader": {"requestId": "echo-j", "requestTimestamp": str(int(time.time() * 1000))},
        "clientMessage": "ping",
    }
    token = jose.seal_jwe(
        json.dumps(echo).encode(),
        sign_with=google,
        encrypt_to=ours.public(),
        at=dt.datetime.now(dt.UTC),
    )
    with running_server(tmp_path, source, format="jwe") as srv, srv.client() as client:
        response = client.post(
            "/v1/echo", content=token, headers={"content-type": "application/jose"}
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/jose")
        opened = jose.open_jwe(
            response.content,
            decrypt_with=[google],
            verify_with=[ours.public()],
            at=dt.datetime.now(dt.UTC),
        )
        assert json.loads(opened.plaintext)["clientMessage"] == "ping"
        public = client.get("/v1/keys/public").json()
        assert public["format"] == "jwe" and json.loads(public["keys"][0])["kid"] == ours.kid
        gopc = client.post("/v1/gopc", json=request_body(PAN, request_id="jwe-gopc"))
        assert gopc.status_code == 200
        assert gopc.json()["googleOpaquePaymentCard"].count(".") == 4


def test_canary_pan_in_no_log_or_response(server: Server, caplog: pytest.LogCaptureFixture) -> None:
    canary = random_test_pan("400000").reveal()
    caplog.set_level(logging.DEBUG)
    texts = []
    with server.client() as client:
        bodies = [
            request_body(canary, request_id="canary-ok"),
            request_body(canary, request_id="canary-ok"),
            request_body(canary, request_id="canary-ok", session="other"),
            request_body(canary[:-1] + str((int(canary[-1]) + 1) % 10), request_id="canary-luhn"),
            request_body(canary, request_id="canary bad id"),
            request_body(canary, request_id="canary-ts", at=time.time() - 500),
            {**request_body(canary, request_id="canary-extra"), "pan": canary},
            request_body(canary + "0" * 10, request_id="canary-long"),
        ]
        for body in bodies:
            texts.append(client.post("/v1/gopc", json=body).text)
        texts.append(client.post("/v1/gopc", content=json.dumps(bodies[0])[:-7]).text)
        texts.append(client.get("/metrics").text)
    for record in caplog.records:
        texts.append(record.getMessage())
        texts.append(json.dumps({k: str(v) for k, v in record.__dict__.items()}))
    for text in texts:
        assert canary not in text and canary[6:] not in text


def test_openapi_is_generated_from_the_code(server: Server) -> None:
    with server.client() as client:
        document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert {
        "/v1/gopc",
        "/v1/echo",
        "/v1/keys/public",
        "/v1/keys",
        "/livez",
        "/readyz",
        "/metrics",
    } <= set(document["paths"])
    schema = document["components"]["schemas"]
    assert (
        schema["RequestHeader"]["properties"]["requestId"]["pattern"] == "^[A-Za-z0-9:_-]{1,100}$"
    )
    assert (
        GOOGLE_PROFILE.max_session_id_length
        == schema["GopcRequest"]["properties"]["serverSessionId"]["maxLength"]
    )


def test_wrong_method_and_unreadable_content_length(server: Server) -> None:
    with server.client() as client:
        response = client.get("/v1/gopc")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    host, port = server.url.removeprefix("https://").split(":")
    raw = (
        b"POST /v1/gopc HTTP/1.1\r\nHost: x\r\nContent-Length: 12x\r\n"
        b"Authorization: Bearer " + server.api_key.encode() + b"\r\n\r\n"
    )
    with (
        socket.create_connection((host, int(port))) as plain,
        server.tls().wrap_socket(plain, server_hostname=host) as tls,
    ):
        tls.sendall(raw)
        answer = tls.recv(65536)
    # httptools refuses a malformed Content-Length itself; either way nothing reaches a seal.
    assert answer.startswith(b"HTTP/1.1 400")
