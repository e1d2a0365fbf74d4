"""The HTTPS service for the issuer's backend: GOPCs over TLS with Google's protocol standards."""

from ._app import create_app
from ._config import ServiceConfig
from ._logging import JsonFormatter, configure_logging, redact
from ._server import serve
from ._state import ClientInfo, PostgresServiceState, ServiceState, SqliteServiceState
from ._tls import TLS12_CIPHERS, dev_certificate, server_context

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
