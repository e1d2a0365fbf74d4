"""``pushprov serve``: check everything, then the service's worker processes, through the
hosting layer.

Each worker builds its own app from the configuration (keys, state store, metrics), so the
workers share nothing but the port, the store and the metrics directory.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from .._clock import now
from ..hosting import ServiceConfig, bind, configure_logging, serve_workers, with_certificate
from ._factory import preflight

__all__ = ["serve"]

log = logging.getLogger("pushprov.service")


def serve(config: ServiceConfig) -> None:
    """Check everything, then say "serving" and serve: a start that cannot serve ends in one
    error (naming what is missing and the command that provides it) before any log line."""
    configure_logging(config.log_level)
    warnings = preflight(config, at=now())
    config = with_certificate(config)
    sock = bind(config)
    metrics_dir = tempfile.mkdtemp(prefix="pushprov-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
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
        serve_workers(config, "pushprov.service._factory:worker_app", sock)
    finally:
        for leftover in Path(metrics_dir).glob("*"):
            leftover.unlink()
        Path(metrics_dir).rmdir()
