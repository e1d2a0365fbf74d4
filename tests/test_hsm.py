"""Keys in a real PKCS#11 token (SoftHSM2): made there, used there, judged by GnuPG."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pushprov import (
    GOOGLE_PROFILE,
    Card,
    DecryptionFailedError,
    Gopc,
    KeyInvalidError,
    KeyUnusableError,
    Pan,
    PassphraseError,
    UnsupportedError,
    UsageError,
    hsm,
    jose,
    open_gopc,
    openpgp,
    seal_gopc,
)
from pushprov.openpgp import _message
from pushprov.openpgp._packets import Tag, mpi

from .conftest import T0, GpgFactory
from .craft import join, packets
from .gpg import Gpg
from .hsm_support import OTHER_LABEL, SoftHsm, softhsm

__all__ = ["softhsm"]  # the fixture, imported for pytest to find

SESSION = "aHNtLXNlc3Npb24"
CARD = Card(account_number=Pan("4111111111111111"), expiry_month="12", expiry_year="29")
HOUR = dt.timedelta(hours=1)


@dataclasses.dataclass
class TokenKeys:
    token: hsm.Token
    secret: openpgp.SecretKey
    primary: hsm.TokenRsaKey
    subkey: hsm.TokenRsaKey


@pytest.fixture(scope="module")
def token(softhsm: SoftHsm) -> Iterator[hsm.Token]:
    with hsm.open_token(softhsm.uri()) as opened:
        yield opened


@pytest.fixture(scope="module")
def token_keys(token: hsm.Token) -> TokenKeys:
    secret, primary, subkey = hsm.generate_openpgp_key(
        token, "Issuer HSM <hsm@issuer.example>", label="issuer", bits=2048, at=T0
    )
    return TokenKeys(token, secret, primary, subkey)


@pytest.fixture(scope="module")
def google() -> openpgp.SecretKey:
    return openpgp.generate_key("Google <g@google.example>", bits=2048, at=T0)


# --- URIs ------------------------------------------------------------------------------------


def test_uri_parts_are_read_and_percent_decoded() -> None:
    uri = hsm.parse_uri(
        "pkcs11:token=My%20Token;object=issuer.sign;id=%01%ff;type=private;manufacturer=x"
        "?module-path=/opt/vendor/lib.so&pin-source=env:HSM_PIN"
    )
    assert (uri.token, uri.object, uri.id, uri.type) == (
        "My Token",
        "issuer.sign",
        b"\1\xff",
        "private",
    )
    assert (uri.module_path, uri.pin_source) == ("/opt/vendor/lib.so", "env:HSM_PIN")
    assert hsm.parse_uri(str(uri)) == uri


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("pkcs11:token=t?pin-value=1234", "pin-source"),
        ("pkcs11:token=t;pin-value=1234", "pin-source"),
        ("pkcs11:token=t;token=u", "twice"),
        ("pkcs11:token=t;colour=red", '"colour" is not supported'),
        ("pkcs11:token=t;type=secret", '"type"'),
        ("pkcs11:slot-id=one", '"slot-id"'),
        ("pkcs:token=t", "pkcs11:"),
    ],
)
def test_uri_refusals_are_usage_errors_and_never_echo_a_value(text: str, says: str) -> None:
    with pytest.raises(UsageError) as caught:
        hsm.parse_uri(text)
    assert says in caught.value.message
    assert "1234" not in str(caught.value) and "red" not in str(caught.value)


# --- keys made in the token ------------------------------------------------------------------


def test_keys_are_made_in_the_token_sensitive_not_extractable_one_role(
    token_keys: TokenKeys,
) -> None:
    sign = token_keys.primary.attributes()
    decrypt = token_keys.subkey.attributes()
    for flags in (sign, decrypt):
        assert flags["sensitive"] and flags["always_sensitive"]
        assert not flags["extractable"] and flags["never_extractable"]
    assert sign["sign"] and not sign["decrypt"]
    assert decrypt["decrypt"] and not decrypt["sign"]
    # No private half can leave: not through the key, not through an export.
    with pytest.raises(UsageError, match="cannot be exported"):
        token_keys.secret.armor()
    assert "in token" in repr(token_keys.primary) and "secret" in repr(token_keys.secret)


def test_the_certificate_is_the_profile_with_token_made_sha384_signatures(
    token_keys: TokenKeys,
) -> None:
    certificate = token_keys.secret.certificate
    primary, subkey = certificate.key_infos()
    assert (primary.capabilities, subkey.capabilities) == ("cs", "e")
    assert primary.bits == subkey.bits == 2048
    # Read back as a stranger would: the self-signatures verify against the token's public keys.
    (again,) = openpgp.read_certificates(certificate.armor().encode())
    assert again.fingerprint == certificate.fingerprint
    assert [k.has_secret for k in token_keys.secret.key_infos()] == [True, True]


def test_token_key_size_floor(token: hsm.Token) -> None:
    with pytest.raises(UsageError, match="2048"):
        token.generate_rsa_key("tiny", "sign", bits=1024)


# --- GnuPG judges the token's work -----------------------------------------------------------


@pytest.mark.gpg
def test_gpg_imports_the_certificate_and_verifies_a_gopc_signed_in_the_token(
    token_keys: TokenKeys, gpg_factory: GpgFactory
) -> None:
    home: Gpg = gpg_factory()
    fpr = token_keys.secret.fingerprint
    assert home.import_key(token_keys.secret.certificate.armor().encode()) == [fpr]
    gpg_side = home.gen_key("Google GPG <gg@google.example>", algo="rsa2048")
    listing = home.list_keys(fpr)
    assert listing.uids == ("Issuer HSM <hsm@issuer.example>",)
    assert sorted(listing.primary.capabilities) == ["c", "s"]
    assert listing.subkeys[0].capabilities == "e"
    (recipient,) = openpgp.read_certificates(home.export_public(gpg_side))
    at = dt.datetime.now(dt.UTC)
    sealed = seal_gopc(
        Gopc(server_session_id=SESSION, card=CARD),
        sign_with=[token_keys.secret],
        encrypt_to=[recipient],
        at=at,
    )
    result = home.decrypt_verify(base64.b64decode(sealed))
    assert result.goodsig_fprs == {fpr}
    assert result.hash_names == {"SHA384"}
    assert b'"serverSessionId":"' + SESSION.encode() in result.plaintext


@pytest.mark.gpg
def test_gpg_seals_to_the_token_subkey_and_the_token_opens_it(
    token_keys: TokenKeys, gpg_factory: GpgFactory, softhsm: SoftHsm
) -> None:
    home: Gpg = gpg_factory()
    home.import_key(token_keys.secret.certificate.armor().encode())
    home.trust(token_keys.secret.fingerprint)
    gpg_side = home.gen_key("Google GPG <gg@google.example>", algo="rsa2048")
    gopc = Gopc(server_session_id=SESSION, card=CARD).to_json()
    message = home.sign_encrypt(
        gopc, recipients=[token_keys.secret.fingerprint], signers=[gpg_side]
    )
    (signer,) = openpgp.read_certificates(home.export_public(gpg_side))
    # Reopened as a later process would: certificate + the URIs its keys gave, a new session.
    with hsm.open_token(softhsm.uri()) as later:
        reopened = hsm.open_openpgp_key(
            later,
            token_keys.secret.certificate,
            sign_uri=token_keys.primary.uri(),
            decrypt_uri=token_keys.subkey.uri(),
        )
        opened = open_gopc(
            base64.b64encode(message),
            session_id=SESSION,
            decrypt_with=[reopened],
            verify_with=[signer],
            at=dt.datetime.now(dt.UTC),
        )
    assert opened.gopc.card.account_number == CARD.account_number


def test_a_gopc_to_the_token_subkey_opens_through_the_token(
    token_keys: TokenKeys, google: openpgp.SecretKey
) -> None:
    sealed = seal_gopc(
        Gopc(server_session_id=SESSION, card=CARD),
        sign_with=[google],
        encrypt_to=[token_keys.secret.certificate],
        at=T0 + HOUR,
    )
    opened = open_gopc(
        sealed,
        session_id=SESSION,
        decrypt_with=[token_keys.secret],
        verify_with=[google.certificate],
        at=T0 + HOUR,
    )
    assert opened.envelope.signatures[0].certificate == google.fingerprint
    subkey = token_keys.secret.certificate.key_infos()[1]
    assert opened.envelope.decryption_key == subkey.fingerprint


# --- the one-error rule through the token ----------------------------------------------------


def _bad_padding(message: bytes, public: rsa.RSAPublicKey) -> bytes:
    """The message with its PKESK's RSA value replaced by one that decrypts to a block that
    does not start 00 02: well-formed for the parser, bad padding for the key."""
    numbers = public.public_numbers()
    size = (numbers.n.bit_length() + 7) // 8
    block = b"\x00\x01" + os.urandom(size - 2)
    value = pow(int.from_bytes(block, "big"), numbers.e, numbers.n).to_bytes(size, "big")
    items = packets(message)
    tag, body = items[0]
    assert tag == Tag.PKESK
    items[0] = (tag, body[:10] + mpi(value))
    return join(items)


def _seipd_work(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts SEIPD decryptions: the work a failed RSA step must still cause."""
    calls: list[int] = []
    real: Callable[..., Any] = _message._decrypt_seipd

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(_message, "_decrypt_seipd", counted)
    return calls


def test_bad_padding_through_the_token_is_the_software_outcome_and_work(
    token_keys: TokenKeys, google: openpgp.SecretKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    software = openpgp.generate_key("Soft <s@issuer.example>", bits=2048, at=T0)
    outcomes = []
    for secret in (software, token_keys.secret):
        certificate = secret.certificate
        public = certificate.encryption_key(GOOGLE_PROFILE, T0).public
        assert public is not None
        sealed = openpgp.seal(b"{}", sign_with=[google], encrypt_to=[certificate], at=T0)
        tampered = _bad_padding(sealed, public)
        work = _seipd_work(monkeypatch)
        with pytest.raises(DecryptionFailedError) as caught:
            openpgp.open_message(
                tampered, decrypt_with=[secret], verify_with=[google.certificate], at=T0
            )
        outcomes.append((str(caught.value), caught.value.exit_status, len(work)))
        monkeypatch.undo()
    assert (
        outcomes[0]
        == outcomes[1]
        == ("decryption_failed: the message could not be decrypted", 5, 1)
    )


def test_the_token_reports_bad_padding_as_the_seam_expects(token_keys: TokenKeys) -> None:
    size = (token_keys.subkey.public_key.key_size + 7) // 8
    numbers = token_keys.subkey.public_key.public_numbers()
    block = b"\x00\x01" + os.urandom(size - 2)
    value = pow(int.from_bytes(block, "big"), numbers.e, numbers.n).to_bytes(size, "big")
    with pytest.raises(ValueError, match="decryption failed"):
        token_keys.subkey.decrypt_block(value)


# --- errors an operator meets ----------------------------------------------------------------


def test_wrong_pin_is_bad_passphrase(softhsm: SoftHsm) -> None:
    # The other token: this process holds no login there (PKCS#11 logs in per application).
    with pytest.raises(PassphraseError) as caught:
        hsm.open_token(softhsm.uri(OTHER_LABEL), pin_source=f"file:{softhsm.wrong_pin_file}")
    assert (caught.value.code, caught.value.exit_status) == ("bad_passphrase", 13)
    assert "not-the-pin" not in str(caught.value)


def test_wrong_pin_is_refused_while_this_process_holds_the_login(
    token: hsm.Token, softhsm: SoftHsm
) -> None:
    # `token` keeps the login open: the token itself never sees this PIN, pushprov judges it.
    with pytest.raises(PassphraseError, match="refused the PIN"):
        hsm.open_token(softhsm.uri(), pin_source=f"file:{softhsm.wrong_pin_file}")
    with hsm.open_token(softhsm.uri()) as again:
        assert again.label == token.label


def test_missing_pin_source_is_bad_passphrase(softhsm: SoftHsm) -> None:
    with pytest.raises(PassphraseError, match="HSM_TEST_UNSET_PIN"):
        hsm.open_token(softhsm.uri(), pin_source="env:HSM_TEST_UNSET_PIN")


def test_missing_token_is_token_unavailable(softhsm: SoftHsm) -> None:
    with pytest.raises(hsm.TokenUnavailableError) as caught:
        hsm.open_token(softhsm.uri("no-such-token"))
    assert (caught.value.code, caught.value.exit_status, caught.value.http_status) == (
        "token_unavailable",
        14,
        503,
    )


def test_missing_module_is_token_unavailable(softhsm: SoftHsm, tmp_path: Any) -> None:
    with pytest.raises(hsm.TokenUnavailableError, match="module"):
        hsm.open_token(softhsm.uri(), module_path=str(tmp_path / "libnothing.so"))


def test_missing_object_is_token_key_not_found(token: hsm.Token, softhsm: SoftHsm) -> None:
    with pytest.raises(hsm.TokenKeyNotFoundError) as caught:
        token.rsa_key("pkcs11:token=pushprov-test;object=nobody", "sign")
    assert (caught.value.code, caught.value.exit_status) == ("token_key_not_found", 15)
    # A key in another token is not found in this one.
    with hsm.open_token(softhsm.uri(OTHER_LABEL)) as other:
        other.generate_rsa_key("elsewhere", "sign", bits=2048)
    with pytest.raises(hsm.TokenKeyNotFoundError):
        token.rsa_key("pkcs11:object=elsewhere", "sign")


_TOKENS_FROM_THREADS = """
import sys, threading
from pushprov import hsm
a, b = hsm.open_token(sys.argv[1]), hsm.open_token(sys.argv[2])
signer = a.rsa_key(sys.argv[3], "sign")
try:
    b.rsa_key("pkcs11:object=threads-b", "sign")
except hsm.TokenKeyNotFoundError:
    b.generate_rsa_key("threads-b", "sign", bits=2048)
failures = []
start = threading.Barrier(4)
def run(work):
    start.wait()
    for _ in range(150):
        try:
            work()
        except Exception as failure:
            failures.append(type(failure).__name__)
works = [
    lambda: signer.sign_digest(8, bytes(32)),  # the event loop seals (SHA-256 digest)
    lambda: a.rsa_key(sys.argv[3], "sign"),  # another thread opens a key on that session
    lambda: b.rsa_key("pkcs11:object=threads-b", "sign"),  # and on another token's
    lambda: b.rsa_key("pkcs11:object=threads-b", "sign"),
]
threads = [threading.Thread(target=run, args=(work,)) for work in works]
for thread in threads: thread.start()
for thread in threads: thread.join()
print(sorted(set(failures)), len(failures))
"""


def test_a_module_is_called_from_one_thread_at_a_time(
    softhsm: SoftHsm, token_keys: TokenKeys
) -> None:
    # Why: serve opens a token key in the outcomes endpoint's thread while its event loop
    # signs. python-pkcs11 initializes a module without locking (C_Initialize(NULL)), so
    # SoftHSM2 keeps no mutexes: unserialized calls, on one session or on two tokens'
    # sessions, answered CKR_GENERAL_ERROR (a 500 in CI's rehearsal) or crashed the process.
    # In a child process, so that a crash fails this test and not the whole run.
    done = subprocess.run(
        [sys.executable, "-c", _TOKENS_FROM_THREADS, softhsm.uri(), softhsm.uri(OTHER_LABEL),
         token_keys.primary.uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (0, "[] 0"), done.stderr[-2000:]


_AMBIGUOUS_FROM_A_THREAD = """
import faulthandler, sys, threading
from pushprov import hsm
token = hsm.open_token(sys.argv[1])
made = [token.generate_rsa_key(label, "sign", bits=2048) for label in ("twice", "twice", "once")]
signer = made[-1]
refused = []
def look_up():
    try:
        token.rsa_key("pkcs11:object=twice", "sign")
    except Exception as failure:
        refused.append(failure)
thread = threading.Thread(target=look_up)
thread.start()
thread.join()
print(type(refused[0]).__name__, refused[0].code)
refused.clear()  # the exception freed on another thread than the one that searched
faulthandler.dump_traceback_later(30, exit=True)
print(len(signer.sign_digest(8, bytes(32))))
for key in made:
    token.destroy(key)
"""


def test_an_ambiguous_key_uri_leaves_the_session_usable(softhsm: SoftHsm) -> None:
    # Why: python-pkcs11's get_key() raises on a second match with its search still open,
    # holding the session's operation lock; freed on another thread (the outcomes thread's
    # exception reaching the event loop), that lock was never released and the next call on
    # the session hung the worker (found in review). In a child process, on the other token.
    done = subprocess.run(
        [sys.executable, "-c", _AMBIGUOUS_FROM_A_THREAD, softhsm.uri(OTHER_LABEL)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["TokenKeyNotFoundError", "token_key_not_found", "256"]


def test_destroy_removes_the_pair_and_only_it(token: hsm.Token, token_keys: TokenKeys) -> None:
    doomed = token.generate_rsa_key("doomed", "sign", bits=2048)
    uri = doomed.uri()
    token.destroy(doomed)
    with pytest.raises(hsm.TokenKeyNotFoundError):
        token.rsa_key(uri, "sign")
    assert (
        token.rsa_key(token_keys.primary.uri(), "sign").public_key == token_keys.primary.public_key
    )


def test_a_uri_for_another_token_is_refused(token: hsm.Token) -> None:
    with pytest.raises(UsageError, match="another token"):
        token.rsa_key(f"pkcs11:token={OTHER_LABEL};object=elsewhere", "sign")


def test_a_key_without_the_attribute_is_unusable_for_that_role(token_keys: TokenKeys) -> None:
    with pytest.raises(KeyUnusableError) as caught:
        token_keys.token.rsa_key(token_keys.subkey.uri(), "sign")
    assert (caught.value.code, caught.value.exit_status) == ("key_unusable", 9)
    assert "CKA_SIGN" in caught.value.message
    with pytest.raises(KeyUnusableError, match="CKA_DECRYPT"):
        token_keys.token.rsa_key(token_keys.primary.uri(), "decrypt")


def test_keys_of_another_certificate_are_refused(
    token_keys: TokenKeys, google: openpgp.SecretKey
) -> None:
    with pytest.raises(KeyInvalidError, match="does not belong"):
        hsm.open_openpgp_key(
            token_keys.token,
            google.certificate,
            sign_uri=token_keys.primary.uri(),
            decrypt_uri=token_keys.subkey.uri(),
        )


# --- JOSE through the token ------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_jws_signed_in_the_token_verifies(token_keys: TokenKeys, alg: str) -> None:
    signer = hsm.token_jwk(token_keys.primary, alg)
    recipient = jose.generate_jwk(bits=2048, at=T0)
    token = jose.seal_jwe(b'{"a":1}', sign_with=signer, encrypt_to=recipient, at=T0)
    opened = jose.open_jwe(token, decrypt_with=[recipient], verify_with=[signer.public()], at=T0)
    assert opened.plaintext == b'{"a":1}'
    assert opened.signatures[0].hash_algorithm == alg


def test_rsa1_5_jwe_decrypts_in_the_token(token_keys: TokenKeys) -> None:
    decryptor = hsm.token_jwk(token_keys.subkey, "RSA1_5")
    signer = jose.generate_jwk(bits=2048, at=T0)
    token = jose.seal_jwe(b'{"b":2}', sign_with=signer, encrypt_to=decryptor.public(), at=T0)
    opened = jose.open_jwe(token, decrypt_with=[decryptor], verify_with=[signer], at=T0)
    assert opened.plaintext == b'{"b":2}'


def test_rsa_oaep_256_through_softhsm_is_refused_naming_the_mechanism(
    token_keys: TokenKeys,
) -> None:
    with pytest.raises(UnsupportedError) as caught:
        hsm.token_jwk(token_keys.subkey, "RSA-OAEP-256")
    assert caught.value.code == "unsupported"
    assert "CKM_RSA_PKCS_OAEP with SHA-256 and MGF1-SHA-256" in caught.value.message


def test_a_jwk_role_must_fit_the_token_key(token_keys: TokenKeys) -> None:
    with pytest.raises(UsageError, match="made to sign"):
        hsm.token_jwk(token_keys.subkey, "RS256")
