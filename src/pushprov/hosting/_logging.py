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

# 12 to 19 digits, optionally grouped by single spaces or dashes, not part of a longer number.
_CANDIDATE = re.compile(r"(?<![0-9])(?:[0-9][ -]?){11,18}[0-9](?![0-9])")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def redact(text: str) -> str:
    def mask(match: re.Match[str]) -> str:
        digits = re.sub(r"[ -]", "", match.group(0))
        if 12 <= len(digits) <= 19 and _luhn(digits):
            return "[PAN " + digits[-4:] + "]"
        return match.group(0)

    return _CANDIDATE.sub(mask, text)


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
