"""Hosting the service and the sandbox: configuration, the store passphrase, TLS, logging,
sockets and uvicorn's worker processes. Both faces use this package; neither uses the other."""

from ._config import ServiceConfig, default_data_dir
from ._logging import JsonFormatter, configure_logging, redact
from ._passphrase import PASSPHRASE_ENV, read_passphrase
from ._server import (
    bind,
    listen_socket,
    prepare,
    serve_app,
    serve_workers,
    uvicorn_config,
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
    "listen_socket",
    "prepare",
    "read_passphrase",
    "redact",
    "serve_app",
    "serve_workers",
    "server_context",
    "uvicorn_config",
    "worker_config",
]
