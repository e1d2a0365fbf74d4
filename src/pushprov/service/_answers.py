"""Complete early answers: Google-style error bodies, the silent 404, and how to send them.

Framework-free on purpose: the hot route (``_gopc``) sends them as plain ASGI messages, the
FastAPI routes turn them into responses. Descriptions are fixed texts or our own messages; an
answer never echoes the request.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any

from starlette.types import Send

from .._errors import PushprovError
from ._models import CardIn, ErrorResponse, GopcRequest, RequestHeader

__all__ = [
    "ERROR_STATUSES",
    "TRANSPORT_ERRORS",
    "UNKNOWN_CALLER",
    "Answer",
    "error",
    "keys_unavailable",
    "millis",
    "not_found",
    "refusal",
    "validation_error",
]

# What each error status means, for the OpenAPI document (404 has no body: see not_found).
ERROR_STATUSES: dict[int, str] = {
    400: "bad input",
    404: "unknown caller (empty body)",
    409: "same requestId, different body",
    413: "body over the cap",
    429: "rate limited",
    503: "overloaded or no usable keys; retry after Retry-After",
}

# The same, as FastAPI's ``responses=``: any route may meet the transport limits or a missing
# key set; a route that needs a known caller may answer the silent 404.
TRANSPORT_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": ERROR_STATUSES[status]}
    for status in (400, 413, 503)
}
UNKNOWN_CALLER: dict[int | str, dict[str, Any]] = {404: {"description": ERROR_STATUSES[404]}}


class Answer(Exception):  # noqa: N818 - control flow: an answer, not a failure
    """A whole response, raised from wherever the request's fate is decided."""

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        *,
        media_type: str | None = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(str(status))
        self.status = status
        self.body = body
        self.headers = dict(headers)
        if body and media_type:
            self.headers["content-type"] = media_type

    async def send(self, send: Send) -> None:
        headers = [(name.encode(), value.encode()) for name, value in self.headers.items()]
        headers.append((b"content-length", str(len(self.body)).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def millis(at: _dt.datetime) -> str:
    return str(int(at.timestamp() * 1000))


def error(
    status: int, code: str, description: str, at: _dt.datetime, request_id: str | None
) -> Answer:
    """``ErrorResponse{responseHeader, errorResponseCode, errorDescription}``."""
    body = {
        "responseHeader": {"responseTimestamp": millis(at), "requestId": request_id},
        "errorResponseCode": code,
        "errorDescription": description,
    }
    retry = (("retry-after", "1"),) if status in (429, 503) else ()
    return Answer(status, json.dumps(body, separators=(",", ":")).encode(), headers=retry)


def refusal(failure: PushprovError, at: _dt.datetime, request_id: str | None) -> Answer:
    """How one of our errors looks from outside: its class's HTTP status and code."""
    cls = type(failure)
    return error(cls.http_status, cls.response_code, failure.message, at, request_id)


def keys_unavailable(at: _dt.datetime, request_id: str | None) -> Answer:
    return error(503, "KEYS_UNAVAILABLE", "no usable keys", at, request_id)


def not_found() -> Answer:
    # Google's rule for unauthenticated callers: 404 and nothing else to learn from.
    return Answer(404)


def validation_error(errors: Any, at: _dt.datetime) -> Answer:
    """400 naming the fields at fault by their paths in our models, never the request's own
    member names or values: an unknown member's name can be a card number (pydantic's messages,
    too, can quote the input)."""
    fields = sorted({_known_path(item) for item in errors})
    missing = all(item.get("type") == "missing" for item in errors)
    code = "MISSING_REQUIRED_FIELD" if missing else "INVALID_FIELD_VALUE"
    return error(400, code, "invalid or missing: " + ", ".join(fields)[:300], at, None)


def _known_path(item: Any) -> str:
    """The error's location up to the first part that is not one of our field names."""
    path = []
    for part in item.get("loc", ()):
        if part in ("body", "path", "query", "header"):
            continue
        if not (isinstance(part, str) and part in _FIELD_NAMES):
            break
        path.append(part)
    where = ".".join(path) or "body"
    return f"{where} (unknown member)" if item.get("type") == "extra_forbidden" else where


_FIELD_NAMES = frozenset(
    name for model in (GopcRequest, RequestHeader, CardIn) for name in model.model_fields
)
