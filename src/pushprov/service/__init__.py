"""The HTTPS service for the issuer's backend: GOPCs over TLS with Google's protocol standards."""

from ..hosting import (
    TLS12_CIPHERS,
    JsonFormatter,
    ServiceConfig,
    configure_logging,
    dev_certificate,
    redact,
    server_context,
)
from ..store import ClientInfo, PostgresServiceState, ServiceState, SqliteServiceState
from ._app import create_app
from ._server import serve

__all__ = [
    "TLS12_CIPHERS",
    "ClientInfo",
    "JsonFormatter",
    "PostgresServiceState",
    "ServiceConfig",
    "ServiceState",
    "SqliteServiceState",
    "configure_logging",
    "create_app",
    "dev_certificate",
    "redact",
    "serve",
    "server_context",
]
