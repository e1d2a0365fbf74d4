"""Structured JSON logs, with a last-line filter that masks any digit run passing Luhn.

The filter is the safety net, not the mechanism: nothing logs card data on purpose. It runs on
the formatted line, so a PAN cannot get out even through an exception message or a field.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

__all__ = ["JsonFormatter", "configure_logging", "redact"]

# Digit groups joined by up to three separators of any kind (not letters): spaces, ``-``, ``:``
# (allowed in requestId), ``_``, ``.``, ``/``, quotes... A PAN split by whatever separator is
# still a run of 12 to 19 digits across consecutive groups. The pattern cannot backtrack: a
# group of digits always ends at a non-digit.
_CHAIN = re.compile(r"[0-9]+(?:[^0-9A-Za-z]{1,3}[0-9]+)*")
_GROUP = re.compile(r"[0-9]+")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def redact(text: str) -> str:
    """``text`` with each run of whole digit groups that holds 12 to 19 digits and passes Luhn
    replaced by ``[PAN last4]``, whatever separates the groups.

    Runs are tried from every group, longest first, so a PAN stays masked when a stray digit
    group sits before or after it. A single unseparated group longer than 19 digits is a
    number, not a card, and is left alone (as are shorter runs failing Luhn).
    """

    def mask(match: re.Match[str]) -> str:
        chain = match.group(0)
        groups = [(found.start(), found.end()) for found in _GROUP.finditer(chain)]
        pieces, done, first = [], 0, 0
        while first < len(groups):
            last = _longest_card(chain, groups, first)
            if last is None:
                first += 1
                continue
            start, end = groups[first][0], groups[last][1]
            digits = "".join(chain[a:b] for a, b in groups[first : last + 1])
            pieces += [chain[done:start], "[PAN " + digits[-4:] + "]"]
            done, first = end, last + 1
        return "".join(pieces) + chain[done:] if pieces else chain

    return _CHAIN.sub(mask, text)


def _longest_card(chain: str, groups: list[tuple[int, int]], first: int) -> int | None:
    """The last group of the longest Luhn-valid run of 12-19 digits from group ``first``."""
    runs, count = [], 0
    for index in range(first, len(groups)):
        count += groups[index][1] - groups[index][0]
        if count > 19:
            break
        if count >= 12:
            runs.append(index)
    for last in reversed(runs):
        digits = "".join(chain[a:b] for a, b in groups[first : last + 1])
        if _luhn(digits):
            return last
    return None


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any ``extra`` fields."""

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._STANDARD and not key.startswith("_"):
                document[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # Type only: an exception's text or traceback could carry request data.
            document["exception"] = record.exc_info[0].__name__
        return redact(json.dumps(document, default=str, separators=(",", ":")))


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # Access lines would duplicate ours (and carry the raw path); ours carry the request id.
    logging.getLogger("uvicorn.access").disabled = True
