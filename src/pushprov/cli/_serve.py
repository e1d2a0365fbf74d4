"""``pushprov serve``: run the HTTPS service; the settings it shares with ``clients`` and
``sandbox serve``.

The service (uvicorn, FastAPI) is imported when a command runs, not when the parser is built:
``pushprov --help`` and the file-only commands never load it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ._options import Subparsers

if TYPE_CHECKING:
    from ..hosting import ServiceConfig

__all__ = ["SERVE_OPTIONS", "add_service_options", "register", "service_config"]

SERVE_OPTIONS = {
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


def register(commands: Subparsers) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the HTTPS service (works with no arguments on the embedded default)",
        description="Serve POST /v1/gopc, /v1/echo, /v1/keys[/public], /livez, /readyz, "
        "/metrics and /openapi.json over TLS 1.2+. Settings: defaults, then --config (TOML), "
        "then PUSHPROV_* environment variables, then these options. The key store's "
        "passphrase comes from $PUSHPROV_STORE_PASSPHRASE or store_passphrase_file.",
    )
    add_service_options(serve, SERVE_OPTIONS)
    serve.set_defaults(handler=_serve)


def add_service_options(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """``--config`` and the settings ``names`` (keys of ``SERVE_OPTIONS``): what
    ``service_config`` reads."""
    parser.add_argument("--config", type=Path, help="TOML file ([service] table)")
    for name in names:
        parser.add_argument("--" + name.replace("_", "-"), dest=name, help=SERVE_OPTIONS[name])


def _serve(args: argparse.Namespace, _at: _dt.datetime, _: BinaryIO) -> bytes:
    from ..service import serve

    serve(service_config(args))
    return b""


def service_config(args: argparse.Namespace) -> ServiceConfig:
    """The service's settings: defaults, --config, $PUSHPROV_*, then the options given."""
    from ..hosting import ServiceConfig

    config = ServiceConfig.load(getattr(args, "config", None))
    overrides = {
        name: getattr(args, name) for name in SERVE_OPTIONS if getattr(args, name, None) is not None
    }
    if not overrides:
        return config
    # Through the environment's parsing, so an option means what its variable means.
    environ = {f"PUSHPROV_{name.upper()}": str(value) for name, value in overrides.items()}
    merged = ServiceConfig.load(None, environ=environ)
    return dataclasses.replace(config, **{name: getattr(merged, name) for name in overrides})
