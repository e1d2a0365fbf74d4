"""``pushprov sandbox serve``: Google's side over TLS, for tests and rehearsals."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
from typing import BinaryIO

from ._options import Subparsers
from ._serve import add_service_options, service_config

__all__ = ["register"]

_PORT = 8444  # beside the service's 8443, so both run on one host with no options


def register(commands: Subparsers) -> None:
    sandbox = commands.add_parser(
        "sandbox", help="Google's side, for tests and rehearsals (never for production)"
    ).add_subparsers(dest="sandbox_command", required=True, metavar="SUBCOMMAND")
    serve = sandbox.add_parser(
        "serve",
        help="run the sandbox over TLS: sessions, GOPC acceptance, key exchange",
        description="Issues single-use serverSessionIds (POST /v1/sessions), accepts or rejects "
        "GOPCs with a reason code (POST /v1/gopc), publishes its keys (GET /v1/keys/public) and "
        "trusts issuer certificates (POST /v1/issuer-keys). Its keys live in their own key "
        "store (manage them with `pushprov keys --store ...`; issuer keys have owner 'issuer').",
    )
    add_service_options(serve, ("host", "port", "tls_cert", "tls_key", "store", "data_dir"))
    serve.add_argument(
        "--session-lifetime", type=float, default=600.0, help="seconds (default 600)"
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace, _at: _dt.datetime, _: BinaryIO) -> bytes:
    from ..sandbox import serve_sandbox

    config = service_config(args)
    if getattr(args, "port", None) is None:
        config = dataclasses.replace(config, port=_PORT)
    serve_sandbox(config, session_lifetime=_dt.timedelta(seconds=args.session_lifetime))
    return b""
