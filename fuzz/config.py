"""The service's TOML configuration, read as `pushprov serve --config` reads it."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from pushprov.service import ServiceConfig

from ._fixtures import expected

# A file per input: in memory where the system offers it (a disk costs ~1 ms per open).
_MEMORY = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private (0700) directory in it
_DIRECTORY = tempfile.TemporaryDirectory(
    prefix="pushprov-fuzz-config-", dir=_MEMORY if _MEMORY.is_dir() else None
)
_PATH = Path(_DIRECTORY.name) / "service.toml"


def fuzz_one(data: bytes) -> None:
    _PATH.write_bytes(data)
    with contextlib.suppress(expected):
        ServiceConfig.load(_PATH, environ={})
