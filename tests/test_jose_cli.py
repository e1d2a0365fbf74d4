"""`--allow-unsigned` on the command line: no `--verify-with` needed; a nested JWS verified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pushprov.jose._jws import sign_jws

from .instances import child_env
from .jose_support import CANARY_PAN, NOW, canary_gopc, fixed_key, forge_jwe

GOPC = canary_gopc()
SESSION = json.loads(GOPC)["validationContext"]["serverSessionId"]
HEADER = {"alg": "RSA-OAEP-256", "enc": "A256GCM"}  # no "cty", as most senders write it


def _cli(*args: str, stdin: bytes, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pushprov", *args, "--at", NOW.isoformat()],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=child_env(os.environ),
        timeout=120,
        check=False,
    )


def _error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    assert done.stdout == b""
    (line,) = done.stderr.decode().splitlines()
    return line


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jose-cli")
    (path / "google.jwk").write_text(fixed_key("cli-google").to_json(private=True))
    return path


def test_allow_unsigned_opens_without_verify_with(home: Path) -> None:
    unsigned = forge_jwe(HEADER, GOPC, fixed_key("cli-google"))
    gopc_open = ["gopc", "open", "--format", "jwe", "--session-id", SESSION]
    done = _cli(
        *gopc_open, "--allow-unsigned", "--decrypt-with", "google.jwk", stdin=unsigned, cwd=home
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout) == json.loads(GOPC)
    # Without the opt-in, a verifier is still required before anything is read.
    done = _cli(*gopc_open, "--decrypt-with", "google.jwk", stdin=unsigned, cwd=home)
    assert (done.returncode, _error_line(done)) == (
        2,
        "error: usage: --decrypt-with and --verify-with are required (or --store)",
    )


def test_allow_unsigned_without_verifiers_refuses_a_nested_jws(home: Path) -> None:
    # A signed GOPC with no key to check it is refused, never passed on as unsigned content.
    signed = forge_jwe(
        HEADER, sign_jws(GOPC, fixed_key("cli-issuer"), "RS256"), fixed_key("cli-google")
    )
    done = _cli(
        "open", "--format", "jwe", "--allow-unsigned", "--decrypt-with", "google.jwk",
        stdin=signed, cwd=home,
    )  # fmt: skip
    assert done.returncode == 6
    assert _error_line(done).startswith("error: signature_invalid: ")
    assert CANARY_PAN not in done.stderr.decode()


def test_allow_unsigned_does_not_drop_verify_with_for_openpgp(home: Path) -> None:
    done = _cli("open", "--allow-unsigned", "--decrypt-with", "google.jwk", stdin=b"x", cwd=home)
    assert (done.returncode, _error_line(done)) == (
        2,
        "error: usage: --decrypt-with and --verify-with are required (or --store)",
    )
