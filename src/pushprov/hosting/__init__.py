"""Hosting the service and the sandbox: configuration, the store passphrase, TLS, logging,
sockets and uvicorn's worker processes. Both faces use this package; neither uses the other."""

from ._config import ServiceConfig, default_data_dir, init_command, keys_options
from ._logging import JsonFormatter, configure_logging, redact
from ._passphrase import PASSPHRASE_ENV, read_passphrase
from ._server import (
    bind,
    listen_socket,
    serve_app,
    serve_workers,
    uvicorn_config,
    with_certificate,
    worker_config,
)
from ._tls import TLS12_CIPHERS, dev_certificate, server_context

__all__ = [
    "PASSPHRASE_ENV",
    "TLS12_CIPHERS",
    "JsonFormatter",
    "ServiceConfig",
    "bind",
    "configure_logging",
    "default_data_dir",
    "dev_certificate",
    "init_command",
    "keys_options",
    "listen_socket",
    "read_passphrase",
    "redact",
    "serve_app",
    "serve_workers",
    "server_context",
    "uvicorn_config",
    "with_certificate",
    "worker_config",
]
