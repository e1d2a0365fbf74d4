"""Service settings (defaults < TOML < PUSHPROV_* environment), the log redaction net, and
mutual TLS when a client CA is configured."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pushprov import UsageError, openpgp
from pushprov.keys import FileKeySource
from pushprov.service import JsonFormatter, ServiceConfig, redact

from .service_support import running_server

NOW = dt.datetime.now(dt.UTC)


def test_config_layers(tmp_path: Path) -> None:
    toml = tmp_path / "service.toml"
    toml.write_text('[service]\nport = 9443\nenv = "production"\nqueue_limit = 7\n')
    config = ServiceConfig.load(toml, environ={"PUSHPROV_PORT": "10443", "PUSHPROV_FORMAT": "jwe"})
    assert (config.port, config.env, config.queue_limit, config.format) == (
        10443,
        "production",
        7,
        "jwe",
    )
    assert ServiceConfig.load(None, environ={}).port == 8443
    with pytest.raises(UsageError, match="unknown config keys"):
        toml.write_text("[service]\nprot = 1\n")
        ServiceConfig.load(toml, environ={})
    with pytest.raises(UsageError):
        ServiceConfig.load(None, environ={"PUSHPROV_ENV": "staging"})
    with pytest.raises(UsageError, match="wrong type"):
        ServiceConfig.load(None, environ={"PUSHPROV_PORT": "many"})


def test_canary_settings_are_bounded() -> None:
    config = ServiceConfig.load(None, environ={"PUSHPROV_CANARY_FRACTION": "0.25"})
    assert (config.canary_fraction, config.canary_per_minute, config.canary_verify_after) == (
        0.25, 60, 20,
    )  # fmt: skip
    assert config.outcome_window.total_seconds() == 3600
    for name, value in (
        ("CANARY_FRACTION", "1.5"), ("CANARY_FRACTION", "nan"), ("CANARY_PER_MINUTE", "0"),
        ("CANARY_VERIFY_AFTER", "-1"), ("OUTCOME_WINDOW", "0"),
    ):  # fmt: skip
        with pytest.raises(UsageError):
            ServiceConfig.load(None, environ={f"PUSHPROV_{name}": value})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111111111111111 declined", "card [PAN 1111] declined"),
        ("card 4111 1111 1111 1111.", "card [PAN 1111]."),
        ("card 4111-1111-1111-1111", "card [PAN 1111]"),
        ("order 4111111111111112 (not Luhn)", "order 4111111111111112 (not Luhn)"),
        ("ts 1795943876000 ms", "ts 1795943876000 ms"),
    ],
)
def test_redaction_masks_luhn_digit_runs_only(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_json_log_lines_pass_through_the_redaction() -> None:
    record = logging.makeLogRecord(
        {"msg": "oops %s", "args": ("4111111111111111",), "levelno": 40, "levelname": "ERROR"}
    )
    record.__dict__["detail"] = {"pan": "5555555555554444"}
    line = JsonFormatter().format(record)
    document = json.loads(line)
    assert document["msg"] == "oops [PAN 1111]"
    assert "5555555555554444" not in line and "[PAN 4444]" in line


def _ca_and_client(directory: Path) -> tuple[Path, Path, Path]:
    """A client CA and one client certificate it signed (PEM files)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backend CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "backend")]))
        .issuer_name(ca_name).public_key(client_key.public_key()).serial_number(2)
        .not_valid_before(NOW - dt.timedelta(hours=1)).not_valid_after(NOW + dt.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    (directory / "ca.pem").write_bytes(ca.public_bytes(pem))
    (directory / "client.pem").write_bytes(client.public_bytes(pem))
    (directory / "client.key").write_bytes(
        client_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return directory / "ca.pem", directory / "client.pem", directory / "client.key"


def test_mutual_tls_requires_a_client_certificate_from_the_ca(tmp_path: Path) -> None:
    ca, client_cert, client_key = _ca_and_client(tmp_path)
    key = openpgp.generate_key("i <i@x.example>", bits=2048, at=NOW)
    source = FileKeySource(signers=[key], recipients=[key.certificate])
    with running_server(tmp_path, source, tls_client_ca=ca) as server:
        host, port = server.url.removeprefix("https://").split(":")

        def handshake(context: ssl.SSLContext) -> bytes:
            with (
                socket.create_connection((host, int(port)), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                tls.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return tls.recv(4096)

        with_cert = server.tls()
        with_cert.load_cert_chain(client_cert, client_key)
        assert handshake(with_cert).startswith(b"HTTP/1.1 200")
        # Without a client certificate the server aborts the handshake; under TLS 1.3 the client
        # learns it on its first read (an alert, or the connection closing with nothing sent).
        try:
            answer = handshake(server.tls())
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            answer = b""
        assert answer == b""
