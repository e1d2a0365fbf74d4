"""Where the embedded files live (the store, by default in the XDG data directory as
platformdirs would say, and the passphrase file `pushprov init` makes beside it), and the one
check they pass before they are opened: the key store, the service's state file and the
passphrase file alike are ours alone (no symlink, our owner, mode 0600 in a 0700 directory)."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from .._errors import UsageError
from .._files import first_line
from ._errors import StoreInsecureError

__all__ = [
    "check_private_path",
    "default_store_path",
    "passphrase_file_beside",
    "private_database_file",
    "read_passphrase_beside",
]

PASSPHRASE_FILE_NAME = "store-passphrase"  # noqa: S105 - a file name, not a secret


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/pushprov/keystore.db``, else ``~/.local/share/pushprov/keystore.db``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_DATA_HOME", "")
    # The XDG spec says to ignore a relative value.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "pushprov" / "keystore.db"


def check_private_path(path: Path, *, directory: bool) -> None:
    """Refuse a path that is a symlink, not ours, or grants group/other any access."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    kind = "directory" if directory else "file"
    if stat.S_ISLNK(info.st_mode):
        raise StoreInsecureError(f"store {kind} {path} is a symbolic link")
    if (stat.S_ISDIR(info.st_mode)) != directory:
        raise StoreInsecureError(f"store path {path} is not a {kind}")
    if info.st_uid != os.geteuid():
        raise StoreInsecureError(f"store {kind} {path} belongs to another user")
    if info.st_mode & 0o077:
        wanted = "0700" if directory else "0600"
        raise StoreInsecureError(
            f"store {kind} {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}; want {wanted})"
        )


def private_database_file(path: Path, *, create: bool) -> bool:
    """Check ``path`` (and its directory, WAL and shared-memory files) before SQLite opens it;
    with ``create``, make a missing directory 0700 and a missing file 0600 first. Whether the
    file is new."""
    directory = path.parent
    if create and not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
    check_private_path(directory, directory=True)
    new = not path.exists()
    if new:
        if not create:
            raise UsageError(f"no key store at {path}")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:  # another process made it meanwhile: check theirs
            new = False
        except OSError as error:
            raise UsageError(f"cannot create {path}: {error.strerror}") from None
        else:
            os.close(fd)
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        check_private_path(candidate, directory=False)
    return new


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
    return first_line(path) or None  # the rule a named passphrase file follows
