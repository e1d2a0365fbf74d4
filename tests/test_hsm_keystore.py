"""HSM keys in the key store, through the CLI: made in a real token (SoftHSM2), self-tested
through it, used by ``gopc seal/open --store``, destroyed in it; each token failure a stable
code and exit status. GnuPG judges the certificate and a GOPC the token signed."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pkcs11 import Attribute

from pushprov import hsm, openpgp

from .conftest import GpgFactory
from .hsm_support import LABEL, SoftHsm, softhsm
from .test_keystore_cli import AT, CARD, SESSION, Cli, cli
from .test_keystore_support import key_pool

__all__ = ["cli", "softhsm"]  # fixtures, imported for pytest to find

UID = "Issuer HSM <hsm@issuer.example>"
T1 = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)  # AT


@pytest.fixture
def hsm_cli(cli: Cli, softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    # Configuration as an operator gives it: the module and the PIN file in the environment.
    monkeypatch.setenv(hsm.TokenCustody.MODULE_ENV, softhsm.module)
    monkeypatch.setenv(hsm.TokenCustody.PIN_SOURCE_ENV, f"file:{softhsm.pin_file}")
    yield cli


def _generate(cli: Cli, stem: str, *extra: str) -> dict[str, Any]:
    made: dict[str, Any] = cli.ok(
        "generate", "--uid", UID, "--bits", "2048", "--hsm", f"pkcs11:token={LABEL};object={stem}",
        *extra,
    )  # fmt: skip
    return made


def _google(cli: Cli) -> openpgp.SecretKey:
    google = key_pool().partners[1]
    partner = cli.ok("import", cli.file("g.asc", google.certificate.armor().encode()))
    cli.ok("promote", partner["key_id"])
    return google


def _seal(cli: Cli) -> tuple[int, bytes, str]:
    return cli(
        "gopc", "seal", "--session-id", SESSION, "--store", str(cli.store), "--env", "sandbox",
        "--at", AT, stdin=CARD,
    )  # fmt: skip


def _token_key(softhsm: SoftHsm, uri: str, role: str) -> Any:
    token = hsm.open_token(softhsm.uri())
    return token, token.rsa_key(uri, role)  # type: ignore[arg-type]


def test_generate_in_the_token_keeps_uris_and_public_material_only(
    hsm_cli: Cli, softhsm: SoftHsm
) -> None:
    made = _generate(hsm_cli, "gen")
    assert (made["state"], made["has_secret"], made["owner"]) == ("pending", False, "ours")
    custody = made["hsm"]
    assert custody["sign"].startswith(f"pkcs11:token={LABEL};object=gen.sign;id=")
    assert custody["decrypt"].startswith(f"pkcs11:token={LABEL};object=gen.decrypt;id=")
    assert "pin" not in json.dumps(custody)  # the module and PIN came from configuration
    # The row: no sealed secret, the URIs in the MACed custody column.
    with sqlite3.connect(hsm_cli.store) as db:
        ((sealed, stored),) = db.execute(
            "SELECT sealed_secret, custody FROM keys WHERE key_id = ?", (made["key_id"],)
        ).fetchall()
    assert sealed is None and json.loads(stored)["sign"] == custody["sign"]
    token, key = _token_key(softhsm, custody["sign"], "sign")
    with token:
        flags = key.attributes()
    assert flags["sensitive"] and not flags["extractable"] and flags["never_extractable"]
    shown = hsm_cli.keys("show", made["key_id"])[1].decode()
    assert f"in HSM: sign {custody['sign']}" in shown


@pytest.mark.gpg
def test_rotation_into_the_token_and_gopcs_through_it_judged_by_gpg(
    hsm_cli: Cli, softhsm: SoftHsm, gpg_factory: GpgFactory
) -> None:
    # A software key serves first; the HSM key replaces it by rotation, side by side.
    pool = key_pool()
    software = hsm_cli.ok("import", hsm_cli.file("ours.asc", pool.ours[1].armor().encode()))
    hsm_cli.ok("promote", software["key_id"])
    google = _google(hsm_cli)
    made = _generate(hsm_cli, "rot")
    promoted = hsm_cli.ok("promote", made["key_id"], "--replace", software["key_id"])
    assert promoted["state"] == "active"  # the self-test sealed and opened through the token
    states = {k["key_id"]: (k["state"], k["hsm"] is not None) for k in hsm_cli.ok("list")["keys"]}
    assert states[software["key_id"]] == ("retiring", False)
    assert states[made["key_id"]] == ("active", True)

    status, sealed, err = _seal(hsm_cli)
    assert status == 0, err
    certificate = hsm_cli.keys("export", made["key_id"])[1]

    home = gpg_factory()
    assert home.import_key(certificate) == [made["key_id"]]
    home.import_key(google.armor().encode())
    listing = home.run(["--list-keys", "--with-colons", made["key_id"]]).stdout.decode()
    rows = [line.split(":") for line in listing.splitlines()]
    (pub,) = [row for row in rows if row[0] == "pub"]
    (sub,) = [row for row in rows if row[0] == "sub"]
    assert (pub[2], pub[11], sub[2], sub[11]) == ("2048", "scESC", "2048", "e")
    assert [row[9] for row in rows if row[0] == "uid"] == [UID]
    result = home.decrypt_verify(base64.b64decode(sealed))
    assert result.goodsig_fprs == {made["key_id"]}
    assert result.hash_names == {"SHA384"}
    assert b'"serverSessionId":"' + SESSION.encode() in result.plaintext

    # Google's answer to the token's subkey opens through the token.
    (hsm_cert,) = openpgp.read_certificates(certificate)
    inbound = openpgp.seal(b"from google", sign_with=[google], encrypt_to=[hsm_cert], at=T1)
    status, plain, err = hsm_cli(
        "open", "--store", str(hsm_cli.store), "--env", "sandbox", "--at", AT, stdin=inbound
    )
    assert (status, plain) == (0, b"from google"), err


def test_export_secret_of_an_hsm_key_is_refused(hsm_cli: Cli) -> None:
    made = _generate(hsm_cli, "exp")
    status, out, err = hsm_cli.keys(
        "export", made["key_id"], "--secret", "--passphrase-file", hsm_cli.file("p", b"words\n")
    )
    assert (status, out) == (10, b"")
    assert err.startswith("error: unsupported: ") and "never leave the token" in err
    assert hsm_cli.keys("export", made["key_id"])[0] == 0  # the certificate is public
    actions = [e["action"] for e in hsm_cli.ok("audit")["entries"]]
    assert "export-secret" not in actions


def test_destroy_destroys_the_token_objects_and_says_so(hsm_cli: Cli, softhsm: SoftHsm) -> None:
    made = _generate(hsm_cli, "gone")
    destroyed = hsm_cli.ok("destroy", made["key_id"], "--reason", "never used")
    assert destroyed["state"] == "destroyed"
    entries = hsm_cli.ok("audit", "--verify")["entries"]
    assert [(e["action"], e["to"]) for e in entries[-2:]] == [
        ("destroy", "destroyed"),
        ("destroy-token-keys", "destroyed"),
    ]
    with hsm.open_token(softhsm.uri()) as token:
        for role in ("sign", "decrypt"):
            with pytest.raises(hsm.TokenKeyNotFoundError):
                token.rsa_key(made["hsm"][role], role)


# --- failures: each a stable code and exit status ---------------------------------------------


def _active_hsm_key(cli: Cli, stem: str) -> dict[str, Any]:
    made = _generate(cli, stem)
    _google(cli)  # its self-test seals a probe signed through the token
    cli.ok("promote", made["key_id"])
    return made


def test_wrong_pin_is_bad_passphrase(hsm_cli: Cli, softhsm: SoftHsm, monkeypatch: Any) -> None:
    _active_hsm_key(hsm_cli, "pin")
    monkeypatch.setenv(hsm.TokenCustody.PIN_SOURCE_ENV, f"file:{softhsm.wrong_pin_file}")
    status, out, err = _seal(hsm_cli)
    assert (status, out) == (
        13,
        b"",
    ) and err == "error: bad_passphrase: the token refused the PIN\n"
    assert "not-the-pin" not in err


def test_missing_token_is_token_unavailable(hsm_cli: Cli) -> None:
    status, out, err = hsm_cli.keys(
        "generate", "--uid", UID, "--hsm", "pkcs11:token=no-such-token;object=x"
    )
    assert (status, out) == (14, b"") and err.startswith("error: token_unavailable: ")
    assert hsm_cli.ok("list")["keys"] == []  # nothing recorded


def test_missing_module_is_token_unavailable(
    hsm_cli: Cli, monkeypatch: Any, tmp_path: Path
) -> None:
    monkeypatch.setenv(hsm.TokenCustody.MODULE_ENV, str(tmp_path / "libnone.so"))
    status, _, err = hsm_cli.keys("generate", "--uid", UID, "--hsm", f"pkcs11:token={LABEL}")
    assert status == 14 and "module cannot be loaded" in err


def test_a_pin_in_the_uri_is_refused(hsm_cli: Cli) -> None:
    status, _, err = hsm_cli.keys(
        "generate", "--uid", UID, "--hsm", f"pkcs11:token={LABEL}?pin-value=1234"
    )
    assert status == 2 and "1234" not in err and "pin-source" in err


def test_missing_object_is_token_key_not_found(hsm_cli: Cli, softhsm: SoftHsm) -> None:
    made = _active_hsm_key(hsm_cli, "lost")
    token, key = _token_key(softhsm, made["hsm"]["sign"], "sign")
    with token:
        token.destroy(key)  # removed behind pushprov's back
    status, out, err = _seal(hsm_cli)
    assert (status, out) == (15, b"") and err.startswith("error: token_key_not_found: ")


def test_a_key_without_the_sign_attribute_is_unusable(hsm_cli: Cli, softhsm: SoftHsm) -> None:
    made = _active_hsm_key(hsm_cli, "nosign")
    token, key = _token_key(softhsm, made["hsm"]["sign"], "sign")
    with token:
        key._private[Attribute.SIGN] = False  # an administrator took the right away
    status, out, err = _seal(hsm_cli)
    assert (status, out) == (9, b"")
    assert err.startswith("error: key_unusable: ") and "CKA_SIGN" in err


def test_a_key_without_the_decrypt_attribute_is_unusable(hsm_cli: Cli, softhsm: SoftHsm) -> None:
    made = _active_hsm_key(hsm_cli, "nodecrypt")
    token, key = _token_key(softhsm, made["hsm"]["decrypt"], "decrypt")
    with token:
        key._private[Attribute.DECRYPT] = False
    status, out, err = hsm_cli(
        "open", "--store", str(hsm_cli.store), "--env", "sandbox", "--at", AT, stdin=b"x"
    )
    assert (status, out) == (9, b"") and "CKA_DECRYPT" in err
