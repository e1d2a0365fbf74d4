"""JWK/PEM loading and export, thumbprints, reprs, pickling."""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import json
import pickle
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pushprov._errors import (
    InputTooLargeError,
    KeyInvalidError,
    PolicyViolationError,
    UsageError,
)
from pushprov._policy import GOOGLE_PROFILE
from pushprov.jose import JwkKey, load_jwk, load_jwks

from .jose_support import NOW, fixed_key

# RFC 7638 §3.1: the example key and its SHA-256 thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2Qvz"
    "qY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZ"
    "u0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


def test_thumbprint_matches_rfc7638() -> None:
    key = load_jwk(json.dumps({"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256"}))
    assert key.thumbprint == RFC7638_THUMBPRINT
    assert key.kid == RFC7638_THUMBPRINT  # no kid in the JWK: the thumbprint stands in
    assert (key.alg, key.use, key.is_private, key.bits) == ("RS256", None, False, 2048)


def test_export_shows_secrets_only_on_request() -> None:
    key = fixed_key("exported", use="enc")
    public_doc = json.loads(key.to_json())
    assert not set(PRIVATE_MEMBERS) & public_doc.keys()
    assert (public_doc["kid"], public_doc["use"]) == ("exported", "enc")
    private_doc = json.loads(key.to_json(private=True))
    assert set(PRIVATE_MEMBERS) <= private_doc.keys()
    issued = int(NOW.timestamp())
    assert (private_doc["iat"], private_doc["exp"]) == (issued, issued + 365 * 86400)
    again = load_jwk(key.to_json(private=True))
    assert (again.thumbprint, again.kid, again.is_private) == (key.thumbprint, "exported", True)
    assert (again.created, again.expires, again.use) == (key.created, key.expires, "enc")
    with pytest.raises(UsageError):
        key.public().to_json(private=True)


def test_reprs_show_kid_and_thumbprint_only() -> None:
    key = fixed_key("shown")
    assert repr(key) == f"JwkKey(kid='shown', thumbprint='{key.thumbprint}')"
    assert str(key.public()) == repr(key)
    secret_doc = json.loads(key.to_json(private=True))
    for member in ("n", *PRIVATE_MEMBERS):
        assert secret_doc[member][:16] not in repr(key)


def test_private_keys_cannot_be_pickled_or_copied_public_ones_can() -> None:
    key = fixed_key("pickled")
    with pytest.raises(TypeError):
        pickle.dumps(key)
    with pytest.raises(TypeError):
        copy.copy(key)
    restored = pickle.loads(pickle.dumps(key.public()))
    assert (restored.kid, restored.thumbprint, restored.is_private) == (
        "pickled",
        key.thumbprint,
        False,
    )
    with pytest.raises(TypeError):
        JwkKey()


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, fmt: str) -> bytes:
    if fmt == "spki":
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    private_format = {
        "pkcs8": serialization.PrivateFormat.PKCS8,
        "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
    }[fmt]
    return key.private_bytes(
        serialization.Encoding.PEM, private_format, serialization.NoEncryption()
    )


@pytest.mark.parametrize(("fmt", "private"), [("pkcs8", True), ("pkcs1", True), ("spki", False)])
def test_pem_keys_load(fmt: str, private: bool) -> None:
    secret = fixed_key("pem")._secret
    assert secret is not None
    key = load_jwk(_pem(secret, fmt))
    assert (key.is_private, key.kid, key.thumbprint) == (
        private,
        key.thumbprint,
        fixed_key("pem").thumbprint,
    )
    assert (key.alg, key.expires) == (None, None)


def test_bad_pem_keys_are_refused() -> None:
    secret = fixed_key("pem")._secret
    assert secret is not None
    encrypted = secret.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    with pytest.raises(KeyInvalidError, match="encrypted"):
        load_jwk(encrypted)
    with pytest.raises(KeyInvalidError, match="only RSA"):
        load_jwk(_pem(ec.generate_private_key(ec.SECP256R1()), "pkcs8"))
    with pytest.raises(KeyInvalidError):
        load_jwk(b"-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(PolicyViolationError):
        load_jwk(_pem(small, "spki"))
    loose = dataclasses.replace(GOOGLE_PROFILE, min_rsa_bits=1024)
    assert load_jwk(_pem(small, "spki"), policy=loose).bits == 1024


def _jwk(**changes: object) -> str:
    doc = json.loads(fixed_key("base").to_json(private=True))
    doc.update(changes)
    return json.dumps({name: value for name, value in doc.items() if value is not None})


@pytest.mark.parametrize(
    "text",
    [
        _jwk(kty="EC"),
        _jwk(n=None),
        _jwk(e=17),
        _jwk(d=None),  # some private members without the others
        _jwk(qi=None),
        _jwk(p=json.loads(fixed_key("other").to_json(private=True))["p"]),  # inconsistent
        _jwk(n=json.loads(_jwk())["n"] + "="),  # padded base64url
        _jwk(use="signing"),
        _jwk(key_ops=["sign, verify"]),
        _jwk(key_ops=["sign", "sign"]),
        _jwk(kid=""),
        _jwk(alg=5),
        _jwk(exp="tomorrow"),
        _jwk(iat=1795953600, exp=1795953600),
        _jwk(oth=[]),
        '{"kty":"RSA","kty":"RSA"}',
        "not json",
        '{"keys":[]}',
    ],
)
def test_bad_jwks_are_refused(text: str) -> None:
    with pytest.raises(KeyInvalidError):
        load_jwk(text)


def test_jwk_policy_checks() -> None:
    with pytest.raises(PolicyViolationError):
        load_jwk(_jwk(iat=1795953600, exp=1795953600 + 731 * 86400))
    with pytest.raises(InputTooLargeError):
        load_jwk(_jwk(), policy=dataclasses.replace(GOOGLE_PROFILE, max_key_file_bytes=100))
    assert load_jwk(_jwk(iat=None, exp=None)).expires is None


def test_key_sets() -> None:
    keys = [fixed_key("one"), fixed_key("two").public()]
    text = json.dumps({"keys": [json.loads(k.to_json(private=k.is_private)) for k in keys]})
    loaded = load_jwks(text)
    assert [(k.kid, k.is_private) for k in loaded] == [("one", True), ("two", False)]
    one = json.loads(keys[0].to_json())
    bad_sets: tuple[dict[str, object], ...] = (
        {"keys": []},
        {"keys": [one, one]},  # one kid twice
        {"keys": [one, {"kty": "oct", "k": "AAAA"}]},
        {"keys": ["one"]},
        {"no": "keys"},
    )
    for bad in bad_sets:
        with pytest.raises(KeyInvalidError):
            load_jwks(json.dumps(bad))


def test_generated_key_metadata_round_trips_at_now() -> None:
    key = fixed_key("meta", use="sig", alg="PS256")
    doc = json.loads(key.to_json())
    assert (doc["alg"], doc["use"], doc["iat"]) == ("PS256", "sig", int(NOW.timestamp()))


def _pem_block(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der)
    return f"-----BEGIN {label}-----\n".encode() + body + f"-----END {label}-----\n".encode()


def _der_sequence(body: bytes) -> bytes:
    assert len(body) < 128  # short-form length is all these tiny structures need
    return bytes([0x30, len(body)]) + body


# AlgorithmIdentifier { OID 1.2.3.4 }: well-formed DER that no OpenSSL backend knows.
_UNKNOWN_ALGORITHM = bytes.fromhex("300506032a0304")


@pytest.mark.parametrize(
    ("label", "der"),
    [
        # PKCS#8 PrivateKeyInfo: version 0, the unknown algorithm, an OCTET STRING key.
        ("PRIVATE KEY", _der_sequence(b"\x02\x01\x00" + _UNKNOWN_ALGORITHM + b"\x04\x03abc")),
        # SubjectPublicKeyInfo: the unknown algorithm, a BIT STRING key.
        ("PUBLIC KEY", _der_sequence(_UNKNOWN_ALGORITHM + b"\x03\x02\x00\xff")),
    ],
    ids=["pkcs8", "spki"],
)
def test_pem_with_an_unknown_algorithm_is_an_invalid_key(label: str, der: bytes) -> None:
    with pytest.raises(KeyInvalidError, match="only RSA"):
        load_jwk(_pem_block(label, der))


@pytest.mark.parametrize("load", [load_jwk, load_jwks])
def test_text_with_a_lone_surrogate_is_an_invalid_key(load: Callable[[str], object]) -> None:
    for text in ('{"kty":"RSA","kid":"\ud800"}', '{"keys":[{"kty":"RSA","kid":"\udfff"}]}'):
        with pytest.raises(KeyInvalidError, match="Unicode"):
            load(text)


END_OF_TIME = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime holds


@pytest.mark.parametrize("member", ["iat", "exp"])
def test_jwk_times_end_with_year_9999(member: str) -> None:
    # No "iat" with a far "exp" (and the reverse): the lifetime check is not what is tested.
    other = "exp" if member == "iat" else "iat"
    last = load_jwk(_jwk(**{member: END_OF_TIME, other: None}))
    when = last.created if member == "iat" else last.expires
    assert when == dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)
    assert json.loads(last.to_json())[member] == END_OF_TIME  # and it reads back
    for value in (END_OF_TIME + 1, 2**40 - 1):
        with pytest.raises(KeyInvalidError, match="Unix seconds"):
            load_jwk(_jwk(**{member: value, other: None}))


def test_policy_problems_of_a_jwk() -> None:
    signer = fixed_key("policy-sig", use="sig")  # made at NOW, valid for the default year
    assert signer.policy_problems(GOOGLE_PROFILE, NOW) == []
    assert signer.policy_problems(GOOGLE_PROFILE, NOW, use="enc") == ['its use is not "enc"']
    assert signer.policy_problems(GOOGLE_PROFILE, NOW + dt.timedelta(days=366)) == ["it is expired"]
    strict = dataclasses.replace(GOOGLE_PROFILE, min_rsa_bits=3072)
    assert signer.policy_problems(strict, NOW) == ["it has 2048 bits (< 3072)"]

    doc = json.loads(signer.public().to_json())
    # Pinned to an encryption algorithm while its use is signing: which algorithms are allowed
    # follows the key's own use, or the one asked for.
    pinned = load_jwk(json.dumps({**doc, "alg": "RSA1_5"}))
    assert pinned.policy_problems(GOOGLE_PROFILE, NOW) == [
        "it is pinned to an algorithm the policy does not allow for its use"
    ]
    assert pinned.policy_problems(GOOGLE_PROFILE, NOW, use="enc") == ['its use is not "enc"']
    undated = load_jwk(json.dumps({key: doc[key] for key in ("kty", "n", "e")}))
    assert undated.policy_problems(GOOGLE_PROFILE, NOW) == [
        "it records no creation time (iat) or no expiry (exp)"
    ]
    long_lived = {**doc, "exp": doc["iat"] + 800 * 86400}
    loose = dataclasses.replace(GOOGLE_PROFILE, max_key_lifetime=dt.timedelta(days=1000))
    key = load_jwk(json.dumps(long_lived), policy=loose)
    assert key.policy_problems(GOOGLE_PROFILE, NOW) == ["its lifetime exceeds 730 days"]
