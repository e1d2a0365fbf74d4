"""Reading a named file with a size cap, before anything parses it: key files and passphrase
files, for the CLI and the service's configuration alike."""

from __future__ import annotations

import os

from ._errors import InputTooLargeError, UsageError

__all__ = ["SMALL_FILE", "first_line", "read_file_capped"]

SMALL_FILE = 4096  # a passphrase file is small; read no further


def read_file_capped(path: str | os.PathLike[str], cap: int) -> bytes:
    """A file's bytes, refused past ``cap`` without reading further."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None
    if len(data) > cap:
        raise InputTooLargeError(f"{path} is larger than the policy allows")
    return data


def first_line(path: str | os.PathLike[str]) -> bytes:
    """The first line of a small file (empty for an empty file): how passphrases arrive, never
    on argv."""
    lines = read_file_capped(path, SMALL_FILE).splitlines()
    return lines[0] if lines else b""
