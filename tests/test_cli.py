"""The command line as a user drives it: real processes, stdin to stdout, the error contract."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pushprov._errors import PushprovError

from .instances import child_env

CARD = b'{"accountNumber":"4111111111111111","expiryMonth":"12","expiryYear":"29"}'
AT = "2026-11-01T12:00:00Z"


@dataclass
class Run:
    code: int
    out: bytes
    err: str


# The child must run the pushprov this process imported: a relative PYTHONPATH (``src``) does
# not survive the change of directory, and the venv's installed copy may be another checkout.
_CHILD_ENV = child_env(os.environ)


def pushprov(*args: str, stdin: bytes = b"", cwd: Path | None = None) -> Run:
    proc = subprocess.run(
        [sys.executable, "-m", "pushprov", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=_CHILD_ENV,
        timeout=120,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr.decode())


def assert_error(run: Run, code: str, status: int) -> None:
    assert run.code == status, run.err
    assert run.out == b""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), run.err


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two issuer keys and two Google keys made with the CLI (RSA-2048 to keep it quick)."""
    path = tmp_path_factory.mktemp("cli")
    (path / "pass").write_bytes(b"correct horse\n")
    for name in ("issuer1", "issuer2", "google1", "google2"):
        extra = ["--passphrase-file", str(path / "pass")] if name == "google2" else []
        run = pushprov(
            "key", "generate", "--uid", f"{name} <{name}@example.org>", "--bits", "2048",
            "--secret-out", str(path / f"{name}.sec"), "--public-out", str(path / f"{name}.pub"),
            "--at", AT, *extra,
        )  # fmt: skip
        assert run.code == 0, run.err
        assert len(run.out.strip()) == 40
    return path


def test_generated_secret_key_is_private_and_never_overwritten(home: Path) -> None:
    mode = stat.S_IMODE(os.stat(home / "issuer1.sec").st_mode)
    assert mode == 0o600
    run = pushprov(
        "key", "generate", "--uid", "x <x@example.org>", "--bits", "2048",
        "--secret-out", str(home / "issuer1.sec"), "--public-out", str(home / "other.pub"),
    )  # fmt: skip
    assert_error(run, "usage", 2)
    assert b"PRIVATE KEY BLOCK" in (home / "issuer1.sec").read_bytes()


def test_inspect_text_and_json(home: Path) -> None:
    run = pushprov("key", "inspect", str(home / "issuer1.sec"), "--at", AT)
    assert run.code == 0
    text = run.out.decode()
    assert text.startswith("secret key ")
    assert (
        "[CS]" in text and "[E]" in text and "expires 2027-11-01" in text and "policy   ok" in text
    )
    report = json.loads(pushprov("key", "inspect", str(home / "google1.pub"), "--json").out)
    assert report[0]["secret"] is False
    assert [k["capabilities"] for k in report[0]["keys"]] == ["cs", "e"]
    assert report[0]["policy"] == {"ok": True, "problems": []}
    late = json.loads(
        pushprov("key", "inspect", str(home / "google1.pub"), "--json", "--at", "2028-01-01").out
    )
    assert late[0]["policy"]["ok"] is False
    assert "primary key is expired" in late[0]["policy"]["problems"]


def test_seal_open_two_signers_two_recipients(home: Path) -> None:
    sealed = pushprov(
        "seal", "--sign-with", str(home / "issuer1.sec"), "--sign-with", str(home / "issuer2.sec"),
        "--encrypt-to", str(home / "google1.pub"), "--encrypt-to", str(home / "google2.pub"),
        "--at", AT, stdin=b"hello",
    )  # fmt: skip
    assert sealed.code == 0, sealed.err
    for decryptor, extra in (("google1", []), ("google2", ["--passphrase-file", "pass"])):
        opened = pushprov(
            "open", "--decrypt-with", f"{decryptor}.sec", "--verify-with", "issuer2.pub",
            "--at", AT, *extra, stdin=sealed.out, cwd=home,
        )  # fmt: skip
        assert opened.code == 0, opened.err
        assert opened.out == b"hello"
    facts = json.loads(
        pushprov(
            "open", "--decrypt-with", "google1.sec", "--verify-with", "issuer1.pub",
            "--verify-with", "issuer2.pub", "--json", "--at", AT, stdin=sealed.out, cwd=home,
        ).out
    )  # fmt: skip
    assert facts["cipher"] == "AES256"
    assert {s["hash"] for s in facts["signatures"]} == {"SHA384"}
    assert len(facts["signatures"]) == 2


@pytest.mark.parametrize("encoding", ["base64", "base64url", "armor", "binary"])
def test_gopc_seal_and_open(home: Path, encoding: str) -> None:
    sealed = pushprov(
        "gopc", "seal", "--session-id", "sess-42", "--sign-with", "issuer1.sec",
        "--encrypt-to", "google1.pub", "--encoding", encoding, "--at", AT, stdin=CARD, cwd=home,
    )  # fmt: skip
    assert sealed.code == 0, sealed.err
    opened = pushprov(
        "gopc", "open", "--session-id", "sess-42", "--decrypt-with", "google1.sec",
        "--verify-with", "issuer1.pub", "--at", AT, stdin=sealed.out, cwd=home,
    )  # fmt: skip
    assert opened.code == 0, opened.err
    document = json.loads(opened.out)
    assert document["paymentCard"]["accountNumber"] == "4111111111111111"
    assert document["validationContext"]["serverSessionId"] == "sess-42"
    masked = pushprov(
        "gopc", "open", "--session-id", "sess-42", "--decrypt-with", "google1.sec",
        "--verify-with", "issuer1.pub", "--masked", "--at", AT, stdin=sealed.out, cwd=home,
    )  # fmt: skip
    assert b"411111******1111" in masked.out and b"4111111111111111" not in masked.out


def test_error_contract(home: Path) -> None:
    def gopc_open(sealed: bytes, *extra: str) -> Run:
        return pushprov(
            "gopc", "open", "--decrypt-with", "google1.sec", "--verify-with", "issuer1.pub",
            "--at", AT, *extra, stdin=sealed, cwd=home,
        )  # fmt: skip

    sealed = pushprov(
        "gopc", "seal", "--session-id", "s1", "--sign-with", "issuer1.sec",
        "--encrypt-to", "google1.pub", "--at", AT, stdin=CARD, cwd=home,
    ).out  # fmt: skip
    assert_error(gopc_open(sealed, "--session-id", "s2"), "session_mismatch", 12)
    not_ours = pushprov(
        "gopc", "seal", "--session-id", "s1", "--sign-with", "issuer1.sec",
        "--encrypt-to", "google2.pub", "--at", AT, stdin=CARD, cwd=home,
    ).out  # fmt: skip
    assert_error(gopc_open(not_ours, "--session-id", "s1"), "decryption_failed", 5)
    assert_error(gopc_open(b"%%%", "--session-id", "s1"), "malformed_input", 3)
    assert_error(gopc_open(sealed, "--session-id", "s1", "--at", "tomorrow"), "usage", 2)
    assert_error(pushprov("gopc", "open"), "usage", 2)
    assert_error(pushprov("frobnicate"), "usage", 2)
    bad_card = CARD.replace(b"4111111111111111", b"4111111111111112")
    run = pushprov(
        "gopc", "seal", "--session-id", "s1", "--sign-with", "issuer1.sec",
        "--encrypt-to", "google1.pub", "--at", AT, stdin=bad_card, cwd=home,
    )  # fmt: skip
    assert_error(run, "gopc_invalid", 11)
    assert "4111" not in run.err
    expired = pushprov(
        "seal", "--sign-with", "issuer1.sec", "--encrypt-to", "google1.pub",
        "--at", "2028-01-01", stdin=b"x", cwd=home,
    )  # fmt: skip
    assert_error(expired, "key_unusable", 9)
    no_pass = pushprov(
        "open", "--decrypt-with", "google2.sec", "--verify-with", "issuer1.pub",
        stdin=sealed, cwd=home,
    )  # fmt: skip
    assert_error(no_pass, "bad_passphrase", 13)
    missing = pushprov(
        "open", "--decrypt-with", "nope.sec", "--verify-with", "issuer1.pub", cwd=home
    )
    assert_error(missing, "usage", 2)


def test_help_documents_verbs_and_exit_statuses() -> None:
    run = pushprov("--help")
    assert run.code == 0
    text = run.out.decode()
    for word in ("key", "seal", "open", "gopc", "demo", "decryption_failed", "13"):
        assert word in text
    gopc_seal = pushprov("gopc", "seal", "--help").out.decode()
    assert "--session-id" in gopc_seal and "--sign-with" in gopc_seal and "stdin" in gopc_seal


def test_demo_runs_end_to_end() -> None:
    run = pushprov("demo")
    assert run.code == 0, run.err
    text = run.out.decode()
    assert text.rstrip().endswith("demo ok")
    assert "cipher AES256" in text and "SHA384" in text


@pytest.fixture(scope="module")
def jwk_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jwk")
    for name in ("issuer", "google"):
        run = pushprov(
            "key", "generate", "--format", "jwk", "--bits", "2048", "--at", AT,
            "--secret-out", str(path / f"{name}.jwk"),
            "--public-out", str(path / f"{name}.pub.jwk"),
        )  # fmt: skip
        assert run.code == 0, run.err
    # Google's legacy RSA1_5 variant needs a recipient key pinned to it: the same key, "alg" set.
    for suffix in (".jwk", ".pub.jwk"):
        doc = json.loads((path / f"google{suffix}").read_text())
        legacy = path / f"google-legacy{suffix}"
        legacy.write_text(json.dumps({**doc, "kid": "google-legacy", "alg": "RSA1_5"}))
        legacy.chmod(0o600)
    return path


def test_gopc_over_jwe(jwk_home: Path) -> None:
    for options, google in (
        ([], "google"),
        (["--alg", "RSA1_5", "--enc", "A128CBC-HS256", "--zip"], "google-legacy"),
    ):
        sealed = pushprov(
            "gopc", "seal", "--format", "jwe", "--session-id", "s-7", "--sign-with", "issuer.jwk",
            "--encrypt-to", f"{google}.pub.jwk", "--at", AT, *options, stdin=CARD, cwd=jwk_home,
        )  # fmt: skip
        assert sealed.code == 0, sealed.err
        assert sealed.out.count(b".") == 4  # compact JWE
        opened = pushprov(
            "gopc", "open", "--format", "jwe", "--session-id", "s-7", "--decrypt-with",
            f"{google}.jwk", "--verify-with", "issuer.pub.jwk", "--json", "--at", AT,
            stdin=sealed.out, cwd=jwk_home,
        )  # fmt: skip
        assert opened.code == 0, opened.err
        facts = json.loads(opened.out)
        assert facts["format"] == "jwe"
        assert facts["gopc"]["validationContext"]["serverSessionId"] == "s-7"
        # The OpenPGP reader is never tried on a JWE: the format is not guessed.
        assert_error(
            pushprov(
                "gopc",
                "open",
                "--session-id",
                "s-7",
                "--decrypt-with",
                "google.jwk",
                "--verify-with",
                "issuer.pub.jwk",
                stdin=sealed.out,
                cwd=jwk_home,
            ),
            "key_invalid",
            8,
        )
    # RSA1_5 to a key without that pin is refused before anything is sealed.
    refused = pushprov(
        "gopc", "seal", "--format", "jwe", "--session-id", "s-7", "--sign-with", "issuer.jwk",
        "--encrypt-to", "google.pub.jwk", "--at", AT, "--alg", "RSA1_5", stdin=CARD, cwd=jwk_home,
    )  # fmt: skip
    assert_error(refused, "key_unusable", 9)


def test_jwe_options_need_jwe_and_inspect_reads_jwk(home: Path, jwk_home: Path) -> None:
    run = pushprov(
        "seal", "--sign-with", "issuer1.sec", "--encrypt-to", "google1.pub", "--zip",
        stdin=b"x", cwd=home,
    )  # fmt: skip
    assert_error(run, "usage", 2)
    report = json.loads(
        pushprov("key", "inspect", str(jwk_home / "google.jwk"), "--json", "--at", AT).out
    )
    assert report[0]["private"] is True and report[0]["bits"] == 2048
    assert report[0]["expires"].startswith("2027-11-01")
    assert report[0]["policy"] == {"ok": True, "problems": []}
    # Inspect applies the keystore's checks: an encryption key pinned to a signing algorithm.
    doc = json.loads((jwk_home / "google.pub.jwk").read_text())
    mispinned = jwk_home / "mispinned.pub.jwk"
    mispinned.write_text(json.dumps({**doc, "use": "enc", "alg": "RS256"}))
    report = json.loads(pushprov("key", "inspect", str(mispinned), "--json", "--at", AT).out)
    assert report[0]["policy"]["ok"] is False
    assert any("algorithm" in problem for problem in report[0]["policy"]["problems"])
    assert "d" not in json.loads((jwk_home / "google.pub.jwk").read_text())
    mode = stat.S_IMODE(os.stat(jwk_home / "google.jwk").st_mode)
    assert mode == 0o600


def test_at_out_of_range_is_a_usage_error(home: Path) -> None:
    for value in ("999999999999", "-5"):
        run = pushprov(
            "seal", "--sign-with", "issuer1.sec", "--encrypt-to", "google1.pub", "--at", value,
            stdin=b"x", cwd=home,
        )  # fmt: skip
        assert_error(run, "usage", 2)


def test_jwk_pinned_to_rsa1_5_serves_the_legacy_variant(jwk_home: Path) -> None:
    run = pushprov(
        "key", "generate", "--format", "jwk", "--alg", "RSA1_5", "--bits", "2048", "--at", AT,
        "--secret-out", str(jwk_home / "legacy.jwk"),
        "--public-out", str(jwk_home / "legacy.pub.jwk"),
    )  # fmt: skip
    assert run.code == 0, run.err
    assert json.loads((jwk_home / "legacy.pub.jwk").read_text())["alg"] == "RSA1_5"
    sealed = pushprov(
        "gopc", "seal", "--format", "jwe", "--alg", "RSA1_5", "--session-id", "s-9",
        "--sign-with", "issuer.jwk", "--encrypt-to", "legacy.pub.jwk", "--at", AT,
        stdin=CARD, cwd=jwk_home,
    )  # fmt: skip
    assert sealed.code == 0, sealed.err
    opened = pushprov(
        "gopc", "open", "--format", "jwe", "--session-id", "s-9", "--decrypt-with", "legacy.jwk",
        "--verify-with", "issuer.pub.jwk", "--at", AT, stdin=sealed.out, cwd=jwk_home,
    )  # fmt: skip
    assert opened.code == 0, opened.err


def test_a_key_id_that_begins_with_a_dash_is_an_argument() -> None:
    # JWK key ids are base64url thumbprints (43 characters); one in 64 begins with "-".
    from pushprov.cli._main import build_parser

    kid = "-" + "Ab_0-" * 8 + "xy"
    assert len(kid) == 43
    parsed = build_parser().parse_args(
        ["keys", "promote", kid, "--store", "s.db", "--env", "sandbox"]
    )
    assert parsed.key == kid and parsed.store == "s.db"
    # Still what it was for anything else: an unknown option is refused, "--" still works.
    with pytest.raises(PushprovError, match="unrecognized arguments: -x"):
        build_parser().parse_args(
            ["keys", "promote", "k", "--store", "s.db", "--env", "sandbox", "-x"]
        )
    after = build_parser().parse_args(
        ["keys", "promote", "--store", "s.db", "--env", "sandbox", "--", kid]
    )
    assert after.key == kid
