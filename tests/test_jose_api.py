"""pushprov.jose: public surface, seal/open round trips, key choice, expiry, policy."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import types
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

import pushprov.jose
from pushprov._errors import (
    DecryptionFailedError,
    InputTooLargeError,
    KeyUnusableError,
    MalformedInputError,
    PolicyViolationError,
    SignatureInvalidError,
    UsageError,
)
from pushprov._opened import Opened
from pushprov._policy import GOOGLE_PROFILE, Policy
from pushprov.jose import JwkKey, generate_jwk, load_jwk, open_jwe, seal_jwe
from pushprov.jose._compact import b64u_encode, encode_header
from pushprov.jose._jws import sign_jws, verify_jws

from .jose_support import (
    NOW,
    PROFILE_CELLS,
    cell_recipient,
    decode_header,
    fixed_key,
    forge_jwe,
)

PAYLOAD = b'{"protocolHeader":{"version":1}}'


def test_public_surface_is_pinned() -> None:
    expected = [
        "JweInfo",
        "JwkKey",
        "describe_jwe",  # whom a token is sealed to, for the key self-test
        "generate_jwk",
        "load_jwk",
        "load_jwks",
        "open_jwe",
        "seal_jwe",
    ]
    assert sorted(pushprov.jose.__all__) == expected
    public = {
        name
        for name, value in vars(pushprov.jose).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(expected)


@pytest.mark.parametrize(("alg", "enc", "compress"), PROFILE_CELLS)
def test_round_trip_every_profile_cell(alg: str, enc: str, compress: bool) -> None:
    signer, recipient = fixed_key("signer", use="sig"), cell_recipient("recipient", alg, use="enc")
    token = seal_jwe(
        PAYLOAD,
        sign_with=signer,
        encrypt_to=recipient.public(),
        at=NOW,
        alg=alg,
        enc=enc,
        compress=compress,
    )
    header = decode_header(token)
    assert header == {
        "alg": alg,
        "enc": enc,
        **({"zip": "DEF"} if compress else {}),
        "kid": "recipient",
        "cty": "JWT",
    }
    opened = open_jwe(token, decrypt_with=[recipient], verify_with=[signer.public()], at=NOW)
    assert opened.plaintext == PAYLOAD
    assert (opened.format, opened.decryption_key, opened.cipher) == ("jwe", "recipient", enc)
    (signature,) = opened.signatures
    assert (signature.certificate, signature.signing_key) == ("signer", "signer")
    # Registered members only, so strict verifiers take it: no signing time is written.
    assert (signature.hash_algorithm, signature.created) == ("RS256", None)


def test_defaults_are_the_policy_choices() -> None:
    token = seal_jwe(
        PAYLOAD, sign_with=fixed_key("signer"), encrypt_to=fixed_key("recipient"), at=NOW
    )
    header = decode_header(token)
    assert (header["alg"], header["enc"], "zip" in header) == ("RSA-OAEP-256", "A256GCM", False)


@pytest.mark.parametrize("jws_alg", ["RS256", "RS384", "RS512", "PS256"])
def test_selectable_signature_algorithms(jws_alg: str) -> None:
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    token = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=NOW, jws_alg=jws_alg)
    opened = open_jwe(token, decrypt_with=[recipient], verify_with=[signer], at=NOW)
    assert opened.signatures[0].hash_algorithm == jws_alg


def test_algorithms_outside_the_policy_are_refused_when_sealing() -> None:
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    for options in ({"jws_alg": "PS384"}, {"alg": "RSA-OAEP"}, {"enc": "A128GCM"}):
        with pytest.raises(PolicyViolationError):
            seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=NOW, **options)  # type: ignore[arg-type]


def test_a_stricter_policy_turns_rsa1_5_off() -> None:
    strict = dataclasses.replace(GOOGLE_PROFILE, jwe_algs=frozenset({"RSA-OAEP-256"}))
    signer, recipient = fixed_key("signer"), fixed_key("legacy", alg="RSA1_5")
    token = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=NOW, alg="RSA1_5")
    opened = open_jwe(token, decrypt_with=[recipient], verify_with=[signer], at=NOW)
    assert opened.plaintext == PAYLOAD
    with pytest.raises(PolicyViolationError):
        open_jwe(token, decrypt_with=[recipient], verify_with=[signer], at=NOW, policy=strict)
    with pytest.raises(PolicyViolationError):
        seal_jwe(
            PAYLOAD, sign_with=signer, encrypt_to=recipient, at=NOW, alg="RSA1_5", policy=strict
        )


def test_rsa1_5_is_only_for_keys_pinned_to_it() -> None:
    signer, unpinned = fixed_key("signer"), fixed_key("recipient")
    assert decode_header(seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=unpinned, at=NOW)) == {
        "alg": "RSA-OAEP-256",
        "enc": "A256GCM",
        "kid": "recipient",
        "cty": "JWT",
    }
    legacy_default = dataclasses.replace(GOOGLE_PROFILE, jwe_alg="RSA1_5")
    for options in ({"alg": "RSA1_5"}, {"policy": legacy_default}):
        with pytest.raises(KeyUnusableError, match="RSA1_5 is only for keys pinned to it"):
            seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=unpinned, at=NOW, **options)
    # Google's legacy variant: a key generated for it, pinned in its JWK, both ways.
    legacy = generate_jwk(bits=2048, at=NOW, use="enc", alg="RSA1_5", kid="legacy-enc")
    assert json.loads(legacy.to_json())["alg"] == "RSA1_5"
    token = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=load_jwk(legacy.to_json()), at=NOW)
    assert decode_header(token)["alg"] == "RSA1_5"
    opened = open_jwe(token, decrypt_with=[legacy], verify_with=[signer], at=NOW)
    assert (opened.plaintext, opened.decryption_key) == (PAYLOAD, "legacy-enc")


def test_a_pinned_key_chooses_its_algorithm_and_refuses_others() -> None:
    signer = fixed_key("signer")
    legacy = fixed_key("legacy", alg="RSA1_5")
    token = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=legacy, at=NOW)
    assert decode_header(token)["alg"] == "RSA1_5"
    with pytest.raises(KeyUnusableError, match="pinned to RSA1_5"):
        seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=legacy, at=NOW, alg="RSA-OAEP-256")
    ps_signer = fixed_key("ps-signer", alg="PS256")
    token = seal_jwe(PAYLOAD, sign_with=ps_signer, encrypt_to=legacy, at=NOW)
    opened = open_jwe(token, decrypt_with=[legacy], verify_with=[ps_signer], at=NOW)
    assert opened.signatures[0].hash_algorithm == "PS256"


def test_opening_picks_the_key_named_by_kid() -> None:
    signer = fixed_key("signer")
    keys = [fixed_key("old"), fixed_key("current"), fixed_key("next")]
    for key in keys:
        token = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=key.public(), at=NOW)
        opened = open_jwe(token, decrypt_with=keys, verify_with=[signer], at=NOW)
        assert opened.decryption_key == key.kid


def test_a_token_without_kid_tries_each_fitting_key() -> None:
    signer, target = fixed_key("signer"), fixed_key("target")
    jws = sign_jws(PAYLOAD, signer, "RS256")
    token = forge_jwe({"alg": "RSA-OAEP-256", "enc": "A256GCM", "cty": "JWT"}, jws, target)
    keys = [fixed_key("legacy", alg="RSA1_5"), fixed_key("other"), target]
    opened = open_jwe(token, decrypt_with=keys, verify_with=[signer], at=NOW)
    assert (opened.decryption_key, opened.plaintext) == ("target", PAYLOAD)
    with pytest.raises(DecryptionFailedError) as no_match:
        open_jwe(token, decrypt_with=keys[:2], verify_with=[signer], at=NOW)
    unknown = forge_jwe(
        {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "nobody", "cty": "JWT"}, jws, target
    )
    with pytest.raises(DecryptionFailedError) as unknown_kid:
        open_jwe(unknown, decrypt_with=keys, verify_with=[signer], at=NOW)
    assert (
        str(no_match.value)
        == str(unknown_kid.value)
        == "decryption_failed: " + ("the message could not be decrypted")
    )


def test_unsigned_content_needs_the_explicit_opt_in() -> None:
    recipient = fixed_key("recipient")
    token = forge_jwe({"alg": "RSA-OAEP-256", "enc": "A256GCM"}, PAYLOAD, recipient)
    with pytest.raises(SignatureInvalidError):
        open_jwe(token, decrypt_with=[recipient], verify_with=[], at=NOW)
    opened = open_jwe(token, decrypt_with=[recipient], verify_with=[], at=NOW, allow_unsigned=True)
    assert (opened.plaintext, opened.signatures) == (PAYLOAD, ())


def test_the_opt_in_still_verifies_a_nested_signature() -> None:
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    token = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=NOW)
    opened = open_jwe(
        token, decrypt_with=[recipient], verify_with=[signer], at=NOW, allow_unsigned=True
    )
    assert opened.signers == ("signer",)
    with pytest.raises(SignatureInvalidError):
        open_jwe(
            token,
            decrypt_with=[recipient],
            verify_with=[fixed_key("other")],
            at=NOW,
            allow_unsigned=True,
        )


@pytest.mark.parametrize(
    "cty", [None, "JWT", "jwt", "Jwt", "application/jwt", "APPLICATION/JWT", "JOSE", "jose"]
)
def test_a_nested_jws_is_recognised_by_cty_in_any_case_or_by_its_shape(cty: str | None) -> None:
    # Most libraries nest without "cty" (a compact JWS, then a JWE of that string).
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", **({"cty": cty} if cty else {})}
    token = forge_jwe(header, sign_jws(PAYLOAD, signer, "RS256"), recipient)
    for allow_unsigned in (False, True):
        opened = open_jwe(
            token,
            decrypt_with=[recipient],
            verify_with=[signer],
            at=NOW,
            allow_unsigned=allow_unsigned,
        )
        assert (opened.plaintext, opened.signers) == (PAYLOAD, ("signer",))


def _jws_with(header: Mapping[str, object], signature: bytes) -> bytes:
    return b".".join((encode_header(dict(header)), b64u_encode(PAYLOAD), b64u_encode(signature)))


@pytest.mark.parametrize("cty", [None, "application/json"])
def test_a_plaintext_shaped_like_a_jws_is_never_unsigned_content(cty: str | None) -> None:
    # Even with the opt-in, and whatever another "cty" claims, a JWS must verify: a signed
    # message whose signature fails is refused, never passed on as unsigned content.
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", **({"cty": cty} if cty else {})}
    jws = sign_jws(PAYLOAD, signer, "RS256")
    forged = jws[:-4] + (b"AAAA" if jws[-4:] != b"AAAA" else b"BBBB")
    for inner, verifiers, error in (
        (jws, [], SignatureInvalidError),  # the opt-in needs no verifier, a JWS still does
        (jws, [fixed_key("other")], SignatureInvalidError),
        (forged, [signer], SignatureInvalidError),
        (_jws_with({"alg": "none"}, b""), [signer], PolicyViolationError),
        (_jws_with({"alg": "HS256", "kid": "signer"}, b"mac"), [signer], PolicyViolationError),
    ):
        with pytest.raises(error):
            open_jwe(
                forge_jwe(header, inner, recipient),
                decrypt_with=[recipient],
                verify_with=verifiers,
                at=NOW,
                allow_unsigned=True,
            )
    opened = open_jwe(
        forge_jwe(header, jws, recipient),
        decrypt_with=[recipient],
        verify_with=[signer],
        at=NOW,
        allow_unsigned=True,
    )
    assert opened.signers == ("signer",)


@pytest.mark.parametrize(
    "content",
    [
        PAYLOAD,
        b"a.b.c",  # three segments, but the first is no JSON
        b64u_encode(b"{}") + b".e30.e30",  # a JSON object without "alg"
        b64u_encode(b'["alg"]') + b".e30.e30",
        b64u_encode(b'{"alg":"RS256"}') + b".e30",  # two segments
        b64u_encode(b'{"alg":"RS256"}') + b".e3+.e30",  # not base64url
    ],
)
def test_other_plaintexts_are_unsigned_content_for_the_opt_in_only(content: bytes) -> None:
    recipient = fixed_key("recipient")
    token = forge_jwe({"alg": "RSA-OAEP-256", "enc": "A256GCM"}, content, recipient)
    with pytest.raises(SignatureInvalidError, match="no nested JWS signature"):
        open_jwe(token, decrypt_with=[recipient], verify_with=[fixed_key("signer")], at=NOW)
    opened = open_jwe(token, decrypt_with=[recipient], verify_with=[], at=NOW, allow_unsigned=True)
    assert (opened.plaintext, opened.signatures) == (content, ())


def test_a_jws_header_over_the_cap_is_refused_not_taken_for_content() -> None:
    recipient = fixed_key("recipient")
    header = {"alg": "RS256", "pad": "x" * GOOGLE_PROFILE.max_jose_header_bytes}
    token = forge_jwe(
        {"alg": "RSA-OAEP-256", "enc": "A256GCM"}, _jws_with(header, b"sig"), recipient
    )
    with pytest.raises(InputTooLargeError):
        open_jwe(token, decrypt_with=[recipient], verify_with=[], at=NOW, allow_unsigned=True)


def test_signatures_need_a_trusted_current_fitting_key() -> None:
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    token = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=NOW)
    later = NOW + dt.timedelta(days=366)  # the signer's exp is NOW + 365 days
    for verifiers, at in (
        ([], NOW),
        ([fixed_key("other")], NOW),
        ([signer], later),
        ([fixed_key("recipient", use="enc")], NOW),
    ):
        with pytest.raises(SignatureInvalidError):
            open_jwe(token, decrypt_with=[recipient], verify_with=verifiers, at=at)
    # Decryption itself does not expire: messages in flight still open with an old key.
    opened = open_jwe(token, decrypt_with=[recipient], verify_with=[signer], at=NOW)
    assert opened.plaintext == PAYLOAD


def test_a_signature_from_the_future_is_refused() -> None:
    # Keys without "iat": made at NOW, they would not be valid yet at the earlier times below.
    signer, recipient = _timeless(fixed_key("signer")), _timeless(fixed_key("recipient"))
    # We write no signing time; a peer may, and then it is checked.
    jws = _signed_jws({"alg": "RS256", "kid": "signer", "iat": int(NOW.timestamp())})
    token = forge_jwe({"alg": "RSA-OAEP-256", "enc": "A256GCM"}, jws, recipient)
    early = NOW - GOOGLE_PROFILE.clock_skew - dt.timedelta(seconds=1)
    with pytest.raises(SignatureInvalidError, match="future"):
        open_jwe(token, decrypt_with=[recipient], verify_with=[signer], at=early)
    within = NOW - GOOGLE_PROFILE.clock_skew
    opened = open_jwe(token, decrypt_with=[recipient], verify_with=[signer], at=within)
    assert (opened.plaintext, opened.signatures[0].created) == (PAYLOAD, NOW)
    # Without a signing time there is nothing to be early: the same moment opens ours.
    ours = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=NOW)
    opened = open_jwe(ours, decrypt_with=[recipient], verify_with=[signer], at=early)
    assert (opened.plaintext, opened.signatures[0].created) == (PAYLOAD, None)


def test_expired_or_misused_keys_do_not_seal() -> None:
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    expired = NOW + dt.timedelta(days=365)
    with pytest.raises(KeyUnusableError, match="expired"):
        seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=expired)
    with pytest.raises(KeyUnusableError, match='"use"'):
        seal_jwe(PAYLOAD, sign_with=fixed_key("enc-only", use="enc"), encrypt_to=recipient, at=NOW)
    with pytest.raises(KeyUnusableError, match='"use"'):
        seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=fixed_key("sig-only", use="sig"), at=NOW)
    with pytest.raises(KeyUnusableError, match="no private part"):
        seal_jwe(PAYLOAD, sign_with=signer.public(), encrypt_to=recipient, at=NOW)


def test_keys_below_the_policy_size_neither_seal_nor_open_nor_verify() -> None:
    signer, recipient = fixed_key("signer", use="sig"), fixed_key("recipient", use="enc")
    strict = dataclasses.replace(GOOGLE_PROFILE, min_rsa_bits=3072)
    with pytest.raises(PolicyViolationError, match="signing key is smaller"):
        seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient.public(), at=NOW, policy=strict)
    token = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient.public(), at=NOW)
    opened = open_jwe(token, decrypt_with=[recipient], verify_with=[signer.public()], at=NOW)
    assert opened.plaintext == PAYLOAD
    # Too small is one more reason a key is no candidate: the one decryption error, no RSA work.
    with pytest.raises(DecryptionFailedError):
        open_jwe(
            token, decrypt_with=[recipient], verify_with=[signer.public()], at=NOW, policy=strict
        )
    jws = sign_jws(PAYLOAD, signer, "RS256")
    assert verify_jws(jws, [signer.public()], GOOGLE_PROFILE, NOW)[0] == PAYLOAD
    with pytest.raises(SignatureInvalidError, match="no valid signature"):
        verify_jws(jws, [signer.public()], strict, NOW)


def test_calls_that_are_wrong_raise_usage_errors() -> None:
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    token = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=NOW)
    naive = NOW.replace(tzinfo=None)
    with pytest.raises(UsageError):
        seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=naive)
    with pytest.raises(UsageError):
        seal_jwe("text", sign_with=signer, encrypt_to=recipient, at=NOW)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        open_jwe(token, decrypt_with=[recipient.public()], verify_with=[signer], at=NOW)
    with pytest.raises(UsageError):
        open_jwe(token, decrypt_with=[], verify_with=[signer], at=NOW)
    with pytest.raises(UsageError):
        open_jwe(token, decrypt_with=[recipient], verify_with=["signer"], at=NOW)  # type: ignore[list-item]


def test_plaintext_over_the_cap_is_refused_both_ways() -> None:
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    small = dataclasses.replace(GOOGLE_PROFILE, max_plaintext_bytes=100)
    with pytest.raises(InputTooLargeError):
        seal_jwe(b"x" * 101, sign_with=signer, encrypt_to=recipient, at=NOW, policy=small)
    token = seal_jwe(b"x" * 101, sign_with=signer, encrypt_to=recipient, at=NOW)
    with pytest.raises(InputTooLargeError):
        open_jwe(token, decrypt_with=[recipient], verify_with=[signer], at=NOW, policy=small)


def test_generated_keys_follow_the_policy() -> None:
    key = generate_jwk(at=NOW)  # the policy's default size: 3072 bits
    assert (key.bits, key.kid, key.is_private) == (3072, key.thumbprint, True)
    assert (key.created, key.expires) == (NOW, NOW + dt.timedelta(days=365))
    assert not key.public().is_private
    assert key.expired_at(NOW + dt.timedelta(days=365))
    assert not key.expired_at(NOW + dt.timedelta(days=364))
    with pytest.raises(PolicyViolationError):
        generate_jwk(at=NOW, validity=dt.timedelta(days=731))
    with pytest.raises(PolicyViolationError):
        generate_jwk(at=NOW, bits=1024)
    with pytest.raises(UsageError):
        generate_jwk(at=NOW, bits=2000)
    with pytest.raises(PolicyViolationError):
        generate_jwk(at=NOW, bits=2048, use="sig", alg="RSA-OAEP-256")


def test_policy_refuses_algorithms_outside_the_implementation() -> None:
    for change in (
        {"jwe_algs": frozenset({"RSA-OAEP-256", "RSA-OAEP"})},
        {"jwe_algs": frozenset({"dir"}), "jwe_alg": "dir"},
        {"jwe_encs": frozenset({"A256GCM", "A256KW"})},
        {"jws_algs": frozenset({"RS256", "none"})},
        {"jws_alg": "PS384"},
        {"jwe_enc": "A128CBC-HS256", "jwe_encs": frozenset({"A256GCM"})},
        {"max_jose_header_bytes": 0},
    ):
        with pytest.raises(ValueError):
            Policy(**change)
    assert GOOGLE_PROFILE.jwe_algs == {"RSA-OAEP-256", "RSA1_5"}
    assert GOOGLE_PROFILE.jwe_encs == {"A256GCM", "A128CBC-HS256"}
    assert GOOGLE_PROFILE.jws_algs == {"RS256", "RS384", "RS512", "PS256"}


LAST_SECOND = dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def test_reference_times_stay_within_what_jose_can_write() -> None:
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    token = seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=NOW)
    minus_two = dt.timezone(dt.timedelta(hours=-2))
    # 1969 would write a negative "iat"; 23:00 at UTC-2 is already year 10000 in UTC.
    for at in (dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
               dt.datetime(9999, 12, 31, 23, 0, tzinfo=minus_two)):  # fmt: skip
        with pytest.raises(UsageError, match="9999"):
            seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=at)
        with pytest.raises(UsageError, match="9999"):
            open_jwe(token, decrypt_with=[recipient], verify_with=[signer], at=at)
        with pytest.raises(UsageError, match="9999"):
            generate_jwk(at=at, bits=2048)


def test_a_key_cannot_be_made_to_expire_after_year_9999() -> None:
    with pytest.raises(UsageError, match="expire after"):
        generate_jwk(at=dt.datetime(9999, 12, 31, tzinfo=dt.UTC), bits=2048)
    validity = dt.timedelta(days=1)
    last = generate_jwk(at=LAST_SECOND - validity, validity=validity, bits=2048)
    assert last.expires == LAST_SECOND


def _timeless(key: JwkKey) -> JwkKey:
    """The key without "iat"/"exp": then only the reference time is at the edge."""
    doc = json.loads(key.to_json(private=True))
    return load_jwk(json.dumps({k: v for k, v in doc.items() if k not in ("iat", "exp")}))


def test_opening_works_up_to_the_last_second_of_year_9999() -> None:
    timeless, recipient = _timeless(fixed_key("signer")), _timeless(fixed_key("recipient"))
    token = seal_jwe(PAYLOAD, sign_with=timeless, encrypt_to=recipient, at=NOW)
    # A peer's signing time in that last second is one we read.
    jws = _signed_jws({"alg": "RS256", "kid": "signer", "iat": int(LAST_SECOND.timestamp())})
    stamped = forge_jwe({"alg": "RSA-OAEP-256", "enc": "A256GCM"}, jws, recipient)
    for at in (LAST_SECOND, LAST_SECOND.replace(microsecond=999999)):
        opened = open_jwe(token, decrypt_with=[recipient], verify_with=[timeless], at=at)
        assert opened.plaintext == PAYLOAD
        # Sealed in that last second too.
        late = seal_jwe(PAYLOAD, sign_with=timeless, encrypt_to=recipient.public(), at=at)
        opened = open_jwe(late, decrypt_with=[recipient], verify_with=[timeless], at=at)
        assert opened.plaintext == PAYLOAD
        opened = open_jwe(stamped, decrypt_with=[recipient], verify_with=[timeless], at=at)
        assert opened.signatures[0].created == LAST_SECOND


def _signed_jws(header: dict[str, object]) -> bytes:
    """A JWS with any header, properly signed (RS256) by the "signer" key."""
    secret = fixed_key("signer")._secret
    assert secret is not None
    signing_input = encode_header(header) + b"." + b64u_encode(PAYLOAD)
    signature = secret.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return signing_input + b"." + b64u_encode(signature)


def test_a_signing_time_past_year_9999_is_malformed_not_a_crash() -> None:
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    nested = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "recipient", "cty": "JWT"}

    def open_signed(iat: int) -> Opened:
        jws = _signed_jws({"alg": "RS256", "kid": "signer", "iat": iat})
        token = forge_jwe(nested, jws, recipient)
        return open_jwe(token, decrypt_with=[recipient], verify_with=[signer], at=NOW)

    assert open_signed(int(NOW.timestamp())).signatures[0].created == NOW  # the control
    for iat in (2**40 - 1, 253402300800):
        with pytest.raises(MalformedInputError, match="year 9999"):
            open_signed(iat)
    with pytest.raises(SignatureInvalidError, match="future"):
        open_signed(253402300799)  # the last second that fits: only too late, not malformed


LATER = NOW + dt.timedelta(days=30)


@functools.cache
def _future_keys() -> tuple[JwkKey, JwkKey]:
    """A signer and a recipient whose "iat" is LATER: not valid yet at NOW."""
    return (
        generate_jwk(bits=2048, at=LATER, kid="future-signer"),
        generate_jwk(bits=2048, at=LATER, kid="future-recipient"),
    )


def test_keys_not_valid_yet_do_not_seal() -> None:
    signer, recipient = _future_keys()
    with pytest.raises(KeyUnusableError, match=r"signing key cannot sign .*not valid yet"):
        seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=fixed_key("recipient"), at=NOW)
    with pytest.raises(KeyUnusableError, match=r"recipient key cannot encrypt .*not valid yet"):
        seal_jwe(PAYLOAD, sign_with=fixed_key("signer"), encrypt_to=recipient.public(), at=NOW)
    assert seal_jwe(PAYLOAD, sign_with=signer, encrypt_to=recipient, at=LATER)  # from iat on


def test_keys_not_valid_yet_do_not_open_and_fail_like_any_other_key() -> None:
    future_signer, future_recipient = _future_keys()
    signer, recipient = fixed_key("signer"), fixed_key("recipient")
    nested = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "cty": "JWT"}
    # Built below seal_jwe, which would refuse these keys at NOW.
    to_future = forge_jwe(
        {**nested, "kid": "future-recipient"}, sign_jws(PAYLOAD, signer, "RS256"),
        future_recipient,
    )  # fmt: skip
    by_future = forge_jwe(
        {**nested, "kid": "recipient"}, sign_jws(PAYLOAD, future_signer, "RS256"), recipient
    )
    # The controls: from the keys' iat on, both tokens open.
    for token, decrypt_with, verify_with in (
        (to_future, future_recipient, signer),
        (by_future, recipient, future_signer),
    ):
        opened = open_jwe(token, decrypt_with=[decrypt_with], verify_with=[verify_with], at=LATER)
        assert opened.plaintext == PAYLOAD
    with pytest.raises(DecryptionFailedError):
        open_jwe(to_future, decrypt_with=[future_recipient], verify_with=[signer], at=NOW)
    with pytest.raises(DecryptionFailedError):
        open_jwe(to_future, decrypt_with=[recipient], verify_with=[signer], at=NOW)
    with pytest.raises(SignatureInvalidError) as not_yet_signer:
        open_jwe(by_future, decrypt_with=[recipient], verify_with=[future_signer], at=NOW)
    with pytest.raises(SignatureInvalidError) as untrusted:
        open_jwe(by_future, decrypt_with=[recipient], verify_with=[signer], at=NOW)
    assert str(not_yet_signer.value) == str(untrusted.value)
