"""pushprov-sop, the Stateless OpenPGP face: each subcommand, and SOP's exit code for each input
the profile refuses. Runs in process through ``pushprov.sop.run`` (the console script is the same
function behind ``main``; one test runs it as a process)."""

from __future__ import annotations

import datetime as dt
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pushprov import GOOGLE_PROFILE, openpgp, sop
from pushprov._clock import now
from pushprov.openpgp._message import signed_literal
from pushprov.sop import SopFailure

from . import craft
from .conftest import T0, VECTORS

DATA = b"the quick brown fox\n"


class Files:
    """Two signer keys (alice, bob), their certificates, and an expired key, made for now."""

    def __init__(self, root: Path) -> None:
        at = now()
        self.root = root
        self.alice_key = openpgp.generate_key("Alice <alice@example.org>", bits=2048, at=at)
        self.bob_key = openpgp.generate_key("Bob <bob@example.org>", bits=2048, at=at)
        past = at - dt.timedelta(days=400)
        self.old_key = openpgp.generate_key("Old <old@example.org>", bits=2048, at=past)
        self.alice = self.write("alice.key", self.alice_key.armor().encode())
        self.alice_cert = self.write("alice.cert", self.alice_key.certificate.armor().encode())
        self.bob = self.write("bob.key", self.bob_key.armor().encode())
        self.bob_cert = self.write("bob.cert", self.bob_key.certificate.armor().encode())
        self.old = self.write("old.key", self.old_key.armor().encode())
        # craft.encrypt_packets picks the recipient subkey at the suite's T0; decryption itself
        # does not ask the key to be valid now.
        self.t0_key = openpgp.generate_key("T0 <t0@example.org>", bits=2048, at=T0)
        self.t0 = self.write("t0.key", self.t0_key.armor().encode())
        self.old_cert = self.write("old.cert", self.old_key.certificate.armor().encode())
        vectors = VECTORS / "rfc9580-appendix-a"
        self.v6_cert = str(vectors / "A.3-v6-certificate.pub.asc")
        self.ed25519_cert = str(vectors / "A.1-v4-ed25519legacy-key.pub.asc")
        self.password_message = (vectors / "A.12.3-argon2-aes256-seipdv1.asc").read_bytes()

    def write(self, name: str, data: bytes) -> str:
        path = self.root / name
        path.write_bytes(data)
        return str(path)

    def new(self, name: str) -> str:
        """A path that does not exist yet (SOP refuses to overwrite outputs)."""
        return str(self.root / name)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    return Files(tmp_path_factory.mktemp("sop"))


def sop_run(*argv: str, stdin: bytes = b"") -> tuple[int, bytes, str]:
    return sop.run(list(argv), io.BytesIO(stdin))


def ok(*argv: str, stdin: bytes = b"") -> bytes:
    status, out, err = sop_run(*argv, stdin=stdin)
    assert status == 0, err
    return out


def fails(failure: SopFailure, *argv: str, stdin: bytes = b"") -> str:
    status, out, err = sop_run(*argv, stdin=stdin)
    assert status == int(failure), err
    assert out == b""  # nothing on stdout when it fails
    assert err.startswith(f"pushprov-sop: {failure.name}: ")
    return err


# ---------------------------------------------------------------------------------------------
# the exit codes themselves


def test_exit_codes_are_the_drafts() -> None:
    # As in the draft's failure table; pgpainless-cli lists 3 to 79 so, python-sop also 83, 89.
    assert {f.name: int(f) for f in SopFailure} == {
        "GENERIC": 1,
        "NO_SIGNATURE": 3,
        "UNSUPPORTED_ASYMMETRIC_ALGO": 13,
        "CERT_CANNOT_ENCRYPT": 17,
        "MISSING_ARG": 19,
        "INCOMPLETE_VERIFICATION": 23,
        "CANNOT_DECRYPT": 29,
        "PASSWORD_NOT_HUMAN_READABLE": 31,
        "UNSUPPORTED_OPTION": 37,
        "BAD_DATA": 41,
        "EXPECTED_TEXT": 53,
        "OUTPUT_EXISTS": 59,
        "MISSING_INPUT": 61,
        "KEY_IS_PROTECTED": 67,
        "UNSUPPORTED_SUBCOMMAND": 69,
        "UNSUPPORTED_SPECIAL_PREFIX": 71,
        "AMBIGUOUS_INPUT": 73,
        "KEY_CANNOT_SIGN": 79,
        "INCOMPATIBLE_OPTIONS": 83,
        "UNSUPPORTED_PROFILE": 89,
    }


def test_public_surface_is_pinned() -> None:
    assert sorted(sop.__all__) == ["SOP_SPEC", "SopError", "SopFailure", "main", "run"]


def test_unknown_subcommand_option_and_missing_argument() -> None:
    fails(SopFailure.UNSUPPORTED_SUBCOMMAND, "inline-detach")
    fails(SopFailure.UNSUPPORTED_SUBCOMMAND, "revoke-key")
    fails(SopFailure.UNSUPPORTED_OPTION, "version", "--bogus")
    fails(SopFailure.MISSING_ARG, "verify")
    fails(SopFailure.MISSING_ARG)


# ---------------------------------------------------------------------------------------------
# version, list-profiles, generate-key, extract-cert


def test_version() -> None:
    assert ok("version") == b"pushprov-sop 0.1.0\n"
    assert ok("version", "--backend").startswith(b"pushprov.openpgp 0.1.0 on pyca/cryptography ")
    extended = ok("version", "--extended").decode().splitlines()
    assert extended[0] == "pushprov-sop 0.1.0" and "SHA384" in extended[3]
    assert ok("version", "--sop-spec").startswith(sop.SOP_SPEC.encode() + b"\n")
    fails(SopFailure.UNSUPPORTED_OPTION, "version", "--backend", "--extended")


def test_list_profiles() -> None:
    names = [
        line.split(":")[0] for line in ok("list-profiles", "generate-key").decode().split("\n")
    ]
    assert names[:3] == ["default", "rfc4880", "rsa2048"]
    assert ok("list-profiles", "encrypt").startswith(b"default: SEIPD v1 (MDC) with AES-256")
    fails(SopFailure.UNSUPPORTED_PROFILE, "list-profiles", "sign")


def test_generate_key_follows_the_profile() -> None:
    armored = ok("generate-key", "--profile", "rsa2048", "Carol <carol@example.org>")
    assert armored.startswith(b"-----BEGIN PGP PRIVATE KEY BLOCK-----")
    (key,) = openpgp.read_secret_keys(armored)
    infos = key.key_infos()
    assert [(i.algorithm, i.bits, i.capabilities) for i in infos] == [
        ("RSA", 2048, "cs"),
        ("RSA", 2048, "e"),
    ]
    assert key.certificate.user_ids == ("Carol <carol@example.org>",)
    expires = key.certificate.expires
    assert expires is not None
    assert expires - key.certificate.created == dt.timedelta(days=365)
    assert key.certificate.policy_problems(GOOGLE_PROFILE, now()) == []


def test_generate_key_refusals() -> None:
    fails(SopFailure.UNSUPPORTED_PROFILE, "generate-key", "--profile", "rfc9580", "X <x@x>")
    fails(SopFailure.MISSING_ARG, "generate-key")
    fails(SopFailure.UNSUPPORTED_OPTION, "generate-key", "A <a@x>", "B <b@x>")
    fails(SopFailure.UNSUPPORTED_OPTION, "generate-key", "--signing-only", "A <a@x>")


def test_protected_key_and_password_designators(
    files: Files, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOP_TEST_PASSWORD", "correct horse\n")  # trailing whitespace is trimmed
    protected = ok(
        "generate-key", "--profile", "rsa2048", "--with-key-password", "@ENV:SOP_TEST_PASSWORD",
        "P <p@example.org>",
    )  # fmt: skip
    assert b"PRIVATE KEY BLOCK" in protected
    key_file = files.write("protected.key", protected)
    fails(SopFailure.KEY_IS_PROTECTED, "sign", key_file, stdin=DATA)
    monkeypatch.setenv("WRONG", "battery staple")
    fails(SopFailure.KEY_IS_PROTECTED, "sign", "--with-key-password", "@ENV:WRONG", key_file,
          stdin=DATA)  # fmt: skip
    signature = ok("sign", "--with-key-password", "@ENV:SOP_TEST_PASSWORD", key_file, stdin=DATA)
    # The password also arrives through an inherited descriptor.
    read_end, write_end = os.pipe()
    os.write(write_end, b"correct horse")
    os.close(write_end)
    try:
        again = ok("sign", "--with-key-password", f"@FD:{read_end}", key_file, stdin=DATA)
    finally:
        os.close(read_end)
    cert = files.write("protected.cert", ok("extract-cert", stdin=protected))
    for sig in (signature, again):
        assert ok("verify", files.write(f"p{len(sig)}{id(sig)}.sig", sig), cert, stdin=DATA)


def test_password_must_be_human_readable(files: Files) -> None:
    password = files.write("binary-password", b"\xff\xfe\x00")
    fails(SopFailure.PASSWORD_NOT_HUMAN_READABLE, "generate-key", "--with-key-password",
          password, "A <a@example.org>")  # fmt: skip


def test_extract_cert_holds_no_secret(files: Files) -> None:
    cert = ok("extract-cert", stdin=Path(files.alice).read_bytes())
    assert cert.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert not openpgp.contains_secret_key(cert)
    assert openpgp.read_certificates(cert) == [files.alice_key.certificate]
    binary = ok("extract-cert", "--no-armor", stdin=Path(files.alice).read_bytes())
    assert binary == files.alice_key.certificate.to_bytes()


# ---------------------------------------------------------------------------------------------
# detached and inline signatures


def test_sign_and_verify(files: Files) -> None:
    signature = ok("sign", files.alice, stdin=DATA)
    assert signature.startswith(b"-----BEGIN PGP SIGNATURE-----")
    sig = files.write("data.sig", signature)
    line = ok("verify", sig, files.bob_cert, files.alice_cert, stdin=DATA).decode()
    when, signing_key, certificate = line.split()
    assert signing_key == certificate == files.alice_key.fingerprint
    assert abs(dt.datetime.fromisoformat(when) - now()) < dt.timedelta(minutes=5)
    fails(SopFailure.NO_SIGNATURE, "verify", sig, files.bob_cert, stdin=DATA)
    fails(SopFailure.NO_SIGNATURE, "verify", sig, files.alice_cert, stdin=DATA + b"!")
    fails(SopFailure.MISSING_ARG, "verify", sig, stdin=DATA)
    # A packet that is no signature (a literal) is bad data, not a missing signature.
    fails(SopFailure.BAD_DATA, "verify", files.write("junk.sig", b"\xcb\x01b"), files.alice_cert,
          stdin=DATA)  # fmt: skip


def test_sign_two_keys_binary_and_micalg(files: Files) -> None:
    micalg = files.new("micalg")
    signature = ok("sign", "--no-armor", "--micalg-out", micalg, files.alice, files.bob,
                   stdin=DATA)  # fmt: skip
    assert signature[0] & 0x80
    assert Path(micalg).read_bytes() == b"pgp-sha384"
    sig = files.write("two.sig", signature)
    lines = ok("verify", sig, files.alice_cert, files.bob_cert, stdin=DATA).splitlines()
    assert len(lines) == 2
    fails(SopFailure.OUTPUT_EXISTS, "sign", "--micalg-out", micalg, files.alice, stdin=DATA)


def test_text_signatures(files: Files) -> None:
    sig = files.write("text.sig", ok("sign", "--as=text", files.alice, stdin=b"a\nb\n"))
    # A text signature does not care how the lines end.
    assert ok("verify", sig, files.alice_cert, stdin=b"a\r\nb\r\n")
    fails(SopFailure.EXPECTED_TEXT, "sign", "--as=text", files.alice, stdin=b"\xff\xfe")


def test_time_window(files: Files) -> None:
    sig = files.write("window.sig", ok("sign", files.alice, stdin=DATA))
    hour_ago = (now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    in_a_day = (now() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ok("verify", "--not-before", hour_ago, "--not-after", "now", sig, files.alice_cert,
              stdin=DATA)  # fmt: skip
    assert ok("verify", "--not-before", "-", "--not-after", in_a_day, sig, files.alice_cert,
              stdin=DATA)  # fmt: skip
    # Reference time before the key existed: the key is not valid yet, no signature counts.
    fails(SopFailure.NO_SIGNATURE, "verify", "--not-after", hour_ago, sig, files.alice_cert,
          stdin=DATA)  # fmt: skip
    fails(SopFailure.INCOMPATIBLE_OPTIONS, "verify", "--not-before", in_a_day, sig,
          files.alice_cert, stdin=DATA)  # fmt: skip


def test_inline_sign_and_verify(files: Files) -> None:
    message = ok("inline-sign", files.alice, files.bob, stdin=DATA)
    assert message.startswith(b"-----BEGIN PGP MESSAGE-----")
    out = files.new("inline.verifications")
    assert ok("inline-verify", "--verifications-out", out, files.alice_cert, stdin=message) == DATA
    assert Path(out).read_text().split()[1] == files.alice_key.fingerprint
    fails(SopFailure.NO_SIGNATURE, "inline-verify", files.old_cert, stdin=message)
    # RFC 9580's cleartext vector is signed by a v6 key: no signature we can read.
    cleartext = (VECTORS / "rfc9580-appendix-a" / "A.6-cleartext-signed.asc").read_bytes()
    fails(SopFailure.NO_SIGNATURE, "inline-verify", files.alice_cert, stdin=cleartext)
    binary = ok("inline-sign", "--no-armor", "--as=text", files.alice, stdin=DATA)
    assert ok("inline-verify", files.alice_cert, stdin=binary) == DATA
    fails(SopFailure.BAD_DATA, "inline-verify", files.alice_cert, stdin=b"\x88")  # a cut-off header


def test_cleartext_signatures(files: Files) -> None:
    text = b"-----BEGIN PGP MESSAGE----- is only text here\nspaces at the end   \n"
    message = ok("inline-sign", "--as=clearsigned", files.alice, stdin=text)
    assert message.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA384\n\n- -----BEGIN")
    out = files.new("cleartext.verifications")
    verified = ok("inline-verify", "--verifications-out", out, files.alice_cert, stdin=message)
    assert verified == b"-----BEGIN PGP MESSAGE----- is only text here\nspaces at the end\n"
    assert Path(out).read_text().split()[2] == files.alice_key.fingerprint
    tampered = message.replace(b"only text", b"only Text")
    fails(SopFailure.NO_SIGNATURE, "inline-verify", files.alice_cert, stdin=tampered)
    fails(SopFailure.INCOMPATIBLE_OPTIONS, "inline-sign", "--as=clearsigned", "--no-armor",
          files.alice, stdin=text)  # fmt: skip
    fails(SopFailure.EXPECTED_TEXT, "inline-sign", "--as=clearsigned", files.alice,
          stdin=b"\xff")  # fmt: skip


def test_expired_key_cannot_sign(files: Files) -> None:
    fails(SopFailure.KEY_CANNOT_SIGN, "sign", files.old, stdin=DATA)
    fails(SopFailure.KEY_CANNOT_SIGN, "inline-sign", files.old, stdin=DATA)


# ---------------------------------------------------------------------------------------------
# encrypt, decrypt


def test_encrypt_and_decrypt(files: Files) -> None:
    message = ok("encrypt", "--sign-with", files.alice, "--sign-with", files.bob, files.bob_cert,
                 files.alice_cert, stdin=DATA)  # fmt: skip
    assert message.startswith(b"-----BEGIN PGP MESSAGE-----")
    out = files.new("decrypt.verifications")
    plaintext = ok("decrypt", "--verify-with", files.alice_cert, "--verifications-out", out,
                   files.bob, stdin=message)  # fmt: skip
    assert plaintext == DATA
    assert [line.split()[2] for line in Path(out).read_text().splitlines()] == [
        files.alice_key.fingerprint
    ]
    binary = ok("encrypt", "--no-armor", "--as=text", "--sign-with", files.alice,
                files.alice_cert, stdin=DATA)  # fmt: skip
    assert binary[0] & 0x80
    assert ok("decrypt", "--verify-with", files.alice_cert, "--verifications-out",
              files.new("text.verifications"), files.alice, stdin=binary) == DATA  # fmt: skip


def test_encrypt_refusals(files: Files) -> None:
    fails(SopFailure.MISSING_ARG, "encrypt", files.alice_cert, stdin=DATA)  # unsigned
    fails(SopFailure.MISSING_ARG, "encrypt", "--sign-with", files.alice, stdin=DATA)
    fails(SopFailure.UNSUPPORTED_OPTION, "encrypt", "--with-password", files.alice,
          "--sign-with", files.alice, files.alice_cert, stdin=DATA)  # fmt: skip
    fails(SopFailure.UNSUPPORTED_OPTION, "encrypt", "--session-key-out", files.new("sk"),
          "--sign-with", files.alice, files.alice_cert, stdin=DATA)  # fmt: skip
    fails(SopFailure.UNSUPPORTED_PROFILE, "encrypt", "--profile", "rfc9580", "--sign-with",
          files.alice, files.alice_cert, stdin=DATA)  # fmt: skip
    fails(SopFailure.UNSUPPORTED_ASYMMETRIC_ALGO, "encrypt", "--sign-with", files.alice,
          files.v6_cert, stdin=DATA)  # fmt: skip
    fails(SopFailure.UNSUPPORTED_ASYMMETRIC_ALGO, "encrypt", "--sign-with", files.alice,
          files.ed25519_cert, stdin=DATA)  # fmt: skip
    fails(SopFailure.CERT_CANNOT_ENCRYPT, "encrypt", "--sign-with", files.alice,
          files.old_cert, stdin=DATA)  # fmt: skip
    fails(SopFailure.KEY_CANNOT_SIGN, "encrypt", "--sign-with", files.old, files.alice_cert,
          stdin=DATA)  # fmt: skip
    fails(SopFailure.EXPECTED_TEXT, "encrypt", "--as=text", "--sign-with", files.alice,
          files.alice_cert, stdin=b"\xc3\x28")  # fmt: skip


def _decrypt(
    files: Files, message: bytes, name: str, key: str | None = None
) -> tuple[int, bytes, str]:
    return sop_run("decrypt", "--verify-with", files.alice_cert, "--verifications-out",
                   files.new(name), key or files.bob, stdin=message)  # fmt: skip


def test_decrypt_refusals(files: Files) -> None:
    message = ok("encrypt", "--sign-with", files.alice, files.bob_cert, stdin=DATA)
    fails(SopFailure.INCOMPLETE_VERIFICATION, "decrypt", files.bob, stdin=message)
    fails(SopFailure.INCOMPLETE_VERIFICATION, "decrypt", "--verify-with", files.alice_cert,
          files.bob, stdin=message)  # fmt: skip
    fails(SopFailure.UNSUPPORTED_OPTION, "decrypt", "--session-key-out", files.new("sk2"),
          files.bob, stdin=message)  # fmt: skip
    fails(SopFailure.UNSUPPORTED_OPTION, "decrypt", "--with-password", files.alice, files.bob,
          stdin=message)  # fmt: skip
    # Not for us; signed by someone we were not told to trust.
    status, _, _ = sop_run("decrypt", "--verify-with", files.alice_cert, "--verifications-out",
                           files.new("v-wrong"), files.alice, stdin=message)  # fmt: skip
    assert status == SopFailure.CANNOT_DECRYPT
    status, _, _ = sop_run("decrypt", "--verify-with", files.bob_cert, "--verifications-out",
                           files.new("v-untrusted"), files.bob, stdin=message)  # fmt: skip
    assert status == SopFailure.NO_SIGNATURE
    assert not Path(files.root / "v-untrusted").exists()  # no verifications written on failure
    bad_armor = b"-----BEGIN PGP MESSAGE-----\n\n!!!\n-----END PGP MESSAGE-----\n"
    assert _decrypt(files, bad_armor, "v-garbage")[0] == SopFailure.BAD_DATA


@pytest.mark.parametrize(
    ("cipher_algo", "mdc"), [(3, True), (7, True), (9, False)], ids=["CAST5", "AES128", "SED"]
)
def test_refused_ciphers_cannot_decrypt(files: Files, cipher_algo: int, mdc: bool) -> None:
    signed = openpgp.sign_inline(DATA, sign_with=[files.alice_key], at=now())
    message = craft.encrypt_packets(
        signed, [files.t0_key.certificate], cipher_algo=cipher_algo, mdc=mdc
    )
    status, out, err = _decrypt(files, message, f"v-cipher-{cipher_algo}-{mdc}", files.t0)
    assert (status, out) == (SopFailure.CANNOT_DECRYPT, b"")
    # A cipher outside the policy is never run nor named: the octet is inside the RSA block.
    assert "CAST5" not in err and "AES128" not in err


def test_refused_hash_is_no_signature(files: Files) -> None:
    signer = files.alice_key.signer(GOOGLE_PROFILE, now())
    sha1 = signed_literal(DATA, [signer], created=int(now().timestamp()), hash_algo=2)
    message = craft.encrypt_packets(sha1, [files.t0_key.certificate])
    status, _out, err = _decrypt(files, message, "v-sha1", files.t0)
    assert status == SopFailure.NO_SIGNATURE
    assert "SHA1" in err


def test_password_message_cannot_decrypt(files: Files) -> None:
    status, _out, err = _decrypt(files, files.password_message, "v-password")
    assert status == SopFailure.CANNOT_DECRYPT
    assert "password" in err


def test_v6_key_is_refused(files: Files) -> None:
    v6_secret = str(VECTORS / "rfc9580-appendix-a" / "A.4-v6-secret-key.sec.asc")
    fails(SopFailure.UNSUPPORTED_ASYMMETRIC_ALGO, "sign", v6_secret, stdin=DATA)
    fails(SopFailure.UNSUPPORTED_ASYMMETRIC_ALGO, "extract-cert",
          stdin=Path(v6_secret).read_bytes())  # fmt: skip


# ---------------------------------------------------------------------------------------------
# designators, armor


def test_designators(files: Files, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOP_UNSET", raising=False)
    fails(SopFailure.MISSING_INPUT, "sign", "--with-key-password", "@ENV:SOP_UNSET", files.alice,
          stdin=DATA)  # fmt: skip
    fails(SopFailure.UNSUPPORTED_SPECIAL_PREFIX, "sign", "--with-key-password", "@FILE:x",
          files.alice, stdin=DATA)  # fmt: skip
    fails(SopFailure.MISSING_INPUT, "sign", files.new("no-such-key"), stdin=DATA)
    monkeypatch.chdir(files.root)
    Path(files.root / "@ENV:HOME").write_bytes(b"x")
    fails(SopFailure.AMBIGUOUS_INPUT, "sign", "--with-key-password", "@ENV:HOME", files.alice,
          stdin=DATA)  # fmt: skip
    fails(SopFailure.UNSUPPORTED_SPECIAL_PREFIX, "sign", "--micalg-out", "@ENV:X", files.alice,
          stdin=DATA)  # fmt: skip


def test_armor_and_dearmor(files: Files) -> None:
    cert = files.alice_key.certificate.to_bytes()
    armored = ok("armor", stdin=cert)
    assert armored.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert ok("armor", stdin=armored) == armored  # idempotent
    assert ok("dearmor", stdin=armored) == cert
    assert ok("dearmor", stdin=cert) == cert
    signature = ok("sign", "--no-armor", files.alice, stdin=DATA)
    assert ok("armor", stdin=signature).startswith(b"-----BEGIN PGP SIGNATURE-----")
    secret = ok("dearmor", stdin=Path(files.alice).read_bytes())
    assert ok("armor", stdin=secret).startswith(b"-----BEGIN PGP PRIVATE KEY BLOCK-----")
    fails(SopFailure.BAD_DATA, "armor", stdin=b"plain text")
    fails(SopFailure.BAD_DATA, "dearmor", stdin=b"plain text")


def test_console_script() -> None:
    script = Path(sys.executable).parent / "pushprov-sop"
    version = subprocess.run([script, "version"], capture_output=True, check=False)
    assert (version.returncode, version.stdout) == (0, b"pushprov-sop 0.1.0\n")
    unknown = subprocess.run([script, "merge-certs"], capture_output=True, check=False)
    assert (unknown.returncode, unknown.stdout) == (69, b"")
    assert unknown.stderr.startswith(b"pushprov-sop: UNSUPPORTED_SUBCOMMAND")
