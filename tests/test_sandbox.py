"""The sandbox (Google's side) accepts a good GOPC once, and names each way a GOPC fails."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from pathlib import Path

import httpx
import pytest

from pushprov import GOOGLE_PROFILE, Card, Gopc, Pan, jose, openpgp, seal_gopc, seal_message
from pushprov.keys import Environment, Keystore, SecretCache, StoreKeySource
from pushprov.sandbox import Reason, Sandbox, SessionBook
from pushprov.store import SqliteStore

from .conftest import T0, Keys

SANDBOX = Environment.SANDBOX
PASSPHRASE = b"sandbox test passphrase"
CARD = Card(Pan("4111111111111111"), "12", "29")


@dataclasses.dataclass
class World:
    sandbox: Sandbox
    keystore: Keystore
    issuer: openpgp.SecretKey
    sandbox_key: openpgp.Certificate
    retired_key: openpgp.Certificate


@pytest.fixture
def world(tmp_path: Path, keys: Keys) -> World:
    path = tmp_path / "sandbox" / "keystore.db"
    path.parent.mkdir(mode=0o700)

    def open_keystore(cache: SecretCache | None = None) -> Keystore:
        store = SqliteStore.open(path, passphrase=PASSPHRASE, create=True, kdf_log2n=10)
        return Keystore(
            store, actor="sandbox-test", secret_cache=cache, drain_window=dt.timedelta(0)
        )

    keystore = open_keystore()
    old = keystore.import_key(SANDBOX, keys.google_2.armor(b"p").encode(), passphrase=b"p", at=T0)
    keystore.promote(SANDBOX, old.key_id, at=T0)
    issuer = keystore.import_key(
        SANDBOX, keys.issuer_a.certificate.armor().encode(), owner="issuer", at=T0
    )
    keystore.promote(SANDBOX, issuer.key_id, at=T0)
    # The sandbox rotates: google_1 in, google_2 out (retiring, then retired).
    new = keystore.import_key(SANDBOX, keys.google_1.armor(b"p").encode(), passphrase=b"p", at=T0)
    keystore.promote(SANDBOX, new.key_id, at=T0, replacing=[old.key_id])
    keystore.retire(SANDBOX, old.key_id, at=T0, final=True)
    source = StoreKeySource(open_keystore, SANDBOX, refresh=0)
    sandbox = Sandbox(source, SessionBook(lifetime=dt.timedelta(minutes=5)))
    return World(
        sandbox, keystore, keys.issuer_a, keys.google_1.certificate, keys.google_2.certificate
    )


def _gopc(
    world: World,
    session: str,
    *,
    signer: openpgp.SecretKey | None = None,
    to: openpgp.Certificate | None = None,
) -> bytes:
    return seal_gopc(
        Gopc(server_session_id=session, card=CARD),
        sign_with=[signer or world.issuer],
        encrypt_to=[to or world.sandbox_key],
        at=T0,
    )


def test_a_good_gopc_is_accepted_once(world: World) -> None:
    session, expires = world.sandbox.sessions.issue(T0)
    assert expires == T0 + dt.timedelta(minutes=5)
    verdict = world.sandbox.accept(_gopc(world, session), at=T0)
    assert verdict.accepted and verdict.reason is Reason.ACCEPTED
    assert verdict.signers == (world.issuer.fingerprint,)
    again = world.sandbox.accept(_gopc(world, session), at=T0)
    assert again.reason is Reason.SESSION_REUSED


def test_jwks_in_the_sandbox_store_leave_openpgp_acceptance_alone(world: World) -> None:
    for use in ("sig", "enc"):
        key = jose.generate_jwk(bits=2048, at=T0, use=use)
        record = world.keystore.import_key(
            SANDBOX, key.public().to_json().encode(), owner="issuer", at=T0
        )
        world.keystore.promote(SANDBOX, record.key_id, at=T0)
    session, _ = world.sandbox.sessions.issue(T0)
    assert world.sandbox.accept(_gopc(world, session), at=T0).accepted


def test_web_safe_base64_is_accepted(world: World) -> None:
    session, _ = world.sandbox.sessions.issue(T0)
    sealed = seal_gopc(
        Gopc(server_session_id=session, card=CARD),
        sign_with=[world.issuer], encrypt_to=[world.sandbox_key], at=T0,
        encoding=__import__("pushprov").Encoding.BASE64URL,
    )  # fmt: skip
    assert world.sandbox.accept(sealed, at=T0).accepted


def test_each_rejection_has_its_own_reason(world: World, keys: Keys) -> None:
    reasons = {}
    reasons["unknown session"] = world.sandbox.accept(_gopc(world, "never-issued"), at=T0).reason
    session, _ = world.sandbox.sessions.issue(T0)
    reasons["expired session"] = world.sandbox.accept(
        _gopc(world, session), at=T0 + dt.timedelta(minutes=6)
    ).reason
    session, _ = world.sandbox.sessions.issue(T0)
    reasons["untrusted signer"] = world.sandbox.accept(
        _gopc(world, session, signer=keys.stranger), at=T0
    ).reason
    reasons["retired sandbox key"] = world.sandbox.accept(
        _gopc(world, session, to=world.retired_key), at=T0
    ).reason
    bad_card = json.dumps(
        {
            "protocolHeader": {"version": 1},
            "validationContext": {"serverSessionId": session},
            "paymentCard": {
                "accountNumber": "4111111111111111",
                "expiryMonth": "13",
                "expiryYear": "29",
            },
        }
    ).encode()
    malformed = seal_message(
        bad_card, sign_with=[world.issuer], encrypt_to=[world.sandbox_key], at=T0
    )
    reasons["malformed card"] = world.sandbox.accept(malformed, at=T0).reason
    reasons["not a message"] = world.sandbox.accept(b"%%%", at=T0).reason
    assert reasons == {
        "unknown session": Reason.SESSION_UNKNOWN,
        "expired session": Reason.SESSION_EXPIRED,
        "untrusted signer": Reason.SIGNATURE_UNTRUSTED,
        "retired sandbox key": Reason.DECRYPTION_FAILED,
        "malformed card": Reason.GOPC_INVALID,
        "not a message": Reason.MALFORMED,
    }
    # None of the failures used the session up: it still works for a good GOPC.
    assert world.sandbox.accept(_gopc(world, session), at=T0).accepted


def test_sandbox_http_endpoints(tmp_path: Path, keys: Keys) -> None:
    from pushprov.sandbox import create_sandbox_app

    path = tmp_path / "sbx" / "keystore.db"
    path.parent.mkdir(mode=0o700)

    def open_keystore(cache: SecretCache | None = None) -> Keystore:
        store = SqliteStore.open(path, passphrase=PASSPHRASE, create=True, kdf_log2n=10)
        return Keystore(store, actor="sandbox-http", secret_cache=cache)

    keystore = open_keystore()
    own = keystore.import_key(SANDBOX, keys.google_1.armor(b"p").encode(), passphrase=b"p", at=T0)
    keystore.promote(SANDBOX, own.key_id, at=T0)
    source = StoreKeySource(open_keystore, SANDBOX, refresh=0)
    app = create_sandbox_app(
        keys=source, keystore=open_keystore, sessions=SessionBook(), clock=lambda: T0
    )

    encryption_subkey = (
        keys.google_1.certificate.encryption_key(GOOGLE_PROFILE, T0).fingerprint.hex().upper()
    )
    assert encryption_subkey != keys.google_1.fingerprint  # a subkey, not the primary key

    async def exercise() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            published = (await client.get("/v1/keys/public")).json()["keys"]
            assert [openpgp.read_certificates(k.encode())[0].fingerprint for k in published] == [
                keys.google_1.fingerprint
            ]
            trusted = await client.post(
                "/v1/issuer-keys", content=keys.issuer_a.certificate.armor()
            )
            assert trusted.status_code == 200 and trusted.json()["state"] == "active"
            refused = await client.post("/v1/issuer-keys", content=b"not a key")
            assert refused.status_code == 400
            session = (await client.post("/v1/sessions")).json()["serverSessionId"]
            sealed = seal_gopc(
                Gopc(server_session_id=session, card=CARD),
                sign_with=[keys.issuer_a], encrypt_to=[keys.google_1.certificate], at=T0,
            ).decode()  # fmt: skip
            submission = {"googleOpaquePaymentCard": sealed}
            verdict = (await client.post("/v1/gopc", json=submission)).json()
            assert verdict == {
                "accepted": True,
                "reasonCode": "ACCEPTED",
                "signers": [keys.issuer_a.fingerprint],
                # The fingerprint of google_1's encryption subkey, the one sealed to.
                "decryptionKey": encryption_subkey,
                # What the issuer's app would get back, as its backend reports it to pushprov.
                "appResult": {"outcome": "accepted", "errorCode": None},
            }
            again = (await client.post("/v1/gopc", json=submission)).json()
            assert again["reasonCode"] == "SESSION_REUSED" and again["accepted"] is False
            assert again["appResult"] == {"outcome": "rejected", "errorCode": "SESSION_REUSED"}

    asyncio.run(exercise())
