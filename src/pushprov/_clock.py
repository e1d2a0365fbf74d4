"""Reference time: parsed from the command line or taken once at the edge, then passed down."""

from __future__ import annotations

import datetime as _dt
import re

from ._errors import UsageError

__all__ = [
    "MAX_UNIX_SECONDS",
    "as_unix",
    "from_unix",
    "now",
    "parse_duration",
    "parse_reference_time",
    "parse_time",
]

#: 9999-12-31T23:59:59Z, the last whole second a datetime can hold: ``from_unix`` fails beyond.
MAX_UNIX_SECONDS = 253402300799

_UNIX = re.compile(r"-?[0-9]{1,12}")
_DURATION = re.compile(r"([0-9]{1,6})([smhdwy]?)")
_DAY = 86400
_UNIT_SECONDS = {"": _DAY, "s": 1, "m": 60, "h": 3600, "d": _DAY, "w": 7 * _DAY, "y": 365 * _DAY}


def now() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


def parse_time(text: str) -> _dt.datetime:
    """ISO 8601 (naive means UTC) or Unix seconds, as sq's ``--time`` takes it."""
    text = text.strip()
    if _UNIX.fullmatch(text):
        seconds = int(text)
        if not 0 <= seconds <= MAX_UNIX_SECONDS:
            raise UsageError("time must lie between 1970 and the end of year 9999")
        return from_unix(seconds)
    try:
        value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError("time must be ISO 8601 or Unix seconds") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.UTC)
    return value.astimezone(_dt.UTC)


#: OpenPGP's times are unsigned 32-bit seconds (RFC 9580 §3.5): 1970 to 2106-02-07T06:28:15Z.
_LAST_OPENPGP_SECOND = 2**32 - 1


def parse_reference_time(text: str) -> _dt.datetime:
    """``--at``: ``parse_time`` within what a key, a signature and the store can record, so
    that a time outside it is the caller's mistake (usage), not a failure deep inside."""
    value = parse_time(text)
    if not 0 <= value.timestamp() <= _LAST_OPENPGP_SECOND:
        raise UsageError("--at must lie between 1970-01-01 and 2106-02-07T06:28:15Z")
    return value


def parse_duration(text: str) -> _dt.timedelta:
    """``365d``, ``52w``, ``1y`` (365 days), ``12h``; a bare number is days."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise UsageError("duration must look like 365d, 52w, 1y or 12h")
    return _dt.timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def as_unix(value: _dt.datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("naive datetime: pass an aware one (UTC)")
    return int(value.timestamp())


def from_unix(seconds: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(seconds, _dt.UTC)
