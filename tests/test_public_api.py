"""The public surface is explicit and pinned: a change to it must be a deliberate edit here."""

from __future__ import annotations

import pickle

import pytest

import pushprov
from pushprov import openpgp

from .conftest import Keys


def test_top_level_exports_are_pinned() -> None:
    assert sorted(pushprov.__all__) == sorted(
        [
            "GOOGLE_PROFILE",
            "Card",
            "Certificate",
            "DecryptionFailedError",
            "Encoding",
            "Gopc",
            "GopcInvalidError",
            "InputError",
            "InputTooLargeError",
            "JweOptions",
            "JwkKey",
            "KeyInvalidError",
            "KeyUnusableError",
            "KeysError",
            "MalformedInputError",
            "Opened",
            "OpenedGopc",
            "Pan",
            "PassphraseError",
            "PolicyViolationError",
            "Policy",
            "PushprovError",
            "SecretKey",
            "SessionMismatchError",
            "SignatureInvalidError",
            "StoreError",
            "UnsupportedError",
            "UsageError",
            "VerifiedSignature",
            "__version__",
            "generate_key",
            "open_gopc",
            "open_message",
            "read_certificates",
            "read_secret_keys",
            "seal_gopc",
            "seal_message",
        ]
    )
    for name in pushprov.__all__:
        assert hasattr(pushprov, name), name


def test_openpgp_exports_are_pinned() -> None:
    assert sorted(openpgp.__all__) == [
        "Certificate",
        "ComponentKey",  # the key type Certificate.encryption_key/signing_key return
        "KeyInfo",
        "PrivateKeyOps",
        "SecretKey",
        "armor_data",
        "certify_keys",  # a certificate around keys held elsewhere (pushprov.hsm)
        "contains_secret_key",
        "dearmor_data",
        "decode_message",
        "encode_message",
        "generate_key",
        "message_recipients",  # whom a message is sealed to, for the key self-test
        "open_message",
        "read_certificates",
        "read_secret_keys",
        "seal",
        "secret_key_from_ops",  # and its private halves behind the RSA seam
        "sign_cleartext",
        "sign_detached",
        "sign_inline",
        "verify_cleartext",
        "verify_detached",
        "verify_inline",
    ]


def test_public_objects_are_defined_in_private_modules() -> None:
    for name in pushprov.__all__:
        module = getattr(getattr(pushprov, name), "__module__", "pushprov._")
        assert module.startswith(("pushprov._", "pushprov.openpgp._", "pushprov.jose._")), (
            name,
            module,
        )


def test_error_codes_are_unique_and_stable() -> None:
    # The groups (InputError, KeysError, StoreError) are never raised: no outcome of their own.
    errors = [getattr(pushprov, n) for n in pushprov.__all__ if n.endswith("Error")]
    assert sum(e.is_group for e in errors) == 3
    errors = [e for e in errors if not e.is_group]
    codes = {e.code: e.exit_status for e in errors}
    assert len(codes) == len(errors)
    assert len(set(codes.values())) == len(errors)
    assert codes["decryption_failed"] == 5
    assert codes["signature_invalid"] == 6
    assert codes["policy_violation"] == 7


def test_secret_key_is_not_picklable_nor_built_ad_hoc(keys: Keys) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(keys.issuer_a)
    with pytest.raises(TypeError):
        openpgp.SecretKey(keys.issuer_a.certificate, {})
    assert "secret" in repr(keys.issuer_a)
    assert "PRIVATE" not in repr(keys.issuer_a) + str(keys.issuer_a)


def test_hsm_exports_are_pinned() -> None:
    from pushprov import hsm

    assert sorted(hsm.__all__) == [
        "Custody",
        "Pkcs11Uri",
        "Token",
        "TokenCustody",
        "TokenKeyNotFoundError",
        "TokenRsaKey",
        "TokenUnavailableError",
        "generate_openpgp_key",
        "open_openpgp_key",
        "open_token",
        "parse_uri",
        "token_jwk",
    ]
    for name in hsm.__all__:
        assert getattr(hsm, name).__module__.startswith("pushprov.hsm._"), name
