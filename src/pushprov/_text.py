"""Text for people: what a terminal or a page shows must be what the data says.

A user ID, a JWK's kid, a store row or an error message can carry control characters: a
newline and ``ESC[8m`` forge or hide lines on a terminal, and bidirectional overrides reorder
what is shown (Trojan Source). ``printable`` escapes them, and the backslash itself so that an
escape cannot be faked; every human-readable output passes its values (or whole lines) through
it. Machine outputs (``--json``) keep the data as it is: JSON escapes C0 controls itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["printable", "printable_lines"]

# C0 controls, DEL, C1 controls; the bidi embeddings, overrides and isolates, the marks that
# steer them, and the line and paragraph separators some terminals break lines at.
_UNSAFE = re.compile(
    "[\\\\\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char == "\\":
        return "\\\\"
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    r"""``text`` with every control, bidi control and backslash escaped (``\x1b``, ``\u202e``,
    ``\\``); unchanged when it has none."""
    return _UNSAFE.sub(_escape, text)


def printable_lines(lines: Iterable[str]) -> bytes:
    """Lines we composed, each made printable, as the UTF-8 text a command writes out."""
    return "".join(printable(line) + "\n" for line in lines).encode()
