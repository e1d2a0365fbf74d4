"""The Authorization header, the first thing the service reads from a stranger.

``data[0]`` picks a route (POST /v1/gopc with a valid body, GET /v1/keys, POST /v1/echo),
the rest is the header's value. Unknown callers get a 404; a 500 is a finding.
"""

from __future__ import annotations

from ._seeds import request as _request_seeds
from .request import call

_BODY = _request_seeds()[1]["plain.json"]
_ROUTES = (
    ("POST", "/v1/gopc", b"application/json", _BODY),
    ("GET", "/v1/keys", b"application/json", b""),
    ("POST", "/v1/echo", b"application/octet-stream", b"x"),
)


def fuzz_one(data: bytes) -> None:
    if not data:
        return
    method, path, content_type, body = _ROUTES[data[0] % len(_ROUTES)]
    call(method, path, [(b"authorization", data[1:]), (b"content-type", content_type)], body)
