"""Where the embedded store lives by default: the XDG data directory, as platformdirs would say,
and where `pushprov init` keeps the passphrase it makes: beside the store, 0600."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .._errors import UsageError
from ._sqlite import check_private_path

__all__ = ["default_store_path", "passphrase_file_beside", "read_passphrase_beside"]

PASSPHRASE_FILE_NAME = "store-passphrase"  # noqa: S105 - a file name, not a secret


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/pushprov/keystore.db``, else ``~/.local/share/pushprov/keystore.db``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME", "")
    # The XDG spec says to ignore a relative value.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "pushprov" / "keystore.db"


def passphrase_file_beside(store: Path) -> Path:
    """The passphrase file `pushprov init` makes for the store file ``store``."""
    return store.parent / PASSPHRASE_FILE_NAME


def read_passphrase_beside(store: Path) -> bytes | None:
    """The first line of the passphrase file beside ``store``; None when there is none.

    Found without being named, so it must be private: ours, not a symlink, mode 0600 or
    stricter, else ``StoreInsecureError`` (a passphrase others can read protects nothing).
    """
    path = passphrase_file_beside(store)
    if not path.exists():
        return None
    check_private_path(path, directory=False)
    try:
        with open(path, "rb") as handle:
            lines = handle.read(4096).splitlines()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    return lines[0] if lines and lines[0] else None
