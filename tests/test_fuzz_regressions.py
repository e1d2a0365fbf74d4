"""Inputs the fuzzers (fuzz/, docs/fuzzing.md) found escaping as something else than a
``PushprovError``, each refused properly now. Crashing inputs found by the fuzzer are kept as
files in tests/fuzz_regressions/; the others are their siblings, found reading the same code.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import pushprov
from fuzz import load
from pushprov import GOOGLE_PROFILE, PushprovError, UnsupportedError, UsageError, jose, openpgp
from pushprov.jose._compact import b64u_decode, b64u_encode
from pushprov.openpgp._algorithms import new_hash
from pushprov.openpgp._packets import Tag, encode_packet, mpi, read_packets
from pushprov.openpgp._signature import SigType, Sub, make_signature
from pushprov.service import ServiceConfig

FOUND = Path(__file__).resolve().parent / "fuzz_regressions"
AT = dt.datetime(2026, 11, 2, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "text",
    [
        (FOUND / "config-non-utf8.toml").read_bytes(),  # fuzzer: UnicodeDecodeError
        b"service = 1",  # TypeError: a [service] that is not a table
        b"timestamp_skew = inf",  # OverflowError: timedelta
        b"timestamp_skew = 1e300",  # OverflowError: timedelta
        b"port = inf",  # OverflowError: int
        b'data_dir = "~nosuchuser-pushprov/x"',  # RuntimeError: no such home directory
    ],
    ids=["non-utf8", "service-not-table", "inf-duration", "huge-duration", "inf-int", "no-home"],
)
def test_config_refuses_with_usage_error(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "service.toml"
    path.write_bytes(text)
    with pytest.raises(UsageError) as refused:
        ServiceConfig.load(path, environ={})
    assert refused.value.exit_status == 2


# ---------------------------------------------------------------------------------------------
# RSA public keys the loaders let through but the RSA code cannot use: sealing to them raised
# ValueError ("Encryption failed"), e.g. in the keystore's self-test on promote, which the
# sandbox's unauthenticated POST /v1/issuer-keys runs (a 500 there).
# ---------------------------------------------------------------------------------------------


def _b64_int(value: int) -> str:
    return b64u_encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).decode()


def _odd_modulus(bits: int) -> int:
    return secrets.randbits(bits) | (1 << (bits - 1)) | 1


def _jwk(n: int, e: int) -> bytes:
    return json.dumps({"kty": "RSA", "n": _b64_int(n), "e": _b64_int(e), "kid": "k"}).encode()


def _seal_jwe_to(data: bytes) -> None:
    """Load ``data`` as a JWK or PEM and seal a message to it (a PushprovError is fine)."""
    key = jose.load_jwk(data)
    signer = jose.generate_jwk(bits=2048, at=AT)
    pushprov.seal_message(b"{}", sign_with=[signer], encrypt_to=[key], format="jwe", at=AT)


def test_fuzzed_jwk_with_an_even_modulus_is_refused() -> None:
    found = (FOUND / "jwk-even-modulus.json").read_bytes()  # fuzzer: ValueError on sealing
    assert int.from_bytes(b64u_decode(json.loads(found)["n"].encode()), "big") % 2 == 0
    load("jwk")(found)  # the harness: load, then seal to the key and verify with it
    with pytest.raises(PushprovError):
        _seal_jwe_to(found)


@pytest.mark.parametrize(
    "n_bits, e",
    [
        (2048, 65536),  # even exponent
        (4096, 2**100 + 1),  # OpenSSL refuses exponents over 64 bits for moduli over 3072
        (3072, 2**1000 + 1),  # usable, but each public operation costs 60 times more
    ],
    ids=["even-e", "huge-e-4096", "huge-e-3072"],
)
def test_jwk_with_an_unusable_exponent_is_refused(n_bits: int, e: int) -> None:
    with pytest.raises(PushprovError):
        _seal_jwe_to(_jwk(_odd_modulus(n_bits), e))


def test_pem_key_over_the_jwk_size_bound_is_refused() -> None:
    """The JWK path refused moduli over 8192 bits; the PEM path let 20000 bits through."""
    public = rsa.RSAPublicNumbers(65537, _odd_modulus(20000)).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(PushprovError):
        _seal_jwe_to(pem)


def _certificate_with_subkey(n: int, e: int) -> bytes:
    """A certificate whose primary key validly binds an encryption subkey with modulus ``n``.

    A key's owner can bind any subkey to it (encryption subkeys need no back-signature), so a
    stranger can make this; the fuzzer cannot, as it cannot sign.
    """
    secret = openpgp.generate_key("s <s@x.example>", bits=2048, at=AT)
    primary, ops = secret.signer(GOOGLE_PROFILE, AT)
    created = int(AT.timestamp())
    body = b"\x04" + created.to_bytes(4, "big") + b"\x01" + mpi(n) + mpi(e)
    hasher = new_hash(10)
    hasher.update(primary.hash_prefix() + b"\x99" + len(body).to_bytes(2, "big") + body)
    binding = make_signature(
        ops,
        fingerprint=primary.fingerprint,
        sig_type=SigType.SUBKEY_BINDING,
        hash_algo=10,
        data_hash=hasher,
        created=created,
        subpackets=[
            (Sub.KEY_FLAGS, b"\x0c"),
            (Sub.KEY_EXPIRATION, (86400 * 30).to_bytes(4, "big")),
        ],
    )
    packets = [
        (t, b) for t, b in read_packets(secret.certificate.to_bytes()) if t != Tag.PUBLIC_SUBKEY
    ]
    primary_and_uid = b"".join(encode_packet(t, b) for t, b in packets[:3])
    return (
        primary_and_uid
        + encode_packet(Tag.PUBLIC_SUBKEY, body)
        + encode_packet(Tag.SIGNATURE, binding)
    )


@pytest.mark.parametrize(
    "n, e",
    [
        (_odd_modulus(2048) - 1, 65537),  # even modulus
        (_odd_modulus(4096), 2**100 + 1),  # exponent OpenSSL refuses
        (_odd_modulus(20000), 65537),  # modulus over OpenSSL's 16384 bits
    ],
    ids=["even-n", "huge-e", "20000-bit-n"],
)
def test_certificate_with_an_unusable_subkey_is_refused(n: int, e: int) -> None:
    data = _certificate_with_subkey(n, e)
    signer = openpgp.generate_key("i <i@x.example>", bits=2048, at=AT)
    with pytest.raises(PushprovError):
        (certificate,) = openpgp.read_certificates(data)
        pushprov.seal_message(b"{}", sign_with=[signer], encrypt_to=[certificate], at=AT)


def test_sandbox_refuses_an_unusable_issuer_certificate_with_400(tmp_path: Path) -> None:
    """Unauthenticated POST /v1/issuer-keys with the even-modulus certificate: 400, not 500."""
    import asyncio

    import httpx

    from pushprov.keys import Environment, Keystore, SecretCache, StoreKeySource
    from pushprov.sandbox import SessionBook, create_sandbox_app
    from pushprov.store import SqliteStore

    path = tmp_path / "keystore.db"

    def open_keystore(cache: SecretCache | None = None) -> Keystore:
        store = SqliteStore.open(path, passphrase=b"p" * 16, create=True, kdf_log2n=10)
        return Keystore(store, actor="fuzz-regression", secret_cache=cache)

    own = openpgp.generate_key("g <g@x.example>", bits=2048, at=AT)
    keystore = open_keystore()
    record = keystore.import_key(
        Environment.SANDBOX, own.armor(b"p").encode(), passphrase=b"p", at=AT
    )
    keystore.promote(Environment.SANDBOX, record.key_id, at=AT)
    app = create_sandbox_app(
        keys=StoreKeySource(open_keystore, Environment.SANDBOX, refresh=0),
        keystore=open_keystore,
        sessions=SessionBook(),
        clock=lambda: AT,
    )
    hostile = _certificate_with_subkey(_odd_modulus(2048) - 1, 65537)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            return await client.post("/v1/issuer-keys", content=hostile)

    response = asyncio.run(post())
    assert response.status_code == 400, response.text


def test_key_packet_over_65535_octets_is_refused() -> None:
    """A non-RSA key packet (not cut at its exponent) over 65,535 octets: OverflowError while
    computing its fingerprint (issue 14, finding 9), through the certificate harness."""
    body = b"\x04" + (1).to_bytes(4, "big") + b"\x16" + bytes(70_000)  # algorithm 22, EdDSA
    load("certificate")(encode_packet(Tag.PUBLIC_KEY, body))
    # The documented code for a non-RSA key (exit 10), not internal_error.
    with pytest.raises(UnsupportedError):
        openpgp.read_certificates(encode_packet(Tag.PUBLIC_KEY, body))
