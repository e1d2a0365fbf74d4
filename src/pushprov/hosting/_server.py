"""Running an ASGI app over TLS: the listening sockets, uvicorn's configuration, the worker
processes and the development certificate, for the service and the sandbox alike."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import ssl
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from .._clock import now
from .._errors import UsageError
from ._config import ServiceConfig
from ._deadlines import DeadlineProtocol
from ._tls import TLS12_CIPHERS, dev_certificate, server_context

__all__ = [
    "bind",
    "listen_socket",
    "serve_app",
    "serve_workers",
    "uvicorn_config",
    "with_certificate",
    "worker_config",
]

log = logging.getLogger("pushprov.hosting")

_CONFIG_ENV = "PUSHPROV_SERVICE_CONFIG_JSON"


class _Config(uvicorn.Config):
    """uvicorn's config with our TLS context (TLS >= 1.2, Google's TLS 1.2 suites).

    ``tls`` travels with the config into each worker process, where ``load`` builds the context.
    """

    tls: tuple[Path, Path, Path | None] | None = None
    # Read by DeadlineProtocol in each worker.
    header_timeout = 10.0
    request_timeout = 30.0
    max_connections = 1000

    def load(self) -> None:
        super().load()
        if self.tls is not None:
            self.ssl = server_context(*self.tls)


def listen_socket(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening TCP socket whose accepted connections get TCP_NODELAY from asyncio.

    asyncio disables Nagle only when ``sock.proto == IPPROTO_TCP``. A socket made as
    ``socket.socket()`` (uvicorn's ``bind_socket`` does that) has proto 0, and then every
    response waits ~40 ms for the peer's delayed ACK: measured, 44 ms per request on loopback.
    With ``reuse_port``, other sockets of ours may listen on the same port, and the kernel
    spreads new connections over them.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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
        # uvicorn's httptools protocol with header and request deadlines and a connection cap.
        http=DeadlineProtocol,
        loop="auto",  # uvloop (a dependency on Linux): its TLS and sockets cost less CPU
        proxy_headers=False,  # no proxy in front is trusted to name the client
    )
    result.tls = (config.tls_cert, config.tls_key, config.tls_client_ca)
    result.header_timeout = config.header_timeout_seconds
    result.request_timeout = config.request_timeout_seconds
    result.max_connections = config.max_connections
    return result


def with_certificate(config: ServiceConfig, *, announce: bool = True) -> ServiceConfig:
    """``config`` with a certificate (without one configured, the development one, made once
    in ``data_dir``), its TLS context tried here: a bad file fails the start as one usage
    error, not each worker."""
    if config.tls_cert is None:
        cert, key, created = dev_certificate(config.data_dir, now=now())
        if announce:
            if created:
                log.warning(
                    "created a self-signed development certificate", extra={"path": str(cert)}
                )
            else:
                log.info("using the development certificate", extra={"path": str(cert)})
        config = dataclasses.replace(config, tls_cert=cert, tls_key=key)
    assert config.tls_cert is not None and config.tls_key is not None
    try:
        server_context(config.tls_cert, config.tls_key, config.tls_client_ca)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or "invalid"
        raise UsageError(f"cannot load the TLS certificate or key: {reason}") from None
    return config


def bind(config: ServiceConfig) -> socket.socket:
    """The port, taken now: a taken port fails here, as one usage error, and port 0 becomes
    the number the workers share. For one worker, its listening socket. For several, a socket
    bound with ``SO_REUSEPORT`` but not listening: each worker listens on its own socket on
    the same port, and a socket joins the kernel's spreading only once it listens."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    try:
        if config.workers == 1:
            return listen_socket(config.host, config.port)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((config.host, config.port))
        except OSError:
            sock.close()
            raise
        return sock
    except OSError as error:
        raise UsageError(
            f"cannot listen on {config.host}:{config.port}: {error.strerror}"
        ) from None


def serve_app(app: Any, config: ServiceConfig, sock: socket.socket) -> None:
    """``app`` in this process, one worker, on ``sock`` (from ``bind``)."""
    single = dataclasses.replace(config, workers=1)
    uvicorn.Server(uvicorn_config(app, single)).run(sockets=[sock])


def worker_config() -> ServiceConfig:
    """In a worker process of ``serve_workers``: the configuration it was started with."""
    values: dict[str, Any] = json.loads(os.environ[_CONFIG_ENV])
    return ServiceConfig.load(
        environ={f"PUSHPROV_{k.upper()}": str(v) for k, v in values.items() if v is not None}
    )


def serve_workers(config: ServiceConfig, app_factory: str, sock: socket.socket) -> None:
    """``config.workers`` processes on ``sock`` (from ``bind``), each running the app that
    ``app_factory`` (an import string, ``module:function``) builds; the function reads
    ``worker_config()``.

    Each worker listens on its own ``SO_REUSEPORT`` socket, and the kernel spreads new
    connections over them evenly. With one shared socket, a burst of connections often landed
    on whichever worker woke first (all of wrk's 8 on one worker in about a third of the runs),
    leaving a core idle.
    """
    serialized = {
        field.name: (
            getattr(config, field.name).total_seconds()
            if hasattr(getattr(config, field.name), "total_seconds")
            else getattr(config, field.name)
        )
        for field in dataclasses.fields(config)
    }
    os.environ[_CONFIG_ENV] = json.dumps(serialized, default=str)
    server_config = uvicorn_config(app_factory, config, factory=True)
    if config.workers == 1:
        uvicorn.Server(config=server_config).run(sockets=[sock])
        return
    with sock:  # the reservation, held while the workers run
        Multiprocess(server_config, sockets=_OwnSocket(config.host, sock.getsockname()[1])).run()


class _OwnSocket(list[socket.socket]):
    """The ``sockets`` uvicorn's supervisor hands every worker it starts (restarts too): empty
    here, and in the worker a fresh listening ``SO_REUSEPORT`` socket of its own, since what a
    worker receives is this list pickled (multiprocessing's spawn), and it pickles as the call
    that binds one."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__()
        self._address = (host, port)

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return _own_socket, self._address


def _own_socket(host: str, port: int) -> list[socket.socket]:
    return [listen_socket(host, port, reuse_port=True)]
