"""Running the service: uvicorn worker processes on one TLS socket, graceful shutdown.

Each worker builds its own app from the configuration (keys, state store, metrics), so the
workers share nothing but the socket, the store file and the metrics directory.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import ssl
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from .._clock import now
from .._errors import UsageError
from ._config import ServiceConfig
from ._factory import build_app, preflight
from ._http import BOARD_ENV, HttpProtocol
from ._logging import configure_logging
from ._tls import TLS12_CIPHERS, dev_certificate, server_context

__all__ = ["bind", "check_tls_files", "listen_socket", "serve", "uvicorn_config"]

log = logging.getLogger("pushprov.service")

_CONFIG_ENV = "PUSHPROV_SERVICE_CONFIG_JSON"


class _Config(uvicorn.Config):
    """uvicorn's config with our TLS context (TLS >= 1.2, Google's TLS 1.2 suites).

    ``tls`` travels with the config into each worker process, where ``load`` builds the context.
    """

    tls: tuple[Path, Path, Path | None] | None = None

    def load(self) -> None:
        super().load()
        if self.tls is not None:
            self.ssl = server_context(*self.tls)


def listen_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose accepted connections get TCP_NODELAY from asyncio.

    asyncio disables Nagle only when ``sock.proto == IPPROTO_TCP``. A socket made as
    ``socket.socket()`` (uvicorn's ``bind_socket`` does that) has proto 0, and then every
    response waits ~40 ms for the peer's delayed ACK: measured, 44 ms per request on loopback.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: Any, config: ServiceConfig, *, factory: bool = False) -> uvicorn.Config:
    """The uvicorn configuration for ``config``: also what the tests run in-process."""
    assert config.tls_cert is not None and config.tls_key is not None
    result = _Config(
        app,
        factory=factory,
        host=config.host,
        port=config.port,
        workers=config.workers,
        ssl_certfile=str(config.tls_cert),
        ssl_keyfile=str(config.tls_key),
        ssl_ciphers=TLS12_CIPHERS,
        ssl_version=ssl.PROTOCOL_TLS_SERVER,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_keep_alive=5,
        timeout_graceful_shutdown=int(config.graceful_shutdown_seconds),
        server_header=False,
        http=HttpProtocol,  # one write per response, connections spread: see _http
        loop="auto",  # uvloop (a dependency on Linux): its TLS and sockets cost less CPU
        proxy_headers=False,  # no proxy in front is trusted to name the client
    )
    result.tls = (config.tls_cert, config.tls_key, config.tls_client_ca)
    return result


def bind(host: str, port: int) -> socket.socket:
    """``listen_socket``, with a taken port or a foreign address as one usage error."""
    try:
        return listen_socket(host, port)
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def check_tls_files(cert: Path, key: Path, client_ca: Path | None) -> None:
    """Load the TLS context once here, so a bad file fails the start, not each worker."""
    try:
        server_context(cert, key, client_ca)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or "invalid"
        raise UsageError(f"cannot load the TLS certificate or key: {reason}") from None


def _service_config() -> ServiceConfig:
    values: dict[str, Any] = json.loads(os.environ[_CONFIG_ENV])
    return ServiceConfig.load(
        environ={f"PUSHPROV_{k.upper()}": str(v) for k, v in values.items() if v is not None}
    )


def app_factory() -> Any:
    """Entry point of each worker process."""
    config = _service_config()
    configure_logging(config.log_level)
    return build_app(config)


def serve(config: ServiceConfig) -> None:
    """Check everything, then say "serving" and serve: a start that cannot serve ends in one
    error (naming what is missing and the command that provides it) before any log line."""
    configure_logging(config.log_level)
    warnings = preflight(config, at=now())
    if config.tls_cert is None:
        cert, key, created = dev_certificate(config.data_dir, now=now())
        if created:
            log.warning("created a self-signed development certificate", extra={"path": str(cert)})
        else:
            log.info("using the development certificate", extra={"path": str(cert)})
        config = dataclasses.replace(config, tls_cert=cert, tls_key=key)
    assert config.tls_cert is not None and config.tls_key is not None
    check_tls_files(config.tls_cert, config.tls_key, config.tls_client_ca)
    sock = bind(config.host, config.port)
    serialized = {
        field.name: (
            getattr(config, field.name).total_seconds()
            if hasattr(getattr(config, field.name), "total_seconds")
            else getattr(config, field.name)
        )
        for field in dataclasses.fields(config)
    }
    os.environ[_CONFIG_ENV] = json.dumps(serialized, default=str)
    metrics_dir = tempfile.mkdtemp(prefix="pushprov-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    board_dir = tempfile.mkdtemp(prefix="pushprov-workers-")
    if config.workers > 1:
        (Path(board_dir) / "workers").write_text(str(config.workers))
        os.environ[BOARD_ENV] = board_dir
    server_config = uvicorn_config("pushprov.service._server:app_factory", config, factory=True)
    for warning in warnings:  # /readyz answers 503 until these are fixed
        log.warning("not ready", extra={"problem": warning})
    log.info(
        "serving",
        extra={
            "url": f"https://{config.host}:{sock.getsockname()[1]}",  # port 0: the one taken
            "workers": config.workers,
            "env": config.env,
            "format": config.format,
        },
    )
    try:
        if config.workers > 1:
            Multiprocess(server_config, sockets=[sock]).run()
        else:
            uvicorn.Server(config=server_config).run(sockets=[sock])
    finally:
        for directory in (metrics_dir, board_dir):
            for leftover in Path(directory).glob("*"):
                leftover.unlink()
            Path(directory).rmdir()
