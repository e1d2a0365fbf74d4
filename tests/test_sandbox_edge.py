"""The sandbox's edge (issue 14, findings 1 and 6): loopback peers only, every body capped before
it is read, so it is no CPU amplifier for whoever reaches it."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pushprov.keys import Environment, Keystore, SecretCache, StoreKeySource
from pushprov.openpgp._packets import Tag, encode_packet, mpi
from pushprov.openpgp._rsa import SoftwareRsaKey
from pushprov.sandbox import SessionBook, create_sandbox_app
from pushprov.sandbox._app import CERTIFICATE_CAP, GOPC_CAP
from pushprov.store import SqliteStore

from .conftest import T0, Keys

SANDBOX = Environment.SANDBOX


@pytest.fixture
def app(tmp_path: Path, keys: Keys) -> object:
    path = tmp_path / "sbx" / "keystore.db"
    path.parent.mkdir(mode=0o700)

    def open_keystore(cache: SecretCache | None = None) -> Keystore:
        store = SqliteStore.open(path, passphrase=b"sandbox edge", create=True, kdf_log2n=10)
        return Keystore(store, actor="sandbox-edge", secret_cache=cache)

    keystore = open_keystore()
    own = keystore.import_key(SANDBOX, keys.google_1.armor(b"p").encode(), passphrase=b"p", at=T0)
    keystore.promote(SANDBOX, own.key_id, at=T0)
    issuer = keystore.import_key(
        SANDBOX, keys.issuer_a.certificate.armor().encode(), owner="issuer", at=T0
    )
    keystore.promote(SANDBOX, issuer.key_id, at=T0)
    keystore.close()
    source = StoreKeySource(open_keystore, SANDBOX, refresh=0)
    return create_sandbox_app(
        keys=source, keystore=open_keystore, sessions=SessionBook(), clock=lambda: T0
    )


def _flood(count: int) -> str:
    """``count`` wildcard PKESKs (each tried against every sandbox key) and a small SEIPD."""
    pkesk = encode_packet(Tag.PKESK, b"\x03" + bytes(8) + b"\x01" + mpi(b"\x01\x23"))
    return base64.b64encode(pkesk * count + encode_packet(Tag.SEIPD, b"\x01" + bytes(64))).decode()


def _call(app: object, peer: str, method: str, path: str, **kwargs: object) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            return await client.request(method, path, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(go())


@pytest.fixture
def rsa_decryptions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    done: list[int] = []
    decrypt = SoftwareRsaKey.decrypt_block

    def counted(self: SoftwareRsaKey, block: bytes) -> bytes:
        done.append(1)
        return decrypt(self, block)

    monkeypatch.setattr(SoftwareRsaKey, "decrypt_block", counted)
    return done


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/gopc"), ("POST", "/v1/issuer-keys"), ("POST", "/v1/sessions"),
     ("GET", "/v1/keys/public"), ("GET", "/livez"), ("GET", "/openapi.json"), ("GET", "/x")],
)  # fmt: skip
def test_a_peer_beyond_loopback_gets_404_and_nothing_else(
    app: object, method: str, path: str
) -> None:
    answer = _call(app, "203.0.113.7", method, path, content=b"{}")
    assert (answer.status_code, answer.content) == (404, b"")
    assert _call(app, "::ffff:203.0.113.7", method, path).status_code == 404


def test_the_finding_flood_is_refused_before_any_rsa_work(
    app: object, keys: Keys, rsa_decryptions: list[int]
) -> None:
    flood = _flood(1085)  # the finding's 1,085 PKESKs: over the cap as base64
    answer = _call(app, "127.0.0.1", "POST", "/v1/gopc", json={"googleOpaquePaymentCard": flood})
    assert answer.status_code == 413 and rsa_decryptions == []

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: capped while reading
        for _ in range(40):
            yield b" " * 1024

    answer = _call(app, "127.0.0.1", "POST", "/v1/gopc", content=chunks())
    assert answer.status_code == 413 and rsa_decryptions == []
    # The control: under the cap, a small flood reaches the engine (and its own budget).
    answer = _call(
        app, "127.0.0.1", "POST", "/v1/gopc", json={"googleOpaquePaymentCard": _flood(3)}
    )
    assert answer.json()["reasonCode"] in ("DECRYPTION_FAILED", "MALFORMED")
    assert len(rsa_decryptions) > 0


def test_an_issuer_certificate_over_the_cap_is_refused_unread(app: object, keys: Keys) -> None:
    armored = keys.issuer_b.certificate.armor().encode()
    assert len(armored) < CERTIFICATE_CAP < GOPC_CAP * 8
    padded = armored + b"\n" * (CERTIFICATE_CAP + 1 - len(armored))
    answer = _call(app, "127.0.0.1", "POST", "/v1/issuer-keys", content=padded)
    assert answer.status_code == 413
    assert _call(app, "127.0.0.1", "POST", "/v1/issuer-keys", content=armored).status_code == 200
