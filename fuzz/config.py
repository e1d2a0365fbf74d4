"""The service's TOML configuration, read as `pushprov serve --config` reads it."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from pushprov.service import ServiceConfig

from ._fixtures import expected

_DIRECTORY = tempfile.TemporaryDirectory(prefix="pushprov-fuzz-config-")
_PATH = Path(_DIRECTORY.name) / "service.toml"


def fuzz_one(data: bytes) -> None:
    _PATH.write_bytes(data)
    with contextlib.suppress(expected):
        ServiceConfig.load(_PATH, environ={})
