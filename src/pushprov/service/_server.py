"""``pushprov serve``: the service's worker processes, through the hosting layer.

Each worker builds its own app from the configuration (keys, state store, metrics), so the
workers share nothing but the port, the store and the metrics directory.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from ..hosting import ServiceConfig, bind, prepare, serve_workers

__all__ = ["serve"]

log = logging.getLogger("pushprov.service")


def serve(config: ServiceConfig) -> None:
    config = prepare(config)
    sock = bind(config)
    metrics_dir = tempfile.mkdtemp(prefix="pushprov-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
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
