"""The one strict JSON reader: UTF-8 only, no duplicate members, no NaN or Infinity.

GOPCs, service requests, JOSE headers and JWKs all go through it; each caller names the
error class its own contract promises. Messages name ``what`` only, never the input's text.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

from ._errors import PushprovError

__all__ = ["parse_strict_json"]


class _RefusedError(ValueError):
    """Raised inside json.loads by the hooks; the message is one of ours, not the input's."""


def parse_strict_json(data: bytes | str, *, what: str, error: type[PushprovError]) -> Any:
    """``data`` as JSON, or ``error`` for invalid UTF-8, duplicates, NaN/Infinity, bad JSON."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise error(f"{what} is not UTF-8") from None
    try:
        return json.loads(data, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except _RefusedError as refused:
        raise error(str(refused)) from None
    except (ValueError, RecursionError):
        raise error(f"{what} is not valid JSON") from None


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            # Two parsers could each see another value: one member, one meaning.
            raise _RefusedError("JSON has a duplicate member")
        result[name] = value
    return result


def _no_constant(name: str) -> NoReturn:
    raise _RefusedError("JSON has a non-finite number")
