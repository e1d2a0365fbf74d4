"""The running service as a TLS scanner sees it (sslyze), with an ECDSA and an RSA certificate.

Google's rules: TLS 1.2 and 1.3 only; in TLS 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305;
no compression; no insecure renegotiation. sslyze brings its own legacy OpenSSL, so it can offer
SSL 2.0/3.0 and TLS 1.0/1.1 where Python's ``ssl`` no longer can. It pins an older
``cryptography`` than pushprov's, so it lives in its own venv (``make deps`` makes
``.venv/sslyze``) and is driven as a program, as an auditor would run it.
``pytest -s tests/test_tls_scan.py`` prints the summary kept in docs/tls.md.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from pushprov import openpgp
from pushprov.keys import FileKeySource
from pushprov.service import TLS12_CIPHERS

from .service_support import running_server
from .test_service_tls import _rsa_certificate

NOW = dt.datetime.now(dt.UTC)
KINDS = ("ecdsa", "rsa")
REFUSED = ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1")
# IANA names of Google's TLS 1.2 suites: ECDHE, then AES-GCM or ChaCha20-Poly1305.
GOOGLE_TLS12 = re.compile(
    r"TLS_ECDHE_(ECDSA|RSA)_WITH_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)"
)


def _sslyze() -> Path:
    found = Path(os.environ.get("PUSHPROV_SSLYZE", Path(sys.prefix) / "sslyze" / "bin" / "python"))
    if not found.exists():
        if os.environ.get("CI"):
            pytest.fail("sslyze is required in CI: `make deps` installs it in .venv/sslyze")
        pytest.skip("sslyze not installed (make deps puts it in .venv/sslyze)")
    return found


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """One sslyze run over both servers: certificate kind -> sslyze's scan_result."""
    python = _sslyze()
    tmp = tmp_path_factory.mktemp("tls-scan")
    key = openpgp.generate_key("i <i@x.example>", bits=2048, at=NOW)
    source = FileKeySource(signers=[key], recipients=[key.certificate])
    with ExitStack() as stack:
        targets: dict[str, str] = {}
        for kind in KINDS:
            directory = tmp / kind
            directory.mkdir(mode=0o700)  # the service refuses a data directory others can read
            overrides = {}
            if kind == "rsa":  # the default development certificate is ECDSA P-256
                cert, private = _rsa_certificate(directory)
                overrides = {"tls_cert": cert, "tls_key": private}
            server = stack.enter_context(running_server(directory, source, **overrides))
            targets[server.url.removeprefix("https://")] = kind
        report = tmp / "sslyze.json"
        command = [
            str(python), "-m", "sslyze", "--quiet", "--mozilla_config=disable",
            "--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
            "--compression", "--reneg", f"--json_out={report}", *targets,
        ]  # fmt: skip
        subprocess.run(command, check=True, timeout=120, capture_output=True)
        results = json.loads(report.read_text())["server_scan_results"]
    scanned: dict[str, dict[str, Any]] = {}
    for result in results:
        location = result["server_location"]
        kind = targets[f"{location['hostname']}:{location['port']}"]
        assert result["scan_status"] == "COMPLETED", result["connectivity_error_trace"]
        scanned[kind] = result["scan_result"]
    assert sorted(scanned) == sorted(KINDS)
    yield scanned


def _result(scan_result: dict[str, Any], command: str) -> dict[str, Any]:
    attempt = scan_result[command]
    assert attempt["status"] == "COMPLETED", attempt["error_trace"]
    result: dict[str, Any] = attempt["result"]
    return result


def _accepted(scan_result: dict[str, Any], version: str) -> list[str]:
    suites = _result(scan_result, f"{version}_cipher_suites")["accepted_cipher_suites"]
    return [suite["cipher_suite"]["name"] for suite in suites]


@pytest.mark.parametrize("kind", KINDS)
def test_only_tls12_and_tls13(scan: dict[str, dict[str, Any]], kind: str) -> None:
    for version in REFUSED:
        assert _accepted(scan[kind], version) == [], version
    assert _accepted(scan[kind], "tls_1_2")
    assert _accepted(scan[kind], "tls_1_3")


@pytest.mark.parametrize("kind", KINDS)
def test_tls12_suites_are_googles(scan: dict[str, dict[str, Any]], kind: str) -> None:
    accepted = _accepted(scan[kind], "tls_1_2")
    assert all(GOOGLE_TLS12.fullmatch(name) for name in accepted), accepted
    # Exactly the configured suites that fit this certificate type, all three of them.
    assert all(f"_{kind.upper()}_" in name for name in accepted), accepted
    assert len(accepted) == len([s for s in TLS12_CIPHERS.split(":") if kind.upper() in s])


@pytest.mark.parametrize("kind", KINDS)
def test_no_compression_no_insecure_renegotiation(
    scan: dict[str, dict[str, Any]], kind: str
) -> None:
    assert _result(scan[kind], "tls_compression")["supports_compression"] is False
    renegotiation = _result(scan[kind], "session_renegotiation")
    assert renegotiation["supports_secure_renegotiation"] is True
    assert renegotiation["is_vulnerable_to_client_renegotiation_dos"] is False


def test_print_summary(scan: dict[str, dict[str, Any]]) -> None:
    """The summary docs/tls.md shows (visible with ``pytest -s``)."""
    lines = []
    for kind in KINDS:
        versions = [v for v in (*REFUSED, "tls_1_2", "tls_1_3") if _accepted(scan[kind], v)]
        renegotiation = _result(scan[kind], "session_renegotiation")
        lines.append(f"{kind} certificate: protocols {', '.join(versions)}")
        for version in ("tls_1_2", "tls_1_3"):
            lines.append(f"  {version}: {', '.join(sorted(_accepted(scan[kind], version)))}")
        lines.append(
            f"  compression: {_result(scan[kind], 'tls_compression')['supports_compression']}; "
            f"secure renegotiation: {renegotiation['supports_secure_renegotiation']}; "
            "client renegotiation DoS: "
            f"{renegotiation['is_vulnerable_to_client_renegotiation_dos']}"
        )
    print("\n" + "\n".join(lines))
    assert len(lines) == 4 * len(KINDS)
