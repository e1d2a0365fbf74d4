"""The CLI's side of the error classes: the exit-status table of ``--help`` and the one line a
failure prints. Both read the classes (``pushprov._errors``), so neither can drift from them."""

from __future__ import annotations

import sys
import textwrap

from .. import hsm, keys, store
from .._errors import PushprovError, error_classes
from .._text import printable

__all__ = ["exit_status_epilog", "report_failure"]

# The error classes of these packages join the table once imported (here, for that reason).
_PACKAGES_WITH_ERRORS = (hsm, keys, store)


def exit_status_epilog() -> str:
    """``exit status:`` then one entry per error class: status, code, when it is raised."""
    lines = ["exit status:", "   0  success"]
    for cls in error_classes():
        when = (cls.__doc__ or "").strip()
        entry = f"  {cls.exit_status:2d}  {cls.code:<19} {when}"
        lines += textwrap.wrap(entry, width=100, subsequent_indent=" " * 26)
    return "\n".join(lines) + "\n"


def report_failure(error: BaseException) -> int:
    """Print the one ``error: <code>: <message>`` line to stderr; the exit status to return.

    Anything not raised on purpose is reported with no details: its text could carry data."""
    if isinstance(error, PushprovError):
        print(f"error: {error.code}: {printable(error.message)}", file=sys.stderr)
        return error.exit_status
    print(f"error: {PushprovError.code}: unexpected failure", file=sys.stderr)
    return PushprovError.exit_status
