"""Where the embedded store lives by default: the XDG data directory, as platformdirs would say."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["default_store_path"]


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/pushprov/keystore.db``, else ``~/.local/share/pushprov/keystore.db``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME", "")
    # The XDG spec says to ignore a relative value.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "pushprov" / "keystore.db"
