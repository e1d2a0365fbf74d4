"""Hosting the service and the sandbox: configuration, the store passphrase, TLS, logging,
sockets and uvicorn's worker processes. Both faces use this package; neither uses the other."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from ._config import ServiceConfig, default_data_dir, init_command, keys_options
from ._logging import JsonFormatter, configure_logging, redact
from ._passphrase import PASSPHRASE_ENV, read_passphrase
from ._tls import TLS12_CIPHERS, dev_certificate, server_context

if TYPE_CHECKING:
    from ._server import (
        bind,
        listen_socket,
        serve_app,
        serve_workers,
        uvicorn_config,
        with_certificate,
        worker_config,
    )

# The server module loads uvicorn, so only when one of these is used: the configuration and
# the passphrase rule (which the CLI's parser names) need none of it.
__getattr__ = lazy_exports(
    __name__,
    dict.fromkeys(
        [
            "bind",
            "listen_socket",
            "serve_app",
            "serve_workers",
            "uvicorn_config",
            "with_certificate",
            "worker_config",
        ],
        "._server",
    ),
)

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
