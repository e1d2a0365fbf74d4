"""``pushprov serve`` and ``pushprov clients``: run the HTTPS service and manage its callers."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
from pathlib import Path
from typing import Any

from ..hosting import ServiceConfig
from ..sandbox import serve_sandbox
from ..service import serve

__all__ = ["add_sandbox_commands", "add_service_commands", "run_service_command"]

_SERVE_OPTIONS = {
    "host": "address to listen on (default 127.0.0.1)",
    "port": "port (default 8443)",
    "workers": "worker processes (default: one per core)",
    "tls_cert": "TLS certificate chain (PEM); default: a self-signed development one",
    "tls_key": "TLS private key (PEM)",
    "tls_client_ca": "require client certificates from this CA (mutual TLS)",
    "store": "key store: a file (default: the embedded one in the data directory) or a "
    "postgresql:// URL shared by every instance (keys, clients, idempotency, rate limits)",
    "env": "sandbox or production (default sandbox)",
    "format": "envelope for GOPCs: pgp (default) or jwe",
    "data_dir": "data directory (default ~/.local/share/pushprov)",
}


def add_service_commands(commands: Any) -> None:
    serve_parser = commands.add_parser(
        "serve",
        help="run the HTTPS service (works with no arguments on the embedded default)",
        description="Serve POST /v1/gopc, /v1/echo, /v1/keys[/public], /livez, /readyz, "
        "/metrics and /openapi.json over TLS 1.2+. Settings: defaults, then --config (TOML), "
        "then PUSHPROV_* environment variables, then these options. The key store's "
        "passphrase comes from $PUSHPROV_STORE_PASSPHRASE or store_passphrase_file.",
    )
    serve_parser.add_argument("--config", type=Path, help="TOML file ([service] table)")
    for name, text in _SERVE_OPTIONS.items():
        serve_parser.add_argument("--" + name.replace("_", "-"), dest=name, help=text)

    clients = commands.add_parser(
        "clients", help="API clients of the service (bearer keys; only their hash is stored)"
    ).add_subparsers(dest="clients_command", required=True, metavar="SUBCOMMAND")
    add = clients.add_parser("add", help="add a client; prints its API key once")
    add.add_argument("name")
    clients.add_parser("list", help="list clients").add_argument("--json", action="store_true")
    clients.add_parser("revoke", help="revoke a client's key").add_argument("name")
    for sub in clients.choices.values():
        sub.add_argument("--config", type=Path, help="TOML file ([service] table)")
        sub.add_argument("--data-dir", dest="data_dir", help="data directory")
        sub.add_argument(
            "--store", metavar="URL", help="a postgresql:// URL: the clients of every instance"
        )


def add_sandbox_commands(commands: Any) -> None:
    sandbox = commands.add_parser(
        "sandbox", help="Google's side, for tests and rehearsals (never for production)"
    ).add_subparsers(dest="sandbox_command", required=True, metavar="SUBCOMMAND")
    serve_parser = sandbox.add_parser(
        "serve",
        help="run the sandbox over TLS: sessions, GOPC acceptance, key exchange",
        description="Issues single-use serverSessionIds (POST /v1/sessions), accepts or rejects "
        "GOPCs with a reason code (POST /v1/gopc), publishes its keys (GET /v1/keys/public) and "
        "trusts issuer certificates (POST /v1/issuer-keys). Its keys live in their own key "
        "store (manage them with `pushprov keys --store ...`; issuer keys have owner 'issuer').",
    )
    serve_parser.add_argument("--config", type=Path, help="TOML file ([service] table)")
    for name in ("host", "port", "tls_cert", "tls_key", "store", "data_dir"):
        serve_parser.add_argument(
            "--" + name.replace("_", "-"), dest=name, help=_SERVE_OPTIONS[name]
        )
    serve_parser.add_argument(
        "--session-lifetime", type=float, default=600.0, help="seconds (default 600)"
    )
    commands.add_parser(
        "rehearse",
        help="the main job: issuer service + sandbox on loopback, traffic through a rotation "
        "of both keys; exit 1 if any GOPC failed",
    )
    rehearse = commands.choices["rehearse"]
    rehearse.add_argument(
        "--bits", type=int, default=2048, help="RSA size for the rehearsal's keys"
    )
    rehearse.add_argument(
        "--step-seconds", type=float, default=1.5, help="traffic time between rotation steps"
    )


def _config(args: argparse.Namespace) -> ServiceConfig:
    config = ServiceConfig.load(getattr(args, "config", None))
    overrides = {
        name: getattr(args, name)
        for name in _SERVE_OPTIONS
        if getattr(args, name, None) is not None
    }
    if not overrides:
        return config
    environ = {f"PUSHPROV_{name.upper()}": str(value) for name, value in overrides.items()}
    merged = ServiceConfig.load(None, environ=environ)
    return dataclasses.replace(config, **{name: getattr(merged, name) for name in overrides})


def run_service_command(args: argparse.Namespace, at: _dt.datetime) -> bytes:
    config = _config(args)
    if args.command == "serve":
        serve(config)
        return b""
    if args.command == "sandbox":
        if getattr(args, "port", None) is None:
            config = dataclasses.replace(config, port=8444)
        serve_sandbox(config, session_lifetime=_dt.timedelta(seconds=args.session_lifetime))
        return b""
    state = config.backend().open_state()
    try:
        if args.clients_command == "add":
            api_key = state.add_client(args.name, at=at)
            return (api_key + "\n").encode()
        if args.clients_command == "revoke":
            state.revoke_client(args.name, at=at)
            return b""
        rows = [
            {
                "name": client.name,
                "created": client.created.isoformat(),
                "revoked": client.revoked.isoformat() if client.revoked else None,
            }
            for client in state.list_clients()
        ]
        if args.json:
            return json.dumps(rows, indent=2).encode() + b"\n"
        lines = [
            f"{row['name']:24} created {str(row['created'])[:19]}"
            + (f"  REVOKED {str(row['revoked'])[:19]}" if row["revoked"] else "")
            for row in rows
        ]
        return ("\n".join(lines) + "\n").encode() if lines else b""
    finally:
        state.close()
