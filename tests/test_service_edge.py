"""The service's edge as a stranger meets it: unknown callers get 404 and an empty body on every
route but the balancer's probes, and cost no crypto (issue 14, findings 1 and 6)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pushprov import Encoding, openpgp
from pushprov.keys import FileKeySource
from pushprov.openpgp._packets import Tag, encode_packet, mpi
from pushprov.openpgp._rsa import SoftwareRsaKey

from .service_support import Server, running_server

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def google() -> openpgp.SecretKey:
    return openpgp.generate_key("g <g@x.example>", bits=2048, at=NOW)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, google: openpgp.SecretKey) -> Iterator[Server]:
    # Two keys of ours: a rotation, the case where every wildcard PKESK cost two RSA operations.
    ours = [openpgp.generate_key(f"i{n} <i@x.example>", bits=2048, at=NOW) for n in (1, 2)]
    source = FileKeySource(
        signers=ours, recipients=[google.certificate], verifiers=[google.certificate]
    )
    with running_server(tmp_path_factory.mktemp("edge"), source) as srv:
        yield srv


@pytest.fixture
def rsa_private_ops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every RSA private operation the process makes (the server runs in a thread of it)."""
    done: list[str] = []
    decrypt, sign = SoftwareRsaKey.decrypt_block, SoftwareRsaKey.sign_digest

    def counted_decrypt(self: SoftwareRsaKey, block: bytes) -> bytes:
        done.append("decrypt")
        return decrypt(self, block)

    def counted_sign(self: SoftwareRsaKey, hash_algo: int, digest: bytes) -> bytes:
        done.append("sign")
        return sign(self, hash_algo, digest)

    monkeypatch.setattr(SoftwareRsaKey, "decrypt_block", counted_decrypt)
    monkeypatch.setattr(SoftwareRsaKey, "sign_digest", counted_sign)
    return done


def wildcard_flood(count: int) -> bytes:
    """The finding's message: ``count`` tiny PKESKs with the wildcard key id (each one tried
    against every key we hold) and a small SEIPD, base64url as echo takes it."""
    pkesk = encode_packet(Tag.PKESK, b"\x03" + bytes(8) + b"\x01" + mpi(b"\x01\x23"))
    seipd = encode_packet(Tag.SEIPD, b"\x01" + bytes(64))
    return openpgp.encode_message(pkesk * count + seipd, Encoding.BASE64URL)


def test_unknown_echo_with_many_pkesks_is_404_and_does_no_rsa_work(
    server: Server, rsa_private_ops: list[str]
) -> None:
    flood = wildcard_flood(700)
    assert len(flood) <= 16 * 1024  # under the body cap: the finding's case, not a 413
    headers = {"content-type": "application/octet-stream"}
    with httpx.Client(base_url=server.url, verify=server.tls()) as stranger:
        for authorization in (None, "Bearer pp_wrong", "Basic Zm9vOmJhcg=="):
            extra = {"authorization": authorization} if authorization else {}
            for _ in range(10):
                answer = stranger.post("/v1/echo", content=flood, headers={**headers, **extra})
                assert (answer.status_code, answer.content) == (404, b"")
    assert rsa_private_ops == []
    # The control: the same counter sees a known caller's open (a small flood, 3 PKESKs).
    with server.client() as known:
        answer = known.post("/v1/echo", content=wildcard_flood(3), headers=headers)
    assert answer.status_code == 404  # the message opens with none of our keys
    assert rsa_private_ops.count("decrypt") > 0


def _raw(server: Server, request: bytes) -> bytes:
    """One request written as is (a Content-Length with no body behind it, say)."""
    host, port = server.url.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=10) as plain,
        server.tls().wrap_socket(plain, server_hostname=host) as tls,
    ):
        tls.sendall(request)
        chunks = []
        while chunk := tls.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                break
    return b"".join(chunks)


# Every probe of finding 6, and more of the same class: (method, path, extra request arguments).
PROBES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/v1/gopc", {}),
    ("HEAD", "/v1/gopc", {}),
    ("OPTIONS", "/v1/gopc", {}),
    ("PUT", "/v1/gopc", {"content": b"{}"}),
    ("POST", "/v1/gopc", {"json": {}}),
    ("POST", "/v1/gopc", {"content": b"x" * 20_000}),  # over the cap
    ("POST", "/v1/gopc/", {"json": {}}),
    ("POST", "/V1/GOPC", {"json": {}}),
    ("POST", "/v1/echo", {"content": b"", "headers": {"content-type": "application/jose"}}),
    ("POST", "/v1/echo", {"content": b"AAAA"}),
    ("GET", "/v1/echo", {}),
    ("POST", "/v1/echo/", {"content": b"AAAA"}),
    ("GET", "/v1/keys", {}),
    ("GET", "/v1/keys/", {}),
    ("GET", "/v1/keys/public", {}),
    ("GET", "/v1/keys/public/", {}),
    ("GET", "/openapi.json", {}),
    ("GET", "/docs", {}),
    ("GET", "/redoc", {}),
    ("GET", "/metrics", {}),
    ("GET", "/metrics/", {}),
    ("HEAD", "/livez", {}),
    ("POST", "/livez", {}),
    ("GET", "/livez/", {}),
    ("OPTIONS", "/readyz", {}),
    ("GET", "/readyz/", {}),
    ("POST", "/dashboard", {}),
    ("GET", "/dashboard/", {}),
    ("GET", "/", {}),
    ("GET", "/nothing-here", {}),
    ("DELETE", "/v1/keys", {}),
    ("TRACE", "/", {}),
    ("GET", "/v1/gopc?x=1", {}),
    ("GET", "/%2e%2e/v1/keys", {}),
]


@pytest.mark.parametrize(
    ("method", "path", "extra"), PROBES, ids=[f"{m} {p}" for m, p, _ in PROBES]
)
@pytest.mark.parametrize("authorization", [None, "Bearer pp_not-a-client", "Basic Og=="])
def test_an_unknown_caller_gets_404_and_an_empty_body(
    server: Server, method: str, path: str, extra: dict[str, Any], authorization: str | None
) -> None:
    arguments = dict(extra)
    headers = dict(arguments.pop("headers", {}))
    if authorization:
        headers["authorization"] = authorization
    with httpx.Client(base_url=server.url, verify=server.tls()) as stranger:
        answer = stranger.request(method, path, headers=headers, **arguments)
    assert (answer.status_code, answer.content) == (404, b"")
    assert "allow" not in answer.headers and "location" not in answer.headers
    assert "www-authenticate" not in answer.headers


def test_an_unknown_caller_declaring_a_huge_body_gets_404_before_it_is_read(
    server: Server,
) -> None:
    for path in (b"/v1/gopc", b"/v1/echo", b"/nothing"):
        head = _raw(
            server,
            b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n",
        )
        assert head.startswith(b"HTTP/1.1 404 "), head[:40]
        assert b"\r\ncontent-length: 0\r\n" in head.lower()


def test_the_probes_are_real_routes_for_a_known_caller(server: Server) -> None:
    # The control for the table: the same requests, with a key, reach the routes behind the gate.
    with server.client() as known:
        assert known.get("/v1/gopc").status_code == 405
        assert known.post("/v1/gopc", content=b"x" * 20_000).status_code == 413
        assert known.get("/openapi.json").json()["openapi"].startswith("3.1")
        assert "pushprov_http_requests_total" in known.get("/metrics").text
        assert known.get("/v1/keys/public").json()["format"] == "pgp"
        assert known.get("/v1/keys").status_code == 200
        assert known.get("/readyz").json() == {"status": "ready", "problems": []}


def test_the_balancer_probes_are_public_and_say_nothing_more(server: Server) -> None:
    with httpx.Client(base_url=server.url, verify=server.tls()) as balancer:
        live = balancer.get("/livez")
        ready = balancer.get("/readyz")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})  # no key names


def test_a_keyless_service_is_not_ready_and_names_no_key_to_strangers(
    tmp_path: Any, google: openpgp.SecretKey
) -> None:
    source = FileKeySource(signers=[], recipients=[google.certificate])
    with running_server(tmp_path, source) as srv:
        with httpx.Client(base_url=srv.url, verify=srv.tls()) as balancer:
            ready = balancer.get("/readyz")
        with srv.client() as known:
            detailed = known.get("/readyz")
    assert (ready.status_code, ready.json()) == (503, {"status": "not ready"})
    assert detailed.status_code == 503 and detailed.json()["problems"]


def test_the_dashboard_prompts_for_sign_in_on_loopback_only(server: Server) -> None:
    with httpx.Client(base_url=server.url, verify=server.tls()) as browser:
        prompt = browser.get("/dashboard")
    assert prompt.status_code == 401 and prompt.headers["www-authenticate"].startswith("Basic")

    async def from_afar() -> httpx.Response:
        transport = httpx.ASGITransport(app=server.app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://edge") as client:
            return await client.get("/dashboard")

    afar = asyncio.run(from_afar())
    assert (afar.status_code, afar.content) == (404, b"")


def test_an_unknown_caller_costs_no_crypto_over_many_requests(
    server: Server, rsa_private_ops: list[str]
) -> None:
    # Not a timing assertion: what an unknown caller makes us do is counted, and it is nothing.
    flood = wildcard_flood(700)
    with httpx.Client(base_url=server.url, verify=server.tls()) as stranger:
        for path in ("/v1/gopc", "/v1/echo", "/v1/keys/public", "/metrics", "/openapi.json"):
            for content_type in ("application/octet-stream", "application/jose"):
                answer = stranger.post(path, content=flood, headers={"content-type": content_type})
                assert (answer.status_code, answer.content) == (404, b"")
    assert rsa_private_ops == []
