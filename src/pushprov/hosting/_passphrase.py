"""The store passphrase: one rule for the CLI, the service and the sandbox.

It comes from a file (its first line) when one is named, else from ``$PUSHPROV_STORE_PASSPHRASE``,
else from the file `pushprov init` makes beside an embedded store; it never travels on argv.
Empty is refused everywhere: an empty passphrase would seal every secret under a key anyone can
derive.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .._errors import UsageError
from .._files import first_line
from ..store import Backend, passphrase_file_beside, read_passphrase_beside

__all__ = ["PASSPHRASE_ENV", "read_passphrase"]

PASSPHRASE_ENV = "PUSHPROV_STORE_PASSPHRASE"  # noqa: S105 - the variable's name, not a secret


def read_passphrase(
    file: str | Path | None,
    backend: Backend,
    environ: Mapping[str, str] | None = None,
    *,
    file_option: str = "store_passphrase_file",
) -> bytes:
    """The passphrase of ``backend``'s store from ``file``, the environment or the file beside
    the store; ``file_option`` names the file's setting in the error."""
    if file is not None and str(file) != "":
        passphrase = first_line(file)
    else:
        environ = os.environ if environ is None else environ
        if PASSPHRASE_ENV in environ:
            passphrase = environ[PASSPHRASE_ENV].encode()
        elif backend.path is not None:
            passphrase = read_passphrase_beside(backend.path) or b""
        else:
            passphrase = b""
    if not passphrase:
        beside = (
            ""
            if backend.path is None
            else f", or keep it in {passphrase_file_beside(backend.path)} as 'pushprov init' does"
        )
        raise UsageError(
            "the key store needs its passphrase: the passphrase is missing or empty; "
            f"set ${PASSPHRASE_ENV} or {file_option}{beside}"
        )
    return passphrase
