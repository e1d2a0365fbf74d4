"""``pushprov keys ...`` and ``--store`` for seal/open, run in-process through ``main``.

The error contract holds: on failure stdout stays empty and stderr has one ``error:`` line.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from pushprov import PassphraseError, jose, openpgp
from pushprov.cli import main
from pushprov.jose._compact import b64u_decode
from pushprov.keys import Environment, Keystore, Partner
from pushprov.store import open_store

from .conftest import T0
from .test_keystore_support import key_pool

AT = "2026-11-01T12:00:00Z"
LATER = "2026-11-10T12:00:00Z"
SESSION = "c2Vzc2lvbi1mcm9tLWdvb2dsZQ"
CARD = b'{"accountNumber":"4111111111111111","expiryMonth":"12","expiryYear":"29"}'


class Cli:
    def __init__(self, directory: Path, capsys: pytest.CaptureFixture[bytes]) -> None:
        self.store = directory / "store" / "keystore.db"
        self.dir = directory
        self.capsys = capsys

    def __call__(self, *argv: str, stdin: bytes = b"") -> tuple[int, bytes, str]:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
        status = main(list(argv))
        out, err = self.capsys.readouterr()
        return status, out, err.decode()

    def keys(self, command: str, *argv: str, at: str = AT) -> tuple[int, bytes, str]:
        return self(
            "keys", command, "--store", str(self.store), "--env", "sandbox", "--at", at, *argv
        )

    def ok(self, command: str, *argv: str, at: str = AT) -> Any:
        status, out, err = self.keys(command, "--json", *argv, at=at)
        assert status == 0, err
        return json.loads(out)

    def file(self, name: str, data: bytes) -> str:
        path = self.dir / name
        path.write_bytes(data)
        return str(path)


@pytest.fixture
def cli(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    monkeypatch.setenv("PUSHPROV_STORE_PASSPHRASE", "store words")
    monkeypatch.setattr(sys, "stdin", sys.stdin)  # restored after the test
    return Cli(tmp_path, capsysbinary)


def _bootstrap(cli: Cli) -> tuple[str, openpgp.SecretKey]:
    """Our key (pool) imported and a stand-in Google imported, both active."""
    pool = key_pool()
    ours = cli.ok("import", cli.file("ours.asc", pool.ours[0].armor().encode()))
    google = pool.partners[0]
    partner = cli.ok("import", cli.file("g.asc", google.certificate.armor().encode()))
    assert (ours["owner"], ours["state"], partner["owner"]) == ("ours", "pending", "google")
    cli.ok("promote", ours["key_id"], "--reason", "first key")
    cli.ok("promote", partner["key_id"][-16:])
    return ours["key_id"], google


def test_lifecycle_through_the_cli_and_store_backed_gopc(cli: Cli) -> None:
    ours, google = _bootstrap(cli)
    listing = cli.ok("list")
    assert listing["version"] == 4
    assert {(k["owner"], k["state"]) for k in listing["keys"]} == {
        ("ours", "active"),
        ("google", "active"),
    }
    assert cli.keys("check")[0] == 0

    status, sealed, err = cli(
        "gopc", "seal", "--session-id", SESSION, "--store", str(cli.store), "--env", "sandbox",
        "--at", AT, stdin=CARD,
    )  # fmt: skip
    assert status == 0, err
    opened = openpgp.open_message(
        sealed,
        decrypt_with=[google],
        verify_with=[key_pool().ours[0].certificate],
        at=T0,
    )
    assert opened.signers == (ours,)
    assert cli.ok("show", ours)["last_used"] == AT  # sealing recorded the use

    inbound = openpgp.seal(
        b"from google", sign_with=[google], encrypt_to=[key_pool().ours[0].certificate], at=T0
    )
    status, plain, err = cli(
        "open", "--store", str(cli.store), "--env", "sandbox", "--at", AT, stdin=inbound
    )
    assert (status, plain) == (0, b"from google"), err

    cli.ok("retire", ours, "--reason", "rotation")
    status, out, err = cli.keys("retire", ours, "--final")
    assert (status, out) == (23, b"") and err.startswith("error: still_draining: ")
    status, out, err = cli.keys("retire", ours, "--final", "--force")
    assert (status, out) == (2, b"") and "reason" in err
    short = ("--final", "--drain-window", "2d")
    status, _, err = cli.keys("retire", ours, *short, at="2026-11-02T12:00:00Z")
    assert status == 23 and "drain window 2.0 days" in err
    assert cli.ok("retire", ours, *short, at="2026-11-03T12:00:00Z")["state"] == "retired"
    cli.ok("destroy", ours, "--reason", "rotation complete", at=LATER)
    audit = cli.ok("audit", "--verify")
    assert audit["verified"] is True and audit["head"] == audit["entries"][-1]["hash"]
    assert [e["action"] for e in audit["entries"]] == [
        "import", "import", "promote", "promote", "retire", "retire-final", "destroy",
    ]  # fmt: skip
    assert audit["entries"][2]["reason"] == "first key"


def test_check_exits_30_with_the_findings_on_stderr(cli: Cli) -> None:
    status, out, err = cli.keys("check")
    assert status == 2 and "no key store" in err  # nothing to check yet
    ours, google = _bootstrap(cli)
    status, out, err = cli.keys("check")
    assert (status, err) == (0, "")
    # Besides "ok", when the partner last used each key it uses: never yet, here.
    first, *used = out.decode().splitlines()
    assert first == "ok: sandbox keyring version 4, nothing needs attention"
    assert sorted(used) == sorted([
        f"  {google.fingerprint}: last GOPC to it the partner accepted: never",
        f"  {ours}: last partner message opened with it: never",
    ])  # fmt: skip
    status, out, err = cli.keys("check", at="2027-10-10T00:00:00Z")
    assert (status, out) == (30, b"")
    assert err.startswith("error: attention_needed: 2 finding(s)") and "expires in" in err
    cli.ok("retire", ours)
    status, _, err = cli.keys("check", at="2026-11-20T00:00:00Z")
    assert status == 30 and "no usable active key for role sign" in err and "drain" in err
    warnings = {
        k["key_id"]: [w["code"] for w in k["warnings"]]
        for k in cli.ok("list", at="2026-11-20T00:00:00Z")["keys"]
    }
    assert warnings[ours] == ["drained"]


def test_cli_exit_statuses_and_usage(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    ours, _ = _bootstrap(cli)
    assert cli.keys("promote", ours)[0] == 21
    assert cli.keys("show", "00000000DEADBEEF")[0] == 20
    status, out, err = cli("seal", "--at", AT, stdin=b"x")
    assert (status, out) == (2, b"") and "--store" in err
    status, _, err = cli("seal", "--store", str(cli.store), "--sign-with", "k", stdin=b"x")
    assert status == 2 and "not both" in err
    status, _, err = cli("open", "--store", str(cli.store), stdin=b"x")
    assert status == 2 and "--env" in err
    monkeypatch.delenv("PUSHPROV_STORE_PASSPHRASE")
    status, _, err = cli.keys("list")
    assert status == 2 and "passphrase is missing" in err
    passfile = cli.file("pass", b"wrong words\n")
    assert cli.keys("list", "--store-passphrase-file", passfile)[0] == 13
    passfile = cli.file("pass", b"store words\n")
    assert cli.keys("list", "--store-passphrase-file", passfile)[0] == 0
    cli.store.chmod(0o644)
    status, out, err = cli.keys("list", "--store-passphrase-file", passfile)
    assert (status, out) == (25, b"") and "group or others" in err


def test_cli_output_carries_no_secret(cli: Cli) -> None:
    ours, _ = _bootstrap(cli)
    generated = cli.ok("generate", "--uid", "New <n@issuer.example>", "--bits", "2048")
    outputs = [
        cli.keys(command, "--json", *extra)[1]
        for command, extra in (("list", ()), ("show", (ours,)), ("audit", ()))
    ]
    outputs.append(json.dumps(generated).encode())
    status, exported, _ = cli.keys(
        "export", ours, "--secret", "--passphrase-file", cli.file("p", b"export words\n")
    )
    assert status == 0
    with pytest.raises(PassphraseError):
        openpgp.read_secret_keys(exported)
    assert openpgp.read_secret_keys(exported, passphrase=b"export words")[0].fingerprint == ours
    assert cli.keys("export", ours, "--secret")[0] == 2  # never unprotected
    clear = key_pool().ours[0].armor()
    secret_lines = clear.splitlines()[12:20]
    for output in outputs:
        assert b"PRIVATE KEY" not in output
        for line in secret_lines:
            assert line.encode() not in output
    assert cli.ok("audit")["entries"][-1]["action"] == "export-secret"


def test_jwk_keys_through_the_cli_and_store_backed_jwe(cli: Cli) -> None:
    at = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    sig = cli.ok("generate", "--format", "jwk", "--use", "sig", "--bits", "2048")
    enc = cli.ok("generate", "--format", "jwk", "--use", "enc", "--alg", "RSA1_5", "--bits", "2048")
    assert (sig["format"], sig["roles"], sig["has_secret"]) == ("jwk", ["sign"], True)
    assert (enc["roles"], enc["expires"]) == (["decrypt"], "2027-11-01T12:00:00Z")
    google_enc = jose.generate_jwk(bits=2048, at=at)  # no "use": the import names it
    google_sig = jose.generate_jwk(bits=2048, at=at, use="sig")
    pem = google_enc._public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    status, _, err = cli.keys("import", cli.file("g.pem", pem), "--use", "enc")
    assert status == 7 and "no expiry" in err  # a PEM key records no exp: --expires says it
    g_enc = cli.ok("import", cli.file("g.pem", pem), "--use", "enc", "--expires", "180d")
    g_sig = cli.ok("import", cli.file("g.jwk", google_sig.public().to_json().encode()))
    assert (g_enc["owner"], g_enc["roles"], g_sig["roles"]) == ("google", ["encrypt"], ["verify"])
    # A JWK thumbprint may start with "-": after "--" it is a key, not an option.
    for key in (sig, enc, g_enc, g_sig):
        cli.ok("promote", "--", key["key_id"])
    shown = cli.ok("show", "--", enc["key_id"])
    assert shown["jwk"] == {
        "thumbprint": enc["key_id"], "bits": 2048, "use": "enc", "alg": "RSA1_5",
    }  # fmt: skip
    assert "jwk use enc  alg RSA1_5  2048 bits" in cli.keys("show", "--", enc["key_id"])[1].decode()
    status, exported, _ = cli.keys("export", "--", sig["key_id"])
    published = jose.load_jwk(exported)
    assert status == 0 and not published.is_private and published.kid == sig["key_id"]
    status, out, err = cli.keys(
        "export", "--secret", "--passphrase-file", cli.file("p", b"words\n"), "--", sig["key_id"]
    )
    assert (status, out) == (10, b"") and "stays in the store" in err
    # A second active signing JWK needs an explicit switch.
    second = cli.ok("generate", "--format", "jwk", "--use", "sig", "--bits", "2048")
    status, _, err = cli.keys("promote", "--", second["key_id"])
    assert status == 21 and "one active key per role" in err
    # Usage: JWK words with pgp, a user ID with jwk, no role.
    for argv, needle in (
        (("--uid", "I <i@x>", "--use", "sig"), "format jwk"),
        (("--format", "jwk", "--use", "sig", "--uid", "I <i@x>"), "no user ID"),
        (("--format", "jwk"), '"sig" or "enc"'),
        ((), "user ID"),
    ):
        status, out, err = cli.keys("generate", *argv)
        assert (status, out) == (2, b"") and needle in err, err
    # seal and open with --store --format jwe use the one active JWK per role.
    store = ("--store", str(cli.store), "--env", "sandbox", "--at", AT, "--format", "jwe")
    status, sealed, err = cli("gopc", "seal", "--session-id", SESSION, *store, stdin=CARD)
    assert status == 0, err
    opened = jose.open_jwe(
        sealed.strip(), decrypt_with=[google_enc], verify_with=[published], at=at
    )
    assert opened.signatures[0].signing_key == sig["key_id"]
    assert opened.decryption_key == g_enc["key_id"]
    assert cli.ok("show", "--", sig["key_id"])["last_used"] == AT
    ours_enc = jose.load_jwk(cli.keys("export", "--", enc["key_id"])[1])
    inbound = jose.seal_jwe(b"from google", sign_with=google_sig, encrypt_to=ours_enc, at=at)
    header = json.loads(b64u_decode(inbound.split(b".")[0]))
    assert header["alg"] == "RSA1_5"  # the key is pinned to it: the legacy path, end to end
    status, plain, err = cli("open", *store, stdin=inbound)
    assert (status, plain) == (0, b"from google"), err


def test_retiring_the_last_proven_key_needs_its_successor_verified_or_a_reason(cli: Cli) -> None:
    ours, _ = _bootstrap(cli)
    ks = Keystore(open_store(cli.store, passphrase=b"store words"), actor="svc")
    try:  # what the service records once the partner accepted enough canary GOPCs
        ks.set_partner(Environment.SANDBOX, ours, Partner.VERIFIED, at=T0, reason="canary")
    finally:
        ks.close()
    successor = cli.ok("import", cli.file("ours2.asc", key_pool().ours[1].armor().encode()))
    promoted = cli.ok("promote", successor["key_id"])
    assert promoted["partner"] == "canary" and promoted["evidence"] == {}
    status, out, err = cli.keys("retire", ours)
    assert (status, out) == (31, b"")
    assert err.startswith("error: partner_unverified") and successor["key_id"] in err
    assert cli.keys("retire", ours, "--force")[0] == 2  # a reason, always
    retired = cli.ok("retire", ours, "--force", "--reason", "B checked with Google by phone")
    assert retired["state"] == "retiring"
    (entry,) = [e for e in cli.ok("audit")["entries"] if e["action"] == "retire"]
    assert entry["reason"] == "B checked with Google by phone"
