"""Hostile tokens: algorithm confusion, header tricks, strict parsing, caps, RSA1_5 oracles."""

from __future__ import annotations

import hmac
import json
import os
import tracemalloc
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding

from pushprov._card import parse_strict_json as card_json
from pushprov._errors import (
    DecryptionFailedError,
    GopcInvalidError,
    InputTooLargeError,
    KeyInvalidError,
    MalformedInputError,
    PolicyViolationError,
    PushprovError,
    SignatureInvalidError,
)
from pushprov._json import parse_strict_json
from pushprov._policy import GOOGLE_PROFILE
from pushprov.jose import JwkKey, load_jwk, open_jwe, seal_jwe
from pushprov.jose._cek import unwrap_cek
from pushprov.jose._compact import b64u_decode, b64u_encode, encode_header
from pushprov.jose._content import deflate
from pushprov.jose._jws import sign_jws
from pushprov.jose._keys import PrivateOps

from .jose_support import NOW, fixed_key, forge_jwe

PAYLOAD = b'{"protocolHeader":{"version":1}}'
NESTED = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "victim", "cty": "JWT"}


class CountingOps:
    """Our own seam, instrumented: counts private-key operations and passes them through."""

    def __init__(self, inner: PrivateOps) -> None:
        self.inner = inner
        self.decrypts = 0

    def decrypt(self, ciphertext: bytes, padding: AsymmetricPadding) -> bytes:
        self.decrypts += 1
        return self.inner.decrypt(ciphertext, padding)

    def sign(
        self, data: bytes, padding: AsymmetricPadding, algorithm: hashes.HashAlgorithm
    ) -> bytes:
        return self.inner.sign(data, padding, algorithm)


def _probed(key: JwkKey) -> tuple[JwkKey, CountingOps]:
    assert key._secret is not None
    probe = CountingOps(key._secret)
    return key._with_ops(probe), probe


def _open(token: bytes | str, key: JwkKey, **options: Any) -> None:
    open_jwe(token, decrypt_with=[key], verify_with=[fixed_key("signer")], at=NOW, **options)


def _jws() -> bytes:
    return sign_jws(PAYLOAD, fixed_key("signer"), "RS256")


def test_header_alg_other_than_the_pinned_alg_costs_no_rsa_work() -> None:
    pinned, probe = _probed(fixed_key("victim", alg="RSA-OAEP-256"))
    honest = forge_jwe(NESTED, _jws(), pinned)
    _open(honest, pinned)
    assert probe.decrypts == 1  # the probe does see the work when the alg fits
    confused = forge_jwe({**NESTED, "alg": "RSA1_5"}, _jws(), pinned, wrap_alg="RSA1_5")
    kidless = forge_jwe(
        {"alg": "RSA1_5", "enc": "A256GCM", "cty": "JWT"}, _jws(), pinned, wrap_alg="RSA1_5"
    )
    for token in (confused, kidless):
        with pytest.raises(DecryptionFailedError):
            _open(token, pinned)
    assert probe.decrypts == 1


@pytest.mark.parametrize(
    "alg",
    [
        "none",
        "dir",
        "A256KW",
        "A128GCMKW",
        "PBES2-HS256+A128KW",
        "ECDH-ES",
        "ECDH-ES+A256KW",
        "RSA-OAEP",
        "RSA-OAEP-384",
        "HS256",
    ],
)
def test_refused_key_management_algorithms(alg: str) -> None:
    key, probe = _probed(fixed_key("victim"))
    with pytest.raises(PolicyViolationError):
        _open(forge_jwe({**NESTED, "alg": alg}, _jws(), key), key)
    assert probe.decrypts == 0


@pytest.mark.parametrize(
    "extra",
    [
        {"enc": "A128GCM"},
        {"enc": "A256CBC-HS512"},
        {"zip": "GZIP"},
        {"crit": ["exp"], "exp": 1},
        {"crit": []},
        {"jwk": json.loads(fixed_key("attacker").to_json())},
        {"jku": "https://attacker.example/jwks"},
        {"x5u": "https://attacker.example/cert"},
        {"x5c": ["MIIB"]},
    ],
)
def test_refused_header_members(extra: dict[str, Any]) -> None:
    key, probe = _probed(fixed_key("victim"))
    with pytest.raises(PolicyViolationError):
        _open(forge_jwe({**NESTED, **extra}, _jws(), key), key)
    assert probe.decrypts == 0


@pytest.mark.parametrize("cty", ["application/json", "JOSE+JSON", "text/plain", ""])
def test_another_declared_content_type_is_unsigned_and_costs_no_rsa_work(cty: str) -> None:
    key, probe = _probed(fixed_key("victim"))
    with pytest.raises(SignatureInvalidError, match="no nested JWS signature"):
        _open(forge_jwe({**NESTED, "cty": cty}, _jws(), key), key)
    assert probe.decrypts == 0
    # Undeclared, the plaintext decides: the same JWS opens, after one RSA decryption.
    undeclared = {name: value for name, value in NESTED.items() if name != "cty"}
    _open(forge_jwe(undeclared, _jws(), key), key)
    assert probe.decrypts == 1


def _inner(header: dict[str, Any], signature: bytes = b"sig") -> bytes:
    return b".".join((encode_header(header), b64u_encode(PAYLOAD), b64u_encode(signature)))


@pytest.mark.parametrize(
    "inner",
    [
        _inner({"alg": "none"}, b""),
        _inner({"alg": "HS256", "kid": "signer"}),
        _inner({"alg": "PS384", "kid": "signer"}),
        _inner({"alg": "RS256", "kid": "signer", "crit": ["b64"], "b64": False}),
        _inner({"alg": "RS256", "b64": False}),
        _inner({"alg": "RS256", "jwk": json.loads(fixed_key("attacker").to_json())}),
        _inner({"alg": "RS256", "x5c": ["MIIB"]}),
    ],
)
def test_refused_nested_signatures(inner: bytes) -> None:
    key = fixed_key("victim")
    with pytest.raises(PolicyViolationError):
        _open(forge_jwe(NESTED, inner, key), key)


def test_hmac_with_the_public_key_as_secret_is_not_a_signature() -> None:
    signer = fixed_key("signer")
    header_b64 = encode_header({"alg": "HS256", "kid": "signer"})
    signing_input = header_b64 + b"." + b64u_encode(PAYLOAD)
    mac = hmac.digest(signer.to_json().encode(), signing_input, "sha256")
    key = fixed_key("victim")
    with pytest.raises(PolicyViolationError):
        _open(forge_jwe(NESTED, signing_input + b"." + b64u_encode(mac), key), key)


def _segments(token: bytes) -> list[bytes]:
    return token.split(b".")


def _valid() -> bytes:
    return seal_jwe(PAYLOAD, sign_with=fixed_key("signer"), encrypt_to=fixed_key("victim"), at=NOW)


def _with_segment(index: int, value: bytes) -> bytes:
    segments = _segments(_valid())
    segments[index] = value
    return b".".join(segments)


def _raw_header(text: bytes) -> bytes:
    return _with_segment(0, b64u_encode(text))


MALFORMED: dict[str, Callable[[], bytes | str]] = {
    "padded header": lambda: _with_segment(0, _segments(_valid())[0] + b"=="),
    "padded iv": lambda: _with_segment(2, _segments(_valid())[2] + b"="),
    "padded tag": lambda: _with_segment(4, _segments(_valid())[4] + b"=="),
    "standard alphabet": lambda: _with_segment(3, _segments(_valid())[3][:-4] + b"ab+/"),
    # A 16-byte tag is 22 characters: the last one has 4 spare bits, which "B" sets.
    "non-canonical tag": lambda: _with_segment(4, _segments(_valid())[4][:-1] + b"B"),
    "4 segments": lambda: b".".join(_segments(_valid())[:4]),
    "6 segments": lambda: _valid() + b".AAAA",
    "3 segments": lambda: b".".join(_segments(_valid())[:3]),
    "duplicate header member": lambda: _raw_header(
        b'{"alg":"RSA-OAEP-256","enc":"A256GCM","alg":"RSA1_5","kid":"victim","cty":"JWT"}'
    ),
    "bad UTF-8 in header": lambda: _raw_header(
        b'{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"\xff","cty":"JWT"}'
    ),
    "header is an array": lambda: _raw_header(b'["alg","RSA-OAEP-256"]'),
    "header with NaN": lambda: _raw_header(
        b'{"alg":"RSA-OAEP-256","enc":"A256GCM","cty":"JWT","n":NaN}'
    ),
    "no enc": lambda: _raw_header(b'{"alg":"RSA-OAEP-256","cty":"JWT"}'),
    "no alg": lambda: _raw_header(b'{"enc":"A256GCM","cty":"JWT"}'),
    "kid not a string": lambda: _raw_header(
        b'{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":7,"cty":"JWT"}'
    ),
    "short IV": lambda: _with_segment(2, b64u_encode(os.urandom(8))),
    "short tag": lambda: _with_segment(4, b64u_encode(os.urandom(8))),
    "empty encrypted key": lambda: _with_segment(1, b""),
    "non-ASCII text": lambda: _valid().decode() + "\u00e9",
}


# Every way JSON can be non-strict, once for all readers (card, service, JOSE header, JWK).
STRICT_JSON_CASES = {
    "duplicate member": b'{"alg":"RSA-OAEP-256","alg":"RSA1_5"}',
    "NaN": b'{"alg":"RSA-OAEP-256","n":NaN}',
    "-Infinity": b'{"alg":"RSA-OAEP-256","n":-Infinity}',
    "bad UTF-8": b'{"alg":"\xff"}',
    "not JSON": b'{"alg":',
    "nested too deep": b"[" * 1200,  # past Python's recursion limit, within the header cap
}


@pytest.mark.parametrize("name", sorted(STRICT_JSON_CASES))
def test_one_strict_json_reader_serves_cards_and_jose(name: str) -> None:
    text = STRICT_JSON_CASES[name]
    for error in (GopcInvalidError, MalformedInputError, KeyInvalidError):
        with pytest.raises(error) as caught:
            parse_strict_json(text, what="input", error=error)
        assert caught.value.__cause__ is None and "alg" not in str(caught.value)
    # The GOPC reader and the JWE header reader are that one reader: same refusal, same words.
    with pytest.raises(GopcInvalidError) as as_card:
        card_json(text, what="the JWE header")
    key, probe = _probed(fixed_key("victim"))
    with pytest.raises(MalformedInputError) as as_header:
        _open(_raw_header(text), key)
    assert as_header.value.message == as_card.value.message
    assert probe.decrypts == 0


@pytest.mark.parametrize("kid", ["", "k" * 257, r"line\nbreak", r"nul\u0000", r"\ud800"])
def test_one_kid_rule_for_jwks_and_headers(kid: str) -> None:
    # The kid goes in as a JSON escape: the header text stays ASCII.
    kid_json = f'"kid":"{kid}"'.encode()
    key, probe = _probed(fixed_key("victim"))
    header = b'{"alg":"RSA-OAEP-256","enc":"A256GCM","cty":"JWT",' + kid_json + b"}"
    with pytest.raises(MalformedInputError) as in_jwe:
        _open(_raw_header(header), key)
    inner = b64u_encode(b'{"alg":"RS256",' + kid_json + b"}") + b"." + b64u_encode(PAYLOAD) + b".AA"
    with pytest.raises(MalformedInputError) as in_jws:
        _open(forge_jwe(NESTED, inner, key), key)
    jwk = json.loads(fixed_key("victim").to_json())
    del jwk["kid"]
    with pytest.raises(KeyInvalidError) as in_jwk:
        load_jwk(json.dumps(jwk)[:-1].encode() + b"," + kid_json + b"}")
    messages = {error.value.message for error in (in_jwe, in_jws, in_jwk)}
    assert messages == {"kid must be 1 to 256 printable characters"}
    assert probe.decrypts == 1  # the nested JWS was decrypted, the bad header kid never was


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_structural_problems_are_malformed_input(name: str) -> None:
    token = MALFORMED[name]()
    key, probe = _probed(fixed_key("victim"))
    with pytest.raises(MalformedInputError):
        _open(token, key)
    assert probe.decrypts == 0


def test_non_canonical_base64url_is_refused() -> None:
    assert b64u_decode(b"AA") == b"\x00"
    for text in (b"AB", b"AAB", b"A", b"AA==", b"A A"):
        with pytest.raises(MalformedInputError):
            b64u_decode(text)


def test_nested_jws_structure_is_checked() -> None:
    key = fixed_key("victim")
    jws = _jws()
    for inner in (jws + b".x", jws.rsplit(b".", 1)[0], jws.replace(b".", b".=", 1)):
        with pytest.raises(MalformedInputError):
            _open(forge_jwe(NESTED, inner, key), key)


def test_token_and_header_caps() -> None:
    key, probe = _probed(fixed_key("victim"))
    with pytest.raises(InputTooLargeError):
        _open(b"A" * (GOOGLE_PROFILE.max_jose_token_bytes + 1), key)
    long_header = {**NESTED, "pad": "x" * GOOGLE_PROFILE.max_jose_header_bytes}
    with pytest.raises(InputTooLargeError):
        _open(forge_jwe(long_header, _jws(), key), key)
    assert probe.decrypts == 0


def test_inflate_bomb_is_refused_with_little_memory() -> None:
    key = fixed_key("victim")
    bomb = deflate(b"\0" * (10 * 1024 * 1024))
    assert len(bomb) < 20_000
    token = forge_jwe({**NESTED, "zip": "DEF"}, bomb, key)
    tracemalloc.start()
    try:
        with pytest.raises(InputTooLargeError):
            _open(token, key)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # the cap is 64 KiB; 10 MiB never materialises


@pytest.mark.parametrize(
    "content",
    [
        zlib.compress(b"x" * 100),  # zlib-wrapped, not raw DEFLATE
        deflate(b"x" * 100)[:-2],  # truncated
        deflate(b"x" * 100) + b"trailing",
        b"\xff\xff\xff\xff",
    ],
    ids=["zlib-wrapped", "truncated", "trailing-bytes", "garbage"],
)
def test_bad_deflate_is_a_decryption_failure(content: bytes) -> None:
    key = fixed_key("victim")
    with pytest.raises(DecryptionFailedError):
        _open(forge_jwe({**NESTED, "zip": "DEF"}, content, key), key)


def _raw_rsa(key: JwkKey, encoded_message: bytes) -> bytes:
    numbers = key._public.public_numbers()
    size = (numbers.n.bit_length() + 7) // 8
    value = pow(int.from_bytes(encoded_message, "big"), numbers.e, numbers.n)
    return value.to_bytes(size, "big")


def _nonzero(length: int) -> bytes:
    return bytes(b % 255 + 1 for b in os.urandom(length))


def _pkcs1(key: JwkKey, message: bytes, *, block_type: int = 2, separator: bool = True) -> bytes:
    size = key.bits // 8
    filler = _nonzero(size - 3 - len(message) + (0 if separator else 1))
    encoded = bytes([0, block_type]) + filler + (b"\0" if separator else b"") + message
    assert len(encoded) == size
    return _raw_rsa(key, encoded)


def test_rsa1_5_failures_are_indistinguishable() -> None:
    key = fixed_key("victim", alg="RSA1_5")  # RSA1_5 is only for keys pinned to it
    jws = _jws()
    header = {**NESTED, "alg": "RSA1_5"}
    good = forge_jwe(header, jws, key, wrap_alg="RSA1_5")
    _open(good, key)  # the control: a proper RSA1_5 token opens
    numbers = key._public.public_numbers()
    bad_keys = {
        "cek-0-bytes": _pkcs1(key, b""),
        "cek-16-bytes": _pkcs1(key, os.urandom(16)),
        "cek-33-bytes": _pkcs1(key, os.urandom(33)),
        "wrong-cek-32-bytes": _pkcs1(key, os.urandom(32)),
        "block-type-01": _pkcs1(key, os.urandom(32), block_type=1),
        "no-separator": _pkcs1(key, b"", separator=False),
        "random": (int.from_bytes(os.urandom(256), "big") % numbers.n).to_bytes(256, "big"),
        "short": os.urandom(100),
    }
    outcomes = set()
    for encrypted_key in bad_keys.values():
        token = forge_jwe(header, jws, key, wrap_alg="RSA1_5", encrypted_key=encrypted_key)
        with pytest.raises(PushprovError) as caught:
            _open(token, key)
        error = caught.value
        outcomes.add((type(error), error.code, str(error), error.args, error.message))
    assert outcomes == {
        (
            DecryptionFailedError,
            "decryption_failed",
            "decryption_failed: the message could not be decrypted",
            ("the message could not be decrypted",),
            "the message could not be decrypted",
        )
    }


def test_an_unpinned_key_is_no_rsa1_5_oracle() -> None:
    # An unpinned key serves RSA-OAEP-256; were it to unwrap PKCS#1 v1.5 too, that oracle
    # would open its captured OAEP tokens. RSA1_5 tokens to it cost no RSA work at all.
    unpinned, probe = _probed(fixed_key("victim"))
    legacy, legacy_probe = _probed(fixed_key("legacy", alg="RSA1_5"))
    jws = _jws()
    header = {**NESTED, "alg": "RSA1_5"}
    kidless = {"alg": "RSA1_5", "enc": "A256GCM", "cty": "JWT"}
    errors = set()
    for token in (
        forge_jwe(header, jws, unpinned, wrap_alg="RSA1_5"),
        forge_jwe(kidless, jws, unpinned, wrap_alg="RSA1_5"),
        forge_jwe(header, jws, unpinned, wrap_alg="RSA1_5", encrypted_key=os.urandom(256)),
    ):
        with pytest.raises(DecryptionFailedError) as caught:
            _open(token, unpinned)
        errors.add(str(caught.value))
    assert probe.decrypts == 0
    assert errors == {"decryption_failed: the message could not be decrypted"}
    # Beside a pinned key, a kid-less RSA1_5 token is tried on the pinned key only.
    to_legacy = forge_jwe(kidless, jws, legacy, wrap_alg="RSA1_5")
    keys = [unpinned, legacy]
    opened = open_jwe(to_legacy, decrypt_with=keys, verify_with=[fixed_key("signer")], at=NOW)
    assert (opened.decryption_key, probe.decrypts, legacy_probe.decrypts) == ("legacy", 0, 1)


def test_unwrap_substitutes_fresh_random_keys_of_the_right_length() -> None:
    key = fixed_key("victim")
    assert key._secret is not None
    for message in (b"", os.urandom(16), os.urandom(33)):
        encrypted = _pkcs1(key, message)
        first = unwrap_cek(key._secret, "RSA1_5", encrypted, 32)
        second = unwrap_cek(key._secret, "RSA1_5", encrypted, 32)
        assert len(first) == len(second) == 32
        assert first != second  # fresh each time, never derived from the ciphertext
    cek = os.urandom(32)
    assert unwrap_cek(key._secret, "RSA1_5", _pkcs1(key, cek), 32) == cek


def test_every_single_character_edit_fails_with_our_errors() -> None:
    token = _valid()
    key = fixed_key("victim")
    # Exhaustive over positions, cycling the replacement through base64url, "." and "=".
    replacements = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="
    for position in range(len(token)):
        replacement = replacements[position % len(replacements)]
        if replacement == token[position]:
            replacement = replacements[(position + 1) % len(replacements)]
        mutated = token[:position] + bytes([replacement]) + token[position + 1 :]
        with pytest.raises(PushprovError):
            _open(mutated, key)
