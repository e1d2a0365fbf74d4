"""Published vectors driven through our own functions: RFC 7520 (JOSE cookbook), Wycheproof.

Each Wycheproof test prints its tally (run pytest with ``-s`` to see them). Where a vector lies
outside the profile and our function cannot take it, it is counted as skipped with the reason.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from pushprov._errors import (
    DecryptionFailedError,
    PolicyViolationError,
    PushprovError,
    SignatureInvalidError,
)
from pushprov._policy import GOOGLE_PROFILE
from pushprov.jose import JwkKey, load_jwk, open_jwe
from pushprov.jose._cek import unwrap_cek
from pushprov.jose._compact import b64u_decode
from pushprov.jose._content import TAG_BYTES, decrypt_content, encrypt_content, inflate
from pushprov.jose._jwe import _decrypt, _Parts
from pushprov.jose._jws import verify_jws

from .jose_support import NOW, fixed_key, load_vector

COOKBOOK = ("rfc7520-cookbook", "jwe")
WYCHEPROOF = ("wycheproof", "testvectors_v1")
# Every content and signature algorithm we implement, so the vectors reach the RSA and content
# code even where Google's profile (GOOGLE_PROFILE) would refuse them at the header already.
WIDE = dataclasses.replace(
    GOOGLE_PROFILE,
    jwe_encs=frozenset(TAG_BYTES),
    jws_algs=frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
)


@dataclasses.dataclass
class Tally:
    """What happened to each vector of one file; printed, and checked for completeness."""

    name: str
    valid_ok: int = 0
    invalid_rejected: int = 0
    skipped: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    acceptable: list[str] = dataclasses.field(default_factory=list)

    def report(self, total: int) -> None:
        counted = self.valid_ok + self.invalid_rejected + sum(self.skipped.values())
        counted += len(self.acceptable)
        print(
            f"wycheproof {self.name}: {self.valid_ok} valid ok, "
            f"{self.invalid_rejected} invalid rejected, {sum(self.skipped.values())} skipped"
            + "".join(f"\n  skipped {n}: {reason}" for reason, n in sorted(self.skipped.items()))
            + "".join(f"\n  acceptable {line}" for line in self.acceptable)
        )
        assert counted == total  # every vector was looked at and lands in exactly one bucket
        assert self.valid_ok and self.invalid_rejected


def _tests(data: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(group, test) for group in data["testGroups"] for test in group["tests"]]


# --- RFC 7520 ---------------------------------------------------------------------------------


def _cookbook(name: str) -> Any:
    return load_vector(*COOKBOOK, name)


def test_rfc7520_5_1_rsa1_5_a128cbc_hs256() -> None:
    vector = _cookbook("5_1.key_encryption_using_rsa_v15_and_aes-hmac-sha2.json")
    content = vector["encrypting_content"]
    aad = content["protected_b64u"].encode()
    plaintext = vector["input"]["plaintext"].encode()
    cek, iv = (b64u_decode(vector["generated"][n].encode()) for n in ("cek", "iv"))
    ciphertext, tag = encrypt_content("A128CBC-HS256", cek, iv, plaintext, aad)
    assert (ciphertext, tag) == (
        b64u_decode(content["ciphertext"].encode()),
        b64u_decode(content["tag"].encode()),
    )
    # The cookbook key has no "alg"; we use RSA1_5 only with keys pinned to it.
    unpinned = load_jwk(json.dumps(vector["input"]["key"]))
    with pytest.raises(DecryptionFailedError):
        open_jwe(
            vector["output"]["compact"],
            decrypt_with=[unpinned],
            verify_with=[],
            at=NOW,
            allow_unsigned=True,
        )
    key = load_jwk(json.dumps({**vector["input"]["key"], "alg": "RSA1_5"}))
    opened = open_jwe(
        vector["output"]["compact"], decrypt_with=[key], verify_with=[], at=NOW, allow_unsigned=True
    )
    assert opened.plaintext == plaintext
    assert (opened.decryption_key, opened.cipher) == (
        "frodo.baggins@hobbiton.example",
        "A128CBC-HS256",
    )


def test_rfc7520_5_2_rsa_oaep_a256gcm() -> None:
    """Content half byte-exact; the whole token is refused: RSA-OAEP (SHA-1) is out by design."""
    vector = _cookbook("5_2.key_encryption_using_rsa-oaep_with_aes-gcm.json")
    content = vector["encrypting_content"]
    aad = content["protected_b64u"].encode()
    plaintext = vector["input"]["plaintext"].encode()
    cek, iv = (b64u_decode(vector["generated"][n].encode()) for n in ("cek", "iv"))
    ciphertext, tag = encrypt_content("A256GCM", cek, iv, plaintext, aad)
    assert ciphertext == b64u_decode(content["ciphertext"].encode())
    assert tag == b64u_decode(content["tag"].encode())
    assert decrypt_content("A256GCM", cek, iv=iv, ciphertext=ciphertext, tag=tag, aad=aad) == (
        plaintext
    )
    key = load_jwk(json.dumps(vector["input"]["key"]))
    with pytest.raises(PolicyViolationError):
        open_jwe(
            vector["output"]["compact"],
            decrypt_with=[key],
            verify_with=[],
            at=NOW,
            allow_unsigned=True,
        )
    # Parameter confusion: the SHA-1 OAEP key does not come out of our SHA-256 OAEP unwrap.
    assert key._ops is not None
    encrypted_key = b64u_decode(vector["encrypting_key"]["encrypted_key"].encode())
    assert unwrap_cek(key._ops, "RSA-OAEP-256", encrypted_key, 32) != cek


def test_rfc7520_5_9_compressed_content() -> None:
    """A128KW + A128GCM + DEF: content half byte-exact, inflated by our code; key wrap refused."""
    vector = _cookbook("5_9.compressed_content.json")
    content = vector["encrypting_content"]
    aad = content["protected_b64u"].encode()
    generated = {
        n: b64u_decode(vector["generated"][n].encode()) for n in ("cek", "iv", "plaintext_c")
    }
    ciphertext, tag = encrypt_content(
        "A128GCM", generated["cek"], generated["iv"], generated["plaintext_c"], aad
    )
    assert ciphertext == b64u_decode(content["ciphertext"].encode())
    assert tag == b64u_decode(content["tag"].encode())
    compressed = decrypt_content(
        "A128GCM", generated["cek"], iv=generated["iv"], ciphertext=ciphertext, tag=tag, aad=aad
    )
    plaintext = inflate(compressed, GOOGLE_PROFILE.max_plaintext_bytes)
    assert plaintext == vector["input"]["plaintext"].encode()
    with pytest.raises(PolicyViolationError):
        open_jwe(
            vector["output"]["compact"],
            decrypt_with=[fixed_key("any")],
            verify_with=[],
            at=NOW,
            allow_unsigned=True,
        )


# --- Wycheproof: content encryption -----------------------------------------------------------


def _aead_file(filename: str, enc_for: Callable[[dict[str, Any]], str | None]) -> None:
    data = load_vector(*WYCHEPROOF, filename)
    tally = Tally(filename.removesuffix("_test.json"))
    for group, test in _tests(data):
        fields = {n: bytes.fromhex(test[n]) for n in ("key", "iv", "aad", "msg", "ct", "tag")}
        enc = enc_for(group)
        aad = fields["aad"]
        outcome: bytes | None
        try:
            outcome = decrypt_content(
                enc or "A256GCM",
                fields["key"],
                iv=fields["iv"],
                ciphertext=fields["ct"],
                tag=fields["tag"],
                aad=aad,
            )
        except DecryptionFailedError:
            outcome = None
        if enc is None:
            # JOSE fixes the IV at 96 bits and the tag at 128: our function refuses the rest.
            assert outcome is None
            if test["result"] == "valid":
                tally.skipped[f"IV of {group['ivSize']} bits: not JOSE"] += 1
            else:
                tally.invalid_rejected += 1
        elif test["result"] == "valid":
            assert outcome == fields["msg"], test["tcId"]
            sealed = encrypt_content(enc, fields["key"], fields["iv"], fields["msg"], aad)
            assert sealed == (fields["ct"], fields["tag"]), test["tcId"]
            tally.valid_ok += 1
        elif test["result"] == "invalid":
            assert outcome is None, test["tcId"]
            tally.invalid_rejected += 1
        else:
            tally.acceptable.append(
                f"{test['tcId']} {test['comment']}: opened={outcome is not None}"
            )
    tally.report(data["numberOfTests"])


def test_wycheproof_aes_gcm() -> None:
    def enc_for(group: dict[str, Any]) -> str | None:
        if group["ivSize"] != 96 or group["tagSize"] != 128:
            return None
        return f"A{group['keySize']}GCM"

    _aead_file("aes_gcm_test.json", enc_for)


def test_wycheproof_a128cbc_hs256() -> None:
    _aead_file("a128cbc_hs256_test.json", lambda group: "A128CBC-HS256")


# --- Wycheproof: RSA key management -----------------------------------------------------------

# A CEK of 16 or 32 bytes is one some JOSE enc uses: such vectors are also run end to end.
_ENC_FOR_CEK = {16: "A128GCM", 32: "A128CBC-HS256"}


def _ends_at_the_tag(key: JwkKey, alg: str, encrypted_key: bytes, cek: bytes) -> bool:
    """Encrypt content under ``cek`` and open it with ``encrypted_key``: True if it opens.

    The unwrap never raises: a bad ``encrypted_key`` can only show up as a failed tag.
    """
    enc = _ENC_FOR_CEK[len(cek)]
    iv = os.urandom(16 if enc.startswith("A128CBC") else 12)
    ciphertext, tag = encrypt_content(enc, cek, iv, b"content", b"aad")
    try:
        _decrypt([key], alg, enc, _Parts(b"aad", encrypted_key, iv, ciphertext, tag))
    except DecryptionFailedError:
        return False
    return True


@pytest.mark.parametrize(
    ("filename", "alg"),
    [
        *(
            (f"rsa_oaep_{b}_sha256_mgf1sha256_test.json", "RSA-OAEP-256")
            for b in (2048, 3072, 4096)
        ),
        *((f"rsa_pkcs1_{b}_test.json", "RSA1_5") for b in (2048, 3072, 4096)),
    ],
)
def test_wycheproof_rsa_unwrap(filename: str, alg: str) -> None:
    data = load_vector(*WYCHEPROOF, filename)
    tally = Tally(filename.removesuffix("_test.json"))
    for group in data["testGroups"]:
        key = _load_cached(json.dumps(group["privateKeyJwk"]))  # our loader, on their key
        assert key._ops is not None and key.alg == alg
        for test in group["tests"]:
            message, ciphertext = bytes.fromhex(test["msg"]), bytes.fromhex(test["ct"])
            if test.get("label"):
                # JOSE's RSA-OAEP-256 has no label: a labelled ciphertext is not a JWE key.
                assert unwrap_cek(key._ops, alg, ciphertext, max(len(message), 1)) != message
                if test["result"] == "valid":
                    tally.skipped["OAEP label: JOSE uses none"] += 1
                else:
                    tally.invalid_rejected += 1
                continue
            unwrapped = unwrap_cek(key._ops, alg, ciphertext, max(len(message), 1))
            if test["result"] == "valid":
                if not message:
                    tally.skipped["empty message: no JOSE CEK is 0 bytes"] += 1
                    continue
                assert unwrapped == message, test["tcId"]
                if len(message) in _ENC_FOR_CEK:
                    assert _ends_at_the_tag(key, alg, ciphertext, message)
                tally.valid_ok += 1
            elif test["result"] == "invalid":
                # §11.5: no raise, a key of the asked length that is not the smuggled message,
                # and, end to end, a failed tag even for content sealed under that message.
                assert len(unwrapped) == max(len(message), 1) and unwrapped != message
                cek = message if len(message) in _ENC_FOR_CEK else os.urandom(32)
                assert not _ends_at_the_tag(key, alg, ciphertext, cek), test["tcId"]
                tally.invalid_rejected += 1
            else:
                tally.acceptable.append(f"{test['tcId']} {test['comment']}")
    tally.report(data["numberOfTests"])


# --- Wycheproof: JWE and JWS as a whole -------------------------------------------------------


@functools.cache
def _load_cached(text: str) -> JwkKey:
    # Files repeat one key per group; checking a 4096-bit private key takes OpenSSL ~0.2 s.
    return load_jwk(text)


def _load_rsa(jwk: dict[str, Any]) -> JwkKey | None:
    if jwk.get("kty") != "RSA":
        return None
    return _load_cached(json.dumps(jwk))


def test_wycheproof_json_web_encryption() -> None:
    data = load_vector(*WYCHEPROOF, "json_web_encryption_test.json")
    tally = Tally("json_web_encryption")
    stranger = fixed_key("stranger")  # stands in where the vector's key is not RSA
    for group, test in _tests(data):
        key = _load_rsa(group["private"])
        token = test["jwe"]

        def open_with(policy: Any, key: JwkKey | None = key, token: str = token) -> bytes:
            return open_jwe(
                token,
                decrypt_with=[key or stranger],
                verify_with=[],
                at=NOW,
                policy=policy,
                allow_unsigned=True,
            ).plaintext

        if test["result"] == "invalid":
            for policy in (GOOGLE_PROFILE, WIDE):
                with pytest.raises(PushprovError):
                    open_with(policy)
            tally.invalid_rejected += 1
            continue
        assert test["result"] == "valid"
        header = json.loads(b64u_decode(token.split(".")[0].encode()))
        if key is None or header["alg"] not in WIDE.jwe_algs:
            with pytest.raises(PolicyViolationError):
                open_with(WIDE)
            tally.skipped[f"alg {header['alg']}: outside the profile by design"] += 1
            continue
        assert open_with(WIDE) == bytes.fromhex(test["pt"]), test["tcId"]
        if header["enc"] in GOOGLE_PROFILE.jwe_encs:
            assert open_with(GOOGLE_PROFILE) == bytes.fromhex(test["pt"])
        else:
            with pytest.raises(PolicyViolationError):
                open_with(GOOGLE_PROFILE)
        tally.valid_ok += 1
    tally.report(data["numberOfTests"])


# Valid by Wycheproof, refused by a rule of ours that is stricter on purpose.
_JWS_REFUSED_BY_DESIGN = {
    346: "key pinned to PS256 (JWK alg), token says PS384: a pinned key serves one alg",
    350: "key pinned to PS256 (JWK alg), token says PS384: a pinned key serves one alg",
}


def test_wycheproof_json_web_signature() -> None:
    data = load_vector(*WYCHEPROOF, "json_web_signature_test.json")
    tally = Tally("json_web_signature")
    stranger = fixed_key("stranger")
    for group, test in _tests(data):
        key = _load_rsa(group.get("public", group["private"]))

        def verify(key: JwkKey | None = key, token: str = test["jws"]) -> bytes:
            return verify_jws(token.encode(), [key or stranger], WIDE, NOW)[0]

        if test["result"] == "invalid":
            with pytest.raises(PushprovError):
                verify()
            tally.invalid_rejected += 1
        elif key is None:
            with pytest.raises(PushprovError):
                verify()  # HMAC, ECDSA, EdDSA: not RSA, not in the profile
            tally.skipped["not an RSA signature: outside the profile"] += 1
        elif test["tcId"] in _JWS_REFUSED_BY_DESIGN:
            with pytest.raises(SignatureInvalidError):
                verify()
            tally.skipped[_JWS_REFUSED_BY_DESIGN[test["tcId"]]] += 1
        else:
            verify()
            tally.valid_ok += 1
    tally.report(data["numberOfTests"])
