"""Who the caller is: one rule for every route, POST /v1/gopc's plain ASGI endpoint included.

A client names itself with its API key: ``Authorization: Bearer <key>``, or Basic auth with the
key as the password (a browser, for the dashboard). The key is looked up in the service state;
a found client's name goes into the request's scope state, where the access log finds it.
Unknown callers get Google's silent 404 (``require``); the dashboard asks a browser to sign in
instead (``identify`` and its own 401). Reads the raw ASGI headers: no request object is built,
as the hot path has none.
"""

from __future__ import annotations

import base64

from starlette.types import Scope

from ._answers import not_found
from ._state import ServiceState

__all__ = ["Callers"]


class Callers:
    def __init__(self, state: ServiceState) -> None:
        self._state = state

    def identify(self, scope: Scope) -> str | None:
        """The client behind the request's first Authorization header, or None."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                client = self._client_of(value.decode("latin-1"))
                if client is not None:
                    scope["state"]["client"] = client
                return client
        return None

    def require(self, scope: Scope) -> str:
        """The client, or the silent 404 Google's rule gives an unknown caller."""
        client = self.identify(scope)
        if client is None:
            raise not_found()
        return client

    def _client_of(self, authorization: str) -> str | None:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        scheme = scheme.lower()
        if scheme == "basic":
            try:
                token = base64.b64decode(token, validate=True).decode().partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return None
        elif scheme != "bearer":
            return None
        return self._state.authenticate(token)
