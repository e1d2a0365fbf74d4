"""The store passphrase: one rule for the CLI, the service and the sandbox.

It comes from a file (its first line) when one is named, else from ``$PUSHPROV_STORE_PASSPHRASE``;
it never travels on argv. Empty is refused everywhere: an empty passphrase would seal every
secret under a key anyone can derive.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .._errors import InputTooLargeError, UsageError

__all__ = ["PASSPHRASE_ENV", "read_passphrase"]

PASSPHRASE_ENV = "PUSHPROV_STORE_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret
_MAX_FILE = 4096  # a passphrase file is small; read no further


def read_passphrase(
    file: str | Path | None,
    environ: Mapping[str, str] | None = None,
    *,
    file_option: str = "store_passphrase_file",
) -> bytes:
    """The store passphrase from ``file`` or the environment; ``file_option`` names the file's
    setting in the error."""
    if file is not None and str(file) != "":
        try:
            with open(file, "rb") as handle:
                data = handle.read(_MAX_FILE + 1)
        except OSError as error:
            raise UsageError(f"cannot read {file}: {error.strerror}") from None
        if len(data) > _MAX_FILE:
            raise InputTooLargeError(f"{file} is larger than the policy allows")
        lines = data.splitlines()
        passphrase = lines[0] if lines else b""
    else:
        environ = os.environ if environ is None else environ
        passphrase = environ.get(PASSPHRASE_ENV, "").encode()
    if not passphrase:
        raise UsageError(f"the store passphrase is missing: {file_option} or ${PASSPHRASE_ENV}")
    return passphrase
